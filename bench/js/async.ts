/**
 * The async API's runner for `deno task bench` (Deno and Bun): the one-shot
 * `authenticate()` (authenticate + account management) with PARALLEL calls in
 * flight (kind `oneshot`); one right password against four wrong ones behind
 * a fail delay (kind `faildelay`); and one-shots beside 40 conversations
 * waiting for a handler that never answers (kind `waiting`); and how long a
 * 10 ms timer lags while the pool starts and grows (kind `startlag`).
 *
 * @module
 */

import process from "node:process";
import { AsyncPamTransaction, authenticate, startWorkerPool, workerPoolStats } from "../../mod.ts";
import { startSpawner } from "../../src/_thread_spawner.ts";
import {
  collectGarbage,
  median,
  parseArgs,
  report,
  rssKiB,
  tick,
  timeAndReport,
} from "./common.ts";
import { keepModulesIfAsked } from "./keep.ts";

const args = parseArgs();
keepModulesIfAsked(args);

/**
 * The steady state, not the first second: the pool's threads running before
 * the warm-up (on Deno a thread started by the spawner thread takes ~0.5 s;
 * row S measures the cold start).
 */
async function warmPool(): Promise<void> {
  startWorkerPool();
  while (workerPoolStats().starting > 0) await new Promise((resolve) => setTimeout(resolve, 10));
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

/** µs per one-shot over `count` of them, `parallel` in flight. */
async function rate(count: number, parallel: number): Promise<number> {
  const start = performance.now();
  await run(count, parallel);
  return ((performance.now() - start) * 1000) / count;
}

/**
 * ITERATIONS rounds: the right password alone, then the right one while
 * four wrong ones are in flight behind the stack's fail delay. Reports the
 * right one's latency under that load (usPerTx), alone (aloneUsPerTx), and
 * the wrong ones' shortest and median latency.
 */
async function failDelayRounds(): Promise<void> {
  const wrong = { ...options, password: `${args.password}-wrong` };
  const time = async (check: Promise<unknown>) => {
    const start = performance.now();
    await check.catch(() => {});
    return (performance.now() - start) * 1000;
  };
  await run(args.warmup, 1);
  const alone: number[] = [], loaded: number[] = [], failing: number[] = [];
  for (let i = 0; i < args.iterations; i++) {
    alone.push(await time(authenticate(options)));
    const wrongOnes = Array.from({ length: 4 }, () => time(authenticate(wrong)));
    // Sent once the wrong ones have reached their threads and failed.
    await new Promise((resolve) => setTimeout(resolve, 20));
    loaded.push(await time(authenticate(options)));
    failing.push(...await Promise.all(wrongOnes));
  }
  report({
    n: args.iterations,
    seconds: 0,
    usPerTx: median(loaded),
    cpuUsPerTx: NaN,
    aloneUsPerTx: median(alone),
    wrongMinMs: Math.min(...failing) / 1000,
    wrongMedianMs: median(failing) / 1000,
    messagesPerTx: 0,
  });
}

/**
 * One-shots with PARALLEL in flight: alone, beside 40 transactions whose
 * conversation waits for a handler that never answers, and alone again.
 * Reports µs per one-shot beside them (usPerTx) and alone (noneUsPerTx, the
 * mean of before and after).
 */
async function waitingRounds(): Promise<void> {
  await run(args.warmup, args.parallel);
  const before = await rate(args.iterations, args.parallel);
  const waiting = await Promise.all(
    Array.from({ length: 40 }, () =>
      AsyncPamTransaction.start({
        service: args.service,
        user: args.user,
        confdir: args.confdir,
        library: args.library,
        conversation: () => new Promise(() => {}),
      })),
  );
  const prompts = waiting.map((tx) => tx.authenticate().catch(() => {}));
  while (workerPoolStats().held < 40 || workerPoolStats().busy > 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await run(args.warmup, args.parallel); // the threads the one-shots get now are new
  const beside = await rate(args.iterations, args.parallel);
  await Promise.all(waiting.map((tx) => tx.end()));
  await Promise.all(prompts);
  const after = await rate(args.iterations, args.parallel);
  report({
    n: args.iterations,
    seconds: 0,
    usPerTx: beside,
    cpuUsPerTx: NaN,
    noneUsPerTx: (before + after) / 2,
    messagesPerTx: 0,
  });
}

/**
 * A 10 ms interval timer's worst lag while ten checks start a cold pool
 * (usPerTx, in ms: the first thing this process does with the async API),
 * when the first of them settled (firstCheckMs), and while 16 waiting
 * conversations make a warm pool grow (growLagMs). With
 * SEED_PAM_BENCH_SPAWNER_AHEAD=1 (by hand, not a row: docs/bench.md, issue
 * 15) the spawner thread is started 300 ms before the cold checks, as a
 * pool that started its spawner on import would be, so that every PAM
 * thread is started from it.
 */
async function startLag(): Promise<void> {
  if (process.env.SEED_PAM_BENCH_SPAWNER_AHEAD === "1") {
    startSpawner();
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  let last = performance.now(), worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 10);
    last = now;
  }, 10);
  const measure = async (work: () => Promise<unknown>) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    worst = 0;
    await work();
    await new Promise((resolve) => setTimeout(resolve, 30));
    return worst;
  };
  let firstCheckMs = NaN;
  const cold = await measure(() => {
    const sent = performance.now();
    const settled = () => {
      if (Number.isNaN(firstCheckMs)) firstCheckMs = performance.now() - sent;
    };
    return Promise.all(Array.from({ length: 10 }, () => authenticate(options).then(settled)));
  });
  const waiting: AsyncPamTransaction[] = [];
  const grow = await measure(async () => {
    for (let i = 0; i < 16; i++) {
      const tx = await AsyncPamTransaction.start({
        service: args.service,
        user: args.user,
        confdir: args.confdir,
        conversation: () => new Promise(() => {}),
      });
      waiting.push(tx);
      tx.authenticate().catch(() => {});
    }
    await Promise.all(Array.from({ length: 10 }, () => authenticate(options)));
  });
  clearInterval(timer);
  await Promise.all(waiting.map((tx) => tx.end()));
  report({
    n: 1,
    seconds: 0,
    usPerTx: cold,
    cpuUsPerTx: NaN,
    growLagMs: grow,
    firstCheckMs,
    messagesPerTx: 0,
  });
}

if (args.kind === "startlag") {
  await startLag();
  process.exit(0);
}
await warmPool();
if (args.kind === "faildelay") {
  await failDelayRounds();
} else if (args.kind === "waiting") {
  await waitingRounds();
} else if (args.kind === "oneshot") {
  await run(args.warmup, args.parallel);
  const rssAt: Record<number, number> = {};
  await timeAndReport(
    args.iterations,
    () => run(args.iterations, args.parallel, rssAt),
    () => (args.checkpoints.length ? { rssAt } : {}),
  );
} else {
  throw new Error(
    `the async runner runs oneshot, faildelay, waiting or startlag, not ${args.kind}`,
  );
}
// The pool must not keep the process alive, but a bench should not wait to find out.
process.exit(0);
