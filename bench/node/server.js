"use strict";
// The Node original of the side-by-side benchmark: socket.io 4.8 with
// @socket.io/redis-adapter 8.3 on node-redis 4, as the seed runs it, with
// the same behaviour as a frutos worker: the handshake's auth.token is an
// HS256 JWT (sub, role, exp) or connect_error "Unauthorized"; every socket
// joins user:<sub> (mentors also mentor:<sub>); the client event "ping"
// with an ack answers {pong: true, t}. No connection state recovery: the
// redis adapter does not support it.
//
// Run it under PM2 cluster mode with ecosystem.config.js. env:
//   PORT (3000), HOST (127.0.0.1), REDIS_URL (redis://127.0.0.1:6379),
//   FRUTOS_AUTH_SECRET (required), ADAPTER_KEY (socket.io)

const http = require("node:http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter } = require("@socket.io/redis-adapter");
const jwt = require("jsonwebtoken");

const env = process.env;
const PORT = parseInt(env.PORT || "3000", 10);
const HOST = env.HOST || "127.0.0.1";
const REDIS_URL = env.REDIS_URL || "redis://127.0.0.1:6379";
const SECRET = env.FRUTOS_AUTH_SECRET;
const KEY = env.ADAPTER_KEY || "socket.io";
const ROLES = new Set(["student", "mentor", "admin"]);

if (!SECRET) {
  console.error("FRUTOS_AUTH_SECRET is required");
  process.exit(2);
}

function authenticate(socket, next) {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token !== "string" || token === "") return next(new Error("Unauthorized"));
  let claims;
  try {
    claims = jwt.verify(token, SECRET, { algorithms: ["HS256"] });
  } catch (e) {
    return next(new Error("Unauthorized"));
  }
  if (!claims || typeof claims.sub !== "string" || claims.sub === "" || !ROLES.has(claims.role)) {
    return next(new Error("Unauthorized"));
  }
  socket.data = { sub: claims.sub, role: claims.role };
  next();
}

async function main() {
  const pub = createClient({ url: REDIS_URL });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis pub:", e.message));
  sub.on("error", (e) => console.error("redis sub:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub, { key: KEY }) });
  io.use(authenticate);
  io.on("connection", (socket) => {
    const { sub: user, role } = socket.data;
    socket.join(`user:${user}`);
    if (role === "mentor") socket.join(`mentor:${user}`);
    socket.on("ping", (...args) => {
      const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
      if (ack) ack({ pong: true, t: Date.now() });
    });
  });
  httpServer.listen(PORT, HOST, () => {
    console.log(`listening on ${HOST}:${PORT} (pid ${process.pid})`);
    if (process.send) process.send("ready");
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
