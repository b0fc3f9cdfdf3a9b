/**
 * What runs: the implementations, the rows (workloads) and the PAM services
 * they use.
 *
 * @module
 */

import { baseIterations, quick } from "./_options.ts";

export type ImplId =
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

export interface Impl {
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

export interface Row {
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

export const USER = "alice";
export const PASSWORD = "bench-secret";
export const PARALLEL = [1, 2, 4, 8, 64];
export const sync: ImplId[] = ["c", "deno-sync", "bun-sync"];
// The runtimes' floor, on the rows that need no conversation.
export const withRaw: ImplId[] = ["c", "deno-raw", "bun-raw", "deno-sync", "bun-sync"];
// What a second running thread in the process costs C itself (see bench/c/baseline.c).
export const withSiblings: ImplId[] = ["c", "c-busy", "c-waking", "c-idle", ...withRaw.slice(1)];
export const asyncImpls: ImplId[] = ["c", "deno-async", "bun-async"];
// The same with the service's modules kept loaded (keepModulesLoaded(); C: a pam_start held
// open), C included: what is left when libpam no longer dlopens the modules per transaction.
export const syncKept: ImplId[] = ["c-kept", "deno-sync-kept", "bun-sync-kept"];
export const asyncKept: ImplId[] = ["c-kept", "deno-async-kept", "bun-async-kept"];

export const stubIterations = baseIterations * 10;
export const asyncOnly: ImplId[] = ["deno-async", "bun-async"];
export const rows: Row[] = [
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
    // libpam also loads /etc/pam.d/other for a service outside a confdir: ~6x the work. Still
    // the full count: at a fifth of it the timed window was ~90 ms, too short to say 2.0x from
    // 1.8x on a shared machine.
    iterations: baseIterations,
    etc: true,
  })),
];

export const echoLines = Array.from(
  { length: 10 },
  (_, i) => `auth optional pam_echo.so message ${i + 1}`,
);
export const services: Record<string, string> = {
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
