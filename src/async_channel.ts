/**
 * What the main thread and a PAM worker thread say to each other: the
 * request and reply messages (structured clone, never a secret) and the
 * `SharedArrayBuffer` the conversation's answers travel through (so answers
 * never go through structured clone, and are wiped once read).
 *
 * @module
 */

import type { PamMessage } from "./conversation.ts";

/** What a worker needs to call `pam_start` for the main thread. */
export interface StartRequest {
  readonly options: {
    service: string;
    user?: string;
    confdir?: string;
    library?: string;
    failDelay?: "native" | "report";
  };
  /** Whether the main side has a handler; without one, prompts fail the call in the worker. */
  readonly conversation: boolean;
  /** Lets the worker give up on its own when the main thread stops answering. */
  readonly conversationTimeoutMs?: number;
}

/** A request from the main thread to the worker that owns a handle. */
export type WorkerRequest =
  | ({ readonly id: number; readonly op: "start" } & StartRequest)
  | { readonly id: number; readonly op: "call"; readonly method: string; readonly args: unknown[] }
  | ({
    readonly id: number;
    /** start + set items + authenticate + acctMgmt + read PAM_USER + end, in one trip. */
    readonly op: "oneShot";
    readonly items: Readonly<Record<string, string>>;
    readonly flags: { disallowNullAuthtok?: boolean };
    /**
     * The password is already in the shared buffer: the worker answers
     * echo-off prompts itself instead of asking the main thread each time.
     */
    readonly preloadedPassword: boolean;
  } & StartRequest)
  | { readonly id: number; readonly op: "end"; readonly silent?: boolean };

/** An error, flattened for the trip back to the main thread. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** For a `PamError`: everything needed to rebuild it. */
  readonly pam?: {
    readonly code: number;
    readonly operation: string;
    readonly messages: readonly PamMessage[];
    readonly failDelayMs: number | undefined;
  };
  /** The cause: the main side's own handler failure, or a worker-side error. */
  readonly cause?: "main" | { readonly name: string; readonly message: string };
}

/** A message from a worker to the main thread. */
export type WorkerReply =
  | { readonly type: "result"; readonly id: number; readonly value: unknown }
  | { readonly type: "error"; readonly id: number; readonly error: SerializedError }
  | { readonly type: "converse"; readonly seq: number; readonly messages: readonly PamMessage[] };

// Layout of the shared buffer, one per worker (a worker converses for one call at a time).
// Int32 0: the state word, seq * 4 + phase. Both sides move it with compareExchange, so a
// late answer can never land in a later conversation.
// Int32 1: number of answers. Int32 2..33: each answer's byte length, -1 for none.
// Bytes from DATA_OFFSET: the answers' bytes, back to back, zeroed by the worker once read.

/** The state word's index. */
export const STATE = 0;
const COUNT = 1;
const LENGTHS = 2;
/** The most messages libpam sends in one call (`PAM_MAX_NUM_MSG`). */
const MAX_ANSWERS = 32;
const DATA_OFFSET = 256;
/** Room for answers: Linux-PAM caps one answer at 512 bytes (`PAM_MAX_RESP_SIZE`). */
export const ANSWER_CAPACITY = 64 * 1024;
/** The size of the shared buffer each worker gets. */
export const CHANNEL_BYTES = DATA_OFFSET + ANSWER_CAPACITY;

/** The worker waits for the main thread's answer. */
export const WAITING = 0;
/** The main thread has claimed this conversation and is copying answers in. */
export const WRITING = 1;
/** The answers are in place. */
export const ANSWERED = 2;
/** The conversation failed: the main side's handler failed, or the worker gave up waiting. */
export const FAILED = 3;

/** The state word for `seq` in `phase`; seq wraps well before the sign bit. */
export const stateWord = (seq: number, phase: number): number => ((seq & 0x0fffffff) << 2) | phase;

const encoder = new TextEncoder();

/**
 * Copies validated answers into the shared buffer. Throws a RangeError when
 * they do not fit; then nothing usable is left behind (the bytes are wiped).
 */
export function writeAnswers(
  buffer: SharedArrayBuffer,
  answers: readonly (string | Uint8Array | null | undefined)[],
): void {
  const words = new Int32Array(buffer, 0, DATA_OFFSET / 4);
  const data = new Uint8Array(buffer, DATA_OFFSET, ANSWER_CAPACITY);
  let offset = 0;
  try {
    words[COUNT] = answers.length;
    for (let i = 0; i < answers.length; i++) {
      const answer = answers[i];
      if (answer === null || answer === undefined) {
        words[LENGTHS + i] = -1;
        continue;
      }
      let length: number;
      if (typeof answer === "string") {
        // Encoded straight into shared memory: no JavaScript copy of the secret to wipe.
        const { read, written } = encoder.encodeInto(answer, data.subarray(offset));
        if (read < answer.length) throw tooLarge();
        length = written;
      } else {
        if (answer.byteLength > ANSWER_CAPACITY - offset) throw tooLarge();
        data.set(answer, offset);
        length = answer.byteLength;
      }
      words[LENGTHS + i] = length;
      offset += length;
    }
  } catch (error) {
    data.fill(0);
    throw error;
  }
}

function tooLarge(): RangeError {
  return new RangeError(
    `the conversation's answers exceed ${ANSWER_CAPACITY} bytes (libpam takes at most 512 per answer)`,
  );
}

/**
 * Reads the answers out of the shared buffer as byte arrays (the trampoline
 * copies and zeroes them) and wipes the shared bytes.
 */
export function readAnswers(buffer: SharedArrayBuffer): (Uint8Array | null)[] {
  const words = new Int32Array(buffer, 0, DATA_OFFSET / 4);
  const data = new Uint8Array(buffer, DATA_OFFSET, ANSWER_CAPACITY);
  const count = Math.min(words[COUNT], MAX_ANSWERS);
  const out: (Uint8Array | null)[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const length = words[LENGTHS + i];
    if (length < 0) {
      out.push(null);
      continue;
    }
    out.push(data.slice(offset, offset + length));
    offset += length;
  }
  data.fill(0, 0, offset);
  return out;
}

/** Zeroes the whole answer area (when a worker dies before reading its answers). */
export function wipeChannel(buffer: SharedArrayBuffer): void {
  new Uint8Array(buffer, DATA_OFFSET, ANSWER_CAPACITY).fill(0);
}

/** The most answers one conversation call can carry. */
export const maxAnswers: number = MAX_ANSWERS;
