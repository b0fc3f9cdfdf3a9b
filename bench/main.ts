/**
 * `deno task bench`: the same PAM workloads through a C program that calls
 * libpam directly, the synchronous and async APIs on Deno and Bun, and the
 * npm addon `authenticate-pam` under Node.js, each in its own process, one
 * after another, repeated and interleaved; prints medians, ratios to C from
 * the same run, peak RSS and the targets. See docs/bench.md.
 *
 *   deno task bench [--json] [--quick] [--reps=N] [--iterations=N]
 *                   [--only=c,deno-sync,...] [--rows=permit,conversation,...]
 *   deno task bench --soak [--json] [--soak-iterations=100000]
 *   deno task bench --sessions [--json] [--quick]   (bench/sessions.ts)
 *
 * @module
 */

import { cpus, release } from "node:os";
import { json, reps, soak } from "./_options.ts";
import { cleanup, versionOf } from "./_process.ts";
import { notes, setUp, warmupNote } from "./_setup.ts";
import { bench } from "./_run.ts";
import { fmt, printText, summarise } from "./_report.ts";
import { runSoak } from "./_soak.ts";

async function machine() {
  const dpkg = await versionOf(["dpkg-query", "-W", "-f=${Version}", "libpam0g"]);
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    kernel: release(),
    libpam: dpkg,
    deno: Deno.version.deno,
  };
}

try {
  const impls = await setUp();
  const info = await machine();
  if (soak) {
    const s = await runSoak(impls);
    if (json) console.log(JSON.stringify({ machine: info, soak: s, notes }, null, 2));
    else {
      console.log(
        `\nMemory soak: RSS after ${s.checkpoints[0]} vs after ${s.checkpoints[2]} transactions ` +
          `(target: within 16 MiB; in brackets, the growth over the second half)`,
      );
      for (const r of s.results as Record<string, unknown>[]) {
        if (r.error) console.log(`  ${r.label}: ${r.error}`);
        else {
          const [a, m, b] = s.checkpoints.map((c) => r[`rssKiBAfter${c}`] as number);
          console.log(
            `  [${r.status}] ${String(r.label).padEnd(36)} ${r.workload}: ${fmt(a / 1024)} → ` +
              `${fmt(m / 1024)} → ${fmt(b / 1024)} MiB: ${fmt(r.growthMiB as number)} MiB ` +
              `(${fmt(r.secondHalfGrowthMiB as number)} MiB)`,
          );
        }
      }
      for (const n of notes) console.log(`note: ${n}`);
    }
  } else {
    const { selected, cells } = await bench(impls);
    const report = summarise(selected, cells);
    if (json) {
      console.log(JSON.stringify({ machine: info, reps, notes, ...report }, null, 2));
    } else {
      console.log(
        `\nMachine: ${info.cpu} × ${info.cores}, Linux ${info.kernel}, libpam ${
          info.libpam ?? "?"
        }; ` +
          `${reps} repetitions, medians; ${warmupNote()}; ×C = median of per-repetition ratios to the C run of the same repetition`,
      );
      printText(report);
      for (const n of notes) console.log(`note: ${n}`);
    }
  }
} finally {
  cleanup();
}
