/**
 * C strings a module or libpam hands over, read with a bound: a string
 * without its NUL, or a runaway one, is refused instead of read past its
 * end.
 *
 * @module
 */

import { native, type Pointer } from "../ffi/mod.ts";
import { openLibc } from "./_library.ts";

/** The longest conversation message text read (a module's motd or notice fits easily). */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** The longest item, environment entry or name read back from libpam. */
export const MAX_ITEM_BYTES = 1024 * 1024;

/**
 * The C string at `pointer`, of at most `max` bytes before its NUL.
 *
 * @throws {RangeError} When no NUL comes within `max` bytes; `what` names the string.
 */
export function readBoundedCString(pointer: Pointer, max: number, what: string): string {
  const length = Number(openLibc().strnlen(pointer, max + 1));
  if (length > max) throw new RangeError(`${what} is longer than ${max} bytes`);
  return native.readCString(pointer);
}
