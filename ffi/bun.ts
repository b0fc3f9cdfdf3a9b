/**
 * The Bun adapter: `bun:ffi`'s `dlopen`, `JSCallback`, `read` and
 * `toArrayBuffer`. Bun's pointers are plain numbers; this file turns them
 * into opaque {@linkcode Pointer}s and NULL into `null`.
 *
 * @module
 */

import { CFunction, CString, dlopen, FFIType, JSCallback, read, toArrayBuffer } from "bun:ffi";
import { closeSync } from "node:fs";
import process from "node:process";
import { convertArguments } from "./arguments.ts";
import { dataViewOf } from "./data_view.ts";
import type { NativeType, SymbolDefinition } from "./symbols.ts";
import type { Bound, FunctionOf, NativeAdapter, NativeCallback, Pointer } from "./types.ts";

const bunType: Record<NativeType, FFIType> = {
  i32: FFIType.i32,
  u32: FFIType.u32,
  usize: FFIType.u64_fast,
  pointer: FFIType.ptr,
  buffer: FFIType.ptr,
  void: FFIType.void,
};

function toBun(definition: SymbolDefinition): { args: FFIType[]; returns: FFIType } {
  return {
    args: definition.parameters.map((t) => bunType[t]),
    returns: bunType[definition.result],
  };
}

type Raw = number | null;
const raw = (p: Pointer | null): Raw => p as unknown as Raw;
// Bun reports NULL as null from calls but as 0 from reads and callback arguments.
const wrap = (p: number | bigint | null): Pointer | null =>
  typeof p === "number"
    ? (p === 0 ? null : p as unknown as Pointer)
    : p
    ? Number(p) as unknown as Pointer
    : null;

/**
 * `fn` behind a function that turns Bun's numeric pointer arguments (0 for
 * NULL) into the neutral form. Fixed arities: a rest-argument wrapper costs
 * an array and a spread on every call from C.
 */
function normaliseArguments(
  definition: SymbolDefinition,
  fn: unknown,
): (...args: never[]) => unknown {
  const pointers = definition.parameters.map((t) => t === "pointer");
  return convertArguments(fn, pointers, (v) => wrap(v as number)) as (
    ...args: never[]
  ) => unknown;
}

// The one piece of Bun's global this file uses, declared here: Deno type-checks this file too.
declare const Bun: { file(fd: number): { stream(): ReadableStream<Uint8Array> } };

/**
 * `fd` read by `Bun.file(fd).stream()`, which polls a non-blocking descriptor on the event loop.
 * Bun's node:fs and node:tty streams would read it on the shared thread pool, one blocked thread
 * per idle terminal (four stall every other file operation); its writers make the descriptor
 * blocking again. It leaves the descriptor open, so this closes it.
 */
function fileReadStream(fd: number): ReadableStream<Uint8Array> {
  const source = Bun.file(fd).stream().getReader();
  let cancelled = false;
  let closed = false;
  const release = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: { done: boolean; value?: Uint8Array | undefined };
      try {
        chunk = await source.read();
      } catch (error) {
        release();
        if (cancelled) return;
        if ((error as { code?: string }).code === "EIO") controller.close();
        else controller.error(error);
        return;
      }
      if (cancelled) return;
      if (chunk.done) {
        release();
        controller.close();
      } else controller.enqueue(chunk.value!);
    },
    async cancel() {
      cancelled = true;
      try {
        await source.cancel();
      } finally {
        release();
      }
    },
  }, { highWaterMark: 0 });
}

/** What a compiled binary is started with to run one of this package's modules instead. */
export const compiledScriptFlag = "--seed-pam-run-module";

/** The adapter for Bun. */
export const adapter: NativeAdapter = {
  runtime: "bun",

  // Bun has no permissions to grant; --smol trades some speed for a smaller heap. A binary
  // from `bun build --compile` runs only its own entry: it is started with the flag instead,
  // and the package's modules inside it turn that process into the script (see
  // src/session/_client.ts).
  scriptCommand: (script) =>
    script.includes("/$bunfs/")
      ? { command: process.execPath, args: [compiledScriptFlag, script] }
      : { command: process.execPath, args: ["--smol", script] },

  open<S extends Record<string, SymbolDefinition>>(path: string, symbols: S) {
    const required: Record<string, ReturnType<typeof toBun>> = {};
    for (const [name, def] of Object.entries(symbols)) {
      if (!def.optional && !def.symbol) required[name] = toBun(def);
    }
    const lib = dlopen(path, required);
    const extra: { close(): void }[] = [];
    const bound: Record<string, unknown> = {
      close: () => {
        for (const e of extra) e.close();
        lib.close();
      },
    };
    for (const [name, def] of Object.entries(symbols)) {
      if (!def.optional && !def.symbol) {
        bound[name] = lib.symbols[name];
        continue;
      }
      // bun:ffi has neither optional symbols nor aliases: bind each such symbol alone,
      // so a missing optional one leaves null and an alias gets its own signature.
      const symbol = def.symbol ?? name;
      try {
        const one = dlopen(path, { [symbol]: toBun(def) });
        extra.push(one);
        bound[name] = one.symbols[symbol];
      } catch (error) {
        if (!def.optional) throw error;
        bound[name] = null;
      }
    }
    return bound as Bound<S> & { close(): void };
  },

  callback<D extends SymbolDefinition>(definition: D, fn: FunctionOf<D>): NativeCallback {
    const cb = new JSCallback(normaliseArguments(definition, fn), {
      ...toBun(definition),
      threadsafe: false,
    });
    return { pointer: wrap(cb.ptr as number) as Pointer, close: () => cb.close() };
  },

  functionAt<D extends SymbolDefinition>(pointer: Pointer, definition: D): FunctionOf<D> {
    return CFunction({ ...toBun(definition), ptr: raw(pointer) as never }) as unknown as FunctionOf<
      D
    >;
  },

  readStream: fileReadStream,

  readPointer: (base, offset) => wrap(read.ptr(raw(base)!, offset)),
  readI32: (base, offset) => read.i32(raw(base)!, offset),
  readCString: (base, offset = 0) => String(new CString(raw(base)! as never, offset)),
  // toArrayBuffer refuses a length of 0 (an empty answer is a 1-byte C string, NUL only).
  view: (base, byteLength, offset = 0) =>
    byteLength === 0
      ? new Uint8Array(0)
      : new Uint8Array(toArrayBuffer(raw(base)! as never, offset, byteLength)),
  writePointer(base, offset, value) {
    new DataView(toArrayBuffer(raw(base)! as never, offset, 8)).setBigUint64(
      0,
      BigInt(raw(value) ?? 0),
      true,
    );
  },
  writePointerInto(buffer, offset, value) {
    const address = raw(value) ?? 0;
    // Two 32-bit halves: no BigInt for an address that is a plain number anyway.
    const view = dataViewOf(buffer);
    view.setUint32(offset, address % 0x1_0000_0000, true);
    view.setUint32(offset + 4, Math.floor(address / 0x1_0000_0000), true);
  },
  readPointerFrom(buffer, offset) {
    const view = dataViewOf(buffer);
    return wrap(view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000);
  },
  fromAddress: (address) => wrap(address),
  addressOf: (pointer) => raw(pointer) ?? 0,
};
