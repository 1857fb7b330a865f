"use strict";
// @socket.io/redis-emitter on a node-redis client, driven over JSON lines
// (see lib.js and README.md).
//
// env: REDIS_URL (required), ADAPTER_KEY (default "socket.io").
//
// Every command replies only after its Redis PUBLISH has completed; the
// reply carries "receivers": the sum of the PUBLISH results (how many
// subscribers got the message).
//
// Note: the emitter speaks the classic adapter protocol only (PUBLISH); a
// cluster using the sharded adapter (SSUBSCRIBE) does not receive it.

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
const { Reply, out, log, fromWire, run, asArray, errMessage } = require("./lib");

const env = process.env;
const REDIS_URL = env.REDIS_URL;
const KEY = env.ADAPTER_KEY || "socket.io";
if (!REDIS_URL) {
  log("REDIS_URL is required");
  process.exit(2);
}

async function main() {
  const client = createClient({ url: REDIS_URL });
  client.on("error", (e) => log("redis error:", errMessage(e)));
  await client.connect();

  // The emitter calls redisClient.publish() and drops the promise; this
  // wrapper keeps those promises so a command can await its publishes.
  let pending = [];
  const tracked = {
    publish(channel, message) {
      const p = client.publish(channel, message);
      pending.push(p);
      return p;
    },
  };
  const emitter = new Emitter(tracked, { key: KEY });

  async function flush() {
    const ps = pending;
    pending = [];
    const counts = await Promise.all(ps);
    return counts.reduce((a, b) => a + Number(b || 0), 0);
  }

  function target(cmd) {
    let op = cmd.namespace && cmd.namespace !== "/" ? emitter.of(cmd.namespace) : emitter;
    const to = asArray(cmd.to !== undefined ? cmd.to : cmd.rooms);
    const except = asArray(cmd.except);
    if (to.length) op = op.to(to);
    if (except.length) op = op.except(except);
    if (cmd.volatile) op = op.volatile;
    return op;
  }

  // Each handler runs synchronously up to flush(), so the publishes of one
  // command are exactly those pending when it flushes.
  const reply = async (f) => {
    f();
    return { receivers: await flush() };
  };
  const handlers = {
    emit: (cmd) => reply(() => target(cmd).emit(cmd.event, ...fromWire(asArray(cmd.args)))),
    socketsJoin: (cmd) => reply(() => target(cmd).socketsJoin(asArray(cmd.join))),
    socketsLeave: (cmd) => reply(() => target(cmd).socketsLeave(asArray(cmd.leave))),
    disconnectSockets: (cmd) => reply(() => target(cmd).disconnectSockets(!!cmd.close)),
    serverSideEmit: (cmd) => {
      const e = cmd.namespace && cmd.namespace !== "/" ? emitter.of(cmd.namespace) : emitter;
      return reply(() => e.serverSideEmit(cmd.event, ...fromWire(asArray(cmd.args))));
    },
  };
  // The reply is {"id", "ok": true, "receivers": n}: ok stays exactly true
  // and the count travels beside it.
  const wrapped = {};
  for (const [op, h] of Object.entries(handlers)) {
    wrapped[op] = async (cmd) => new Reply(true, await h(cmd));
  }

  run(wrapped, async () => {
    try {
      await client.quit();
    } catch (e) {
      log("redis quit:", errMessage(e));
    }
  });
  out({ ready: true, key: KEY });
}

main().catch((e) => {
  log("fatal:", e);
  process.exit(1);
});
