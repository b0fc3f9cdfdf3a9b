/**
 * The Deno adapter: `Deno.dlopen`, `Deno.UnsafeCallback`,
 * `Deno.UnsafePointerView`. Deno's pointer objects are passed through as
 * opaque {@linkcode Pointer}s.
 *
 * @module
 */

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

/** The adapter for Deno. */
export const adapter: NativeAdapter = {
  runtime: "deno",

  open<S extends Record<string, SymbolDefinition>>(path: string, symbols: S) {
    const defs: Record<string, Deno.ForeignFunction> = {};
    for (const [name, def] of Object.entries(symbols)) defs[name] = toDeno(def);
    const lib = Deno.dlopen(path, defs);
    const bound: Record<string, unknown> = { close: () => lib.close() };
    for (const name of Object.keys(symbols)) bound[name] = lib.symbols[name] ?? null;
    return bound as Bound<S> & { close(): void };
  },

  callback<D extends SymbolDefinition>(definition: D, fn: FunctionOf<D>): NativeCallback {
    const cb = new Deno.UnsafeCallback(
      {
        parameters: definition.parameters.map(denoType),
        result: denoType(definition.result),
      } as Deno.UnsafeCallbackDefinition,
      fn as unknown as Deno.UnsafeCallbackFunction,
    );
    return { pointer: wrap(cb.pointer) as Pointer, close: () => cb.close() };
  },

  functionAt<D extends SymbolDefinition>(pointer: Pointer, definition: D): FunctionOf<D> {
    const fp = new Deno.UnsafeFnPointer(
      raw(pointer) as Deno.PointerObject<never>,
      toDeno(definition),
    );
    return ((...args: unknown[]) => fp.call(...(args as never[]))) as unknown as FunctionOf<D>;
  },

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
    new DataView(buffer.buffer, buffer.byteOffset).setBigUint64(
      offset,
      BigInt(P.value(raw(value))),
      true,
    );
  },
  readPointerFrom(buffer, offset) {
    const address = new DataView(buffer.buffer, buffer.byteOffset).getBigUint64(offset, true);
    return wrap(P.create(address));
  },
  fromAddress: (address) => wrap(P.create(BigInt(address))),
  addressOf: (pointer) => Number(P.value(raw(pointer))),
};
