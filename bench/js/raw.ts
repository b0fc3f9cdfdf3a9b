/**
 * The floor for a runtime: the workloads through the runtime's own FFI with
 * no binding at all (buffers made once, direct calls, no conversation: it
 * only runs the rows that have none), so the bench can tell what the binding
 * adds from what running libpam inside a JavaScript runtime's process costs.
 * Deno and Bun; a diagnostic, not an API: it names libpam's symbols itself.
 *
 * @module
 */

import process from "node:process";
import { pamConvLayout, pointerSize } from "../../ffi/layouts.ts";
import { parseArgs, tick, timeAndReport } from "./common.ts";

type Call = (...args: unknown[]) => number;
interface Raw {
  start: Call;
  authenticate: Call;
  acctMgmt: Call;
  openSession: Call;
  closeSession: Call;
  end: Call;
  handle(): unknown;
}

const args = parseArgs();
if (args.kind !== "full" && args.kind !== "auth-silent") {
  console.log(
    JSON.stringify({ skipped: `the raw runner has no conversation (kind ${args.kind})` }),
  );
  process.exit(0);
}
const encoder = new TextEncoder();
const z = (s: string) => encoder.encode(s + "\0");
const service = z(args.service), user = z(args.user), confdir = z(args.confdir ?? "/etc/pam.d");
// struct pam_conv: pam_start copies it, and nothing on these rows calls it (pam_permit asks
// nothing of a user that is set; pam_echo says nothing under PAM_SILENT).
const conv = new Uint8Array(pamConvLayout.size);
const out = new Uint8Array(pointerSize);
const outView = new DataView(out.buffer);

const functions = [
  "pam_authenticate",
  "pam_acct_mgmt",
  "pam_open_session",
  "pam_close_session",
  "pam_end",
] as const;

/** The six calls, however the runtime binds them; `handle()` reads pam_start's out-parameter. */
function wrap(lib: Record<string, unknown>, handle: () => unknown): Raw {
  return {
    start: lib.pam_start_confdir as Call,
    authenticate: lib.pam_authenticate as Call,
    acctMgmt: lib.pam_acct_mgmt as Call,
    openSession: lib.pam_open_session as Call,
    closeSession: lib.pam_close_session as Call,
    end: lib.pam_end as Call,
    handle,
  };
}

async function open(): Promise<Raw> {
  const library = args.library ?? "libpam.so.0";
  const g = globalThis as { Deno?: typeof Deno };
  if (g.Deno) {
    const D = g.Deno;
    const flagged = { parameters: ["pointer", "i32"], result: "i32" } as const;
    const lib = D.dlopen(library, {
      pam_start_confdir: {
        parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
        result: "i32",
      },
      ...Object.fromEntries(functions.map((f) => [f, flagged])),
    } as Record<string, Deno.ForeignFunction>).symbols;
    return wrap(lib, () => D.UnsafePointer.create(outView.getBigUint64(0, true)));
  }
  const { dlopen, FFIType: T } = await import("bun:ffi");
  const flagged = { args: [T.ptr, T.i32], returns: T.i32 };
  const lib = dlopen(library, {
    pam_start_confdir: { args: [T.ptr, T.ptr, T.ptr, T.ptr, T.ptr], returns: T.i32 },
    ...Object.fromEntries(functions.map((f) => [f, flagged])),
  }).symbols;
  return wrap(lib, () => Number(outView.getBigUint64(0, true)));
}

const pam = await open();
const full = args.kind === "full";
function one(): void {
  if (pam.start(service, user, conv, confdir, out) !== 0) {
    throw new Error("pam_start_confdir failed");
  }
  const h = pam.handle();
  let s = full ? pam.authenticate(h, 0) : pam.authenticate(h, 0x8000); // PAM_SILENT
  if (full && s === 0) s = pam.acctMgmt(h, 0);
  if (full && s === 0) s = pam.openSession(h, 0);
  if (full && s === 0) s = pam.closeSession(h, 0);
  pam.end(h, s);
  if (s !== 0) throw new Error(`PAM call failed: ${s}`);
}

for (let i = 0; i < args.warmup; i++) one();
await timeAndReport(args.iterations, () => {
  for (let i = 0; i < args.iterations; i++) {
    one();
    tick();
  }
});
