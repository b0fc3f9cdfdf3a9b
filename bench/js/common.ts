/**
 * What every bench runner shares: the command line (the same as
 * bench/c/baseline.c's), reading RSS, and the one JSON line a
 * runner prints for the driver. Runs under Deno and Bun alike.
 *
 * @module
 */

import process from "node:process";

/** The median (the mean of the middle two for an even count); NaN for none. */
export const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The arguments every runner takes, in bench/c/baseline.c's order. */
export interface RunArgs {
  kind: string;
  iterations: number;
  warmup: number;
  /** `undefined` when the command line says `-`: plain `pam_start`, reading /etc/pam.d. */
  confdir: string | undefined;
  service: string;
  user: string;
  password: string;
  parallel: number;
  /** Soak mode: transaction counts after which to record RSS. */
  checkpoints: number[];
  /** The libpam to load: bench/c/stub_pam.c for the overhead rows (env SEED_PAM_BENCH_LIBRARY). */
  library: string | undefined;
}

/** Parses `KIND ITERATIONS WARMUP CONFDIR SERVICE USER PASSWORD PARALLEL [CHECKPOINTS]`. */
export function parseArgs(argv: string[] = process.argv.slice(2)): RunArgs {
  if (argv.length < 8) {
    throw new Error(
      "usage: KIND ITERATIONS WARMUP CONFDIR SERVICE USER PASSWORD PARALLEL [CHECKPOINT,...]",
    );
  }
  const [kind, iterations, warmup, confdir, service, user, password, parallel, checkpoints] = argv;
  return {
    kind,
    iterations: Number(iterations),
    warmup: Number(warmup),
    confdir: confdir === "-" ? undefined : confdir,
    service,
    user,
    password,
    parallel: Math.max(1, Number(parallel)),
    checkpoints: checkpoints ? checkpoints.split(",").map(Number) : [],
    library: process.env.SEED_PAM_BENCH_LIBRARY || undefined,
  };
}

/** The peak RSS so far in KiB (getrusage's ru_maxrss, as bench/c/baseline.c reports VmHWM). */
export function peakRssKiB(): number {
  return process.resourceUsage().maxRSS;
}

/** The current RSS in KiB. */
export function rssKiB(): number {
  return Math.round(process.memoryUsage().rss / 1024);
}

/** Collects garbage where the runtime lets us (Bun always; Deno with --v8-flags=--expose-gc). */
export function collectGarbage(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

/** Transactions per slice of the slice clock. */
const SLICE = 100;
/** The time at every SLICE-th transaction of the timed loop; empty while not timing. */
let marks: number[] = [];
let ticks = 0;
let timing = false;

/**
 * Counts one transaction completed in the timed loop (`timeAndReport` starts
 * the clock). This machine's neighbours slow whole stretches of a run down, by
 * up to a third and for tens of milliseconds; the fastest slices of 100
 * transactions are the ones nobody else slowed, which a median over whole runs
 * cannot isolate. bench/c/baseline.c keeps the same clock.
 */
export function tick(): void {
  if (timing && ++ticks % SLICE === 0) marks.push(performance.now());
}

/** µs per transaction of the fastest tenth of the slices, or undefined without any. */
function quietUsPerTx(): number | undefined {
  const us = marks.slice(1).map((t, i) => ((t - marks[i]) * 1000) / SLICE).sort((a, b) => a - b);
  return us.length ? us[Math.floor(us.length / 10)] : undefined;
}

/** Prints the runner's result line (the driver reads the last line of stdout). */
export function report(result: Record<string, unknown>): void {
  console.log(JSON.stringify({
    ...result,
    quietUsPerTx: quietUsPerTx(),
    peakRssKiB: peakRssKiB(),
    rssKiB: rssKiB(),
  }));
}

/**
 * Times `loop` (which runs `iterations` transactions, sync or async, and
 * calls {@linkcode tick} after each) in wall clock and CPU time and reports
 * per-transaction figures; `extra` adds the runner's own fields, read once
 * the loop is done.
 */
export async function timeAndReport(
  iterations: number,
  loop: () => unknown,
  extra: () => Record<string, unknown> = () => ({}),
): Promise<void> {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  marks = [start];
  ticks = 0;
  timing = true;
  await loop();
  timing = false;
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  report({
    n: iterations,
    seconds,
    usPerTx: (seconds * 1e6) / iterations,
    cpuUsPerTx: (cpu.user + cpu.system) / iterations,
    messagesPerTx: 0,
    ...extra(),
  });
}

/**
 * Kind `auth-paired` (as bench/c/baseline.c): `loud` and `quiet` in
 * alternating slices of 50 transactions in this one process, each timed on
 * its own, so their difference is not buried under the few percent two
 * processes differ by; which half goes first alternates, so neither always
 * pays for what the other left behind (garbage, allocator state). Reports
 * `loud` as usPerTx and `quiet` as silentUsPerTx.
 */
export function timePairedAndReport(
  iterations: number,
  loud: () => void,
  quiet: () => void,
  extra: () => Record<string, unknown> = () => ({}),
): void {
  let loudMs = 0, quietMs = 0, loudCpu = 0, quietCpu = 0;
  const slice = (fn: () => void, n: number): [number, number] => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < n; i++) fn();
    const ms = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return [ms, used.user + used.system];
  };
  for (let done = 0, turn = 0; done < iterations; done += 50, turn++) {
    const n = Math.min(50, iterations - done);
    for (const half of turn % 2 ? ["quiet", "loud"] : ["loud", "quiet"]) {
      const [ms, cpu] = slice(half === "loud" ? loud : quiet, n);
      if (half === "loud") {
        loudMs += ms;
        loudCpu += cpu;
      } else {
        quietMs += ms;
        quietCpu += cpu;
      }
    }
  }
  report({
    n: iterations,
    seconds: loudMs / 1000,
    usPerTx: (loudMs * 1000) / iterations,
    cpuUsPerTx: loudCpu / iterations,
    silentUsPerTx: (quietMs * 1000) / iterations,
    silentCpuUsPerTx: quietCpu / iterations,
    messagesPerTx: 0,
    ...extra(),
  });
}
