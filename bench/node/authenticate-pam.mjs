// The `authenticate-pam` runner for `deno task bench` (Node.js): the npm
// addon most Node.js users pick, on the one workload it supports, with
// PARALLEL calls in flight. It has no confdir, so SERVICE is a file the
// driver installed in /etc/pam.d (CONFDIR is ignored). Each call runs
// pam_start, pam_authenticate and pam_end on libuv's thread pool (4 threads
// unless UV_THREADPOOL_SIZE says otherwise); unlike authenticate() it does
// not call pam_acct_mgmt.
import { createRequire } from "node:module";
import process from "node:process";

const [kind, iterations, warmup, , service, user, password, parallel] = process.argv.slice(2);
if (kind !== "oneshot") throw new Error(`authenticate-pam only runs "oneshot", not ${kind}`);
const addonDir = process.env.AUTHENTICATE_PAM_DIR;
if (!addonDir) throw new Error("AUTHENTICATE_PAM_DIR must name the folder npm installed into");
const pam = createRequire(`${addonDir}/`)("authenticate-pam");

const once = () =>
  new Promise((resolve, reject) =>
    pam.authenticate(user, password, (error) => error ? reject(new Error(error)) : resolve(), {
      serviceName: service,
    })
  );

async function run(count, inFlight) {
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      await once();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

const n = Number(iterations), p = Math.max(1, Number(parallel));
await run(Number(warmup), p);
const cpuStart = process.cpuUsage();
const start = performance.now();
await run(n, p);
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuStart);
console.log(JSON.stringify({
  n,
  seconds,
  usPerTx: (seconds * 1e6) / n,
  cpuUsPerTx: (cpu.user + cpu.system) / n,
  messagesPerTx: 0,
  peakRssKiB: process.resourceUsage().maxRSS,
  rssKiB: Math.round(process.memoryUsage().rss / 1024),
}));
