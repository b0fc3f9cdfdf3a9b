/**
 * utmp and wtmp records through glibc's `utmpx` functions, bound with the
 * same FFI adapters as libpam: the login entry (`USER_PROCESS`) and the exit
 * entry (`DEAD_PROCESS`) that `who` and `last` read.
 *
 * @module
 */

import { closeSync, constants, fstatSync, lstatSync, openSync, type Stats } from "node:fs";
import process from "node:process";
import { native, UtmpType, utmpxLayout } from "../../ffi/mod.ts";
import { errnoText, openLibc } from "../_library.ts";
import { cString, describe } from "../_validate.ts";

// The layout lives with the other C layouts, checked against <utmpx.h> there.
export { UtmpType, utmpxLayout };

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

/** What a file that is not a regular one is, for the message. */
function kindOf(stats: Stats): string {
  if (stats.isSymbolicLink()) return "a symbolic link (not followed)";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

function cannotWrite(file: string, what: string, why: string, cause?: unknown): Error {
  return new Error(
    `cannot write the ${what} "${file}": ${why}. Pass utmp: { utmpFile, wtmpFile } to use ` +
      "other files, or utmp: false to log in without utmp/wtmp records",
    cause === undefined ? undefined : { cause },
  );
}

// O_NONBLOCK: opening a FIFO or a device cannot wait; O_NOCTTY: a terminal never becomes ours.
const openFlags = constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK |
  constants.O_NOCTTY;

/**
 * Opens `file` read-write for utmp records, and returns the descriptor only
 * if it is a regular file, reached without following a symbolic link in its
 * last component, whose size is a whole number of records: never a FIFO or a
 * device (which would block or swallow the writes), never a text file (which
 * glibc would cut to a multiple of 384 bytes before appending). Created
 * (empty, mode 0644) when missing and `create` is set. Throws an `Error`
 * naming the file, what is wrong, and the way out; nothing is written.
 */
export function openUtmpFile(file: string, what: string, create: boolean): number {
  checkFilePath(file, what);
  let before: Stats | undefined;
  try {
    before = lstatSync(file);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT" || !create) {
      throw cannotWrite(file, what, reason(error), error);
    }
  }
  // Refused before it is opened: opening a device can have effects of its own.
  if (before && !before.isFile()) throw cannotWrite(file, what, `it is ${kindOf(before)}`);
  let fd: number;
  try {
    fd = openSync(file, openFlags | (create ? constants.O_CREAT : 0), 0o644);
  } catch (error) {
    throw cannotWrite(file, what, reason(error), error);
  }
  try {
    const stats = fstatSync(fd);
    // Checked again on what was opened: the path may have been swapped in between.
    if (!stats.isFile()) throw cannotWrite(file, what, `it is ${kindOf(stats)}`);
    if (before && (stats.ino !== before.ino || stats.dev !== before.dev)) {
      throw cannotWrite(file, what, "it was replaced while being opened");
    }
    if (stats.size % utmpxLayout.size !== 0) {
      throw cannotWrite(
        file,
        what,
        `its size (${stats.size} bytes) is not a whole number of ${utmpxLayout.size}-byte ` +
          "utmp records, so it is not a utmp file",
      );
    }
    return fd;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

function reason(error: unknown): string {
  const code = (error as { code?: string }).code;
  return code === "EACCES" || code === "EPERM"
    ? "permission denied (the system files are writable by root only)"
    : code === "ENOENT"
    ? "it does not exist"
    : code === "ELOOP"
    ? "it is a symbolic link (not followed)"
    : (error as Error).message;
}

/**
 * Checks before any PAM call that `file` can be written as {@linkcode openUtmpFile}
 * requires, creating it when `create` is set, so a wrong path, a file that is
 * no utmp file or missing root fails early with a clear message instead of
 * after the session opened.
 */
export function ensureWritable(file: string, what: string, create: boolean): void {
  closeSync(openUtmpFile(file, what, create));
}

/**
 * Runs `fn` with the checked descriptor of `file` as a path glibc opens:
 * `/proc/self/fd/N` is the very file that was checked, whatever the path
 * names by then.
 */
function withCheckedFile<T>(
  file: string,
  what: string,
  fn: (path: string, fd: number) => T,
): T {
  const fd = openUtmpFile(file, what, false);
  try {
    return fn(`/proc/self/fd/${fd}`, fd);
  } finally {
    closeSync(fd);
  }
}

function clearErrno(): void {
  const location = openLibc().__errno_location();
  if (location) native.view(location, 4).fill(0);
}

/**
 * Runs `fn` with libc's utmp database pointed at `file` (checked, by its
 * descriptor), and points it back at the system file afterwards: `utmpxname`
 * is process-wide state.
 */
function withUtmpFile<T>(file: string, fn: () => T): T {
  return withCheckedFile(file, "utmp file", (path) => {
    const libc = openLibc();
    if (libc.utmpxname(cString(path, "the utmp file name")) !== 0) {
      throw new Error(`utmpxname refused "${file}": ${errnoText()}`);
    }
    try {
      libc.setutxent();
      return fn();
    } finally {
      libc.endutxent();
      libc.utmpxname(systemUtmpName);
    }
  });
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

/** How {@linkcode clearUtmpx} marks the entry dead. */
export interface LogoutOptions {
  /** The logout time (default: now). */
  timeMs?: number;
  /** Also append the logout record here, only when the entry was the login's. */
  wtmpFile?: string;
}

/**
 * Marks the utmp entry of `login` dead (`DEAD_PROCESS`, user and host
 * cleared), as `logout(3)` does, but only while it is still that login's
 * entry: the same id, line, pid, user and login time. A later login on the
 * same line (even from a process with the same pid) keeps its entry, and no
 * wtmp logout record is written for it. With `wtmpFile`, the logout record
 * goes there first (the order `pam_open_session(3)` asks for); both files are
 * checked before either is written. Returns whether the entry was ours.
 */
export function clearUtmpx(file: string, login: UtmpxEntry, options: LogoutOptions = {}): boolean {
  checkPlatform();
  const L = utmpxLayout;
  const dead: UtmpxEntry = {
    type: UtmpType.DEAD_PROCESS,
    pid: login.pid,
    line: login.line,
    id: login.id,
    user: "",
    host: "",
    timeMs: options.timeMs ?? Date.now(),
  };
  // The key getutxid searches by (glibc only reads it), and the entry as the file would hold it:
  // fields cut to their sizes, the time to microseconds.
  const key = encodeUtmpx({ ...login, type: UtmpType.USER_PROCESS });
  const want = decodeUtmpx(key);
  const clear = (logWtmp: (entry: UtmpxEntry) => void) =>
    withUtmpFile(file, () => {
      const libc = openLibc();
      const found = libc.getutxid(key);
      if (!found) return false;
      const current = decodeUtmpx(native.view(found, L.size).slice());
      if (
        current.type !== UtmpType.USER_PROCESS || current.pid !== want.pid ||
        current.line !== want.line || current.user !== want.user ||
        current.timeMs !== want.timeMs
      ) {
        return false;
      }
      logWtmp(dead);
      clearErrno();
      if (!libc.pututxline(encodeUtmpx(dead))) {
        throw new Error(`pututxline could not clear the utmp entry in "${file}": ${errnoText()}`);
      }
      return true;
    });
  const wtmp = options.wtmpFile;
  if (wtmp === undefined) return clear(() => {});
  return withCheckedFile(wtmp, "wtmp file", (path, fd) => clear((e) => append(wtmp, path, fd, e)));
}

/**
 * Appends `entry` to the wtmp file (`updwtmpx`), checked first as
 * {@linkcode openUtmpFile} says, and checking that it grew: `updwtmpx`
 * returns nothing.
 */
export function appendWtmpx(file: string, entry: UtmpxEntry): void {
  checkPlatform();
  withCheckedFile(file, "wtmp file", (path, fd) => append(file, path, fd, entry));
}

function append(file: string, path: string, fd: number, entry: UtmpxEntry): void {
  const before = fstatSync(fd).size;
  openLibc().updwtmpx(cString(path, "the wtmp file name"), encodeUtmpx(entry));
  if (fstatSync(fd).size < before + utmpxLayout.size) {
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

/**
 * The utmp calls a session makes, synchronous where it runs them directly
 * (the session process) or promises where another thread runs them.
 */
export interface UtmpCalls {
  ensureWritable(file: string, what: string, create: boolean): void | Promise<void>;
  putUtmpx(file: string, entry: UtmpxEntry): void | Promise<void>;
  appendWtmpx(file: string, entry: UtmpxEntry): void | Promise<void>;
  clearUtmpx(file: string, login: UtmpxEntry, options?: LogoutOptions): boolean | Promise<boolean>;
}

/** The calls, made right here. */
export const utmpCalls = { ensureWritable, putUtmpx, appendWtmpx, clearUtmpx } as const;

/** One call for another thread to make: its name and arguments. */
export type UtmpRequest = {
  [K in keyof typeof utmpCalls]: { op: K; args: Parameters<(typeof utmpCalls)[K]> };
}[keyof typeof utmpCalls];
