"use strict";
// Shared JSON-lines plumbing for the interop fixture scripts.
//
// Protocol: commands arrive on stdin, one JSON object per line; events and
// replies leave on stdout, one JSON object per line. Nothing else is written
// to stdout (diagnostics go to stderr). Binary values travel as
// {"$bin": "<base64>"} in both directions.

const readline = require("node:readline");

// toWire converts a value for JSON output: Buffers, ArrayBuffers and typed
// arrays become {$bin: base64}; Sets become arrays; Maps become objects;
// functions and undefined are dropped (undefined array items become null).
function toWire(v, depth = 0) {
  if (depth > 64) return "[too deep]";
  if (v === null || v === undefined) return v === undefined ? undefined : null;
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  }
  if (Array.isArray(v)) {
    return v.map((x) => {
      const w = toWire(x, depth + 1);
      return w === undefined ? null : w;
    });
  }
  if (v instanceof Set) return toWire([...v], depth + 1);
  if (v instanceof Map) return toWire(Object.fromEntries(v), depth + 1);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Error) return { message: v.message, data: toWire(v.data, depth + 1) };
  if (typeof v === "function") return undefined;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "object") {
    const out = {};
    for (const [k, x] of Object.entries(v)) {
      const w = toWire(x, depth + 1);
      if (w !== undefined) out[k] = w;
    }
    return out;
  }
  return v;
}

// fromWire converts parsed JSON back: {$bin: base64} (and nothing else)
// becomes a Buffer, recursively.
function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
      return Buffer.from(v.$bin, "base64");
    }
    const out = {};
    for (const k of keys) out[k] = fromWire(v[k]);
    return out;
  }
  return v;
}

// out writes one JSON line to stdout. On Linux, writes to a pipe are
// synchronous, so every line is flushed when out returns.
function out(obj) {
  process.stdout.write(JSON.stringify(toWire(obj)) + "\n");
}

function log(...args) {
  process.stderr.write(
    `${new Date().toISOString().slice(11, 23)} [${require("node:path").basename(process.argv[1] || "node")} ${process.pid}] ` +
      args.map((a) => (typeof a === "string" ? a : require("node:util").inspect(a))).join(" ") +
      "\n",
  );
}

function errMessage(e) {
  if (e instanceof Error) return e.message || String(e);
  if (typeof e === "string") return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// Reply lets a handler add fields beside "ok" in its reply line.
class Reply {
  constructor(ok, extra) {
    this.ok = ok;
    this.extra = extra || {};
  }
}

// run starts the command loop. handlers maps op -> async (cmd) => result.
// A result of undefined is replied as ok: true. shutdown is an async
// function called once on stdin EOF or SIGTERM/SIGINT, after which the
// process exits (forcefully after 3s).
function run(handlers, shutdown) {
  let stopping = false;
  const stop = (why) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    const force = setTimeout(() => {
      log("shutdown took too long, exiting");
      process.exit(0);
    }, 3000);
    force.unref();
    Promise.resolve()
      .then(() => shutdown && shutdown())
      .catch((e) => log("shutdown error:", errMessage(e)))
      .finally(() => {
        log("exit");
        process.exit(0);
      });
  };

  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("unhandledRejection", (e) => log("unhandled rejection:", e));
  process.on("uncaughtException", (e) => log("uncaught exception:", e));
  // A closed stdout (the Go side went away) must not crash-loop.
  process.stdout.on("error", () => stop("stdout error"));

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    line = line.trim();
    if (!line) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      out({ error: "invalid JSON: " + errMessage(e) });
      return;
    }
    const id = cmd.id;
    const h = handlers[cmd.op];
    if (!h) {
      out({ id, error: `unknown op ${JSON.stringify(cmd.op)}` });
      return;
    }
    Promise.resolve()
      .then(() => h(cmd))
      .then(
        (res) => {
          if (res instanceof Reply) out(Object.assign({}, res.extra, { id, ok: res.ok }));
          else out({ id, ok: res === undefined ? true : res });
        },
        (e) => out({ id, error: errMessage(e) }),
      );
  });
  rl.on("close", () => stop("stdin closed"));
  return stop;
}

// withTimeout rejects with "timeout after Nms" when p has not settled in ms
// (ms <= 0 or undefined: no limit).
function withTimeout(p, ms) {
  if (!ms || ms <= 0) return p;
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout after ${ms}ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function asArray(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

module.exports = { Reply, toWire, fromWire, out, log, errMessage, run, withTimeout, asArray };
