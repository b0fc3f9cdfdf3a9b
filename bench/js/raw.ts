/**
 * The floor for a runtime: the workloads through the runtime's own FFI with
 * no binding at all (buffers made once, direct calls, a minimal C-like
 * conversation callback that answers echo-off prompts and nothing else), so
 * the bench can tell what the binding adds from what running libpam inside a
 * JavaScript runtime's process costs. Deno and Bun; a diagnostic, not an
 * API: it names libpam's and libc's symbols itself.
 *
 * @module
 */

import process from "node:process";
import { parseArgs, timeAndReport } from "./common.ts";

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
// struct pam_conv: a minimal C-like conversation (calloc the responses, strdup the password
// for each echo-off prompt), or NULL for stacks that never prompt.
const conv = new Uint8Array(16);
const password = z(args.password);
const out = new Uint8Array(8);
const outView = new DataView(out.buffer);

async function open(): Promise<Raw> {
  const library = args.library ?? "libpam.so.0";
  const g = globalThis as { Deno?: typeof Deno };
  if (g.Deno) {
    const flagged = { parameters: ["pointer", "i32"], result: "i32" } as const;
    const lib = g.Deno.dlopen(library, {
      pam_start_confdir: {
        parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
        result: "i32",
      },
      pam_authenticate: flagged,
      pam_acct_mgmt: flagged,
      pam_open_session: flagged,
      pam_close_session: flagged,
      pam_end: flagged,
    }).symbols;
    const libc = g.Deno.dlopen("libc.so.6", {
      calloc: { parameters: ["u64", "u64"], result: "pointer" },
      strdup: { parameters: ["buffer"], result: "pointer" },
    }).symbols;
    const View = g.Deno.UnsafePointerView;
    const P = g.Deno.UnsafePointer;
    const cb = new g.Deno.UnsafeCallback(
      { parameters: ["i32", "pointer", "pointer", "pointer"], result: "i32" } as const,
      (n, msgs, resp) => {
        const r = libc.calloc(BigInt(n), 16n)!;
        const rv = new BigUint64Array(View.getArrayBuffer(r, 16 * n));
        for (let i = 0; i < n; i++) {
          const m = new View(msgs!).getPointer(i * 8)!;
          if (new View(m).getInt32(0) === 1) rv[i * 2] = P.value(libc.strdup(password));
        }
        new BigUint64Array(View.getArrayBuffer(resp!, 8))[0] = P.value(r);
        return 0;
      },
    );
    new DataView(conv.buffer).setBigUint64(0, P.value(cb.pointer), true);
    return {
      start: lib.pam_start_confdir as Call,
      authenticate: lib.pam_authenticate as Call,
      acctMgmt: lib.pam_acct_mgmt as Call,
      openSession: lib.pam_open_session as Call,
      closeSession: lib.pam_close_session as Call,
      end: lib.pam_end as Call,
      handle: () => g.Deno!.UnsafePointer.create(outView.getBigUint64(0, true)),
    };
  }
  const { dlopen, FFIType: T } = await import("bun:ffi");
  const flagged = { args: [T.ptr, T.i32], returns: T.i32 };
  const lib = dlopen(library, {
    pam_start_confdir: { args: [T.ptr, T.ptr, T.ptr, T.ptr, T.ptr], returns: T.i32 },
    pam_authenticate: flagged,
    pam_acct_mgmt: flagged,
    pam_open_session: flagged,
    pam_close_session: flagged,
    pam_end: flagged,
  }).symbols;
  const { JSCallback, read, toArrayBuffer } = await import("bun:ffi");
  const libc = dlopen("libc.so.6", {
    calloc: { args: [T.u64_fast, T.u64_fast], returns: T.ptr },
    strdup: { args: [T.ptr], returns: T.ptr },
  }).symbols;
  const cb = new JSCallback((n: number, msgs: number, resp: number) => {
    const r = libc.calloc(n, 16) as number;
    const rv = new DataView(toArrayBuffer(r as never, 0, 16 * n));
    for (let i = 0; i < n; i++) {
      const m = read.ptr(msgs as never, i * 8);
      if (read.i32(m as never, 0) === 1) {
        rv.setBigUint64(i * 16, BigInt(libc.strdup(password) as number), true);
      }
    }
    new DataView(toArrayBuffer(resp as never, 0, 8)).setBigUint64(0, BigInt(r), true);
    return 0;
  }, { args: [T.i32, T.ptr, T.ptr, T.ptr], returns: T.i32 });
  new DataView(conv.buffer).setBigUint64(0, BigInt(cb.ptr as number), true);
  return {
    start: lib.pam_start_confdir as Call,
    authenticate: lib.pam_authenticate as Call,
    acctMgmt: lib.pam_acct_mgmt as Call,
    openSession: lib.pam_open_session as Call,
    closeSession: lib.pam_close_session as Call,
    end: lib.pam_end as Call,
    handle: () => Number(outView.getBigUint64(0, true)),
  };
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
  for (let i = 0; i < args.iterations; i++) one();
});
