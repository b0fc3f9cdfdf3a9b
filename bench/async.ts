/**
 * Benchmark: one-shot `authenticate()` calls per second, sequential and with
 * N in flight, against the synchronous `PamTransaction` doing the same work
 * (start, authenticate, account management, read PAM_USER, end) on the same
 * stack. Not a test: run it by hand.
 *
 * ```sh
 * deno run --allow-ffi --allow-read --allow-write --allow-env bench/async.ts \
 *   [--seconds 2] [--rounds 5] [--in-flight 4,16,64] [--pool 4] [--json]
 * bun bench/async.ts
 * ```
 *
 * @module
 */

import {
  authenticate,
  PamTransaction,
  passwordConversation,
  setWorkerPoolSize,
  workerPoolStats,
} from "../mod.ts";
import { createTestStack, wrapperModule } from "../src/testing.ts";

/**
 * What {@linkcode benchAsync} measures.
 *
 * @example
 * ```ts
 * import { benchAsync } from "./async.ts";
 * const result = await benchAsync({ seconds: 1, inFlight: [4, 16] });
 * ```
 */
export interface AsyncBenchOptions {
  /** How long each measurement runs in total (default 2 s, after a short warm-up). */
  seconds?: number;
  /** Into how many alternating slices each measurement is cut (default 5). */
  rounds?: number;
  /** The concurrency levels to measure (default [4, 16, 64]). */
  inFlight?: number[];
  /** The worker pool's size during the run (default: the pool's current size). */
  poolSize?: number;
}

/** One measurement. */
export interface AsyncBenchRow {
  /** What ran: `"sync"`, `"async sequential"`, `"async 16 in flight"`. */
  name: string;
  /** Completed checks. */
  operations: number;
  /** Checks per second. */
  perSecond: number;
  /** The median over rounds of this run's rate divided by the synchronous rate in the same round. */
  ratioToSync: number;
  /** The same against the sequential async rate (the target: 4 in flight should reach 1.6×). */
  ratioToSequential: number;
}

/** What {@linkcode benchAsync} returns. */
export interface AsyncBenchResult {
  /** `"deno 2.x"` or `"bun 1.x"`. */
  runtime: string;
  /** The PAM stack measured. */
  stack: string;
  /** Worker threads in the pool. */
  poolSize: number;
  /** Every measurement, sync first. */
  rows: AsyncBenchRow[];
}

const runtimeName = (): string => {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  return g.Deno ? `deno ${g.Deno.version.deno}` : g.Bun ? `bun ${g.Bun.version}` : "unknown";
};

/**
 * Runs the benchmark and returns its rows (and prints nothing).
 *
 * @example
 * ```ts
 * import { benchAsync } from "./async.ts";
 * const { rows } = await benchAsync({ seconds: 1 });
 * for (const row of rows) console.log(row.name, Math.round(row.perSecond));
 * ```
 */
export async function benchAsync(options: AsyncBenchOptions = {}): Promise<AsyncBenchResult> {
  const seconds = options.seconds ?? 2;
  const inFlight = options.inFlight ?? [4, 16, 64];
  const rounds = options.rounds ?? 5;
  const previousSize = workerPoolStats().size;
  if (options.poolSize) setWorkerPoolSize(options.poolSize);
  const matrix = wrapperModule("pam_matrix");
  const stackText = matrix
    ? "auth required {{pam_matrix}} passdb={{passdb}}\naccount required {{pam_matrix}} passdb={{passdb}}\n"
    : "auth required pam_permit.so\naccount required pam_permit.so\n";
  await using stack = createTestStack({
    services: { bench: stackText },
    users: { alice: "secret" },
  });
  const check = { service: "bench", user: "alice", password: "secret", confdir: stack.confdir };

  const syncOnce = () => {
    using tx = PamTransaction.start({
      service: check.service,
      user: check.user,
      confdir: check.confdir,
      conversation: passwordConversation(check.password),
    });
    tx.authenticate();
    tx.acctMgmt();
    if (tx.getItem("user") !== check.user) throw new Error("wrong PAM_USER");
  };
  const asyncOnce = async () => {
    const { user } = await authenticate(check);
    if (user !== check.user) throw new Error("wrong PAM_USER");
  };

  const until = (deadline: number) => performance.now() < deadline;
  const warm = Math.min(0.5, seconds / 4) * 1000;

  // Warm-up: JITs, dlopen, and the pool's threads (started once, then reused).
  const syncWarmEnd = performance.now() + warm;
  while (until(syncWarmEnd)) syncOnce();
  await Promise.all(Array.from({ length: Math.max(...inFlight, 1) }, asyncOnce));
  const asyncWarmEnd = performance.now() + warm;
  while (until(asyncWarmEnd)) await asyncOnce();

  // The machine's load drifts (CI, shared cores), so the runs take turns in short slices,
  // round after round, and each ratio is the median of the per-round ratios.
  const slice = (seconds * 1000) / rounds;
  const runs: { name: string; run: (deadline: number) => Promise<number> }[] = [
    {
      name: "sync",
      run: (deadline) => {
        let n = 0;
        for (; until(deadline); n++) syncOnce();
        return Promise.resolve(n);
      },
    },
    {
      name: "async sequential",
      run: async (deadline) => {
        let n = 0;
        for (; until(deadline); n++) await asyncOnce();
        return n;
      },
    },
    ...inFlight.map((level) => ({
      name: `async ${level} in flight`,
      run: async (deadline: number) => {
        let n = 0;
        const lane = async () => {
          while (until(deadline)) {
            await asyncOnce();
            n++;
          }
        };
        await Promise.all(Array.from({ length: level }, lane));
        return n;
      },
    })),
  ];
  const totals = runs.map(() => ({ operations: 0, elapsed: 0 }));
  const ratios: number[][] = runs.map(() => []);
  const seqRatios: number[][] = runs.map(() => []);
  for (let round = 0; round < rounds; round++) {
    const rates: number[] = [];
    for (let i = 0; i < runs.length; i++) {
      const started = performance.now();
      const operations = await runs[i].run(started + slice);
      const elapsed = (performance.now() - started) / 1000;
      totals[i].operations += operations;
      totals[i].elapsed += elapsed;
      rates.push(operations / elapsed);
      ratios[i].push(rates[i] / rates[0]);
    }
    for (let i = 0; i < runs.length; i++) seqRatios[i].push(rates[i] / rates[1]);
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  const rows: AsyncBenchRow[] = runs.map((r, i) => ({
    name: r.name,
    operations: totals[i].operations,
    perSecond: totals[i].operations / totals[i].elapsed,
    ratioToSync: median(ratios[i]),
    ratioToSequential: median(seqRatios[i]),
  }));
  const poolSize = workerPoolStats().size;
  if (options.poolSize) setWorkerPoolSize(previousSize);
  return {
    runtime: runtimeName(),
    stack: matrix ? "pam_matrix auth + account" : "pam_permit auth + account",
    poolSize,
    rows,
  };
}

/** Formats a result as a Markdown table. */
export function formatAsyncBench(result: AsyncBenchResult): string {
  const lines = [
    `${result.runtime}, ${result.stack}, pool of ${result.poolSize} threads`,
    "",
    "| run | checks/s | vs sync | vs async sequential |",
    "| --- | ---: | ---: | ---: |",
    ...result.rows.map((r) =>
      `| ${r.name} | ${Math.round(r.perSecond)} | ${r.ratioToSync.toFixed(2)}× | ${
        r.ratioToSequential.toFixed(2)
      }× |`
    ),
    "",
    "(ratios: the median over rounds of the rates measured in the same round)",
  ];
  return lines.join("\n");
}

function flag(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

if ((import.meta as ImportMeta & { main?: boolean }).main) {
  const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] } };
  const args = g.Deno ? g.Deno.args : g.process!.argv.slice(2);
  const seconds = Number(flag(args, "--seconds") ?? 2);
  const inFlight = flag(args, "--in-flight")?.split(",").map(Number);
  const poolSize = flag(args, "--pool") ? Number(flag(args, "--pool")) : undefined;
  const rounds = flag(args, "--rounds") ? Number(flag(args, "--rounds")) : undefined;
  const result = await benchAsync({ seconds, inFlight, poolSize, rounds });
  console.log(args.includes("--json") ? JSON.stringify(result) : formatAsyncBench(result));
}
