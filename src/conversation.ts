/**
 * The conversation: the messages PAM modules send, the answers an
 * application gives, and the trampoline that carries them across the FFI
 * boundary.
 *
 * @module
 */

import {
  conversationCallback,
  failDelayCallback,
  native,
  pamConvLayout,
  pamMessageLayout,
  pamResponseLayout,
  type Pointer,
  pointerSize,
} from "../ffi/mod.ts";
import {
  MAX_ANSWER_BYTES,
  MAX_BINARY_PROMPT_BYTES,
  MAX_NUM_MSG,
  MessageStyle,
  type MessageStyleValue,
  ReturnCode,
} from "./constants.ts";
import { openLibc } from "./library.ts";
import { checkKnownKeys, describe, optionsObject } from "./validate.ts";

/**
 * One message from a PAM module.
 *
 * @example
 * ```ts
 * import { MessageStyle, type PamMessage } from "@seed/pam";
 * const m: PamMessage = { style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " };
 * ```
 */
export interface PamMessage {
  /** How to present it: a {@linkcode MessageStyle} value. */
  readonly style: MessageStyleValue;
  /** The text; `""` for binary prompts. */
  readonly text: string;
  /** For {@linkcode MessageStyle.BINARY_PROMPT}: the whole libpamc packet (length, control byte, data). */
  readonly data?: Uint8Array;
}

/**
 * An answer to one message: a string or bytes for prompts (bytes are zeroed
 * once copied), `null`/`undefined` for messages that need none.
 *
 * @example
 * ```ts
 * import type { PamAnswer } from "@seed/pam";
 * const answers: PamAnswer[] = ["secret", null];
 * ```
 */
export type PamAnswer = string | Uint8Array | null | undefined;

/**
 * Answers one batch of messages, one answer per message, synchronously.
 * Throwing, returning the wrong number or type of answers, an answer longer
 * than {@linkcode MAX_ANSWER_BYTES}, or returning a Promise fails the PAM
 * call with `PAM_CONV_ERR`; it never authenticates. The messages are frozen,
 * and each element of the returned array is read exactly once.
 *
 * @example
 * ```ts
 * import { MessageStyle, type Conversation } from "@seed/pam";
 * const conversation: Conversation = (messages) =>
 *   messages.map((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? "secret" : null);
 * ```
 */
export type Conversation = (messages: readonly PamMessage[]) => PamAnswer[];

/**
 * A conversation that answers every echo-off prompt with `password` and lets
 * info and error messages through (to `onMessage`, when given). Echo-on and
 * binary prompts fail the call: this conversation cannot answer them. Nor
 * can it answer a prompt for a new password (`pam_chauthtok`'s "New
 * password:", "Retype new password:", recognised by the word "new" in
 * English prompts): giving the old password there would fail the change
 * (three tries) or keep the password that just expired, so that prompt
 * fails the call too.
 *
 * @example
 * ```ts
 * import { PamTransaction, passwordConversation } from "@seed/pam";
 * using tx = PamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 * });
 * ```
 *
 * @throws {TypeError} for a password that is not a string or `Uint8Array`, or bad options.
 * @throws {RangeError} for a password past `MAX_ANSWER_BYTES`.
 */
export function passwordConversation(
  password: string | Uint8Array,
  options: { onMessage?: ((message: PamMessage) => void) | undefined } = {},
): Conversation {
  if (typeof password !== "string" && !(password instanceof Uint8Array)) {
    throw new TypeError("passwordConversation() takes the password as a string or Uint8Array");
  }
  const what = "passwordConversation() options";
  checkKnownKeys(optionsObject(options, what), ["onMessage"], what);
  checkAnswerSize(password, "the password");
  const { onMessage } = options;
  if (onMessage !== undefined && typeof onMessage !== "function") {
    throw new TypeError(`onMessage must be a function, got ${describe(onMessage)}`);
  }
  return (messages) =>
    messages.map((message) => {
      switch (message.style) {
        case MessageStyle.PROMPT_ECHO_OFF:
          if (asksForNewPassword(message.text)) throw new NewPasswordNeeded(message.text);
          // A copy each time: the trampoline zeroes byte answers, and a stack may ask twice.
          return typeof password === "string" ? password : password.slice();
        case MessageStyle.ERROR_MSG:
        case MessageStyle.TEXT_INFO:
          onMessage?.(message);
          return null;
        default:
          throw new TypeError(
            `passwordConversation() cannot answer a prompt of style ${message.style} ("${message.text}")`,
          );
      }
    });
}

// pam_unix "New password: ", "Retype new password: "; pam_matrix "New Password :", "Verify New
// Password :"; pam_pwquality "New password: ". Old-password prompts ("Current password: ",
// "Old Password: ", "(current) UNIX password: ") do not match.
const newPasswordPrompt = /\bnew\b/i;

function asksForNewPassword(text: string): boolean {
  return newPasswordPrompt.test(text);
}

/**
 * What {@linkcode passwordConversation} throws at a prompt for a new
 * password; the failed call's `PamError.cause`. Internal (not exported from
 * `mod.ts`): `login()` recognises it with {@linkcode isNewPasswordNeeded} to
 * say that the password has expired and that changing it needs a
 * conversation that can ask for a new one.
 */
export class NewPasswordNeeded extends Error {
  /** Builds the error for the prompt `text` (a module's words, no secret). */
  constructor(text: string) {
    super(
      `passwordConversation() knows only the current password and does not give it as a new ` +
        `one (prompt ${JSON.stringify(text)}): the password has expired, and changing it needs a ` +
        "conversation that can ask for a new one",
    );
    this.name = "NewPasswordNeeded";
  }
}

/** Whether `cause` (a `PamError`'s) is {@linkcode passwordConversation} refusing a new-password prompt. */
export function isNewPasswordNeeded(cause: unknown): cause is NewPasswordNeeded {
  return cause instanceof NewPasswordNeeded;
}

const isPrompt = (style: number): boolean =>
  style === MessageStyle.PROMPT_ECHO_OFF || style === MessageStyle.PROMPT_ECHO_ON ||
  style === MessageStyle.BINARY_PROMPT || style === MessageStyle.RADIO_TYPE;

const encoder = new TextEncoder();

// Where answers are encoded before they are copied into C memory (wiped after each copy).
// Answers are checked against MAX_ANSWER_BYTES first, so it never grows past ~12 KiB.
let scratch = new Uint8Array(256);
const SCRATCH_MAX = 3 * MAX_ANSWER_BYTES + 1;

// A pointer-sized cell for storePointer; the trampoline runs on one thread at a time.
const cell = new Uint8Array(pointerSize);

/**
 * Stores `value` in the pointer at `target` (C memory) with one `memcpy`
 * call: a view of `target` would cost an ArrayBuffer per write.
 */
function storePointer(target: Pointer, value: Pointer | null): void {
  native.writePointerInto(cell, 0, value);
  openLibc().memcpy(target, cell, pointerSize);
}

/**
 * The `struct pam_response` array of one conversation call. It owns its C
 * memory until {@linkcode ResponseBuffer.transferTo} hands it to libpam
 * (which frees it); until then {@linkcode ResponseBuffer.wipeAndFree} must
 * release it. The answers' pointers are gathered in JavaScript memory and
 * copied into the C array once, at transfer.
 */
class ResponseBuffer {
  #array: Pointer | null;
  readonly #count: number;
  // Created on the first answer: info and error messages need none.
  #struct: Uint8Array | undefined;
  #sizes: number[] | undefined;
  #strings: (Pointer | null)[] | undefined;

  private constructor(array: Pointer, count: number) {
    this.#array = array;
    this.#count = count;
  }

  /** A zeroed array of `count` responses, from libc's `calloc` as libpam expects. */
  static allocate(count: number): ResponseBuffer {
    const array = openLibc().calloc(count, pamResponseLayout.size);
    if (!array) throw new Error("calloc failed for the conversation's responses");
    return new ResponseBuffer(array, count);
  }

  /** Copies `answer` (checked by {@linkcode snapshotAnswers}) into a `malloc`'d C string for response `index`. */
  set(index: number, answer: string | Uint8Array): void {
    const libc = openLibc();
    // Built in a JavaScript scratch buffer, copied into C memory with one memcpy and wiped
    // at once: a view of the C memory would cost an ArrayBuffer over memory libpam frees.
    const bytes = typeof answer === "string" ? answer.length * 3 + 1 : answer.byteLength + 1;
    if (bytes > SCRATCH_MAX) throw new RangeError(`an answer exceeds ${MAX_ANSWER_BYTES} bytes`);
    if (scratch.length < bytes) {
      scratch = new Uint8Array(Math.min(Math.max(bytes, scratch.length * 2), SCRATCH_MAX));
    }
    let length: number;
    if (typeof answer === "string") {
      length = encoder.encodeInto(answer, scratch.subarray(0, bytes - 1)).written;
    } else {
      scratch.set(answer);
      length = answer.byteLength;
    }
    scratch[length] = 0;
    try {
      const cString = this.#claim(index, libc.malloc(length + 1), length + 1);
      libc.memcpy(cString, scratch, length + 1);
    } finally {
      scratch.fill(0, 0, length + 1);
    }
  }

  #claim(index: number, cString: Pointer | null, size: number): Pointer {
    if (!cString) throw new Error("malloc failed for a conversation answer");
    this.#struct ??= new Uint8Array(this.#count * pamResponseLayout.size);
    this.#strings ??= new Array(this.#count).fill(null);
    this.#sizes ??= new Array(this.#count).fill(0);
    this.#strings[index] = cString;
    this.#sizes[index] = size;
    const at = index * pamResponseLayout.size + pamResponseLayout.resp.offset;
    native.writePointerInto(this.#struct, at, cString);
    return cString;
  }

  /** Stores the array in `*resp`; from here on libpam owns (and frees) all of it. */
  transferTo(resp: Pointer): void {
    const array = this.#array!;
    if (this.#struct) openLibc().memcpy(array, this.#struct, this.#struct.byteLength);
    storePointer(resp, array);
    this.#array = null;
  }

  /** Zeroes every answer copied so far and frees them and the array. Idempotent. */
  wipeAndFree(): void {
    const array = this.#array;
    if (!array) return;
    const libc = openLibc();
    const strings = this.#strings ?? [];
    // Each string forgotten as soon as it is freed, the array last: a failure part way (the
    // stack limit) leaves the rest for a second call instead of leaking it unwiped.
    for (let i = 0; i < strings.length; i++) {
      const cString = strings[i];
      if (!cString) continue;
      libc.explicit_bzero(cString, this.#sizes![i]);
      libc.free(cString);
      strings[i] = null;
    }
    libc.free(array);
    this.#array = null;
  }
}

/**
 * What one conversation call hands to the handler and what it checks on
 * return; kept per transaction in a {@linkcode ConversationSlot}.
 */
export type ConversationHandler = (messages: readonly PamMessage[]) => unknown;

/** The per-transaction state the trampoline reaches through `appdata_ptr`. */
export interface ConversationSlot {
  /** The handler, or `null` when the application gave no conversation. */
  handler: ConversationHandler | null;
  /** Info and error messages seen during the current PAM call. */
  messages: PamMessage[];
  /** Why the conversation last failed, if it did. */
  cause: unknown;
  /** The delay the modules asked for (µs), when the fail delay is reported. */
  failDelayUsec: number | undefined;
  /** Conversations entered and not yet returned from: non-zero after a call means one broke. */
  unfinished: number;
}

/**
 * Reads `count` messages from C: their styles into `styles` (what the
 * trampoline checks against), and a frozen copy for the handler, which can
 * neither change what is checked nor what `PamError.messages` reports.
 */
function readMessages(count: number, messages: Pointer, styles: number[]): readonly PamMessage[] {
  const out = new Array<PamMessage>(count);
  for (let i = 0; i < count; i++) {
    // Linux-PAM's layout: an array of pointers to struct pam_message (not an array of structs).
    const message = native.readPointer(messages, i * pointerSize);
    if (!message) throw new TypeError(`message ${i} is a NULL pointer`);
    const style = native.readI32(message, pamMessageLayout.style.offset) as MessageStyleValue;
    styles[i] = style;
    const text = native.readPointer(message, pamMessageLayout.msg.offset);
    if (style === MessageStyle.BINARY_PROMPT) {
      out[i] = Object.freeze({ style, text: "", data: text ? readPacket(text) : new Uint8Array() });
    } else {
      out[i] = Object.freeze({ style, text: text ? native.readCString(text) : "" });
    }
  }
  return Object.freeze(out);
}

/**
 * Copies a libpamc packet, bounded by its own length header: C gives no
 * other size, so a header below 5 (length and control byte) or above
 * {@linkcode MAX_BINARY_PROMPT_BYTES} is refused before anything past it is read.
 */
function readPacket(packet: Pointer): Uint8Array {
  const header = native.view(packet, 4).slice();
  const length = ((header[0] << 24) | (header[1] << 16) | (header[2] << 8) | header[3]) >>> 0;
  if (length < 5 || length > MAX_BINARY_PROMPT_BYTES) {
    throw new RangeError(
      `a binary prompt's length header says ${length} bytes; expected 5 to ${MAX_BINARY_PROMPT_BYTES}`,
    );
  }
  return native.view(packet, length).slice();
}

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
 * Throws a `RangeError` when an answer given up front (a one-shot password,
 * {@linkcode passwordConversation}) exceeds {@linkcode MAX_ANSWER_BYTES}.
 */
export function checkAnswerSize(answer: string | Uint8Array, what: string): void {
  // No string of more code units than bytes allowed can fit: skip encoding a huge one.
  const bytes = typeof answer === "string"
    ? (answer.length > MAX_ANSWER_BYTES ? Infinity : utf8Length(answer))
    : byteLengthOf.call(answer);
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
  if (answers === null || (typeof answers !== "object" && typeof answers !== "function")) return;
  const then = (answers as { then?: unknown }).then;
  if (typeof then !== "function") return;
  try {
    promiseThen.call(answers, undefined, ignore);
  } catch {
    // Not a native Promise: nobody reports its rejection.
  }
  throw new TypeError(
    "the conversation returned a Promise: PamTransaction needs a synchronous conversation (use AsyncPamTransaction for async handlers)",
  );
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
    for (let i = 0; i < n; i++) {
      const answer: unknown = answers[i];
      if (answer === null || answer === undefined) continue;
      if (typeof answer === "string") {
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
    }
    if (length !== count) {
      throw new TypeError(`the conversation returned ${length} answers for ${count} messages`);
    }
    for (let i = 0; i < count; i++) {
      const answer = snapshot[i];
      if (typeof answer === "string") {
        if (answer.includes("\0")) throw new TypeError(`answer ${i} contains a NUL byte`);
        if (answer.length > MAX_ANSWER_BYTES || utf8Length(answer) > MAX_ANSWER_BYTES) {
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
export const isObjectLike = (value: unknown): value is object =>
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

const slots = new Map<number, ConversationSlot>();
let nextSlotId = 1;

/**
 * The trampoline libpam calls. Both runtimes turn an exception that escapes
 * it into a return value of 0, which is PAM_SUCCESS, so its own code returns
 * 0 only once every response is written, and it counts itself in and out on
 * its slot: the transaction treats a call in which a conversation entered but
 * never left as failed, whatever the modules made of it. An overflow at the
 * very entry (the stack limit) runs none of this; the runtime then raises the
 * exception from the PAM call itself, which fails the transaction the same
 * way (see `PamTransaction`).
 */
function converse(
  count: number,
  messagesPtr: Pointer | null,
  resp: Pointer | null,
  appdata: number,
): number {
  const slot = slots.get(appdata);
  if (slot) slot.unfinished++;
  const status = converseGuarded(slot, count, messagesPtr, resp, appdata);
  if (slot) slot.unfinished--;
  return status;
}

function converseGuarded(
  slot: ConversationSlot | undefined,
  count: number,
  messagesPtr: Pointer | null,
  resp: Pointer | null,
  appdata: number,
): number {
  let snapshot: PamAnswer[] | undefined;
  let buffer: ResponseBuffer | undefined;
  try {
    if (!slot) throw new Error(`no transaction has conversation slot ${appdata}`);
    // *resp is written once: the response array on success, NULL on every other path
    // (one memcpy per call fewer than clearing it up front).
    if (count <= 0 || count > MAX_NUM_MSG || !messagesPtr) {
      throw new RangeError(`libpam sent ${count} messages; expected 1 to ${MAX_NUM_MSG}`);
    }
    const styles = new Array<number>(count);
    const messages = readMessages(count, messagesPtr, styles);
    let prompts = 0;
    for (let i = 0; i < count; i++) {
      if (isPrompt(styles[i])) prompts++;
      else slot.messages.push(messages[i]);
    }
    if (prompts > 0 && !slot.handler) {
      throw new TypeError(
        "a module prompted, but the transaction has no conversation to answer it",
      );
    }
    // Checked before the handler runs: it must not ask the user for a secret that has
    // nowhere to go.
    if (prompts > 0 && !resp) {
      throw new TypeError(
        "a module prompted with a NULL response pointer; the answers cannot be delivered",
      );
    }
    if (!slot.handler) {
      if (resp) storePointer(resp, null);
      return ReturnCode.SUCCESS;
    }
    const answers = slot.handler(messages);
    refuseThenable(answers);
    snapshot = snapshotAnswers(answers, styles);
    if (!resp) return ReturnCode.SUCCESS;
    buffer = ResponseBuffer.allocate(count);
    for (let i = 0; i < count; i++) {
      const answer = snapshot[i];
      if (answer !== null && answer !== undefined) buffer.set(i, answer);
    }
    buffer.transferTo(resp);
    return ReturnCode.SUCCESS;
  } catch (error) {
    if (slot) slot.cause = error;
    // Each step on its own: a failure in one must not skip the next, nor escape.
    try {
      buffer?.wipeAndFree();
    } catch {
      // Nothing may escape the trampoline.
    }
    try {
      if (resp) storePointer(resp, null);
    } catch {
      // Nothing may escape the trampoline.
    }
    return ReturnCode.CONV_ERR;
  } finally {
    if (snapshot) wipeSnapshot(snapshot);
  }
}

function recordFailDelay(_status: number, usec: number, appdata: number): void {
  try {
    const slot = slots.get(appdata);
    if (slot) slot.failDelayUsec = usec;
  } catch {
    // Nothing may escape a callback.
  }
}

let conversationPointer: Pointer | undefined;
let failDelayPointer: Pointer | undefined;

/**
 * Registers a slot and returns its id, the value libpam hands back as
 * `appdata_ptr`. The callbacks are created once per thread and live as long
 * as it does, so no transaction creates or leaks one.
 */
export function registerSlot(slot: ConversationSlot): number {
  conversationPointer ??= native.callback(conversationCallback, converse).pointer;
  const id = nextSlotId++;
  slots.set(id, slot);
  return id;
}

/** Forgets a slot once its handle has been ended. */
export function releaseSlot(id: number): void {
  slots.delete(id);
}

/**
 * The `struct pam_conv` for slot `id`, for `pam_start`, which copies it; the
 * buffer is reused by the next call.
 */
export function conversationStruct(id: number): Uint8Array {
  // One struct per thread, reused: pam_start copies it before it returns, and a fresh
  // buffer per transaction costs a backing store when it is handed to C.
  if (!convStruct) {
    convStruct = new Uint8Array(pamConvLayout.size);
    convView = new DataView(convStruct.buffer);
    native.writePointerInto(convStruct, pamConvLayout.conv.offset, conversationPointer!);
  }
  // appdata_ptr carries the slot id as a little-endian integer.
  const at = pamConvLayout.appdataPtr.offset;
  convView!.setUint32(at, id % 0x1_0000_0000, true);
  convView!.setUint32(at + 4, Math.floor(id / 0x1_0000_0000), true);
  return convStruct;
}

let convStruct: Uint8Array | undefined;
let convView: DataView | undefined;

/** The `PAM_FAIL_DELAY` function that records the delay instead of sleeping. */
export function failDelayFunction(): Pointer {
  failDelayPointer ??= native.callback(failDelayCallback, recordFailDelay).pointer;
  return failDelayPointer;
}
