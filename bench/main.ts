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

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestStack } from "../src/testing.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "bench");

// ---------------------------------------------------------------- options

const argv = Deno.args;
const flag = (name: string) => argv.includes(`--${name}`);
const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const known = [
  "json",
  "quick",
  "soak",
  "sessions",
  "reps",
  "iterations",
  "only",
  "rows",
  "soak-iterations",
];
for (const a of argv) {
  const name = a.replace(/^--/, "").split("=")[0];
  if (!a.startsWith("--") || !known.includes(name)) {
    console.error(`unknown option ${a}; options: ${known.map((k) => `--${k}`).join(" ")}`);
    Deno.exit(2);
  }
}
const json = flag("json");
const quick = flag("quick");
if (flag("sessions")) {
  const { benchSessions, printSessions } = await import("./sessions.ts");
  const figures = benchSessions(quick);
  if (json) console.log(JSON.stringify(figures, null, 2));
  else printSessions(figures);
  Deno.exit(0);
}
const soak = flag("soak");
const reps = Number(value("reps") ?? (quick ? 3 : 5));
const baseIterations = Number(value("iterations") ?? (quick ? 500 : 2000));
const soakIterations = Number(value("soak-iterations") ?? 100_000);
const only = value("only")?.split(",");
const onlyRows = value("rows")?.split(",");
const log = (line: string) => console.error(line);

// ---------------------------------------------------------------- what runs

type ImplId =
  | "c"
  | "c-busy"
  | "c-waking"
  | "c-idle"
  | "deno-raw"
  | "bun-raw"
  | "deno-sync"
  | "bun-sync"
  | "deno-async"
  | "bun-async"
  | "node"
  | "c-kept"
  | "deno-sync-kept"
  | "bun-sync-kept"
  | "deno-async-kept"
  | "bun-async-kept";

interface Impl {
  id: ImplId;
  label: string;
  /** The command before the runner's own arguments; undefined when unavailable. */
  command?: string[];
  /** C only: the same program linked against the stub libpam, for the stub rows. */
  stubCommand?: string[];
  env?: Record<string, string>;
  /** Why it is skipped, when it is. */
  skip?: string;
}

interface Row {
  id: string;
  title: string;
  service: string;
  kind:
    | "full"
    | "auth-silent"
    | "auth-paired"
    | "oneshot"
    | "handoff"
    | "faildelay"
    | "waiting"
    | "startlag";
  parallel: number;
  impls: ImplId[];
  iterations: number;
  /** Reads the service from /etc/pam.d (the authenticate-pam comparison). */
  etc?: boolean;
  /** Runs on bench/c/stub_pam.c instead of libpam: what the binding itself adds. */
  stub?: boolean;
}

const USER = "alice";
const PASSWORD = "bench-secret";
const PARALLEL = [1, 2, 4, 8, 64];
const sync: ImplId[] = ["c", "deno-sync", "bun-sync"];
// The runtimes' floor, on the rows that need no conversation.
const withRaw: ImplId[] = ["c", "deno-raw", "bun-raw", "deno-sync", "bun-sync"];
// What a second running thread in the process costs C itself (see bench/c/baseline.c).
const withSiblings: ImplId[] = ["c", "c-busy", "c-waking", "c-idle", ...withRaw.slice(1)];
const asyncImpls: ImplId[] = ["c", "deno-async", "bun-async"];
// The same with the service's modules kept loaded (keepModulesLoaded(); C: a pam_start held
// open), C included: what is left when libpam no longer dlopens the modules per transaction.
const syncKept: ImplId[] = ["c-kept", "deno-sync-kept", "bun-sync-kept"];
const asyncKept: ImplId[] = ["c-kept", "deno-async-kept", "bun-async-kept"];

const stubIterations = baseIterations * 10;
const asyncOnly: ImplId[] = ["deno-async", "bun-async"];
const rows: Row[] = [
  {
    id: "handoff",
    title: "H. Two C threads handing a word back and forth through a futex (µs per round trip)",
    service: "permit",
    kind: "handoff",
    parallel: 1,
    impls: ["c"],
    iterations: baseIterations,
  },
  {
    id: "faildelay",
    title: "F. The right password while four wrong ones wait out pam_faildelay delay=2000000 " +
      "(µs, median over rounds)",
    service: "faildelay",
    kind: "faildelay",
    parallel: 1,
    impls: asyncOnly,
    iterations: quick ? 2 : 3,
  },
  {
    id: "startlag",
    title: "S. A 10 ms timer's worst lag (ms): ten checks on a cold pool; the pool growing by 16",
    service: "oneshot",
    kind: "startlag",
    parallel: 1,
    impls: asyncOnly,
    iterations: 1,
  },
  {
    id: "waiting40",
    title: "W. authenticate(), 4 in flight, beside 40 conversations waiting for a handler",
    service: "oneshot",
    kind: "waiting",
    parallel: 4,
    impls: asyncOnly,
    iterations: baseIterations,
  },
  {
    id: "permit",
    title:
      "1. Full transaction on pam_permit (start, authenticate, acct_mgmt, open/close session, end)",
    service: "permit",
    kind: "full",
    parallel: 1,
    impls: [...withSiblings, ...syncKept],
    iterations: baseIterations,
  },
  {
    id: "conversation",
    title: "2. The same with one password prompt answered by the conversation (pam_matrix)",
    service: "matrix",
    kind: "full",
    parallel: 1,
    // The raw runners' minimal callback: the runtime's own cost of a call into JavaScript.
    impls: [...withRaw, ...syncKept],
    iterations: baseIterations,
  },
  {
    id: "echo10",
    title: "3a. authenticate with ten pam_echo info messages (ten conversation calls)",
    service: "echo",
    // Also times row 3b's workload in alternating slices in the same process (silentUsPerTx).
    kind: "auth-paired",
    parallel: 1,
    impls: sync,
    iterations: baseIterations,
  },
  {
    id: "echo0",
    title: "3b. The same stack with PAM_SILENT: no messages (the 0-message reference)",
    service: "echo",
    kind: "auth-silent",
    parallel: 1,
    impls: withRaw,
    iterations: baseIterations,
  },
  {
    id: "oneshot-sync",
    title: "4. One-shot (start, authenticate with password, acct_mgmt, end), synchronous",
    service: "oneshot",
    kind: "oneshot",
    parallel: 1,
    impls: [...sync, ...syncKept],
    iterations: baseIterations,
  },
  {
    id: "stub-permit",
    title: "O1. Overhead: row 1 on a stub libpam that does nothing (bench/c/stub_pam.c)",
    service: "permit",
    kind: "full",
    parallel: 1,
    impls: withRaw,
    iterations: stubIterations,
    stub: true,
  },
  {
    id: "stub-conversation",
    title: "O2. Overhead: row 2 on the stub (one echo-off prompt answered)",
    service: "matrix",
    kind: "full",
    parallel: 1,
    impls: sync,
    iterations: stubIterations,
    stub: true,
  },
  {
    id: "stub-echo10",
    title: "O3a. Overhead: row 3a on the stub (ten info messages)",
    service: "echo",
    kind: "auth-paired",
    parallel: 1,
    impls: sync,
    iterations: stubIterations,
    stub: true,
  },
  {
    id: "stub-echo0",
    title: "O3b. Overhead: row 3b on the stub (PAM_SILENT, no messages)",
    service: "echo",
    kind: "auth-silent",
    parallel: 1,
    impls: withRaw,
    iterations: stubIterations,
    stub: true,
  },
  ...PARALLEL.map((p): Row => ({
    id: `oneshot-async-${p}`,
    title: `4. authenticate() one-shot, ${p} in flight (C: ${p} thread${p > 1 ? "s" : ""})`,
    service: "oneshot",
    kind: "oneshot",
    parallel: p,
    impls: p === 1 || p === 4 ? [...asyncImpls, ...asyncKept] : asyncImpls,
    iterations: baseIterations,
  })),
  ...PARALLEL.map((p): Row => ({
    id: `etc-${p}`,
    title: `5. One-shot on a service in /etc/pam.d (authenticate-pam's workload), ${p} in flight`,
    service: "etc",
    kind: "oneshot",
    parallel: p,
    impls: p === 4
      ? ["c", "deno-async", "bun-async", "node", ...asyncKept]
      : ["c", "deno-async", "bun-async", "node"],
    // libpam also loads /etc/pam.d/other for a service outside a confdir: ~6x the work.
    iterations: Math.max(50, Math.round(baseIterations / 5)),
    etc: true,
  })),
];

const echoLines = Array.from(
  { length: 10 },
  (_, i) => `auth optional pam_echo.so message ${i + 1}`,
);
const services: Record<string, string> = {
  permit: "auth required pam_permit.so\naccount required pam_permit.so\n" +
    "session required pam_permit.so\n",
  matrix: "auth required {{pam_matrix}} passdb={{passdb}}\n" +
    "account required {{pam_matrix}} passdb={{passdb}}\nsession required pam_permit.so\n",
  echo: echoLines.join("\n") + "\nauth required pam_permit.so\n",
  oneshot: "auth required {{pam_matrix}} passdb={{passdb}}\n" +
    "account required {{pam_matrix}} passdb={{passdb}}\n",
  faildelay: "auth optional pam_faildelay.so delay=2000000\n" +
    "auth required {{pam_matrix}} passdb={{passdb}}\n" +
    "account required {{pam_matrix}} passdb={{passdb}}\n",
};

// ---------------------------------------------------------------- cleanup

const cleanups: (() => void)[] = [];
let child: Deno.ChildProcess | undefined;
function cleanup(): void {
  try {
    child?.kill("SIGKILL");
  } catch {
    // already gone
  }
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (error) {
      log(`cleanup: ${error}`);
    }
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(signal, () => {
    log(`\n${signal}: cleaning up`);
    cleanup();
    Deno.exit(130);
  });
}
globalThis.addEventListener("unload", cleanup);

// ---------------------------------------------------------------- helpers

async function run(
  cmd: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let command: Deno.Command;
  try {
    command = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: options.cwd ?? root,
      env: options.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
    child = command.spawn();
  } catch (error) {
    return { code: 127, stdout: "", stderr: String(error) };
  }
  const proc = child;
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 600_000);
  const out = await proc.output();
  clearTimeout(timer);
  child = undefined;
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function which(name: string): Promise<string | undefined> {
  // Deno and Bun install into .tools/ (npm ci); then PATH.
  for (const dir of [".tools/node_modules/.bin", "node_modules/.bin"]) {
    const local = join(root, dir, name);
    if (existsSync(local)) return local;
  }
  const { code, stdout } = await run(["sh", "-c", `command -v ${name}`]);
  return code === 0 ? stdout.trim() : undefined;
}

async function versionOf(cmd: string[]): Promise<string | undefined> {
  const { code, stdout } = await run(cmd);
  return code === 0 ? stdout.trim().split("\n")[0] : undefined;
}

const median = (xs: number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Per-repetition pairs of two series, for ratios measured in the same repetition. */
function paired(
  a: (number | undefined)[],
  b: (number | undefined)[],
  f: (x: number, y: number) => number,
) {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== undefined && b[i] !== undefined) out.push(f(a[i]!, b[i]!));
  }
  return median(out);
}

// ---------------------------------------------------------------- setup

interface Result {
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

const notes: string[] = [];
// authenticate-pam's service for row 5, uniquely named: as root it is copied to /etc/pam.d
// for the run (setUpNode) and removed afterwards.
const etcName = `seed-pam-bench-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
const stack = createTestStack({
  services: { ...services, [etcName]: services.oneshot },
  users: { [USER]: PASSWORD },
});
cleanups.push(() => stack.remove());

const work = mkdtempSync(join(tmpdir(), "seed-pam-bench-"));
cleanups.push(() => rmSync(work, { recursive: true, force: true }));

async function buildC(): Promise<Impl> {
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

const nodeDir = join(benchDir, ".node");
const NODE_ADDON = "authenticate-pam@1.0.5";

async function setUpNode(): Promise<Impl> {
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
  // Removed on exit, Ctrl-C or an error.
  const file = join("/etc/pam.d", etcName);
  cleanups.push(() => rmSync(file, { force: true }));
  writeFileSync(file, readFileSync(join(stack.confdir, etcName)), { flag: "wx" });
  etcService = etcName;
  const version = await versionOf([node, "--version"]);
  return {
    ...impl,
    label: `Node.js ${version ?? ""}, authenticate-pam (npm)`,
    command: [node, join(benchDir, "node", "authenticate-pam.mjs")],
    env: { AUTHENTICATE_PAM_DIR: join(nodeDir, "node_modules") },
  };
}

let etcService: string | undefined;
let stubLibrary: string | undefined;

async function setUp(): Promise<Map<ImplId, Impl>> {
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
  const wantNode = !soak && (!only || only.includes("node")) &&
    (!onlyRows || onlyRows.some((r) => r.startsWith("etc")));
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

async function runOne(impl: Impl, row: Row, iterations: number, checkpoints?: number[]): Promise<
  Result | string
> {
  const confdir = row.etc ? "-" : stack.confdir;
  const service = row.etc ? etcService : row.service;
  if (!service) return "no /etc/pam.d service (not root)";
  // Enough warm-up for the JIT's top tier: a server's steady state, not its first calls
  // (with 50 warm-up transactions the first 500 still run partly in baseline code).
  // Kind faildelay counts rounds of seconds each: a short warm-up of single checks.
  const warmup = checkpoints
    ? 0
    : row.kind === "faildelay" || row.kind === "startlag"
    ? 50
    : Math.max(300, Math.round(iterations / 10));
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

// ---------------------------------------------------------------- bench

interface Cell {
  label: string;
  results: (Result | undefined)[];
  errors: string[];
}

function rotate<T>(xs: T[], by: number): T[] {
  const k = by % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function bench(impls: Map<ImplId, Impl>) {
  const selected = rows.filter((r) => !onlyRows || onlyRows.includes(r.id));
  const cells = new Map<string, Map<ImplId, Cell>>();
  for (const row of selected) {
    const m = new Map<ImplId, Cell>();
    for (const id of row.impls) {
      const impl = impls.get(id)!;
      if (impl.skip) continue;
      m.set(id, { label: impl.label, results: [], errors: [] });
    }
    cells.set(row.id, m);
  }
  const skippedNotes = new Set<string>();
  for (let rep = 0; rep < reps; rep++) {
    for (const row of selected) {
      const cellMap = cells.get(row.id)!;
      // Rotate the order each repetition so no implementation always runs first.
      for (const id of rotate([...cellMap.keys()], rep)) {
        const impl = impls.get(id)!;
        const cell = cellMap.get(id)!;
        if (cell.errors.length && cell.errors[0].startsWith("skip:")) continue;
        log(`rep ${rep + 1}/${reps}  ${row.id.padEnd(16)} ${impl.label}`);
        const result = await runOne(impl, row, row.iterations);
        if (typeof result === "string") {
          if (result.startsWith("exit")) {
            cell.errors.push(result);
            cell.results[rep] = undefined;
          } else {
            cell.errors.unshift(`skip: ${result}`);
            if (!skippedNotes.has(`${impl.label}${result}`)) {
              skippedNotes.add(`${impl.label}${result}`);
              notes.push(`${impl.label}: skipped: ${result}`);
            }
          }
        } else {
          cell.results[rep] = result;
        }
      }
    }
  }
  return { selected, cells };
}

// ---------------------------------------------------------------- report

/** One implementation's figures on one row, as printed and in --json. */
interface CellSummary {
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

type Report = ReturnType<typeof summarise>;

function summarise(selected: Row[], cells: Map<string, Map<ImplId, Cell>>) {
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
        ratioToC: id === "c" ? 1 : paired(us(row.id, id), us(row.id, "c"), (a, b) => a / b),
        cpuRatioToC: id === "c" ? 1 : paired(cpu(row.id, id), cpu(row.id, "c"), (a, b) => a / b),
        quietUsPerTx: median(ok.flatMap((r) => r.quietUsPerTx ?? [])),
        quietRatioToC: id === "c"
          ? 1
          : paired(quiet(row.id, id), quiet(row.id, "c"), (a, b) => a / b),
        overCUs: paired(us(row.id, id), us(row.id, "c"), (a, b) => a - b),
        cpuOverCUs: paired(cpu(row.id, id), cpu(row.id, "c"), (a, b) => a - b),
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

  // Derived values, from wall-clock (`us`) and from CPU time (`cpu`) alike.
  const derive = (m: typeof us, silent: typeof us) => {
    const d: Record<string, Record<string, number>> = {};
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
        perMessageUs: median(perMessage("echo10", id).filter((v) => v !== undefined)),
        perMessageAcrossProcessesUs: paired(
          m("echo10", id),
          m("echo0", id),
          (ten, zero) => (ten - zero) / 10,
        ),
        stubPerMessageUs: median(perMessage("stub-echo10", id).filter((v) => v !== undefined)),
      };
      if (id === "c") continue;
      d[id].perMessageOverCUs = paired(
        perMessage("echo10", id),
        perMessage("echo10", "c"),
        (a, b) => a - b,
      );
    }
    for (
      const [asyncId, syncId] of [["deno-async", "deno-sync"], ["bun-async", "bun-sync"]] as const
    ) {
      d[asyncId] = {
        sequentialVsSync: paired(
          m("oneshot-async-1", asyncId),
          m("oneshot-sync", syncId),
          (a, b) => a / b,
        ),
        throughput4VsSequential: paired(
          m("oneshot-async-1", asyncId),
          m("oneshot-async-4", asyncId),
          (a, b) => a / b,
        ),
        throughput4VsAuthenticatePam: paired(
          m("etc-4", "node"),
          m("etc-4", asyncId),
          (a, b) => a / b,
        ),
      };
    }
    d.c.throughput4VsSequential = paired(
      m("oneshot-async-1", "c"),
      m("oneshot-async-4", "c"),
      (a, b) => a / b,
    );
    d.node = {
      throughput4VsSequential: paired(m("etc-1", "node"), m("etc-4", "node"), (a, b) => a / b),
    };
    // With the modules kept loaded, C too: the same ratios without libpam's dlopen per
    // transaction (not what the targets judge; keepModulesLoaded() is an opt-in).
    const ratio = (rowA: string, a: ImplId, rowB: string, b: ImplId) =>
      paired(m(rowA, a), m(rowB, b), (x, y) => x / y);
    for (const id of ["deno-sync-kept", "bun-sync-kept"] as const) {
      d[id] = {
        fullVsCKept: ratio("permit", id, "permit", "c-kept"),
        conversationVsCKept: ratio("conversation", id, "conversation", "c-kept"),
        oneshotVsCKept: ratio("oneshot-sync", id, "oneshot-sync", "c-kept"),
      };
    }
    for (
      const [id, syncId] of [
        ["deno-async-kept", "deno-sync-kept"],
        ["bun-async-kept", "bun-sync-kept"],
      ] as const
    ) {
      d[id] = {
        sequentialVsSync: ratio("oneshot-async-1", id, "oneshot-sync", syncId),
        throughput4VsSequential: ratio("oneshot-async-1", id, "oneshot-async-4", id),
        throughput4VsAuthenticatePam: ratio("etc-4", "node", "etc-4", id),
      };
    }
    d["c-kept"] = {
      throughput4VsSequential: ratio("oneshot-async-1", "c-kept", "oneshot-async-4", "c-kept"),
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
  const medianOf = (xs: (number | undefined)[]) =>
    median(xs.filter((v): v is number => v !== undefined));
  const issue15: Record<string, Record<string, number>> = {};
  const handoffUs = median(us("handoff", "c").filter((v): v is number => v !== undefined));
  for (
    const [asyncId, syncId, rawId] of [
      ["deno-async", "deno-sync", "deno-raw"],
      ["bun-async", "bun-sync", "bun-raw"],
    ] as const
  ) {
    const ratio = (rowA: string, a: ImplId, rowB: string, b: ImplId) =>
      paired(us(rowA, a), us(rowB, b), (x, y) => x / y);
    const rawPermit = result("permit", rawId)?.ratioToC;
    issue15[asyncId] = {
      etc4VsAuthenticatePam: ratio("etc-4", "node", "etc-4", asyncId),
      etc64RateVsEtc4: ratio("etc-4", asyncId, "etc-64", asyncId),
      // (one at a time − the synchronous one-shot) ÷ the futex round trip of the same run
      sequentialOverSyncPerHandoff: paired(
        us("oneshot-async-1", asyncId),
        us("oneshot-sync", syncId),
        (a, b) => (a - b) / handoffUs,
      ),
      stubBindingOverRawUs: paired(
        us("stub-permit", syncId),
        us("stub-permit", rawId),
        (a, b) => a - b,
      ),
      stubPerMessageUs: derived.wall[syncId]?.stubPerMessageUs,
      promptVsFloor: (result("conversation", syncId)?.ratioToC ?? NaN) / (rawPermit ?? NaN),
      // The same for the raw runner's minimal callback: what the runtime's call into JavaScript
      // costs with no binding, against the same floor.
      rawPromptVsFloor: (result("conversation", rawId)?.ratioToC ?? NaN) / (rawPermit ?? NaN),
      // The binding's prompt row over the raw one of the same run: what the binding adds.
      promptVsRawPrompt: paired(
        us("conversation", syncId),
        us("conversation", rawId),
        (a, b) => a / b,
      ),
      rightUnderFailuresVsAlone: paired(
        us("faildelay", asyncId),
        alone("faildelay", asyncId),
        (a, b) => a / b,
      ),
      wrongMinMs: median(
        wrongMin("faildelay", asyncId).filter((v): v is number => v !== undefined),
      ),
      coldStartLagMs: medianOf(us("startlag", asyncId)),
      growLagMs: medianOf(growLag("startlag", asyncId)),
      // No target: what the cold start's first check waits for its thread (more on Deno
      // when the spawner starts it: docs/bench.md, issue 15).
      coldFirstCheckMs: medianOf(firstCheck("startlag", asyncId)),
      waitingRateVsNone: paired(
        none("waiting40", asyncId),
        us("waiting40", asyncId),
        (a, b) => a / b,
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
    const d = issue15[id];
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
      targets.push({ target: `${id}: ${what} [issue 15]`, value: d[key], limit, max });
    }
  }
  return {
    table,
    derived,
    issue15: { handoffUs, ...issue15 },
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

const fmt = (x: unknown, digits = 1) =>
  typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";

function printText(report: Report) {
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
  out.push("", `Issue 15's figures (futex round trip: ${fmt(report.issue15.handoffUs, 1)} µs):`);
  for (const [id, d] of Object.entries(report.issue15)) {
    if (typeof d !== "object") continue;
    out.push(
      `  ${id.padEnd(12)} ${Object.entries(d).map(([k, v]) => `${k}=${fmt(v, 2)}`).join("  ")}`,
    );
  }
  out.push(
    "",
    "Targets (issues 7 and 15, on wall-clock time; the quiet slices' and CPU time beside):",
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

// ---------------------------------------------------------------- soak

async function runSoak(impls: Map<ImplId, Impl>) {
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

// ---------------------------------------------------------------- main

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
          `${reps} repetitions, medians; ×C = median of per-repetition ratios to the C run of the same repetition`,
      );
      printText(report);
      for (const n of notes) console.log(`note: ${n}`);
    }
  }
} finally {
  cleanup();
}
