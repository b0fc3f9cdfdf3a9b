/**
 * `--soak`: RSS over a long run of transactions, per implementation.
 *
 * @module
 */

import { log, soakIterations } from "./_options.ts";
import { type Impl, type ImplId, type Row, rows } from "./_rows.ts";
import { runOne } from "./_setup.ts";

export async function runSoak(impls: Map<ImplId, Impl>) {
  // The target compares 10% with 100%; the middle point tells a heap that settles from a leak.
  const checkpoints = [
    Math.round(soakIterations / 10),
    Math.round(soakIterations / 2),
    soakIterations,
  ];
  const conversation = rows.find((r) => r.id === "conversation")!;
  const async4 = rows.find((r) => r.id === "oneshot-async-4")!;
  const plan: [ImplId, Row][] = [
    ["deno-sync", conversation],
    ["bun-sync", conversation],
    ["deno-async", async4],
    ["bun-async", async4],
  ];
  const results = [];
  for (const [id, row] of plan) {
    const impl = impls.get(id)!;
    if (impl.skip) continue;
    log(`soak: ${impl.label}, ${row.id}, ${soakIterations} transactions ...`);
    const r = await runOne(impl, row, soakIterations, checkpoints);
    if (typeof r === "string") {
      results.push({ impl: id, label: impl.label, workload: row.id, error: r });
      continue;
    }
    const [a, m, b] = checkpoints.map((c) => r.rssAt?.[c] ?? NaN);
    results.push({
      impl: id,
      label: impl.label,
      workload: row.id,
      [`rssKiBAfter${checkpoints[0]}`]: a,
      [`rssKiBAfter${checkpoints[1]}`]: m,
      [`rssKiBAfter${checkpoints[2]}`]: b,
      growthMiB: (b - a) / 1024,
      secondHalfGrowthMiB: (b - m) / 1024,
      usPerTx: r.usPerTx,
      status: b - a <= 16 * 1024 ? "met" : "missed",
    });
  }
  return { checkpoints, results };
}
