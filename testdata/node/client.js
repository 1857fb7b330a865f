"use strict";
// The official socket.io-client, driven over JSON lines (see lib.js and README.md).
//
// env (or argv: URL TOKEN):
//   URL            server URL, e.g. http://127.0.0.1:3000 (required)
//   TOKEN          JWT sent as handshake auth {token} (omitted when empty)
//   AUTH_JSON      the whole handshake auth as JSON (e.g. the Admin UI's
//                  {"username", "password"}); overrides TOKEN
//   TRANSPORTS     comma list, e.g. "websocket" or "polling" (default: library default)
//   NAMESPACE      namespace to connect to (default "/")
//   RECONNECTION=0 disable automatic reconnection
//   PATH_PREFIX    socket.io path (default /socket.io/)
//
// Events printed: {"connect": {id, transport}}, {"recovered": bool},
// {"upgrade": name}, {"connect_error": {message, data}}, {"disconnect": reason},
// {"reconnect_attempt": n}, {"event": name, "args": [...], "withAck": bool}.
// An event that carries an ack is acked with the reply set by the "ackReply"
// command for that event (default {from: "node-client", event, args}).

const { io } = require("socket.io-client");
const { out, log, fromWire, run, asArray, errMessage } = require("./lib");

const env = process.env;
const URL = env.URL || process.argv[2];
const TOKEN = env.TOKEN !== undefined ? env.TOKEN : process.argv[3];
if (!URL) {
  log("URL is required");
  process.exit(2);
}

let ns = env.NAMESPACE || "/";
if (!ns.startsWith("/")) ns = "/" + ns;
const opts = {
  auth: env.AUTH_JSON ? JSON.parse(env.AUTH_JSON) : TOKEN ? { token: TOKEN } : {},
  reconnection: env.RECONNECTION !== "0",
  forceNew: true,
};
if (env.TRANSPORTS) opts.transports = env.TRANSPORTS.split(",").map((s) => s.trim()).filter(Boolean);
if (env.PATH_PREFIX) opts.path = env.PATH_PREFIX;
if (env.RECONNECTION_DELAY_MS) {
  opts.reconnectionDelay = parseInt(env.RECONNECTION_DELAY_MS, 10);
  opts.reconnectionDelayMax = opts.reconnectionDelay;
}

const socket = io(URL.replace(/\/+$/, "") + (ns === "/" ? "" : ns), opts);
const ackReplies = new Map(); // event -> {reply} | {noAck: true}

const transportName = () => (socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : null);

socket.io.on("open", () => {
  const engine = socket.io.engine;
  engine.on("upgrade", (t) => out({ upgrade: t.name }));
});
socket.io.on("reconnect_attempt", (n) => out({ reconnect_attempt: n }));
socket.on("connect", () => {
  out({ connect: { id: socket.id, transport: transportName() } });
  out({ recovered: !!socket.recovered });
});
socket.on("connect_error", (err) => {
  out({ connect_error: { message: err && err.message, data: err && err.data } });
});
socket.on("disconnect", (reason, details) => {
  if (details) log("disconnect details:", details.description || details.message || "");
  out({ disconnect: reason });
});
socket.onAny((event, ...args) => {
  const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
  out({ event, args, withAck: !!ack });
  if (!ack) return;
  const conf = ackReplies.get(event);
  if (conf && conf.noAck) return;
  ack(conf ? conf.reply : { from: "node-client", event, args });
});

const handlers = {
  async emit(cmd) {
    socket.emit(cmd.event, ...fromWire(asArray(cmd.args)));
    return true;
  },
  // ok = every argument the server passed to the ack, as an array.
  async emitWithAck(cmd) {
    const ms = cmd.timeoutMs || 5000;
    return await new Promise((resolve, reject) => {
      socket.timeout(ms).emit(cmd.event, ...fromWire(asArray(cmd.args)), (err, ...resp) => {
        if (err) reject(err);
        else resolve(resp);
      });
    });
  },
  async ackReply(cmd) {
    ackReplies.set(cmd.event, cmd.noAck ? { noAck: true } : { reply: fromWire(cmd.reply) });
    return true;
  },
  async disconnect() {
    socket.disconnect();
    return true;
  },
  async connect(cmd) {
    // url: reconnect to another server (the session is asked back there:
    // socket.io-client keeps its pid and offset across its Manager's uri)
    if (cmd && cmd.url) socket.io.uri = cmd.url.replace(/\/+$/, "");
    socket.connect();
    return true;
  },
  // Simulates a network drop: the client reconnects by itself (unless RECONNECTION=0).
  async close_transport() {
    if (!socket.io.engine) throw new Error("no engine");
    socket.io.engine.close();
    return true;
  },
  async state() {
    return { connected: socket.connected, id: socket.id || null, transport: transportName() };
  },
};

run(handlers, async () => {
  socket.disconnect();
});
log(`connecting to ${URL} ns=${ns} transports=${opts.transports || "default"}`);
