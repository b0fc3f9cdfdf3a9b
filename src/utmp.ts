/**
 * utmp and wtmp records through glibc's `utmpx` functions, bound with the
 * same FFI adapters as libpam: the login entry (`USER_PROCESS`) and the exit
 * entry (`DEAD_PROCESS`) that `who` and `last` read.
 *
 * @module
 */

import { closeSync, openSync, statSync } from "node:fs";
import process from "node:process";
import { native } from "../ffi/mod.ts";
import { errnoText, openLibc } from "./library.ts";
import { cString, describe } from "./validate.ts";

/**
 * glibc's `struct utmpx` on x86_64 (`<bits/utmpx.h>`): 384 bytes, `ut_tv` as
 * two 32-bit fields so 32- and 64-bit programs share the files.
 * `test/utmp.test.ts` compiles a C program against the header and compares.
 */
export const utmpxLayout = {
  size: 384,
  type: { offset: 0, size: 2 },
  pid: { offset: 4, size: 4 },
  line: { offset: 8, size: 32 },
  id: { offset: 40, size: 4 },
  user: { offset: 44, size: 32 },
  host: { offset: 76, size: 256 },
  exit: { offset: 332, size: 4 },
  session: { offset: 336, size: 4 },
  tvSec: { offset: 340, size: 4 },
  tvUsec: { offset: 344, size: 4 },
  addrV6: { offset: 348, size: 16 },
} as const;

/** `ut_type` values from `<utmpx.h>`. */
export const UtmpType = {
  EMPTY: 0,
  RUN_LVL: 1,
  BOOT_TIME: 2,
  NEW_TIME: 3,
  OLD_TIME: 4,
  INIT_PROCESS: 5,
  LOGIN_PROCESS: 6,
  USER_PROCESS: 7,
  DEAD_PROCESS: 8,
} as const;

/** glibc's `_PATH_UTMP`. */
export const systemUtmpFile = "/var/run/utmp";
/** glibc's `_PATH_WTMP`. */
export const systemWtmpFile = "/var/log/wtmp";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Encoded once: withUtmpFile points libc back at it after every use.
const systemUtmpName = encoder.encode(systemUtmpFile + "\0");

/** One `struct utmpx`, decoded. */
export interface UtmpxEntry {
  /** A {@linkcode UtmpType} value. */
  type: number;
  pid: number;
  /** The device without `/dev/`, such as `"pts/3"`. */
  line: string;
  /** The short id (at most 4 bytes) that links entries of one line. */
  id: string;
  user: string;
  host: string;
  /** Milliseconds since the epoch (microsecond precision in the file). */
  timeMs: number;
  /** `ut_addr_v6`: 16 bytes, IPv4 in the first 4, network byte order. */
  address?: Uint8Array | undefined;
  session?: number;
}

/** Throws unless this platform's `struct utmpx` is the one {@linkcode utmpxLayout} describes. */
export function checkPlatform(): void {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(
      `utmp records are laid out for glibc on x86_64, not ${process.platform}/${process.arch}; ` +
        "pass utmp: false to log in without them",
    );
  }
}

/** Encodes `value` into at most `size` bytes, cutting only between characters. */
function fixed(value: string, size: number): Uint8Array {
  const bytes = encoder.encode(value);
  if (bytes.length <= size) return bytes;
  let end = size;
  // Back up over UTF-8 continuation bytes so no character is split.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** Encodes one entry as glibc's 384-byte `struct utmpx`. */
export function encodeUtmpx(entry: UtmpxEntry): Uint8Array {
  const L = utmpxLayout;
  const bytes = new Uint8Array(L.size);
  const view = new DataView(bytes.buffer);
  view.setInt16(L.type.offset, entry.type, true);
  view.setInt32(L.pid.offset, entry.pid, true);
  bytes.set(fixed(entry.line, L.line.size), L.line.offset);
  bytes.set(fixed(entry.id, L.id.size), L.id.offset);
  bytes.set(fixed(entry.user, L.user.size), L.user.offset);
  bytes.set(fixed(entry.host, L.host.size), L.host.offset);
  view.setInt32(L.session.offset, entry.session ?? 0, true);
  const seconds = Math.floor(entry.timeMs / 1000);
  view.setInt32(L.tvSec.offset, seconds, true);
  view.setInt32(L.tvUsec.offset, Math.round((entry.timeMs - seconds * 1000) * 1000), true);
  if (entry.address) bytes.set(entry.address.subarray(0, 16), L.addrV6.offset);
  return bytes;
}

function text(bytes: Uint8Array, field: { offset: number; size: number }): string {
  const raw = bytes.subarray(field.offset, field.offset + field.size);
  const nul = raw.indexOf(0);
  return decoder.decode(nul === -1 ? raw : raw.subarray(0, nul));
}

/** Decodes the `struct utmpx` at `offset` of `bytes`. */
export function decodeUtmpx(bytes: Uint8Array, offset = 0): UtmpxEntry {
  const L = utmpxLayout;
  const record = bytes.subarray(offset, offset + L.size);
  const view = new DataView(record.buffer, record.byteOffset, L.size);
  return {
    type: view.getInt16(L.type.offset, true),
    pid: view.getInt32(L.pid.offset, true),
    line: text(record, L.line),
    id: text(record, L.id),
    user: text(record, L.user),
    host: text(record, L.host),
    session: view.getInt32(L.session.offset, true),
    timeMs: view.getInt32(L.tvSec.offset, true) * 1000 +
      view.getInt32(L.tvUsec.offset, true) / 1000,
    address: record.slice(L.addrV6.offset, L.addrV6.offset + L.addrV6.size),
  };
}

/**
 * The utmp line for a PAM tty: the device path without `/dev/` (`"pts/3"`),
 * or the tty as given when it is not a path (`":0"`).
 */
export function lineOfTty(tty: string): string {
  return tty.startsWith("/dev/") ? tty.slice(5) : tty;
}

/** login(1)'s id for a line: its last four bytes (`"pts/3"` → `"ts/3"`). */
export function idOfLine(line: string): string {
  const bytes = encoder.encode(line);
  let start = Math.max(0, bytes.length - utmpxLayout.id.size);
  // Step past UTF-8 continuation bytes so no character is split.
  while (start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
  return decoder.decode(bytes.subarray(start));
}

/** `ut_addr_v6` for a host given as an IPv4 or IPv6 literal; `undefined` for a name. */
export function addressOfHost(host: string): Uint8Array | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    if (octets.some((n) => n > 255)) return undefined;
    const out = new Uint8Array(16);
    out.set(octets);
    return out;
  }
  return parseIpv6(host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host);
}

function parseIpv6(host: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(":")) return undefined;
  const halves = host.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = addressOfHost(piece);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((word, i) => {
    out[i * 2] = word >> 8;
    out[i * 2 + 1] = word & 0xff;
  });
  return out;
}

/** Throws unless `file` is a non-empty path with no NUL byte. */
export function checkFilePath(file: unknown, what: string): asserts file is string {
  if (typeof file !== "string" || file === "" || file.includes("\0")) {
    throw new TypeError(`${what} must be a non-empty file path, got ${describe(file)}`);
  }
}

/**
 * Checks before any PAM call that `file` can be written, creating it (empty,
 * mode 0644) when `create` is set, so a wrong path or missing root fails
 * early with a clear message instead of after the session opened.
 */
export function ensureWritable(file: string, what: string, create: boolean): void {
  checkFilePath(file, what);
  let fd: number;
  try {
    fd = openSync(file, create ? "a+" : "r+", 0o644);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "EACCES" || code === "EPERM"
      ? "permission denied (the system files are writable by root only)"
      : code === "ENOENT"
      ? "it does not exist"
      : (error as Error).message;
    throw new Error(
      `Cannot write the ${what} "${file}": ${why}. Pass utmp: { utmpFile, wtmpFile } to use ` +
        "other files, or utmp: false to log in without utmp/wtmp records",
      { cause: error },
    );
  }
  closeSync(fd);
}

function clearErrno(): void {
  const location = openLibc().__errno_location();
  if (location) native.view(location, 4).fill(0);
}

/**
 * Runs `fn` with libc's utmp database pointed at `file`, and points it back
 * at the system file afterwards: `utmpxname` is process-wide state.
 */
function withUtmpFile<T>(file: string, fn: () => T): T {
  const libc = openLibc();
  const name = cString(file, "the utmp file name");
  if (libc.utmpxname(name) !== 0) {
    throw new Error(`utmpxname refused "${file}": ${errnoText()}`);
  }
  try {
    libc.setutxent();
    return fn();
  } finally {
    libc.endutxent();
    libc.utmpxname(systemUtmpName);
  }
}

/** Writes `entry` into the utmp file (`pututxline`), replacing the entry with the same id. */
export function putUtmpx(file: string, entry: UtmpxEntry): void {
  checkPlatform();
  withUtmpFile(file, () => {
    clearErrno();
    if (!openLibc().pututxline(encodeUtmpx(entry))) {
      throw new Error(`pututxline could not write the utmp file "${file}": ${errnoText()}`);
    }
  });
}

/**
 * Marks the login entry with `entry.id` dead (`DEAD_PROCESS`, user and host
 * cleared, time now), as `logout(3)` does, but only while it is still the
 * entry of `entry.pid` and `entry.line`: a later login on the same line keeps
 * its entry. Returns whether an entry was cleared.
 */
export function clearUtmpx(file: string, entry: UtmpxEntry): boolean {
  checkPlatform();
  const L = utmpxLayout;
  return withUtmpFile(file, () => {
    const libc = openLibc();
    const key = encodeUtmpx({ ...entry, type: UtmpType.USER_PROCESS });
    const found = libc.getutxid(key);
    if (!found) return false;
    const current = decodeUtmpx(native.view(found, L.size).slice());
    if (
      current.type !== UtmpType.USER_PROCESS || current.pid !== entry.pid ||
      current.line !== entry.line
    ) {
      return false;
    }
    clearErrno();
    const dead = { ...entry, type: UtmpType.DEAD_PROCESS, user: "", host: "", address: undefined };
    if (!libc.pututxline(encodeUtmpx(dead))) {
      throw new Error(`pututxline could not clear the utmp entry in "${file}": ${errnoText()}`);
    }
    return true;
  });
}

/** Appends `entry` to the wtmp file (`updwtmpx`), checking that it grew: `updwtmpx` returns nothing. */
export function appendWtmpx(file: string, entry: UtmpxEntry): void {
  checkPlatform();
  const before = statSync(file).size;
  openLibc().updwtmpx(cString(file, "the wtmp file name"), encodeUtmpx(entry));
  // glibc first cuts a torn trailing record off, then appends one whole record.
  const expected = before - (before % utmpxLayout.size) + utmpxLayout.size;
  if (statSync(file).size < expected) {
    throw new Error(`updwtmpx could not append to the wtmp file "${file}"`);
  }
}

/** Every record of a utmp or wtmp file, read directly (for tests and tools). */
export function readUtmpxFile(bytes: Uint8Array): UtmpxEntry[] {
  const out: UtmpxEntry[] = [];
  for (let at = 0; at + utmpxLayout.size <= bytes.length; at += utmpxLayout.size) {
    out.push(decodeUtmpx(bytes, at));
  }
  return out;
}
