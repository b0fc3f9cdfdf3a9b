/**
 * The report: medians and ratios to C per row, as JSON or text.
 *
 * @module
 */

import { type ImplId, type Row, sync } from "./_rows.ts";
import { difference, median, medianOfDefined, paired, ratio } from "./_process.ts";
import type { Result } from "./_setup.ts";
import type { Cell } from "./_run.ts";

/** One implementation's figures on one row, as printed and in --json. */
export interface CellSummary {
  label: string;
  reps: number;
  usPerTx: number;
  cpuUsPerTx: number;
  ratioToC: number;
  cpuRatioToC: number;
  /** The median over repetitions of the quiet slices' µs per transaction. */
  quietUsPerTx: number;
  /** The median of the per-repetition ratios of those figures to C's. */
  quietRatioToC: number;
  overCUs: number;
  cpuOverCUs: number;
  peakRssKiB: number;
  messagesPerTx: number;
  /** Every repetition's figures, so a reader can see the spread behind a median. */
  usPerTxByRep: (number | null)[];
  cpuUsPerTxByRep: (number | null)[];
  errors: string[];
}

export type Report = ReturnType<typeof summarise>;

export function summarise(selected: Row[], cells: Map<string, Map<ImplId, Cell>>) {
  /** One figure of every repetition of a cell (undefined where a run failed). */
  const series = (
    key:
      | "usPerTx"
      | "cpuUsPerTx"
      | "quietUsPerTx"
      | "silentUsPerTx"
      | "silentCpuUsPerTx"
      | "aloneUsPerTx"
      | "wrongMinMs"
      | "noneUsPerTx"
      | "growLagMs"
      | "firstCheckMs",
  ) =>
  (row: string, id: ImplId): (number | undefined)[] =>
    cells.get(row)?.get(id)?.results.map((r) => r?.[key]) ?? [];
  const us = series("usPerTx");
  const cpu = series("cpuUsPerTx");
  const quiet = series("quietUsPerTx");
  const table = selected.map((row) => {
    const results: Record<string, CellSummary> = {};
    for (const [id, cell] of cells.get(row.id)!) {
      const ok = cell.results.filter((r): r is Result => !!r);
      results[id] = {
        label: cell.label,
        reps: ok.length,
        usPerTx: median(ok.map((r) => r.usPerTx)),
        cpuUsPerTx: median(ok.map((r) => r.cpuUsPerTx)),
        ratioToC: id === "c" ? 1 : paired(us(row.id, id), us(row.id, "c"), ratio),
        cpuRatioToC: id === "c" ? 1 : paired(cpu(row.id, id), cpu(row.id, "c"), ratio),
        quietUsPerTx: median(ok.flatMap((r) => r.quietUsPerTx ?? [])),
        quietRatioToC: id === "c" ? 1 : paired(quiet(row.id, id), quiet(row.id, "c"), ratio),
        overCUs: paired(us(row.id, id), us(row.id, "c"), difference),
        cpuOverCUs: paired(cpu(row.id, id), cpu(row.id, "c"), difference),
        peakRssKiB: median(ok.map((r) => r.peakRssKiB)),
        messagesPerTx: median(ok.map((r) => r.messagesPerTx)),
        usPerTxByRep: us(row.id, id).map((v) => v ?? null),
        cpuUsPerTxByRep: cpu(row.id, id).map((v) => v ?? null),
        errors: cell.errors,
      };
    }
    return {
      id: row.id,
      title: row.title,
      parallel: row.parallel,
      iterations: row.iterations,
      stub: !!row.stub,
      results,
    };
  });

  // The paired ratio of row A's implementation a to row B's b, in one series.
  const rowsOf = (s: typeof us) => (rowA: string, a: ImplId, rowB: string, b: ImplId) =>
    paired(s(rowA, a), s(rowB, b), ratio);

  // Derived values, from wall-clock (`us`) and from CPU time (`cpu`) alike.
  const derive = (m: typeof us, silent: typeof us) => {
    const d: Record<string, Record<string, number>> = {};
    const rows = rowsOf(m);
    // Per message, each repetition: row 3a against its PAM_SILENT twin timed in the same
    // process (alternating slices); 3a against row 3b, another process, is kept to compare.
    const perMessage = (row: string, id: ImplId) => {
      const silentRuns = silent(row, id);
      return m(row, id).map((ten, i) =>
        ten === undefined || silentRuns[i] === undefined ? undefined : (ten - silentRuns[i]!) / 10
      );
    };
    for (const id of sync) {
      d[id] = {
        perMessageUs: medianOfDefined(perMessage("echo10", id)),
        perMessageAcrossProcessesUs: paired(
          m("echo10", id),
          m("echo0", id),
          (ten, zero) => (ten - zero) / 10,
        ),
        stubPerMessageUs: medianOfDefined(perMessage("stub-echo10", id)),
      };
      if (id === "c") continue;
      d[id].perMessageOverCUs = paired(
        perMessage("echo10", id),
        perMessage("echo10", "c"),
        difference,
      );
    }
    for (
      const [asyncId, syncId] of [["deno-async", "deno-sync"], ["bun-async", "bun-sync"]] as const
    ) {
      d[asyncId] = {
        sequentialVsSync: rows("oneshot-async-1", asyncId, "oneshot-sync", syncId),
        throughput4VsSequential: rows("oneshot-async-1", asyncId, "oneshot-async-4", asyncId),
        throughput4VsAuthenticatePam: rows("etc-4", "node", "etc-4", asyncId),
      };
    }
    d.c.throughput4VsSequential = rows("oneshot-async-1", "c", "oneshot-async-4", "c");
    d.node = {
      throughput4VsSequential: rows("etc-1", "node", "etc-4", "node"),
    };
    // With the modules kept loaded, C too: the same ratios without libpam's dlopen per
    // transaction (not what the targets judge; keepModulesLoaded() is an opt-in).
    for (const id of ["deno-sync-kept", "bun-sync-kept"] as const) {
      d[id] = {
        fullVsCKept: rows("permit", id, "permit", "c-kept"),
        conversationVsCKept: rows("conversation", id, "conversation", "c-kept"),
        oneshotVsCKept: rows("oneshot-sync", id, "oneshot-sync", "c-kept"),
      };
    }
    for (
      const [id, syncId] of [
        ["deno-async-kept", "deno-sync-kept"],
        ["bun-async-kept", "bun-sync-kept"],
      ] as const
    ) {
      d[id] = {
        sequentialVsSync: rows("oneshot-async-1", id, "oneshot-sync", syncId),
        throughput4VsSequential: rows("oneshot-async-1", id, "oneshot-async-4", id),
        throughput4VsAuthenticatePam: rows("etc-4", "node", "etc-4", id),
      };
    }
    d["c-kept"] = {
      throughput4VsSequential: rows("oneshot-async-1", "c-kept", "oneshot-async-4", "c-kept"),
    };
    return d;
  };
  const derived = {
    wall: derive(us, series("silentUsPerTx")),
    cpu: derive(cpu, series("silentCpuUsPerTx")),
    // The paired per-message rows have no slices: their quiet figures stay NaN.
    quiet: derive(quiet, () => []),
  };

  const result = (row: string, id: ImplId) => table.find((t) => t.id === row)?.results[id];
  // The async defaults' figures, each from the same repetition's runs.
  const alone = series("aloneUsPerTx");
  const wrongMin = series("wrongMinMs");
  const none = series("noneUsPerTx");
  const growLag = series("growLagMs");
  const firstCheck = series("firstCheckMs");
  const asyncDefaults: Record<string, Record<string, number>> = {};
  const handoffUs = medianOfDefined(us("handoff", "c"));
  const rows = rowsOf(us);
  for (
    const [asyncId, syncId, rawId] of [
      ["deno-async", "deno-sync", "deno-raw"],
      ["bun-async", "bun-sync", "bun-raw"],
    ] as const
  ) {
    const rawPermit = result("permit", rawId)?.ratioToC;
    asyncDefaults[asyncId] = {
      etc4VsAuthenticatePam: rows("etc-4", "node", "etc-4", asyncId),
      etc64RateVsEtc4: rows("etc-4", asyncId, "etc-64", asyncId),
      // (one at a time − the synchronous one-shot) ÷ the futex round trip of the same run
      sequentialOverSyncPerHandoff: paired(
        us("oneshot-async-1", asyncId),
        us("oneshot-sync", syncId),
        (a, b) => (a - b) / handoffUs,
      ),
      stubBindingOverRawUs: paired(
        us("stub-permit", syncId),
        us("stub-permit", rawId),
        difference,
      ),
      stubPerMessageUs: derived.wall[syncId]?.stubPerMessageUs,
      promptVsFloor: (result("conversation", syncId)?.ratioToC ?? NaN) / (rawPermit ?? NaN),
      // The same for the raw runner's minimal callback: what the runtime's call into JavaScript
      // costs with no binding, against the same floor.
      rawPromptVsFloor: (result("conversation", rawId)?.ratioToC ?? NaN) / (rawPermit ?? NaN),
      // The binding's prompt row over the raw one of the same run: what the binding adds.
      promptVsRawPrompt: rows("conversation", syncId, "conversation", rawId),
      rightUnderFailuresVsAlone: paired(
        us("faildelay", asyncId),
        alone("faildelay", asyncId),
        ratio,
      ),
      wrongMinMs: medianOfDefined(wrongMin("faildelay", asyncId)),
      coldStartLagMs: medianOfDefined(us("startlag", asyncId)),
      growLagMs: medianOfDefined(growLag("startlag", asyncId)),
      // No target: what the cold start's first check waits for its thread (more on Deno
      // when the spawner starts it: docs/bench.md, "The two missed targets").
      coldFirstCheckMs: medianOfDefined(firstCheck("startlag", asyncId)),
      waitingRateVsNone: paired(
        none("waiting40", asyncId),
        us("waiting40", asyncId),
        ratio,
      ),
    };
  }
  // The targets are judged on wall-clock time, the "µs per transaction" the targets name: CPU
  // time also counts Bun's and Deno's garbage-collector threads working on the other core in
  // parallel, which costs the caller no time. The CPU ratio is printed beside each one; the
  // repetitions interleave the implementations, so other processes' load falls on all alike.
  const targets: {
    target: string;
    value?: number;
    cpu?: number;
    quiet?: number;
    limit: number;
    max: boolean;
  }[] = [];
  for (const id of ["deno-sync", "bun-sync"] as const) {
    for (
      const [row, what, limit] of [
        ["permit", "full transaction on pam_permit ≤ 1.05× C", 1.05],
        ["conversation", "with a conversation ≤ 1.10× C", 1.10],
      ] as const
    ) {
      const r = result(row, id);
      targets.push({
        target: `${id}: ${what}`,
        value: r?.ratioToC,
        cpu: r?.cpuRatioToC,
        quiet: r?.quietRatioToC,
        limit,
        max: true,
      });
    }
    targets.push({
      target: `${id}: conversation cost per message < 5 µs`,
      value: derived.wall[id].perMessageUs,
      cpu: derived.cpu[id].perMessageUs,
      limit: 5,
      max: true,
    });
  }
  for (const id of ["deno-async", "bun-async"] as const) {
    for (
      const [key, what, limit, max] of [
        ["sequentialVsSync", "sequential authenticate() ≤ 1.15× the synchronous call", 1.15, true],
        ["throughput4VsSequential", "4 in flight ≥ 1.6× the sequential rate", 1.6, false],
        ["throughput4VsAuthenticatePam", "4 in flight ≥ 1.2× authenticate-pam's rate", 1.2, false],
      ] as const
    ) {
      targets.push({
        target: `${id}: ${what}`,
        value: derived.wall[id][key],
        quiet: derived.quiet[id][key],
        limit,
        max,
      });
    }
  }
  for (const id of ["deno-async", "bun-async"] as const) {
    const d = asyncDefaults[id];
    for (
      const [key, what, limit, max] of [
        [
          "etc4VsAuthenticatePam",
          "/etc/pam.d, 4 in flight ≥ 2.0× authenticate-pam's rate",
          2.0,
          false,
        ],
        [
          "etc64RateVsEtc4",
          "/etc/pam.d, the rate at 64 in flight ≥ 1.0× the rate at 4",
          1.0,
          false,
        ],
        [
          "sequentialOverSyncPerHandoff",
          "one at a time ≤ the sync call + 1.2× a futex round trip (value: extra ÷ round trip)",
          1.2,
          true,
        ],
        [
          "stubBindingOverRawUs",
          "binding over raw FFI on the stub ≤ 2 µs per transaction",
          2,
          true,
        ],
        ["stubPerMessageUs", "binding on the stub ≤ 1.5 µs per conversation message", 1.5, true],
        [
          "promptVsFloor",
          "prompt row ≤ 1.10× the floor (C × the permit row's raw FFI ratio)",
          1.1,
          true,
        ],
        [
          "rightUnderFailuresVsAlone",
          "right password beside 4 failing ≤ 2× its latency alone",
          2,
          true,
        ],
        [
          "wrongMinMs",
          "wrong passwords fail no earlier than the delay (≥ 1000 ms: 2 s ± 50%)",
          1000,
          false,
        ],
        [
          "waitingRateVsNone",
          "one-shot rate beside 40 waiting conversations ≥ 0.8× none",
          0.8,
          false,
        ],
        ["coldStartLagMs", "timer lag while a cold pool starts < 20 ms", 20, true],
        ["growLagMs", "timer lag while the pool grows < 20 ms", 20, true],
      ] as const
    ) {
      targets.push({ target: `${id}: ${what} [async defaults]`, value: d[key], limit, max });
    }
  }
  return {
    table,
    derived,
    asyncDefaults: { handoffUs, ...asyncDefaults },
    targets: targets.map((t) => ({
      ...t,
      metric: "wall",
      status: t.value === undefined || Number.isNaN(t.value)
        ? "not measured"
        : (t.max ? t.value <= t.limit : t.value >= t.limit)
        ? "met"
        : "missed",
    })),
  };
}

export const fmt = (x: unknown, digits = 1) =>
  typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";

export function printText(report: Report) {
  const out: string[] = [];
  for (const row of report.table) {
    const cells = Object.values(row.results).filter((r) =>
      r.reps > 0 || !r.errors[0]?.startsWith("skip:")
    );
    if (!cells.length) continue;
    // On the stub, C costs next to nothing: the difference says more than a ratio.
    const [h1, h2] = row.stub ? ["+µs", "CPU +µs"] : ["×C", "CPU ×C"];
    out.push("", `${row.title}  [${row.iterations} tx/process]`);
    out.push(
      `  ${"implementation".padEnd(40)} ${"µs/tx".padStart(9)} ${h1.padStart(6)} ${
        "quiet ×C".padStart(8)
      } ${"CPU µs/tx".padStart(10)} ${h2.padStart(8)} ${"peak RSS".padStart(10)}`,
    );
    for (const r of cells) {
      const a = row.stub ? fmt(r.overCUs, 2) : fmt(r.ratioToC, 2);
      const b = row.stub ? fmt(r.cpuOverCUs, 2) : fmt(r.cpuRatioToC, 2);
      // Slices of 100 stub transactions last microseconds: too short to say anything.
      const q = row.stub ? "—" : fmt(r.quietRatioToC, 2);
      out.push(
        `  ${r.label.padEnd(40)} ${fmt(r.usPerTx, row.stub ? 2 : 1).padStart(9)} ${a.padStart(6)} ${
          q.padStart(8)
        } ${fmt(r.cpuUsPerTx, row.stub ? 2 : 1).padStart(10)} ${b.padStart(8)} ${
          (fmt(r.peakRssKiB / 1024) + " MiB").padStart(10)
        }` +
          (r.errors.length ? `  (${r.errors.length} failed: ${r.errors[0]})` : ""),
      );
    }
  }
  const source = {
    cpu: "CPU time",
    quiet: "the quiet slices' wall-clock time",
    wall: "wall-clock time",
  };
  for (const metric of ["cpu", "quiet", "wall"] as const) {
    out.push("", `Derived from ${source[metric]} (medians of per-repetition values):`);
    for (const [id, d] of Object.entries(report.derived[metric])) {
      const values = Object.entries(d).filter(([, v]) => Number.isFinite(v));
      if (values.length) {
        out.push(`  ${id.padEnd(12)} ${values.map(([k, v]) => `${k}=${fmt(v, 2)}`).join("  ")}`);
      }
    }
  }
  out.push(
    "",
    `The async defaults' figures (futex round trip: ${fmt(report.asyncDefaults.handoffUs, 1)} µs):`,
  );
  for (const [id, d] of Object.entries(report.asyncDefaults)) {
    if (typeof d !== "object") continue;
    out.push(
      `  ${id.padEnd(12)} ${Object.entries(d).map(([k, v]) => `${k}=${fmt(v, 2)}`).join("  ")}`,
    );
  }
  out.push(
    "",
    "Targets (on wall-clock time; the quiet slices' and CPU time beside):",
  );
  for (const t of report.targets) {
    const beside = [
      t.quiet !== undefined && Number.isFinite(t.quiet) ? `quiet: ${fmt(t.quiet, 2)}` : "",
      t.cpu !== undefined ? `CPU: ${fmt(t.cpu, 2)}` : "",
    ].filter(Boolean);
    out.push(
      `  [${t.status.padEnd(12)}] ${t.target}: ${fmt(t.value, 2)}` +
        (beside.length ? ` (${beside.join(", ")})` : ""),
    );
  }
  console.log(out.join("\n"));
}
