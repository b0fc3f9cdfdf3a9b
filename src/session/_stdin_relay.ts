/**
 * The caller's own stdin, relayed to every session program spawned with
 * `stdin: "inherit"`: one reader for the process, however many programs
 * share it. Internal.
 *
 * It pulls one chunk at a time (`'readable'` and `read()`) and takes the next
 * only once every program's write of the last one has settled, so the
 * slowest program's window bounds what the caller holds. Pausing and resuming
 * a flowing stdin instead loses its `'end'` on Bun 1.4.5 now and then (the
 * program then never sees end of file), and one program's pause would stop
 * the others.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import process from "node:process";

/** Where one program's share of the caller's stdin goes. */
export interface StdinTarget {
  write(chunk: Uint8Array): Promise<void>;
  end(): void;
}

const targets = new Set<StdinTarget>();
let reading = false;
let busy = false;

/**
 * Relays the caller's stdin to `target` from now on; returns the function
 * that stops it (the program exited, or its session process died). A stdin
 * that has already ended ends the target's input at once.
 */
export function relayStdin(target: StdinTarget): () => void {
  if (process.stdin.readableEnded) {
    target.end();
    return () => {};
  }
  targets.add(target);
  startReading();
  return () => {
    if (!targets.delete(target)) return;
    if (targets.size === 0) stopReading();
  };
}

function startReading(): void {
  if (reading) return;
  reading = true;
  process.stdin.on("readable", pump);
  process.stdin.on("end", ended);
  // Data already buffered (a relay stopped while chunks waited) raises no new 'readable'.
  queueMicrotask(pump);
}

/** No program left to feed: the caller's stdin must not keep its process alive. */
function stopReading(): void {
  if (!reading) return;
  reading = false;
  process.stdin.off("readable", pump);
  process.stdin.off("end", ended);
  // Without a 'readable' listener the stream stops being non-flowing only on the next tick: a
  // pause() now emits no 'pause', and the runtime goes on reading (and holding the process).
  // Not when the caller reads its stdin itself: that is its own.
  process.nextTick(() => {
    if (!reading && process.stdin.listenerCount("data") === 0) process.stdin.pause();
  });
}

async function pump(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    while (reading && targets.size > 0) {
      const chunk = process.stdin.read() as Uint8Array | string | null;
      if (chunk === null) return;
      // The caller's setEncoding() must not change what the program reads: its bytes, back.
      const bytes = typeof chunk === "string"
        ? Buffer.from(chunk, process.stdin.readableEncoding ?? "utf8")
        : chunk;
      // A program that exited or failed rejects its write: the others still get the chunk.
      await Promise.allSettled([...targets].map((t) => t.write(bytes)));
    }
  } finally {
    busy = false;
  }
}

function ended(): void {
  for (const target of targets) target.end();
  targets.clear();
  stopReading();
}
