/**
 * Blocking reads and writes on a descriptor that may be non-blocking (one
 * shared with another process): partial writes, `EAGAIN` and `EINTR` retried.
 *
 * @module
 */

import { readSync, writeSync } from "node:fs";

const encoder = new TextEncoder();

/** Writes all of `text`, retrying partial writes, `EAGAIN` (a descriptor shared non-blocking) and `EINTR`. */
export function write(fd: number, text: string): void {
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(fd, bytes, done, bytes.length - done);
    } catch (error) {
      if (retryable(error)) {
        pause();
        continue;
      }
      throw error;
    }
  }
}

/** A non-blocking descriptor (shared with another process) that had nothing, or a signal. */
const retryable = (error: unknown): boolean => {
  const code = (error as { code?: string }).code;
  return code === "EAGAIN" || code === "EINTR";
};

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps 10 ms: the wait before retrying a descriptor that had nothing (`EAGAIN`). */
function pause(): void {
  Atomics.wait(sleeper, 0, 0, 10);
}

/** One `read(2)` of up to `into.length` bytes: the count, 0 at end of input, -1 on error. */
export function readInto(fd: number, into: Uint8Array): number {
  for (;;) {
    try {
      return readSync(fd, into, 0, into.length, null);
    } catch (error) {
      if ((error as { code?: string }).code === "EOF") return 0;
      if (retryable(error)) {
        pause();
        continue;
      }
      return -1;
    }
  }
}
