/**
 * `deno task bench --sessions`: the session process on Deno and Bun, each in
 * runs of its own (`bench/js/sessions.ts`): `login()` + `close()` with a
 * session process against `inProcess`, the caller's worst timer lag while 20
 * logins run at once, and 200 concurrent open sessions with each session
 * process's memory. Prints a table with the targets, or `--json`.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const runner = join(root, "bench", "js", "sessions.ts");
const tools = join(root, ".tools", "node_modules", ".bin");

/** One runtime's figures. */
export interface SessionFigures {
  runtime: string;
  sessionProcessMs: number;
  inProcessMs: number;
  /** The median burst's worst lag. */
  worstLagMs: number;
  /** Every burst's worst lag, sorted. */
  worstLagsMs: number[];
  worstOpenLagMs: number;
  worstCloseLagMs: number;
  /** Over the timer ticks later than 10 ms: ms the caller's main thread ran, and ms it waited for a CPU. */
  lateRunMs: number;
  lateWaitMs: number;
  parallelOpenMs: number;
  sessions: number;
  alive: number;
  openAllMs: number;
  rssMiB: number;
  pssMiB: number;
  anonMiB: number;
  machineMiBPerSession: number;
}

function run(runtime: "deno" | "bun", mode: string, count: number): Record<string, number> {
  const cmd = join(tools, runtime);
  const args = runtime === "deno"
    ? ["run", "--allow-all", runner, mode, String(count)]
    : [runner, mode, String(count)];
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${runtime} ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/** Runs the session benchmarks; `quick` takes fewer rounds and sessions. */
export function benchSessions(quick: boolean): SessionFigures[] {
  const out: SessionFigures[] = [];
  for (const runtime of ["deno", "bun"] as const) {
    const latency = run(runtime, "latency", quick ? 10 : 30);
    // The worst lag of one burst is one sample of the machine's scheduler: five bursts, each in
    // a fresh caller, and the median burst is judged (all five are printed).
    const lags = Array.from({ length: quick ? 3 : 5 }, () => run(runtime, "lag", 20))
      .sort((a, b) => a.worstLagMs - b.worstLagMs);
    const lag = lags[Math.floor(lags.length / 2)];
    const memory = run(runtime, "memory", quick ? 50 : 200);
    out.push({
      runtime,
      sessionProcessMs: latency.sessionProcessMs,
      inProcessMs: latency.inProcessMs,
      worstLagMs: lag.worstLagMs,
      worstLagsMs: lags.map((x) => x.worstLagMs),
      worstOpenLagMs: lag.worstOpenLagMs,
      worstCloseLagMs: lag.worstCloseLagMs,
      lateRunMs: lag.lateRunMs,
      lateWaitMs: lag.lateWaitMs,
      parallelOpenMs: lag.openMs,
      sessions: memory.sessions,
      alive: memory.alive,
      openAllMs: memory.openMs,
      rssMiB: memory.rssMiB,
      pssMiB: memory.pssMiB,
      anonMiB: memory.anonMiB,
      machineMiBPerSession: memory.machineMiBPerSession,
    });
  }
  return out;
}

/** The table, with the targets: lag under 20 ms, an idle session process at most 32 MiB. */
export function printSessions(figures: SessionFigures[]): void {
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log("\n## Session processes (login() in a process of its own)\n");
  console.log(
    "| runtime | login+close, session process | inProcess | " +
      "worst timer lag, 20 logins: median burst (< 20 ms), all bursts | " +
      "opening / closing | late ticks: caller ran / waited for a CPU | " +
      "open sessions | RSS each (≤ 32 MiB) | PSS each | anonymous each | MemAvailable lost each |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const x of figures) {
    const lagMet = x.worstLagMs < 20 ? "✓" : "✗";
    const rssMet = x.rssMiB <= 32 ? "✓" : "✗";
    console.log(
      `| ${x.runtime} | ${f(x.sessionProcessMs)} ms | ${f(x.inProcessMs)} ms | ` +
        `${f(x.worstLagMs)} ms ${lagMet}, ${x.worstLagsMs.map((v) => f(v)).join(" / ")} | ` +
        `${f(x.worstOpenLagMs)} / ${f(x.worstCloseLagMs)} ms | ` +
        `${f(x.lateRunMs)} / ${f(x.lateWaitMs)} ms | ${x.alive}/${x.sessions} in ${
          f(x.openAllMs / 1000)
        } s | ` +
        `${f(x.rssMiB)} MiB ${rssMet} | ${f(x.pssMiB)} MiB | ${f(x.anonMiB)} MiB | ` +
        `${f(x.machineMiBPerSession)} MiB |`,
    );
  }
}
