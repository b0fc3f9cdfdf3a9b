/**
 * The native layer's entry: picks the adapter for the runtime this code is
 * running on, at load time, and re-exports the neutral symbol table.
 *
 * @module
 */

import type { NativeAdapter } from "./types.ts";

export type {
  Bound,
  CommandLine,
  FunctionOf,
  NativeAdapter,
  NativeCallback,
  Pointer,
  ScriptPermission,
} from "./types.ts";
export * from "./symbols.ts";
export * from "./layouts.ts";

async function loadAdapter(): Promise<NativeAdapter> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).adapter;
  if ("Bun" in globalThis) return (await import("./bun.ts")).adapter;
  throw new Error(
    "@seed/pam needs Deno or Bun: it binds libpam through their built-in FFI (Node.js has none)",
  );
}

/** The adapter for the current runtime. */
export const native: NativeAdapter = await loadAdapter();
