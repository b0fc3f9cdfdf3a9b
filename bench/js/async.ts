/**
 * The async API's runner for `deno task bench` (Deno and Bun): the one-shot
 * `authenticate()` (authenticate + account management) with PARALLEL calls in
 * flight.
 *
 * @module
 */

import process from "node:process";
import { authenticate } from "../../mod.ts";
import { collectGarbage, parseArgs, rssKiB, tick, timeAndReport } from "./common.ts";
import { keepModulesIfAsked } from "./keep.ts";

const args = parseArgs();
keepModulesIfAsked(args);
if (args.kind !== "oneshot") {
  throw new Error(`the async runner only runs "oneshot", not ${args.kind}`);
}

const options = {
  service: args.service,
  user: args.user,
  password: args.password,
  confdir: args.confdir,
  library: args.library,
};

/** Runs `count` one-shots with `parallel` in flight; records RSS at the checkpoints. */
async function run(count: number, parallel: number, rssAt?: Record<number, number>) {
  let started = 0, done = 0;
  const checkpoints = new Set(args.checkpoints);
  const lane = async () => {
    while (started < count) {
      started++;
      await authenticate(options);
      done++;
      tick();
      if (rssAt && checkpoints.has(done)) {
        collectGarbage();
        rssAt[done] = rssKiB();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane));
}

await run(args.warmup, args.parallel);
const rssAt: Record<number, number> = {};
await timeAndReport(
  args.iterations,
  () => run(args.iterations, args.parallel, rssAt),
  () => (args.checkpoints.length ? { rssAt } : {}),
);
// The pool must not keep the process alive, but a bench should not wait to find out.
process.exit(0);
