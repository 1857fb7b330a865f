"use strict";
// The official Socket.IO Admin UI (the ui/dist of @socket.io/admin-ui, as
// published on npm) in a real headless Chromium driven by playwright-core,
// over JSON lines (the plumbing of ../node/lib.js: commands on stdin,
// replies and events on stdout).
//
// It serves ui/dist on a loopback port of its own (another origin than
// the Socket.IO server, as the hosted page https://admin.socket.io is),
// starts Chromium and prints {"ready": true, "port": N, "ui": URL}.
//
// env:
//   CHROMIUM   the browser (default /usr/bin/chromium, Debian's package)
//
// Commands (each replies {"id", "ok"} or {"id", "error"}):
//   login {serverUrl, username, password}   the connection form, as a person fills it
//   servers {count}                         the Servers page (once it lists count servers): rows of cell texts
//   sockets {nsp}                           the Sockets page of a namespace: rows of cell texts
//   socket {nsp, socket, room}              a socket's page (once it lists room): its text and rooms
//   join {nsp, socket, room}                the socket page's "Join a room" form
//   disconnect {nsp, socket}                the Sockets page's disconnect button of a socket
//   screenshot {path, route}                a PNG of a page of the UI
// Events: {"console": text} for the page's errors.

const http = require("node:http");
const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");
const { out, log, run } = require("../node/lib");

const uiDir = path.join(path.dirname(require.resolve("@socket.io/admin-ui/package.json")), "ui", "dist");
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

// serve is a static file server for ui/dist, nothing outside it.
function serve() {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const rel = path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, "");
    let file = path.join(uiDir, rel);
    if (!file.startsWith(uiDir)) {
      res.writeHead(403).end();
      return;
    }
    if (rel === "/" || rel === ".") file = path.join(uiDir, "index.html");
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" }).end(body);
    });
  });
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => resolve(srv)));
}

// cellTexts reads the rows of the page's data table.
async function cellTexts(page) {
  await page.locator("table tbody tr").first().waitFor();
  return await page.$$eval("table tbody tr", (rows) =>
    rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.innerText.trim())),
  );
}

async function main() {
  const srv = await serve();
  const ui = `http://127.0.0.1:${srv.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => out({ console: String(e) }));
  page.on("console", (m) => {
    if (m.type() === "error") out({ console: m.text() });
  });

  // go opens a page of the UI as its menu does (the address's hash), and
  // waits until that page is the one shown (its breadcrumb), not the
  // previous one still on screen.
  const titles = { "/servers/": "Servers", "/sockets/": "Sockets", "/rooms/": "Rooms", "/clients/": "Clients" };
  const go = async (route) => {
    await page.goto(ui + "#" + route);
    if (titles[route]) await shown(titles[route]);
  };
  // shown waits until the page titled title is the only one on screen
  // (pages slide in and out: for a moment both are there).
  const shown = (title) =>
    page.waitForFunction((t) => {
      const b = document.querySelectorAll(".v-breadcrumbs");
      return b.length === 1 && b[0].innerText.includes(t);
    }, title);
  // openSocket opens a socket's page from the Sockets page, by clicking
  // its row, as a person does.
  const openSocket = async (nsp, id) => {
    await go("/sockets/");
    await selectNamespace(nsp);
    await page.locator("table tbody tr td", { hasText: id }).first().click();
    await shown("Socket details");
  };
  const roomsCard = () => page.locator(".v-card", { has: page.locator(".v-card__title", { hasText: /^Rooms$/ }) });

  const handlers = {
    async login(cmd) {
      await go("/");
      await page.reload(); // a fresh form, without an earlier attempt's error
      const dialog = page.locator(".v-dialog--active");
      await dialog.getByLabel("Server URL").fill(cmd.serverUrl);
      await dialog.getByLabel("Username").fill(cmd.username);
      await dialog.getByLabel("Password").fill(cmd.password);
      await dialog.getByRole("button", { name: "Connect" }).click();
      // the form closes on "connect"; it stays open with the error otherwise
      const closed = dialog.waitFor({ state: "hidden", timeout: 10000 }).then(() => null);
      const failed = dialog
        .locator(".red--text")
        .waitFor({ timeout: 10000 })
        .then(async () => await dialog.locator(".red--text").innerText());
      const err = await Promise.race([closed, failed]);
      if (err) throw new Error("login refused: " + err.trim());
      return true;
    },
    async servers(cmd) {
      await go("/servers/");
      if (cmd.count) {
        await page.waitForFunction((n) => document.querySelectorAll("table tbody tr td:nth-child(2)").length >= n, cmd.count, {
          timeout: 10000,
        });
      }
      return await cellTexts(page);
    },
    async sockets(cmd) {
      await go("/sockets/");
      await selectNamespace(cmd.nsp || "/");
      return await cellTexts(page);
    },
    async socket(cmd) {
      await openSocket(cmd.nsp, cmd.socket);
      const rooms = roomsCard();
      await rooms.locator("table tbody tr").first().waitFor();
      if (cmd.room) await rooms.locator("td", { hasText: cmd.room }).first().waitFor();
      return {
        text: await page.locator("main").innerText(),
        rooms: await rooms.locator("table tbody tr td:first-child").allInnerTexts(),
      };
    },
    async join(cmd) {
      await openSocket(cmd.nsp, cmd.socket);
      const card = roomsCard();
      await card.getByLabel("Join a room").fill(cmd.room);
      await card.locator("form button[type=submit]").click();
      // the dashboard shows the room once the server reports room_joined
      await card.locator("td", { hasText: cmd.room }).first().waitFor({ timeout: 10000 });
      return true;
    },
    async disconnect(cmd) {
      await go("/sockets/");
      await selectNamespace(cmd.nsp || "/");
      const row = page.locator("table tbody tr", { hasText: cmd.socket });
      await row.locator("button").click(); // the row's click opens the socket's page too
      // the row goes once the server reports socket_disconnected
      await go("/sockets/");
      await page.waitForFunction(
        (id) => ![...document.querySelectorAll("table tbody tr")].some((tr) => tr.innerText.includes(id)),
        cmd.socket,
        { timeout: 10000 },
      );
      return true;
    },
    async screenshot(cmd) {
      await go(cmd.route || "/");
      if (cmd.waitText) await page.getByText(cmd.waitText).first().waitFor();
      await page.screenshot({ path: cmd.path, fullPage: false });
      return cmd.path;
    },
  };

  // selectNamespace picks a namespace in the page's selector, unless it is
  // already the selected one.
  async function selectNamespace(nsp) {
    const sel = page.locator(".v-select", { hasText: "Namespace" }).first();
    await sel.waitFor();
    const current = (await sel.locator(".v-select__selection").innerText().catch(() => "")).trim();
    if (current === nsp) return;
    await sel.click();
    await page.locator(".v-menu__content--active .v-list-item", { hasText: nsp }).first().click();
  }

  // FAIL_SHOTS=dir: a screenshot of the page when a command fails.
  if (process.env.FAIL_SHOTS) {
    for (const [op, h] of Object.entries(handlers)) {
      handlers[op] = async (cmd) => {
        try {
          return await h(cmd);
        } catch (e) {
          const file = path.join(process.env.FAIL_SHOTS, `${op}-${cmd.id}.png`);
          await page.screenshot({ path: file }).catch(() => {});
          throw new Error(`${e.message} (screenshot ${file})`);
        }
      };
    }
  }

  run(handlers, async () => {
    await browser.close();
    srv.close();
  });
  out({ ready: true, port: srv.address().port, ui });
  log(`Admin UI ${ui} in ${process.env.CHROMIUM || "/usr/bin/chromium"}`);
}

main().catch((e) => {
  log("browser.js:", e && e.stack ? e.stack : e);
  process.exit(1);
});
