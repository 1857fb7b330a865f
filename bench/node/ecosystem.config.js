// PM2 cluster mode, as the seed runs the Node original:
//   PM2_HOME=/tmp/x INSTANCES=2 PORT=3000 REDIS_URL=... FRUTOS_AUTH_SECRET=... pm2 start ecosystem.config.js
// The master (PM2's God daemon) accepts the connections and hands them to
// the workers round-robin, so long-polling without sticky sessions breaks
// (a request lands on a worker that does not know the session).
module.exports = {
  apps: [
    {
      name: "frutos-bench-node",
      script: __dirname + "/server.js",
      exec_mode: "cluster",
      instances: parseInt(process.env.INSTANCES || "2", 10),
      wait_ready: true,
      listen_timeout: 20000,
      autorestart: false,
      env: {
        PORT: process.env.PORT || "3000",
        HOST: process.env.HOST || "127.0.0.1",
        REDIS_URL: process.env.REDIS_URL || "redis://127.0.0.1:6379",
        FRUTOS_AUTH_SECRET: process.env.FRUTOS_AUTH_SECRET || "",
        ADAPTER_KEY: process.env.ADAPTER_KEY || "socket.io",
      },
    },
  ],
};
