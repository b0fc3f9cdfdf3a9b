/**
 * The few `Deno` FFI types `ffi/deno.ts` uses, declared for `tsc` with
 * `bun-types` (tsconfig.bun.json), which knows no `Deno`. A subset of
 * lib.deno.unstable's declarations, shaped as Deno 2 has them; `deno check`
 * never reads this file (it has Deno's own), so a drift shows there as a
 * type error in ffi/deno.ts rather than here.
 *
 * @module
 */

declare namespace Deno {
  type NativeType = "i32" | "u32" | "usize" | "pointer" | "buffer" | "void";
  interface ForeignFunction {
    name?: string;
    parameters: readonly NativeType[];
    result: NativeType;
    optional?: boolean;
  }
  type PointerObject<T = unknown> = { [brand]: T };
  const brand: unique symbol;
  type PointerValue = null | PointerObject;
  const UnsafePointer: {
    create(value: bigint): PointerValue;
    value(value: PointerValue): bigint;
  };
  class UnsafePointerView {
    constructor(pointer: PointerObject);
    getPointer(offset?: number): PointerValue;
    getInt32(offset?: number): number;
    static getCString(pointer: PointerObject, offset?: number): string;
    static getArrayBuffer(pointer: PointerObject, byteLength: number, offset?: number): ArrayBuffer;
  }
  interface UnsafeCallbackDefinition {
    parameters: readonly NativeType[];
    result: NativeType;
  }
  type UnsafeCallbackFunction = (...args: never[]) => unknown;
  class UnsafeCallback {
    constructor(definition: UnsafeCallbackDefinition, callback: UnsafeCallbackFunction);
    readonly pointer: PointerObject;
    close(): void;
  }
  class UnsafeFnPointer {
    constructor(pointer: PointerObject<never>, definition: ForeignFunction);
    call(...args: never[]): unknown;
  }
  interface DynamicLibrary {
    readonly symbols: Record<string, unknown>;
    close(): void;
  }
  function dlopen(path: string, symbols: Record<string, ForeignFunction>): DynamicLibrary;
  function execPath(): string;
}
