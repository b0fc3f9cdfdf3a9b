/**
 * The floor for a runtime: the workloads through the runtime's own FFI with
 * no binding at all (buffers made once, direct calls, and a conversation
 * callback that only answers prompts with the password: no checks, no
 * wiping), so the bench can tell what the binding adds from what running
 * libpam inside a JavaScript runtime's process costs, callback included.
 * Deno and Bun; a diagnostic, not an API: it names libpam's symbols itself.
 *
 * @module
 */

import process from "node:process";
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
    JSON.stringify({ skipped: `the raw runner runs whole transactions only (kind ${args.kind})` }),
  );
  process.exit(0);
}
const encoder = new TextEncoder();
const z = (s: string) => encoder.encode(s + "\0");
const service = z(args.service), user = z(args.user), confdir = z(args.confdir ?? "/etc/pam.d");
// struct pam_conv { conv, appdata_ptr }: pam_start copies it. Only the prompt rows call it
// (pam_permit asks nothing of a user that is set; pam_echo says nothing under PAM_SILENT).
const conv = new Uint8Array(16);
const out = new Uint8Array(8);
const outView = new DataView(out.buffer);
const password = z(args.password);
const PAM_PROMPT_ECHO_OFF = 1, PAM_PROMPT_ECHO_ON = 2;

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
    const libc = D.dlopen("libc.so.6", {
      calloc: { parameters: ["usize", "usize"], result: "pointer" },
      strdup: { parameters: ["buffer"], result: "pointer" },
    }).symbols;
    const P = D.UnsafePointer, V = D.UnsafePointerView;
    // int conv(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *)
    const callback = new D.UnsafeCallback(
      { parameters: ["i32", "pointer", "pointer", "pointer"], result: "i32" },
      (n, msg, resp) => {
        const array = libc.calloc(BigInt(n), 16n)!;
        const responses = new BigUint64Array(V.getArrayBuffer(array, n * 16));
        const messages = new V(msg!);
        for (let i = 0; i < n; i++) {
          const style = new V(messages.getPointer(i * 8)!).getInt32(0);
          if (style === PAM_PROMPT_ECHO_OFF || style === PAM_PROMPT_ECHO_ON) {
            responses[i * 2] = BigInt(P.value(libc.strdup(password)));
          }
        }
        new BigUint64Array(V.getArrayBuffer(resp!, 8))[0] = BigInt(P.value(array));
        return 0;
      },
    );
    new DataView(conv.buffer).setBigUint64(0, BigInt(P.value(callback.pointer)), true);
    return wrap(lib, () => D.UnsafePointer.create(outView.getBigUint64(0, true)));
  }
  const { dlopen, FFIType: T, JSCallback, read, toArrayBuffer } = await import("bun:ffi");
  const flagged = { args: [T.ptr, T.i32], returns: T.i32 };
  const lib = dlopen(library, {
    pam_start_confdir: { args: [T.ptr, T.ptr, T.ptr, T.ptr, T.ptr], returns: T.i32 },
    ...Object.fromEntries(functions.map((f) => [f, flagged])),
  }).symbols;
  const libc = dlopen("libc.so.6", {
    calloc: { args: [T.u64, T.u64], returns: T.ptr },
    strdup: { args: [T.ptr], returns: T.ptr },
  }).symbols;
  const callback = new JSCallback(
    (n: number, msg: number, resp: number) => {
      const array = libc.calloc(n, 16) as number;
      const responses = new BigUint64Array(toArrayBuffer(array as never, 0, n * 16));
      for (let i = 0; i < n; i++) {
        const style = read.i32(read.ptr(msg as never, i * 8) as never, 0);
        if (style === PAM_PROMPT_ECHO_OFF || style === PAM_PROMPT_ECHO_ON) {
          responses[i * 2] = BigInt(libc.strdup(password) as number);
        }
      }
      new BigUint64Array(toArrayBuffer(resp as never, 0, 8))[0] = BigInt(array);
      return 0;
    },
    { args: [T.i32, T.ptr, T.ptr, T.ptr], returns: T.i32 },
  );
  new DataView(conv.buffer).setBigUint64(0, BigInt(callback.ptr as number), true);
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
