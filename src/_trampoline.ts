/**
 * The trampoline libpam calls for a conversation: reads the messages from
 * C, runs the transaction's handler through its slot, and writes the
 * answers into a `pam_response` array libpam then owns. It never throws and
 * never returns 0 (`PAM_SUCCESS`) without every response written.
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
import type { PamAnswer, PamMessage } from "./conversation.ts";
import { refuseThenable, snapshotAnswers, wipeSnapshot } from "./_answers.ts";
import { CMemory } from "./_c_memory.ts";
import { openLibc } from "./_library.ts";
import { MAX_MESSAGE_BYTES, readBoundedCString } from "./_c_string.ts";

const isPrompt = (style: number): boolean =>
  style === MessageStyle.PROMPT_ECHO_OFF || style === MessageStyle.PROMPT_ECHO_ON ||
  style === MessageStyle.BINARY_PROMPT || style === MessageStyle.RADIO_TYPE;

const encoder = new TextEncoder();

// Where answers are encoded before they are copied into C memory (wiped after each copy).
// Answers are checked against MAX_ANSWER_BYTES first, so it never grows past ~12 KiB.
let scratch = new Uint8Array(256);
const SCRATCH_MAX = 3 * MAX_ANSWER_BYTES + 1;

// One image of the largest response array and, in its first bytes, a pointer-sized cell for
// storePointer: answers' pointers are gathered here and copied into C at once. Reused by every
// call (zeroed after each): filling it runs no JavaScript of the application's, so no nested
// conversation can reach it meanwhile, and a fresh buffer per call was a cold call's
// allocation. One buffer, so that the adapter's cached DataView is always the right one.
const CELL = pointerSize;
const image = new Uint8Array(CELL + MAX_NUM_MSG * pamResponseLayout.size);
const responsesImage = image.subarray(CELL);

/**
 * Stores `value` in the pointer at `target` (C memory) with one `memcpy`
 * call: a view of `target` would cost an ArrayBuffer per write.
 */
function storePointer(target: Pointer, value: Pointer | null): void {
  native.writePointerInto(image, 0, value);
  openLibc().memcpy(target, image, pointerSize);
}

/**
 * The `struct pam_response` array of one conversation call. Its
 * {@linkcode CMemory} owns the array and the answers' strings until
 * {@linkcode ResponseBuffer.transferTo} hands them to libpam (which frees
 * them); disposing of it before then wipes and frees them. The answers'
 * pointers are gathered in JavaScript memory (the shared image) and copied
 * into the C array once, at transfer.
 */
class ResponseBuffer {
  readonly #memory: CMemory;
  readonly #count: number;

  private constructor(memory: CMemory, count: number) {
    this.#memory = memory;
    this.#count = count;
  }

  /** A zeroed array of `count` responses, from libc's `calloc` as libpam expects. */
  static allocate(count: number): ResponseBuffer {
    // Zeroed here too: an earlier call cut short where even its cleanup threw (the stack limit)
    // must not leave its pointers for this one to hand to libpam.
    responsesImage.fill(0, 0, count * pamResponseLayout.size);
    return new ResponseBuffer(
      CMemory.calloc(count, pamResponseLayout.size, "the conversation's responses"),
      count,
    );
  }

  /**
   * Copies `answer` (checked by `snapshotAnswers`) into a `malloc`'d C
   * string for response `index`. `binary`: the answer to a binary prompt,
   * which may hold NUL bytes.
   */
  set(index: number, answer: string | Uint8Array, binary: boolean): void {
    const libc = openLibc();
    // Built in a JavaScript scratch buffer, copied into C memory with one call and wiped at
    // once: a view of the C memory would cost an ArrayBuffer over memory libpam frees.
    const bytes = typeof answer === "string" ? answer.length * 3 + 1 : answer.byteLength + 1;
    if (bytes > SCRATCH_MAX) throw new RangeError(`an answer exceeds ${MAX_ANSWER_BYTES} bytes`);
    if (scratch.length < bytes) {
      scratch = new Uint8Array(Math.min(Math.max(bytes, scratch.length * 2), SCRATCH_MAX));
    }
    let length = 0;
    try {
      if (typeof answer === "string") {
        // The scratch holds at least 3 bytes per code unit plus one: room for the NUL.
        length = encoder.encodeInto(answer, scratch).written;
      } else {
        scratch.set(answer);
        length = answer.byteLength;
      }
      scratch[length] = 0;
      let cString: Pointer | null;
      if (binary) {
        cString = libc.malloc(length + 1);
        if (cString) libc.memcpy(cString, scratch, length + 1);
      } else {
        // No NUL inside (snapshotAnswers checked): strndup copies all of it.
        cString = libc.strndup(scratch, length);
      }
      if (!cString) throw new Error("malloc failed for a conversation answer");
      // Owned by the array from here: freed with it, or handed to libpam with it.
      this.#memory.attach(index, cString, length + 1);
      const at = CELL + index * pamResponseLayout.size + pamResponseLayout.resp.offset;
      native.writePointerInto(image, at, cString);
    } finally {
      scratch.fill(0, 0, length + 1);
    }
  }

  /** Stores the array in `*resp`; from here on libpam owns (and frees) all of it. */
  transferTo(resp: Pointer): void {
    const array = this.#memory.pointer;
    try {
      openLibc().memcpy(array, responsesImage, this.#count * pamResponseLayout.size);
    } finally {
      // At once: a later call that leaves a response empty must not copy this one's pointer.
      responsesImage.fill(0, 0, this.#count * pamResponseLayout.size);
    }
    storePointer(resp, array);
    this.#memory.release();
  }

  /**
   * Zeroes every answer copied so far and frees them and the array, unless
   * transferred, and zeroes the image. Idempotent.
   */
  [Symbol.dispose](): void {
    responsesImage.fill(0, 0, this.#count * pamResponseLayout.size);
    this.#memory[Symbol.dispose]();
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

/** A prompt's frozen message, shared by every call that shows the same text. */
interface CachedPrompt {
  readonly message: PamMessage;
  /** The frozen one-element array of a call with this prompt alone (the usual call). */
  readonly alone: readonly PamMessage[];
}

// Frozen prompts by style and text: a module asks the same "Password: " on every login, and a
// fresh frozen object and array per call were most of a cold call's decoding. Prompts only,
// short ones, a bounded number: info and error texts (a last-login line) vary and are not kept.
const promptCache = new Map<number, Map<string, CachedPrompt>>();
const PROMPT_CACHE_ENTRIES = 64;
const PROMPT_CACHE_TEXT = 256;

function cachedPrompt(style: MessageStyleValue, text: string): CachedPrompt | undefined {
  if (text.length > PROMPT_CACHE_TEXT) return undefined;
  let byText = promptCache.get(style);
  if (!byText) promptCache.set(style, byText = new Map());
  let entry = byText.get(text);
  if (!entry) {
    if (byText.size >= PROMPT_CACHE_ENTRIES) byText.clear();
    const message: PamMessage = Object.freeze({ style, text });
    entry = { message, alone: Object.freeze([message]) };
    byText.set(text, entry);
  }
  return entry;
}

/**
 * Reads `count` messages from C: their styles into `styles` (what the
 * trampoline checks against), and a frozen copy for the handler, which can
 * neither change what is checked nor what `PamError.messages` reports.
 */
function readMessages(count: number, messages: Pointer, styles: number[]): readonly PamMessage[] {
  const out = new Array<PamMessage>(count);
  let single: CachedPrompt | undefined;
  for (let i = 0; i < count; i++) {
    // Linux-PAM's layout: an array of pointers to struct pam_message (not an array of structs).
    const message = native.readPointer(messages, i * pointerSize);
    if (!message) throw new TypeError(`message ${i} is a NULL pointer`);
    const style = native.readI32(message, pamMessageLayout.style.offset) as MessageStyleValue;
    styles[i] = style;
    const textPointer = native.readPointer(message, pamMessageLayout.msg.offset);
    if (style === MessageStyle.BINARY_PROMPT) {
      out[i] = Object.freeze({
        style,
        text: "",
        data: textPointer ? readPacket(textPointer) : new Uint8Array(),
      });
      continue;
    }
    const text = textPointer
      ? readBoundedCString(textPointer, MAX_MESSAGE_BYTES, `message ${i}`)
      : "";
    const cached = isPrompt(style) ? cachedPrompt(style, text) : undefined;
    if (count === 1) single = cached;
    out[i] = cached ? cached.message : Object.freeze({ style, text });
  }
  return single ? single.alone : Object.freeze(out);
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
    // Called as a plain function: a handler must not get the slot as its `this`.
    const handler = slot.handler;
    const answers = handler(messages);
    refuseThenable(answers);
    snapshot = snapshotAnswers(answers, styles);
    if (!resp) return ReturnCode.SUCCESS;
    buffer = ResponseBuffer.allocate(count);
    for (let i = 0; i < count; i++) {
      const answer = snapshot[i];
      if (answer !== null && answer !== undefined) {
        buffer.set(i, answer, styles[i] === MessageStyle.BINARY_PROMPT);
      }
    }
    buffer.transferTo(resp);
    return ReturnCode.SUCCESS;
  } catch (error) {
    if (slot) slot.cause = error;
    // Each step on its own: a failure in one must not skip the next, nor escape.
    try {
      buffer?.[Symbol.dispose]();
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
    try {
      if (snapshot) wipeSnapshot(snapshot);
    } catch {
      // Nothing may escape the trampoline (a return of CONV_ERR must stay one).
    }
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

/** How many slots are registered (for tests: each live transaction holds one). */
export function liveSlots(): number {
  return slots.size;
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
