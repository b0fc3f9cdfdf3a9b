/**
 * Opens libpam and libc once per path and thread, so transactions share one
 * binding instead of paying `dlopen` each.
 *
 * @module
 */

import {
  type Bound,
  defaultLibraries,
  libcSymbols,
  native,
  pamSymbols,
  type Pointer,
} from "../ffi/mod.ts";

/** libpam's bound functions. */
export type PamLibrary = Bound<typeof pamSymbols>;
/** libc's bound functions. */
export type LibcLibrary = Bound<typeof libcSymbols>;

const pamByPath = new Map<string, PamLibrary>();
let libc: LibcLibrary | undefined;

/** libpam at `path` (default `libpam.so.0`), opened on first use. */
export function openPam(path: string = defaultLibraries.pam): PamLibrary {
  let lib = pamByPath.get(path);
  if (!lib) {
    try {
      lib = native.open(path, pamSymbols);
    } catch (error) {
      throw new Error(
        `cannot load the PAM library "${path}": install Linux-PAM (Debian: libpam0g) or pass ` +
          `the right file as the "library" option${permissionHint()}`,
        { cause: error },
      );
    }
    pamByPath.set(path, lib);
  }
  return lib;
}

/** libpam's own text for `code` (`pam_strerror`); `handle` may be NULL. */
export function strerrorText(
  pam: PamLibrary,
  code: number,
  handle: Pointer | null = null,
): string | undefined {
  const text = pam.pam_strerror(handle, code);
  return text ? native.readCString(text) : undefined;
}

/** libc, opened on first use. */
export function openLibc(): LibcLibrary {
  libc ??= native.open(defaultLibraries.libc, libcSymbols);
  return libc;
}

/** The `errno` the last failed libc call on this thread left. */
export function lastErrno(): number {
  const location = openLibc().__errno_location();
  return location ? native.readI32(location, 0) : 0;
}

/** libc's text for `errno` (default: the last one), with its number, for error messages. */
export function errnoText(errno: number = lastErrno()): string {
  const message = errno ? openLibc().strerror(errno) : null;
  return message ? `${native.readCString(message)} (errno ${errno})` : "unknown error";
}

function permissionHint(): string {
  return native.runtime === "deno" ? " (Deno needs --allow-ffi)" : "";
}
