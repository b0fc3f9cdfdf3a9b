/**
 * Setting up: the test stack, the C baseline and stub, the Node.js addon,
 * and which implementations can run.
 *
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestStack } from "../src/testing.ts";
import { benchDir, log, only, onlyRows, quick, soak, warmupOverride } from "./_options.ts";
import { type Impl, type ImplId, PASSWORD, type Row, services, USER } from "./_rows.ts";
import { cleanups, run, versionOf, which } from "./_process.ts";

export interface Result {
  n: number;
  seconds: number;
  usPerTx: number;
  cpuUsPerTx: number;
  /** µs per transaction of the fastest tenth of the run's slices of 100 (see bench/js/common.ts). */
  quietUsPerTx?: number;
  /** Kind auth-paired: the PAM_SILENT half, timed in the same process. */
  silentUsPerTx?: number;
  /** Kind faildelay: the right password's latency with no failure in flight, µs. */
  aloneUsPerTx?: number;
  /** Kind faildelay: the wrong passwords' shortest and median latency, ms. */
  wrongMinMs?: number;
  wrongMedianMs?: number;
  /** Kind waiting: µs per one-shot with no conversation waiting. */
  noneUsPerTx?: number;
  /** Kind startlag: the timer's worst lag while the pool grows, ms (usPerTx: while it starts). */
  growLagMs?: number;
  /** Kind startlag: when the first of the ten checks on the cold pool settled, ms. */
  firstCheckMs?: number;
  silentCpuUsPerTx?: number;
  messagesPerTx: number;
  peakRssKiB: number;
  rssKiB: number;
  rssAt?: Record<string, number>;
  skipped?: string;
}

export const notes: string[] = [];
// authenticate-pam's service for row 5, uniquely named: as root it is copied to /etc/pam.d
// for the run (setUpNode) and removed afterwards.
export const etcName = `seed-pam-bench-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
export const stack = createTestStack({
  services: { ...services, [etcName]: services.oneshot },
  users: { [USER]: PASSWORD },
});
cleanups.push(() => stack.remove());

export const work = mkdtempSync(join(tmpdir(), "seed-pam-bench-"));
cleanups.push(() => rmSync(work, { recursive: true, force: true }));

export async function buildC(): Promise<Impl> {
  const impl: Impl = { id: "c", label: "C, libpam directly" };
  const cc = await which("cc");
  if (!cc) return { ...impl, skip: "no C compiler (cc) on PATH: apt-get install gcc" };
  if (!existsSync("/usr/include/security/pam_appl.h")) {
    return { ...impl, skip: "no <security/pam_appl.h>: apt-get install libpam0g-dev" };
  }
  const out = join(work, "baseline");
  const c = (file: string) => join(benchDir, "c", file);
  const built = await run([cc, "-O2", "-o", out, c("baseline.c"), "-lpam", "-lpthread"]);
  if (built.code !== 0) return { ...impl, skip: `cc failed: ${built.stderr.trim().slice(0, 300)}` };
  // The stub rows: the same program on a libpam that does nothing, and the stub as a
  // library for the runtimes to load instead of libpam.
  stubLibrary = join(work, "stub_pam.so");
  const stubC = join(work, "baseline-stub");
  const stubs = await run([cc, "-O2", "-shared", "-fPIC", "-o", stubLibrary, c("stub_pam.c")]);
  const stubBuilt = await run([
    cc,
    "-O2",
    "-o",
    stubC,
    c("baseline.c"),
    c("stub_pam.c"),
    "-lpthread",
  ]);
  if (stubs.code !== 0 || stubBuilt.code !== 0) {
    stubLibrary = undefined;
    notes.push(`stub rows skipped: cc failed on bench/c/stub_pam.c`);
  }
  return { ...impl, command: [out], stubCommand: [stubC] };
}

export const nodeDir = join(benchDir, ".node");
export const NODE_ADDON = "authenticate-pam@1.0.5";

export async function setUpNode(): Promise<Impl> {
  const impl: Impl = { id: "node", label: "Node.js, authenticate-pam (npm)" };
  if (Deno.uid() !== 0) {
    return {
      ...impl,
      skip: "not root: authenticate-pam has no confdir, its stack must go into /etc/pam.d",
    };
  }
  const node = await which("node");
  const npm = await which("npm");
  if (!node || !npm) return { ...impl, skip: "node/npm not on PATH" };
  const addon = join(
    nodeDir,
    "node_modules",
    "authenticate-pam",
    "build",
    "Release",
    "authenticate_pam.node",
  );
  if (!existsSync(addon)) {
    log(`installing ${NODE_ADDON} into bench/.node (node-gyp against libpam0g-dev) ...`);
    mkdirSync(nodeDir, { recursive: true });
    const [name, version] = NODE_ADDON.split("@");
    // npm 11 runs a dependency's install script only when allowScripts approves it.
    writeFileSync(
      join(nodeDir, "package.json"),
      JSON.stringify(
        {
          private: true,
          description: "bench-only: the addon deno task bench compares with (gitignored)",
          dependencies: { [name]: version },
          allowScripts: { [NODE_ADDON]: true },
        },
        null,
        2,
      ) + "\n",
    );
    const installed = await run([npm, "install", "--prefix", nodeDir, "--no-audit", "--no-fund"]);
    if (!existsSync(addon)) {
      return {
        ...impl,
        skip: `npm install ${NODE_ADDON} did not build the addon (needs g++, make, python3, ` +
          `libpam0g-dev): ${(installed.stderr || installed.stdout).trim().slice(-300)}`,
      };
    }
  }
  const version = await versionOf([node, "--version"]);
  return {
    ...impl,
    label: `Node.js ${version ?? ""}, authenticate-pam (npm)`,
    command: [node, join(benchDir, "node", "authenticate-pam.mjs")],
    env: { AUTHENTICATE_PAM_DIR: join(nodeDir, "node_modules") },
  };
}

export let etcService: string | undefined;
export let stubLibrary: string | undefined;

/**
 * Copies row 5's stack to /etc/pam.d (root only), for every runner of those rows, not only for
 * authenticate-pam, which cannot take a confdir: `--only=deno-async` runs them too.
 */
function installEtcService(): void {
  if (Deno.uid() !== 0) return;
  // Removed on exit, Ctrl-C or an error.
  const file = join("/etc/pam.d", etcName);
  cleanups.push(() => rmSync(file, { force: true }));
  writeFileSync(file, readFileSync(join(stack.confdir, etcName)), { flag: "wx" });
  etcService = etcName;
}

export async function setUp(): Promise<Map<ImplId, Impl>> {
  const impls = new Map<ImplId, Impl>();
  const bun = await which("bun");
  const deno = Deno.execPath();
  // The async API's Workers need the same FFI access as the runners themselves.
  const denoRun = [
    deno,
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env=SEED_PAM_BENCH_LIBRARY,SEED_PAM_BENCH_KEEP_MODULES,SEED_PAM_BENCH_SPAWNER_AHEAD",
    ...(soak ? ["--v8-flags=--expose-gc"] : []),
  ];
  const c = await buildC();
  impls.set("c", c);
  for (
    const [id, kind, what] of [
      ["c-busy", "busy", "+ a thread spinning"],
      ["c-waking", "waking", "+ a thread waking /100 µs"],
      ["c-idle", "idle", "+ a thread blocked throughout"],
    ] as const
  ) {
    impls.set(id, { ...c, id, label: `C ${what}`, env: { SEED_PAM_BENCH_SIBLING: kind } });
  }
  const bunVersion = bun ? await versionOf([bun, "--version"]) : undefined;
  for (
    const [kind, what, file] of [
      ["raw", "raw FFI (no binding)", "raw.ts"],
      ["sync", "PamTransaction", "sync.ts"],
      ["async", "authenticate()", "async.ts"],
    ] as const
  ) {
    const script = join(benchDir, "js", file);
    impls.set(`deno-${kind}`, {
      id: `deno-${kind}`,
      label: `Deno ${Deno.version.deno}, ${what}`,
      command: [...denoRun, script],
    });
    impls.set(`bun-${kind}`, {
      id: `bun-${kind}`,
      label: `Bun ${bunVersion ?? ""}, ${what}`,
      ...(bun ? { command: [bun, script] } : { skip: "bun not found (npm ci installs it)" }),
    });
  }
  const keep = { SEED_PAM_BENCH_KEEP_MODULES: "1" };
  for (const id of ["c", "deno-sync", "bun-sync", "deno-async", "bun-async"] as const) {
    const base = impls.get(id)!;
    impls.set(`${id}-kept`, {
      ...base,
      id: `${id}-kept`,
      label: `${base.label}, modules kept`,
      env: { ...base.env, ...keep },
    });
  }
  const wantEtc = !soak && (!onlyRows || onlyRows.some((r) => r.startsWith("etc")));
  if (wantEtc) installEtcService();
  const wantNode = wantEtc && (!only || only.includes("node"));
  impls.set(
    "node",
    wantNode
      ? await setUpNode()
      : { id: "node", label: "Node.js, authenticate-pam", skip: "not selected" },
  );
  for (const impl of impls.values()) {
    if (only && !only.includes(impl.id)) impl.skip ??= "not selected (--only)";
    if (impl.skip && impl.skip !== "not selected (--only)" && impl.skip !== "not selected") {
      notes.push(`${impl.label}: skipped: ${impl.skip}`);
    }
  }
  return impls;
}

/** Warm-up transactions of a runner on a JIT (Deno, Bun, Node.js) before the timed ones. */
const jitWarmup = quick ? 2000 : 20_000;

/** The warm-up rule, for the report's header. */
export function warmupNote(): string {
  if (warmupOverride !== undefined) return `warm-up ${warmupOverride} tx/process (--warmup)`;
  return `warm-up ${jitWarmup} tx/process on a JIT (Deno, Bun, Node.js), ` +
    "300 or a tenth of the timed count for C";
}

export async function runOne(
  impl: Impl,
  row: Row,
  iterations: number,
  checkpoints?: number[],
): Promise<
  Result | string
> {
  const confdir = row.etc ? "-" : stack.confdir;
  const service = row.etc ? etcService : row.service;
  if (!service) return "no /etc/pam.d service (not root)";
  // The JIT's top tier before the clock starts: a server's steady state, not its first
  // seconds. A count per runner, since a JIT tiers up on calls: Bun's FTL compiles the binding's
  // hot functions in bursts up to ~15,000 transactions, and four pool threads each see a
  // quarter of the checks (Deno's async one-shot keeps getting faster to ~24,000). After 300,
  // the timed 2000 ran 10-15% slower (sync) and up to 2x slower (async) than after 20,000
  // (docs/bench.md, "Run J"). C has no JIT to settle. Kind faildelay counts rounds of seconds
  // each, startlag a cold start: a short warm-up of single checks.
  const jit = !impl.id.startsWith("c");
  const warmup = checkpoints
    ? 0
    : row.kind === "faildelay" || row.kind === "startlag"
    ? 50
    : warmupOverride ??
      (jit ? jitWarmup : Math.max(300, Math.round(iterations / 10)));
  const args = [
    row.kind,
    String(iterations),
    String(warmup),
    confdir,
    service,
    USER,
    PASSWORD,
    String(row.parallel),
    ...(checkpoints ? [checkpoints.join(",")] : []),
  ];
  let command = impl.command!;
  const env = { ...impl.env };
  if (row.stub) {
    if (!stubLibrary) return "no stub libpam (cc failed)";
    if (impl.stubCommand) command = impl.stubCommand;
    else env.SEED_PAM_BENCH_LIBRARY = stubLibrary;
  }
  const out = await run([...command, ...args], { env });
  const last = out.stdout.trim().split("\n").pop() ?? "";
  if (out.code !== 0 || !last.startsWith("{")) {
    return `exit ${out.code}: ${(out.stderr.trim().split("\n").slice(-3).join(" ")).slice(0, 300)}`;
  }
  try {
    const result = JSON.parse(last) as Result;
    return result.skipped ?? result;
  } catch {
    return `exit ${out.code}: unreadable result ${last.slice(0, 200)}`;
  }
}
