/**
 * The one small interface between the shared API in `src/` and a runtime's
 * FFI. `ffi/deno.ts` and `ffi/bun.ts` implement it; nothing outside `ffi/`
 * sees a Deno or Bun type.
 *
 * @module
 */

import type { NativeType, SymbolDefinition } from "./symbols.ts";

declare const pointerBrand: unique symbol;

/**
 * An address in C memory, opaque to everything outside `ffi/`. NULL is always
 * `null`, never a Pointer.
 */
export type Pointer = { readonly [pointerBrand]: true };

type ArgumentOf<T extends NativeType> = T extends "i32" | "u32" | "usize" ? number
  : T extends "pointer" ? Pointer | null
  : T extends "buffer" ? Uint8Array | null
  : never;

type ResultOf<T extends NativeType> = T extends "i32" | "u32" | "usize" ? number
  : T extends "pointer" ? Pointer | null
  : void;

type ArgumentsOf<P extends readonly NativeType[]> = {
  -readonly [I in keyof P]: P[I] extends NativeType ? ArgumentOf<P[I]> : never;
};

/** The JavaScript signature of one {@linkcode SymbolDefinition}. */
export type FunctionOf<D extends SymbolDefinition> = (
  ...args: ArgumentsOf<D["parameters"]>
) => ResultOf<D["result"]>;

/** A table of definitions bound to callable functions; optional symbols may be `null`. */
export type Bound<S extends Record<string, SymbolDefinition>> = {
  readonly [K in keyof S]: S[K] extends { optional: true } ? FunctionOf<S[K]> | null
    : FunctionOf<S[K]>;
};

/** A JavaScript function made callable from C. */
export interface NativeCallback {
  /** The C function pointer, valid until {@linkcode NativeCallback.close}. */
  readonly pointer: Pointer;
  /** Frees the trampoline; C must never call {@linkcode NativeCallback.pointer} afterwards. */
  close(): void;
}

/** What a process started with {@linkcode NativeAdapter.scriptCommand} may do (Deno's permissions). */
export type ScriptPermission = "ffi" | "read" | "write" | "run" | "env" | "sys";

/** A command line: the executable and its arguments. */
export interface CommandLine {
  readonly command: string;
  readonly args: readonly string[];
}

/** What each runtime adapter provides. */
export interface NativeAdapter {
  /** Which runtime this is, for what the API must word differently (Deno's permission flags). */
  readonly runtime: "deno" | "bun";
  /**
   * The command that runs the module `script` (a file path or URL) in a new
   * process of this same runtime, granted `permissions` (Deno's flags; Bun
   * has no permissions), tuned for a small idle footprint.
   */
  scriptCommand(script: string, permissions: readonly ScriptPermission[]): CommandLine;
  /** Opens a shared library and binds `symbols`; throws if the library or a required symbol is missing. */
  open<S extends Record<string, SymbolDefinition>>(
    path: string,
    symbols: S,
  ): Bound<S> & { close(): void };
  /** Makes `fn` callable from C with the signature `definition`. */
  callback<D extends SymbolDefinition>(definition: D, fn: FunctionOf<D>): NativeCallback;
  /** Makes the C function at `pointer` callable from JavaScript. */
  functionAt<D extends SymbolDefinition>(pointer: Pointer, definition: D): FunctionOf<D>;

  /**
   * Reads the non-blocking descriptor `fd` on the runtime's event loop (no
   * thread waits in `read`): for a descriptor made through FFI, such as a
   * pseudo-terminal's master, which the runtime's own files cannot adopt. The
   * stream owns `fd` and closes it once it ends or is cancelled. End of file
   * and `EIO` (what a master reads once its last slave closed) close the
   * stream; any other error errors it.
   */
  readStream(fd: number): ReadableStream<Uint8Array>;

  /** Reads the pointer stored at `base + offset`. */
  readPointer(base: Pointer, offset: number): Pointer | null;
  /** Reads the C `int` stored at `base + offset`. */
  readI32(base: Pointer, offset: number): number;
  /** Decodes the NUL-terminated UTF-8 string at `base + offset`. */
  readCString(base: Pointer, offset?: number): string;
  /** A writable view aliasing `byteLength` bytes of C memory at `base + offset`. */
  view(base: Pointer, byteLength: number, offset?: number): Uint8Array;
  /** Stores `value` as a pointer at `base + offset` of C memory. */
  writePointer(base: Pointer, offset: number, value: Pointer | null): void;
  /** Stores `value` as a pointer at `offset` of a JavaScript buffer (a C struct built in JS memory). */
  writePointerInto(buffer: Uint8Array, offset: number, value: Pointer | null): void;
  /** Reads the pointer stored at `offset` of a JavaScript buffer (an out-parameter). */
  readPointerFrom(buffer: Uint8Array, offset: number): Pointer | null;
  /** The pointer whose numeric address is `address` (used to carry small ids through `void *`). */
  fromAddress(address: number): Pointer | null;
  /** The numeric address of `pointer` (NULL is 0). */
  addressOf(pointer: Pointer | null): number;
}
