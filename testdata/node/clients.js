"use strict";
// Many official socket.io-client connections in one process, for tests of
// the front door and of reload under load (one Node process per client
// would not scale).
//
// env: URL (required), TRANSPORTS (comma list; default = the library's:
// polling then websocket), RECONNECTION_DELAY_MS (default 200),
// RECONNECTION_DELAY_MAX_MS (default 1000).
//
// Commands:
//   connect {tokens: [...]}     open one client per token; ok once every
//                               client connected or failed its first try
//   stats                       aggregate state (see below)
//   close                       disconnect every client
//
// stats ok = {clients, connected, everConnected, connectErrors: {message: n},
//   disconnects: {reason: n}, upgrades, transports: {name: n},
//   events: {name: n}, seq: {received, duplicates, outOfOrder, maxGap},
//   recovered}
// Events named "seq" carry {user, n}: per client, n must rise by 1.

const { io } = require("socket.io-client");
const { log, run, errMessage } = require("./lib");

const URL = process.env.URL;
if (!URL) {
  log("URL is required");
  process.exit(2);
}
const transports = process.env.TRANSPORTS ? process.env.TRANSPORTS.split(",").map((s) => s.trim()).filter(Boolean) : undefined;
const delay = Number(process.env.RECONNECTION_DELAY_MS || 200);
const delayMax = Number(process.env.RECONNECTION_DELAY_MAX_MS || 1000);

const clients = [];
const agg = {
  connectErrors: {},
  disconnects: {},
  upgrades: 0,
  events: {},
  seq: { received: 0, duplicates: 0, outOfOrder: 0, maxGap: 0 },
  recovered: 0,
};
const bump = (m, k) => (m[k] = (m[k] || 0) + 1);

function open(token) {
  const opts = { auth: { token }, reconnectionDelay: delay, reconnectionDelayMax: delayMax, timeout: 10000 };
  if (transports) opts.transports = transports;
  const socket = io(URL, opts);
  const c = { socket, everConnected: false, lastSeq: -1, seen: new Set(), first: null };
  c.first = new Promise((resolve) => {
    socket.once("connect", resolve);
    socket.once("connect_error", resolve);
  });
  socket.on("connect", () => {
    c.everConnected = true;
    if (socket.recovered) agg.recovered++;
    socket.io.engine.once("upgrade", () => agg.upgrades++);
  });
  socket.on("connect_error", (e) => bump(agg.connectErrors, errMessage(e)));
  socket.on("disconnect", (reason) => bump(agg.disconnects, reason));
  socket.onAny((name, ...args) => {
    bump(agg.events, name);
    if (name !== "seq") return;
    const n = args[0] && args[0].n;
    if (typeof n !== "number") return;
    agg.seq.received++;
    if (c.seen.has(n)) {
      agg.seq.duplicates++;
      return;
    }
    c.seen.add(n);
    if (n < c.lastSeq) agg.seq.outOfOrder++;
    else if (c.lastSeq >= 0 && n - c.lastSeq - 1 > agg.seq.maxGap) agg.seq.maxGap = n - c.lastSeq - 1;
    c.lastSeq = Math.max(c.lastSeq, n);
  });
  clients.push(c);
  return c;
}

run(
  {
    async connect(cmd) {
      const opened = (cmd.tokens || []).map(open);
      await Promise.all(opened.map((c) => c.first));
      return true;
    },
    stats() {
      const t = {};
      let connected = 0;
      let ever = 0;
      for (const c of clients) {
        if (c.socket.connected) {
          connected++;
          bump(t, c.socket.io.engine.transport.name);
        }
        if (c.everConnected) ever++;
      }
      return Object.assign({ clients: clients.length, connected, everConnected: ever, transports: t }, agg);
    },
    close() {
      for (const c of clients) c.socket.disconnect();
      return true;
    },
  },
  () => {
    for (const c of clients) c.socket.disconnect();
  },
);
