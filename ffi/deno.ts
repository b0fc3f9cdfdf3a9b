/**
 * The Deno adapter: `Deno.dlopen`, `Deno.UnsafeCallback`,
 * `Deno.UnsafePointerView`. Deno's pointer objects are passed through as
 * opaque {@linkcode Pointer}s.
 *
 * @module
 */

import { ReadStream } from "node:tty";
import { convertArguments } from "./arguments.ts";
import { dataViewOf } from "./data_view.ts";
import type { NativeType, SymbolDefinition } from "./symbols.ts";
import type { Bound, FunctionOf, NativeAdapter, NativeCallback, Pointer } from "./types.ts";

type DenoType = "i32" | "u32" | "usize" | "pointer" | "buffer" | "void";
const denoType = (t: NativeType): DenoType => t;

function toDeno(definition: SymbolDefinition): Deno.ForeignFunction {
  return {
    parameters: definition.parameters.map(denoType),
    result: denoType(definition.result),
    optional: definition.optional ?? false,
    ...(definition.symbol ? { name: definition.symbol } : {}),
  } as Deno.ForeignFunction;
}

const P = Deno.UnsafePointer;
const View = Deno.UnsafePointerView;
type Raw = Deno.PointerValue;
const raw = (p: Pointer | null): Raw => p as unknown as Raw;
const wrap = (p: Raw): Pointer | null => p as unknown as Pointer | null;

/**
 * `fn` taking numbers for its `usize` parameters. Deno accepts a number there,
 * but only a BigInt keeps the call on V8's fast path: with a number, a call
 * such as `malloc(n)` costs about ten times as much.
 */
function withBigIntSizes(definition: SymbolDefinition, fn: unknown): unknown {
  const sizes = definition.parameters.map((t) => t === "usize");
  return convertArguments(fn, sizes, (v) => BigInt(v as number));
}

/** `fn` given numbers for its `usize` parameters, which Deno passes to callbacks as BigInts. */
function numberSizes(definition: SymbolDefinition, fn: unknown): unknown {
  const sizes = definition.parameters.map((t) => t === "usize");
  return convertArguments(fn, sizes, Number);
}

/**
 * `fd` read by a node:tty stream: Deno's FsFile cannot adopt a raw descriptor, and node:fs reads
 * one only if node:fs opened it, each pending read then holding a blocking thread that closing
 * the descriptor does not wake. node:tty polls any descriptor on the event loop, and closes it.
 */
function ttyReadStream(fd: number): ReadableStream<Uint8Array> {
  const source = new ReadStream(fd);
  let done = false;
  const finish = (controller: ReadableStreamDefaultController<Uint8Array>, error?: unknown) => {
    if (done) return;
    done = true;
    if (error === undefined || (error as { code?: string }).code === "EIO") controller.close();
    else controller.error(error);
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      source.on("data", (chunk: Uint8Array) => {
        if (done) return;
        // A plain copy: no Buffer leaves the adapter.
        controller.enqueue(new Uint8Array(chunk));
        if ((controller.desiredSize ?? 1) <= 0) source.pause();
      });
      source.on("end", () => finish(controller));
      source.on("error", (error: unknown) => finish(controller, error));
    },
    pull() {
      source.resume();
    },
    cancel() {
      done = true;
      source.destroy();
    },
  }, { highWaterMark: 1 });
}

/** V8 settings for a process that mostly waits: see docs/bench.md (Sessions) for what each saves. */
const denoLeanFlags = ["--v8-flags=--max-old-space-size=64,--single-threaded-gc"];

/** The adapter for Deno. */
export const adapter: NativeAdapter = {
  runtime: "deno",

  scriptCommand(script, permissions) {
    return {
      command: Deno.execPath(),
      // --no-config: a deno.json in the caller's directory must not change what the process
      // imports or may do. --no-prompt: a missing permission is an error, never a question.
      args: [
        "run",
        "--quiet",
        "--no-config",
        "--no-prompt",
        ...permissions.map((p) => `--allow-${p}`),
        ...denoLeanFlags,
        script,
      ],
    };
  },

  open<S extends Record<string, SymbolDefinition>>(path: string, symbols: S) {
    const defs: Record<string, Deno.ForeignFunction> = {};
    for (const [name, def] of Object.entries(symbols)) defs[name] = toDeno(def);
    const lib = Deno.dlopen(path, defs);
    const bound: Record<string, unknown> = { close: () => lib.close() };
    for (const [name, def] of Object.entries(symbols)) {
      bound[name] = withBigIntSizes(def, lib.symbols[name] ?? null);
    }
    return bound as Bound<S> & { close(): void };
  },

  callback<D extends SymbolDefinition>(definition: D, fn: FunctionOf<D>): NativeCallback {
    const cb = new Deno.UnsafeCallback(
      {
        parameters: definition.parameters.map(denoType),
        result: denoType(definition.result),
      } as Deno.UnsafeCallbackDefinition,
      numberSizes(definition, fn) as Deno.UnsafeCallbackFunction,
    );
    return { pointer: wrap(cb.pointer) as Pointer, close: () => cb.close() };
  },

  functionAt<D extends SymbolDefinition>(pointer: Pointer, definition: D): FunctionOf<D> {
    const fp = new Deno.UnsafeFnPointer(
      raw(pointer) as Deno.PointerObject<never>,
      toDeno(definition),
    );
    return withBigIntSizes(
      definition,
      (...args: unknown[]) => fp.call(...(args as never[])),
    ) as FunctionOf<D>;
  },

  readStream: ttyReadStream,

  readPointer: (base, offset) => wrap(new View(raw(base)!).getPointer(offset)),
  readI32: (base, offset) => new View(raw(base)!).getInt32(offset),
  readCString: (base, offset = 0) => View.getCString(raw(base)!, offset),
  view: (base, byteLength, offset = 0) =>
    new Uint8Array(View.getArrayBuffer(raw(base)!, byteLength, offset)),
  writePointer(base, offset, value) {
    const cell = new BigUint64Array(View.getArrayBuffer(raw(base)!, 8, offset));
    cell[0] = BigInt(P.value(raw(value)));
  },
  writePointerInto(buffer, offset, value) {
    dataViewOf(buffer).setBigUint64(offset, P.value(raw(value)), true);
  },
  readPointerFrom(buffer, offset) {
    return wrap(P.create(dataViewOf(buffer).getBigUint64(offset, true)));
  },
  fromAddress: (address) => wrap(P.create(BigInt(address))),
  addressOf: (pointer) => Number(P.value(raw(pointer))),
};
