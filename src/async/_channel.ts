/**
 * What the main thread and a PAM worker thread say to each other, and the
 * `SharedArrayBuffer` it travels through: requests and replies as JSON in a
 * message area, handed over with `Atomics.notify` (no wake-up at all while
 * the worker still polls, and a cheaper one than `postMessage`'s when it
 * sleeps; measured in docs/bench.md, "Figures behind the code"), and
 * the conversation's answers as UTF-8 bytes in an answer area. Both areas
 * are wiped once read.
 *
 * @module
 */

import { MAX_NUM_MSG } from "../constants.ts";
import type { PamMessage } from "../conversation.ts";
import type { TransactionMethod } from "./_methods.ts";

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
  readonly conversationTimeoutMs?: number | undefined;
}

/** A request from the main thread to the worker that owns a handle (its id is in {@linkcode REQUEST}). */
export type WorkerRequest =
  | ({ readonly op: "start" } & StartRequest)
  | { readonly op: "call"; readonly method: TransactionMethod; readonly args: unknown[] }
  | ({
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
  | { readonly op: "end"; readonly silent?: boolean | undefined };

/** An error, flattened for the trip back to the main thread (`src/_error_wire.ts`). */
export type { SerializedError } from "../_error_wire.ts";
import type { SerializedError } from "../_error_wire.ts";

/** A worker's reply to request `id`, through the message area. */
export type WorkerReply =
  | { readonly type: "result"; readonly id: number; readonly value: unknown }
  | { readonly type: "error"; readonly id: number; readonly error: SerializedError };

/**
 * The one message that still goes by `postMessage`: the worker's conversation
 * asks the main thread for answers, in the middle of request `id` (a request
 * that is no longer in flight when this arrives is dropped).
 */
export interface ConverseMessage {
  readonly type: "converse";
  readonly id: number;
  readonly seq: number;
  readonly messages: readonly PamMessage[];
}

/** The worker's first message: it runs and serves requests from now on. */
export interface ReadyMessage {
  readonly type: "ready";
}

// Layout of the shared buffer, one per worker (a worker converses for one call at a time).
// Int32 0: the state word, seq * 4 + phase. Both sides move it with compareExchange, so a
// late answer can never land in a later conversation.
// Int32 1: number of answers. Int32 2..33: each answer's byte length, -1 for none.
// Bytes from DATA_OFFSET: the answers' bytes, back to back, zeroed by the worker once read.
// Int32 REQUEST: the id of the latest request; the worker Atomics.waits on it between requests.
// Int32 REPLY: the id of the latest request answered; the main thread Atomics.waitAsyncs on it.
// Int32 LENGTH: the byte length of what is in the message area now (a request, then its reply).
// Int32 ASLEEP: 1 while the worker sleeps in Atomics.wait on REQUEST, else 0.
// Int32 THREAD_ID: the worker's OS thread id, 0 until it has started.
// Bytes from MESSAGE_OFFSET: one request or reply as UTF-8 JSON, zeroed by its reader.

/** The state word's index. */
export const STATE = 0;
const COUNT = 1;
const LENGTHS = 2;
const MAX_ANSWERS = MAX_NUM_MSG;
const DATA_OFFSET = 256;
/** Room for answers: Linux-PAM caps one answer at 512 bytes (`PAM_MAX_RESP_SIZE`). */
const ANSWER_CAPACITY = 64 * 1024;
/** The word the main thread bumps to hand the worker a request. */
export const REQUEST = 40;
/** The word the worker sets to a request's id once its reply is in place. */
export const REPLY = 41;
const LENGTH = 42;
/**
 * The word the worker sets while it sleeps on {@linkcode REQUEST}: the main
 * thread wakes it only then. A wake-up is a system call that costs the main
 * thread CPU time (docs/bench.md, "Figures behind the code"), and a worker still polling needs none.
 */
export const ASLEEP = 43;
/**
 * The word where the worker puts its OS thread id (`gettid`) when it starts:
 * the pool checks that the thread still exists while a request is in
 * flight, because a module may end it (`pthread_exit`) without the runtime
 * ever reporting the worker's exit.
 */
export const THREAD_ID = 44;
const MESSAGE_OFFSET = DATA_OFFSET + ANSWER_CAPACITY;
/**
 * Room for one request or reply. Pages never written cost no memory, so this
 * is generous: item values and environment lists are far smaller.
 */
const MESSAGE_CAPACITY = 1024 * 1024;
/** The size of the shared buffer each worker gets. */
export const CHANNEL_BYTES = MESSAGE_OFFSET + MESSAGE_CAPACITY;

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

interface Views {
  words: Int32Array;
  answers: Uint8Array;
  message: Uint8Array;
}

// The views of each channel, made once: both sides read and write the same areas on
// every request, reply and conversation.
const viewsByBuffer = new WeakMap<SharedArrayBuffer, Views>();

function viewsOf(buffer: SharedArrayBuffer): Views {
  let views = viewsByBuffer.get(buffer);
  if (!views) {
    views = {
      words: new Int32Array(buffer, 0, DATA_OFFSET / 4),
      answers: new Uint8Array(buffer, DATA_OFFSET, ANSWER_CAPACITY),
      message: new Uint8Array(buffer, MESSAGE_OFFSET, MESSAGE_CAPACITY),
    };
    viewsByBuffer.set(buffer, views);
  }
  return views;
}

/**
 * Copies validated answers into the shared buffer. Throws a RangeError when
 * they do not fit; then nothing usable is left behind (the bytes are wiped).
 */
export function writeAnswers(
  buffer: SharedArrayBuffer,
  answers: readonly (string | Uint8Array | null | undefined)[],
): void {
  const { words, answers: data } = viewsOf(buffer);
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
  const { words, answers: data } = viewsOf(buffer);
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

/** Zeroes the answer area (answers put there for a request that was never sent). */
export function wipeAnswers(buffer: SharedArrayBuffer): void {
  viewsOf(buffer).answers.fill(0);
}

/** Zeroes the answer and message areas (when a worker dies before reading them). */
export function wipeChannel(buffer: SharedArrayBuffer): void {
  const { answers, message } = viewsOf(buffer);
  answers.fill(0);
  message.fill(0);
}

// JSON has no byte arrays (X authentication data, binary prompts) and turns `undefined`
// in argument lists into null, which the synchronous API would reject: tag both.
const BYTES = "\u0000bytes";
const UNDEFINED = "\u0000undefined";

function tag(this: unknown, _key: string, value: unknown): unknown {
  if (value === undefined) return Array.isArray(this) ? { [UNDEFINED]: 1 } : undefined;
  if (value instanceof Uint8Array) return { [BYTES]: Array.from(value) };
  return value;
}

function untag(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  if (Object.hasOwn(value, BYTES)) {
    return Uint8Array.from((value as Record<string, number[]>)[BYTES]);
  }
  if (Object.hasOwn(value, UNDEFINED)) return undefined;
  return value;
}

/**
 * Writes one request or reply into the message area and returns nothing
 * until it is all there; the caller then publishes it with
 * {@linkcode REQUEST} or {@linkcode REPLY}. Throws a RangeError, leaving
 * nothing behind, when it does not fit.
 */
export function writeMessage(buffer: SharedArrayBuffer, message: unknown, plain = false): void {
  // `plain`: the caller knows there is nothing to tag (strings, numbers, booleans, objects of
  // them): a replacer takes JSON.stringify off its fast path, for every one-shot's two trips.
  const json = plain ? JSON.stringify(message) : JSON.stringify(message, tag);
  const { words, message: area } = viewsOf(buffer);
  const { read, written } = encoder.encodeInto(json, area);
  if (read < json.length) {
    area.fill(0, 0, written);
    throw new RangeError(
      `a PAM worker request or reply exceeds ${MESSAGE_CAPACITY} bytes of JSON`,
    );
  }
  words[LENGTH] = written;
}

const decoder = new TextDecoder();
let scratch = new Uint8Array(4096);

/** Reads the request or reply in the message area and wipes it there. */
export function readMessage(buffer: SharedArrayBuffer): unknown {
  const { words, message } = viewsOf(buffer);
  const area = message.subarray(0, words[LENGTH]);
  // TextDecoder refuses views of shared memory: decode a private copy (a scratch buffer
  // reused from call to call), then wipe both.
  if (scratch.length < area.length) {
    scratch = new Uint8Array(Math.max(area.length, scratch.length * 2));
  }
  const bytes = scratch.subarray(0, area.length);
  bytes.set(area);
  area.fill(0);
  const json = decoder.decode(bytes);
  bytes.fill(0);
  // JSON spells the tags' NUL as an escape; without one, parse without the (slower) reviver.
  return json.includes("\\u0000") ? JSON.parse(json, untag) : JSON.parse(json);
}
