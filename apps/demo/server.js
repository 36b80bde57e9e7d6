// The demo app that opsrun's PM2 deploy runs on the web hosts (deploys/pm2.py), behind nginx and HAProxy.
//
//   GET /health  -> 200 {"status": "ok", "version": ..., "uptime": seconds, "pid": ...}
//   GET /        -> 200 a line naming the host, the version and the worker
//
// Settings come from the environment that PM2 gives it (group_data pm2_apps[].env):
//   PORT (3001), APP_VERSION, STARTUP_DELAY_MS (warm-up before listening, like a real app loading its
//   caches), RESPONSE_DELAY_MS (a little work per request). Secrets (API_TOKEN) are used, never printed.
//
// A release is this code with its env (APP_VERSION and the rest), rolled out by deploys/pm2.py. Two knobs
// make a misbehaving release that still answers /health, so that only what users see can catch it (a
// canary, rolling.canary): FAIL_ONE_IN=5 answers 500 to one request in five (each worker counts its own),
// SLOW_MS=1500 answers every request 1.5 s late. Neither touches /health.
"use strict";

const http = require("http");
const os = require("os");

const port = Number(process.env.PORT || 3001);
const version = process.env.APP_VERSION || "unknown";
const startupDelay = Number(process.env.STARTUP_DELAY_MS || 0);
const responseDelay = Number(process.env.RESPONSE_DELAY_MS || 0);
const failOneIn = Number(process.env.FAIL_ONE_IN || 0);
const slow = Number(process.env.SLOW_MS || 0);
const started = Date.now();
let served = 0;

function reply(res, status, type, body) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  setTimeout(() => {
    if (req.url === "/health") {
      const health = {
        status: "ok",
        version,
        uptime: (Date.now() - started) / 1000,
        pid: process.pid,
        secrets: process.env.API_TOKEN ? "configured" : "missing",
      };
      reply(res, 200, "application/json", JSON.stringify(health) + "\n");
    } else {
      served += 1;
      const failing = failOneIn > 0 && served % failOneIn === 0;
      setTimeout(() => {
        if (failing) {
          reply(res, 500, "text/plain", `demo ${version}: failed on purpose (FAIL_ONE_IN=${failOneIn})\n`);
        } else {
          reply(res, 200, "text/plain", `${os.hostname()} demo ${version} worker ${process.pid}\n`);
        }
      }, slow);
    }
  }, responseDelay);
});
server.keepAliveTimeout = 65000; // longer than nginx's upstream keepalive, so nginx closes first

// PM2 reload sends SIGINT to the old worker once the new one listens: finish what is in flight, then exit.
process.on("SIGINT", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
});

setTimeout(() => server.listen(port, () => console.log(`demo ${version} listening on ${port}`)), startupDelay);
