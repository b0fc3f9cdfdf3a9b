/**
 * What a conversation handler returns, made safe to use: sizes checked,
 * every answer read exactly once into a plain snapshot, byte answers wiped.
 * Shared by the trampoline, the async API's main side and the session
 * process's client.
 *
 * @module
 */

import { MAX_ANSWER_BYTES, MAX_NUM_MSG, MessageStyle } from "./constants.ts";
import type { PamAnswer } from "./conversation.ts";

// The realm's own typed-array accessors, captured once: an answer's own or inherited
// `byteLength`, `fill` or `Symbol.toStringTag` may be getters that lie.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
const tagOf = Object.getOwnPropertyDescriptor(typedArrayPrototype, Symbol.toStringTag)!
  .get! as (this: unknown) => string | undefined;
const byteLengthOf = Object.getOwnPropertyDescriptor(typedArrayPrototype, "byteLength")!
  .get! as (this: Uint8Array) => number;
const fillBytes = Uint8Array.prototype.fill;
const setBytes = Uint8Array.prototype.set;

/** Whether `value` really is a `Uint8Array` (or subclass), by its internal slot. */
const isBytes = (value: unknown): value is Uint8Array =>
  typeof value === "object" && value !== null && tagOf.call(value) === "Uint8Array";

/** UTF-8 length of `text`, as `TextEncoder` encodes it (a lone surrogate becomes U+FFFD). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * A string answer's UTF-8 length, or `Infinity` for one of more code units
 * than bytes allowed (which cannot fit: a huge one is not walked).
 */
function answerBytes(text: string): number {
  return text.length > MAX_ANSWER_BYTES ? Infinity : utf8Length(text);
}

/**
 * Throws a `RangeError` when an answer given up front (a one-shot password,
 * {@linkcode passwordConversation}) exceeds {@linkcode MAX_ANSWER_BYTES}.
 */
export function checkAnswerSize(answer: string | Uint8Array, what: string): void {
  const bytes = typeof answer === "string" ? answerBytes(answer) : byteLengthOf.call(answer);
  if (bytes > MAX_ANSWER_BYTES) {
    throw new RangeError(`${what} exceeds ${MAX_ANSWER_BYTES} bytes (MAX_ANSWER_BYTES)`);
  }
}

/**
 * Throws when a handler returned a thenable (the synchronous API cannot wait
 * for it). Reads `then` once; a native Promise's late rejection is handled so
 * that it never surfaces as an unhandled one.
 */
export function refuseThenable(answers: unknown): void {
  if (typeof readThen(answers) !== "function") return;
  try {
    promiseThen.call(answers, undefined, ignore);
  } catch {
    // Not a native Promise: nobody reports its rejection.
  }
  // An array that is also a thenable is refused too: its byte answers are zeroed first.
  wipeByteAnswers(answers);
  throw new TypeError(
    "the conversation returned a Promise: PamTransaction needs a synchronous conversation (use AsyncPamTransaction for async handlers)",
  );
}

/**
 * A handler's result's `then`, read exactly once (`undefined` for a
 * primitive). A getter that throws zeroes the byte answers of the result
 * before its error goes on: the secrets are not left behind on that path.
 */
export function readThen(result: unknown): unknown {
  if (!isObjectLike(result)) return undefined;
  try {
    return (result as { then?: unknown }).then;
  } catch (error) {
    wipeByteAnswers(result);
    throw error;
  }
}

const promiseThen = Promise.prototype.then;
const ignore = (): void => {};

/**
 * What a handler returned, as plain values: each element read exactly once
 * (a string, a private copy of a `Uint8Array`, or `null`), then checked
 * against `styles`, the count and styles read from C. The handler's own byte
 * arrays are zeroed as they are copied; the caller wipes the snapshot
 * ({@linkcode wipeSnapshot}) once it has been copied on. Throws a
 * `TypeError` for a wrong shape, count, type or NUL byte, a `RangeError`
 * for an answer over {@linkcode MAX_ANSWER_BYTES}; then nothing is left.
 */
export function snapshotAnswers(answers: unknown, styles: readonly number[]): PamAnswer[] {
  if (!Array.isArray(answers)) {
    throw new TypeError("the conversation must return an array with one answer per message");
  }
  const length: unknown = answers.length;
  if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
    throw new TypeError("the conversation must return an array with one answer per message");
  }
  const count = styles.length;
  // Read even when the count is wrong, so that byte answers are zeroed on that path too.
  const n = Math.min(length, MAX_NUM_MSG + 1);
  const snapshot = new Array<PamAnswer>(n).fill(null);
  try {
    // After the first bad answer the rest are still read once each, only to zero their bytes:
    // a handler's secrets past a mistake are not left behind.
    let firstError: unknown;
    let failed = false;
    for (let i = 0; i < n; i++) {
      try {
        const answer: unknown = answers[i];
        if (answer === null || answer === undefined) continue;
        if (failed) {
          if (isBytes(answer)) fillBytes.call(answer, 0);
        } else if (typeof answer === "string") {
          snapshot[i] = answer;
        } else if (isBytes(answer)) {
          const size = byteLengthOf.call(answer);
          if (size > MAX_ANSWER_BYTES) {
            fillBytes.call(answer, 0);
            throw tooLong(i);
          }
          const copy = new Uint8Array(size);
          setBytes.call(copy, answer);
          fillBytes.call(answer, 0);
          snapshot[i] = copy;
        } else {
          throw new TypeError(
            `answer ${i} is a ${typeof answer}: answers must be strings, Uint8Arrays, null or undefined`,
          );
        }
      } catch (error) {
        if (!failed) firstError = error;
        failed = true;
      }
    }
    if (failed) throw firstError;
    if (length !== count) {
      throw new TypeError(`the conversation returned ${length} answers for ${count} messages`);
    }
    for (let i = 0; i < count; i++) {
      const answer = snapshot[i];
      if (typeof answer === "string") {
        if (answer.includes("\0")) throw new TypeError(`answer ${i} contains a NUL byte`);
        if (answerBytes(answer) > MAX_ANSWER_BYTES) {
          throw tooLong(i);
        }
      } else if (answer) {
        if (styles[i] !== MessageStyle.BINARY_PROMPT && answer.includes(0)) {
          throw new TypeError(`answer ${i} contains a NUL byte`);
        }
      }
    }
  } catch (error) {
    wipeSnapshot(snapshot);
    throw error;
  }
  return snapshot;
}

function tooLong(i: number): RangeError {
  return new RangeError(`answer ${i} exceeds ${MAX_ANSWER_BYTES} bytes (MAX_ANSWER_BYTES)`);
}

/** Whether `value` can have properties (and so a `then`): an object or a function. */
const isObjectLike = (value: unknown): value is object =>
  value !== null && (typeof value === "object" || typeof value === "function");

/** Zeroes the byte answers of a snapshot (they are private copies). */
export function wipeSnapshot(snapshot: readonly PamAnswer[]): void {
  for (let i = 0; i < snapshot.length; i++) {
    const answer = snapshot[i];
    if (answer instanceof Uint8Array) answer.fill(0);
  }
}

/**
 * Zeroes the `Uint8Array` answers of a handler's result that never reached a
 * snapshot (its answers are the application's own, e.g. the terminal's).
 * Never throws: what a handler returns may be hostile.
 */
export function wipeByteAnswers(answers: unknown): void {
  try {
    if (!Array.isArray(answers)) return;
    const n = Math.min(answers.length, MAX_NUM_MSG + 1);
    for (let i = 0; i < n; i++) {
      const answer: unknown = answers[i];
      if (isBytes(answer)) fillBytes.call(answer, 0);
    }
  } catch {
    // Hostile getters: nothing more can be wiped.
  }
}
