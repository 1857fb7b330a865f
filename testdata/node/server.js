"use strict";
// A Node Socket.IO server like the original app (socket.io + @socket.io/redis-adapter
// on node-redis), driven over JSON lines (see lib.js and README.md).
//
// env:
//   PORT                 listen port (0 = ephemeral; default 0)
//   HOST                 listen address (default 127.0.0.1)
//   REDIS_URL            redis://host:port (required)
//   FRUTOS_AUTH_SECRET   HS256 secret for handshake JWTs (required)
//   ADAPTER_KEY          adapter key / channel prefix (default "socket.io")
//   SHARDED=1            createShardedAdapter (SPUBLISH/SSUBSCRIBE) instead of createAdapter
//                        (with ADAPTER=streams: useShardedPubSub)
//   ADAPTER=streams      @socket.io/redis-streams-adapter instead of @socket.io/redis-adapter
//   STREAM_NAME, STREAM_MAX_LEN, STREAM_COUNT  its streamName, maxLen, streamCount
//   RECOVERY_MS          connectionStateRecovery with this maxDisconnectionDuration
//                        (skipMiddlewares: true); off when unset
//   SUBSCRIPTION_MODE    sharded adapter subscriptionMode (default "dynamic")
//   REQUESTS_TIMEOUT_MS  classic adapter requestsTimeout (default 5000)
//   PING_INTERVAL_MS, PING_TIMEOUT_MS  engine.io heartbeat (library defaults otherwise)
//   NAMESPACES           extra namespaces to create at start, comma separated ("/admin,/x")
//   DYNAMIC_NAMESPACES=1 accept connections to any namespace

const http = require("node:http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const streams = require("@socket.io/redis-streams-adapter");
const jwt = require("jsonwebtoken");
const { out, log, fromWire, run, withTimeout, asArray, errMessage } = require("./lib");

const env = process.env;
const PORT = parseInt(env.PORT || "0", 10);
const HOST = env.HOST || "127.0.0.1";
const REDIS_URL = env.REDIS_URL;
const SECRET = env.FRUTOS_AUTH_SECRET;
const KEY = env.ADAPTER_KEY || "socket.io";
const SHARDED = env.SHARDED === "1" || env.SHARDED === "true";
const REQUESTS_TIMEOUT = parseInt(env.REQUESTS_TIMEOUT_MS || "5000", 10);
const STREAMS = env.ADAPTER === "streams";
const ROLES = new Set(["student", "mentor", "admin"]);

if (!REDIS_URL) {
  log("REDIS_URL is required");
  process.exit(2);
}
if (!SECRET) {
  log("FRUTOS_AUTH_SECRET is required");
  process.exit(2);
}

function authenticate(socket, next) {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token !== "string" || token === "") return next(new Error("Unauthorized"));
  let claims;
  try {
    claims = jwt.verify(token, SECRET, { algorithms: ["HS256"] });
  } catch (e) {
    log("auth rejected:", errMessage(e));
    return next(new Error("Unauthorized"));
  }
  if (!claims || typeof claims.sub !== "string" || claims.sub === "" || !ROLES.has(claims.role)) {
    log("auth rejected: bad claims");
    return next(new Error("Unauthorized"));
  }
  socket.data = { sub: claims.sub, role: claims.role };
  next();
}

function onConnection(socket) {
  const { sub, role } = socket.data;
  socket.join(`user:${sub}`);
  if (role === "mentor") socket.join(`mentor:${sub}`);
  out({
    connection: {
      id: socket.id,
      nsp: socket.nsp.name,
      sub,
      role,
      transport: socket.conn.transport.name,
      recovered: socket.recovered,
    },
  });
  socket.conn.on("upgrade", (t) => out({ upgrade: { id: socket.id, transport: t.name } }));
  socket.onAny((event, ...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ clientEvent: event, socket: socket.id, nsp: socket.nsp.name, args, withAck: !!ack });
    if (ack && event !== "ping") ack({ from: "node-server", event, args });
  });
  socket.on("ping", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack({ pong: true, t: Date.now(), args });
  });
  socket.on("disconnect", (reason) => {
    out({ disconnect: { id: socket.id, nsp: socket.nsp.name, reason } });
  });
}

const configured = new WeakSet();
function setupNamespace(nsp) {
  if (configured.has(nsp)) return;
  configured.add(nsp);
  nsp.use(authenticate);
  nsp.on("connection", onConnection);
}

// serverSideEmit listeners registered by the "listen" command: nsp name -> event -> listener.
const listeners = new Map();

async function main() {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  for (const [name, c] of [
    ["pub", pub],
    ["sub", sub],
  ]) {
    c.on("error", (e) => log(`redis ${name} error:`, errMessage(e)));
  }
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const opts = {};
  if (env.PING_INTERVAL_MS) opts.pingInterval = parseInt(env.PING_INTERVAL_MS, 10);
  if (env.PING_TIMEOUT_MS) opts.pingTimeout = parseInt(env.PING_TIMEOUT_MS, 10);
  if (env.RECOVERY_MS) {
    opts.connectionStateRecovery = { maxDisconnectionDuration: parseInt(env.RECOVERY_MS, 10), skipMiddlewares: true };
  }
  const io = new Server(httpServer, opts);
  io.on("new_namespace", setupNamespace);
  setupNamespace(io.of("/"));

  if (STREAMS) {
    const so = { channelPrefix: KEY, useShardedPubSub: SHARDED };
    if (env.STREAM_NAME) so.streamName = env.STREAM_NAME;
    if (env.STREAM_MAX_LEN) so.maxLen = parseInt(env.STREAM_MAX_LEN, 10);
    if (env.STREAM_COUNT) so.streamCount = parseInt(env.STREAM_COUNT, 10);
    io.adapter(streams.createAdapter(pub, so));
  } else if (SHARDED) {
    io.adapter(
      createShardedAdapter(pub, sub, {
        channelPrefix: KEY,
        subscriptionMode: env.SUBSCRIPTION_MODE || "dynamic",
      }),
    );
  } else {
    io.adapter(createAdapter(pub, sub, { key: KEY, requestsTimeout: REQUESTS_TIMEOUT }));
  }
  for (const n of (env.NAMESPACES || "").split(",").map((s) => s.trim()).filter(Boolean)) {
    io.of(n);
  }
  if (env.DYNAMIC_NAMESPACES === "1") io.of(/^\/.+$/);

  // The adapters subscribe without awaiting. node-redis runs the
  // (S|P)SUBSCRIBE commands of one connection in order, so once this dummy
  // subscription is acknowledged, the adapters' subscriptions are active too.
  // (The streams adapter subscribes on a client of its own and starts
  // reading its stream at "$" when XREAD first runs: tests probe it.)
  const fence = `${KEY}-fixture-fence#${process.pid}`;
  if (SHARDED) await sub.sSubscribe(fence, () => {});
  else await sub.subscribe(fence, () => {});

  const nspOf = (cmd) => io.of(cmd.namespace || "/");

  // target applies the room selectors and flags of a command to a namespace.
  function target(cmd) {
    let op = nspOf(cmd);
    const to = asArray(cmd.to !== undefined ? cmd.to : cmd.rooms);
    const except = asArray(cmd.except);
    if (to.length) op = op.to(to);
    if (except.length) op = op.except(except);
    if (cmd.volatile) op = op.volatile;
    if (cmd.local) op = op.local;
    if (cmd.compress === false) op = op.compress(false);
    return op;
  }

  const handlers = {
    async emit(cmd) {
      target(cmd).emit(cmd.event, ...fromWire(asArray(cmd.args)));
      return true;
    },
    async emitWithAck(cmd) {
      const ms = cmd.timeoutMs || 5000;
      return await target(cmd).timeout(ms).emitWithAck(cmd.event, ...fromWire(asArray(cmd.args)));
    },
    async fetchSockets(cmd) {
      const sockets = await target(cmd).fetchSockets();
      return sockets.map((s) => {
        const auth = Object.assign({}, (s.handshake && s.handshake.auth) || {});
        delete auth.token;
        return { id: s.id, rooms: [...s.rooms], data: s.data, handshakeAuth: auth };
      });
    },
    async localSockets(cmd) {
      return [...nspOf(cmd).sockets.values()].map((s) => ({
        id: s.id,
        rooms: [...s.rooms],
        data: s.data,
        transport: s.conn.transport.name,
      }));
    },
    async socketsJoin(cmd) {
      target(cmd).socketsJoin(asArray(cmd.join));
      return true;
    },
    async socketsLeave(cmd) {
      target(cmd).socketsLeave(asArray(cmd.leave));
      return true;
    },
    async disconnectSockets(cmd) {
      target(cmd).disconnectSockets(!!cmd.close);
      return true;
    },
    async serverSideEmit(cmd) {
      const nsp = nspOf(cmd);
      const args = fromWire(asArray(cmd.args));
      if (!cmd.withAck) {
        nsp.serverSideEmit(cmd.event, ...args);
        return true;
      }
      // io.timeout() does not apply to serverSideEmitWithAck (the adapter's
      // requestsTimeout does), so timeoutMs is enforced here.
      return await withTimeout(nsp.serverSideEmitWithAck(cmd.event, ...args), cmd.timeoutMs);
    },
    async listen(cmd) {
      const nsp = nspOf(cmd);
      const event = cmd.event;
      if (typeof event !== "string" || !event) throw new Error("listen: event required");
      let byEvent = listeners.get(nsp.name);
      if (!byEvent) listeners.set(nsp.name, (byEvent = new Map()));
      const prev = byEvent.get(event);
      if (prev) nsp.off(event, prev);
      const hasReply = Object.prototype.hasOwnProperty.call(cmd, "ackReply");
      const reply = fromWire(cmd.ackReply);
      const listener = (...args) => {
        const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
        out({ serverSideEmit: event, nsp: nsp.name, args, withAck: !!ack });
        if (ack && !cmd.noAck) ack(hasReply ? reply : { from: "node", args });
      };
      byEvent.set(event, listener);
      nsp.on(event, listener);
      return true;
    },
    async serverCount(cmd) {
      return await nspOf(cmd).adapter.serverCount();
    },
    async allRooms(cmd) {
      const a = nspOf(cmd).adapter;
      if (typeof a.allRooms !== "function") throw new Error("allRooms is not supported by this adapter");
      return [...(await a.allRooms())];
    },
  };

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(PORT, HOST, resolve);
  });

  run(handlers, async () => {
    await new Promise((resolve) => io.close(() => resolve()));
    await Promise.allSettled(
      [pub, sub].map(async (c) => {
        try {
          await c.disconnect();
        } catch (e) {
          log("redis disconnect:", errMessage(e));
        }
      }),
    );
  });
  out({ ready: true, port: httpServer.address().port, sharded: SHARDED, key: KEY, adapter: STREAMS ? "streams" : "redis" });
}

main().catch((e) => {
  log("fatal:", e);
  process.exit(1);
});
