/**
 * Shared pieces of the test suite (not a test file; not exported from mod.ts).
 *
 * `DirectConversation` reaches the real conversation trampoline the way a
 * module does: it starts a libpam handle whose `struct pam_conv` is the
 * binding's, reads it back with `pam_get_item(PAM_CONV)`, and calls the
 * function pointer with message arrays built by hand in C memory. That makes
 * tens of thousands of conversation calls cheap (no module, no stack), and
 * lets the tests pass what no stock module passes: NULL `resp`, a negative
 * or oversized `num_msg`, binary prompts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  conversationCallback,
  native,
  pamConvLayout,
  pamMessageLayout,
  pamResponseLayout,
  type Pointer,
  pointerSize,
} from "../ffi/mod.ts";
import { authenticate } from "../mod.ts";
import { ItemType, ReturnCode } from "../src/constants.ts";
import {
  type ConversationHandler,
  type ConversationSlot,
  conversationStruct,
  registerSlot,
  releaseSlot,
} from "../src/_trampoline.ts";
import { openLibc, openPam, strerrorText } from "../src/_library.ts";
import { createTestStack, type TestStack, wrapperModule } from "../src/testing.ts";

const encoder = new TextEncoder();

/** A NUL-terminated C string as a buffer argument. */
export function c(text: string): Uint8Array {
  return encoder.encode(text + "\0");
}

/** One message to hand-build: text for the usual styles, raw bytes for binary prompts. */
export interface RawMessage {
  style: number;
  text?: string;
  bytes?: Uint8Array;
}

/** The outcome of one direct conversation call. */
export interface DirectResult {
  /** What the trampoline returned (0 = PAM_SUCCESS, 19 = PAM_CONV_ERR). */
  status: number;
  /** Whether `*resp` was NULL after the call (only meaningful when a resp cell was passed). */
  respNull: boolean;
  /** The answers read back from the `pam_response` array (`null` for a NULL `resp` string). */
  answers: (Uint8Array | null)[] | undefined;
}

const SENTINEL = 0x5a5a5a5a5a; // a non-NULL garbage value the trampoline must overwrite

/**
 * A libpam handle with the binding's conversation, called directly through
 * the function pointer libpam holds.
 */
export class DirectConversation {
  readonly slot: ConversationSlot;
  readonly #slotId: number;
  readonly #handle: Pointer;
  readonly #stack: TestStack;
  readonly #conv: (
    count: number,
    msgs: Pointer | null,
    resp: Pointer | null,
    appdata: number,
  ) => number;
  readonly #appdata: Pointer | null;

  constructor(handler: ConversationHandler | null) {
    this.#stack = createTestStack({ services: { direct: "auth required pam_permit.so\n" } });
    this.slot = {
      handler,
      messages: [],
      cause: undefined,
      failDelayUsec: undefined,
      unfinished: 0,
    };
    this.#slotId = registerSlot(this.slot);
    const pam = openPam();
    const out = new Uint8Array(pointerSize);
    const status = pam.pam_start_confdir!(
      c("direct"),
      c("alice"),
      conversationStruct(this.#slotId),
      c(this.#stack.confdir),
      out,
    );
    if (status !== ReturnCode.SUCCESS) {
      releaseSlot(this.#slotId);
      this.#stack.remove();
      throw new Error(`pam_start_confdir returned ${status}`);
    }
    this.#handle = native.readPointerFrom(out, 0)!;
    // What a module does: pam_get_item(PAM_CONV) → const struct pam_conv *.
    const item = new Uint8Array(pointerSize);
    const got = pam.pam_get_item(this.#handle, ItemType.CONV, item);
    if (got !== ReturnCode.SUCCESS) {
      this.close();
      throw new Error(`pam_get_item(PAM_CONV) returned ${got}`);
    }
    const conv = native.readPointerFrom(item, 0)!;
    const fn = native.readPointer(conv, pamConvLayout.conv.offset)!;
    this.#appdata = native.readPointer(conv, pamConvLayout.appdataPtr.offset);
    this.#conv = native.functionAt(fn, conversationCallback);
  }

  /** Swaps the handler (the slot is the one libpam reaches). */
  set handler(handler: ConversationHandler | null) {
    this.slot.handler = handler;
  }

  /**
   * Calls the trampoline with `messages`. `count` overrides `num_msg`;
   * `nullResp` passes a NULL `resp`; `nullMessages` passes a NULL `msg`.
   */
  call(
    messages: readonly RawMessage[],
    options: {
      count?: number;
      nullResp?: boolean;
      nullMessages?: boolean;
      appdata?: number;
      /** Read answer i as this many bytes instead of up to its NUL (binary answers). */
      lengths?: number[];
    } = {},
  ): DirectResult {
    const libc = openLibc();
    const n = messages.length;
    const owned: Pointer[] = [];
    const alloc = (size: number): Pointer => {
      const p = libc.calloc(1, Math.max(size, 1));
      if (!p) throw new Error("calloc failed");
      owned.push(p);
      return p;
    };
    const array = alloc(Math.max(n, 1) * pointerSize);
    for (let i = 0; i < n; i++) {
      const m = messages[i];
      const struct = alloc(pamMessageLayout.size);
      const style = native.view(struct, pamMessageLayout.style.size, pamMessageLayout.style.offset);
      new DataView(style.buffer, style.byteOffset, style.byteLength).setInt32(0, m.style, true);
      const bytes = m.bytes ?? (m.text === undefined ? undefined : c(m.text));
      if (bytes) {
        const text = alloc(bytes.length);
        native.view(text, bytes.length).set(bytes);
        native.writePointer(struct, pamMessageLayout.msg.offset, text);
      }
      native.writePointer(array, i * pointerSize, struct);
    }
    const cell = alloc(pointerSize);
    native.writePointer(cell, 0, native.fromAddress(SENTINEL));
    try {
      const status = this.#conv(
        options.count ?? n,
        options.nullMessages ? null : array,
        options.nullResp ? null : cell,
        // conversationCallback takes appdata_ptr as an integer (the slot id it carries).
        options.appdata === undefined ? native.addressOf(this.#appdata) : options.appdata,
      );
      const resp = native.readPointer(cell, 0);
      let answers: (Uint8Array | null)[] | undefined;
      if (resp && native.addressOf(resp) !== SENTINEL) {
        answers = [];
        for (let i = 0; i < n; i++) {
          const at = i * pamResponseLayout.size + pamResponseLayout.resp.offset;
          const s = native.readPointer(resp, at);
          if (s) {
            const length = options.lengths?.[i] ?? Number(libc.strlen(s));
            answers.push(native.view(s, length).slice());
            libc.explicit_bzero(s, length);
            libc.free(s);
          } else {
            answers.push(null);
          }
        }
        libc.free(resp);
      }
      return {
        status,
        respNull: options.nullResp ? true : resp === null,
        answers,
      };
    } finally {
      for (const p of owned) libc.free(p);
    }
  }

  /** Ends the handle, forgets the slot, removes the stack. */
  close(): void {
    openPam().pam_end(this.#handle, ReturnCode.SUCCESS);
    releaseSlot(this.#slotId);
    this.#stack.remove();
  }
}

/** Decodes a direct answer. */
export function text(answer: Uint8Array | null | undefined): string | null {
  return answer ? new TextDecoder().decode(answer) : null;
}

/**
 * Records what `pam_end` receives, by wrapping the shared binding's function
 * (a spy on our own binding, not a mock of libpam: the real `pam_end` runs).
 */
export function spyPamEnd(): { statuses: number[]; restore(): void } {
  const pam = openPam() as unknown as Record<string, unknown>;
  const original = pam.pam_end as (handle: Pointer, status: number) => number;
  const statuses: number[] = [];
  pam.pam_end = (handle: Pointer, status: number) => {
    statuses.push(status);
    return original(handle, status);
  };
  return { statuses, restore: () => void (pam.pam_end = original) };
}

/**
 * Records each call of the named libpam functions with its second argument (the flags of
 * the pam_* calls); the real function still runs.
 */
export function spyPam(names: string[]): { calls: [string, number][]; restore(): void } {
  const pam = openPam() as unknown as Record<string, unknown>;
  const calls: [string, number][] = [];
  const originals = new Map<string, unknown>();
  for (const name of names) {
    const original = pam[name] as (...args: unknown[]) => unknown;
    originals.set(name, original);
    pam[name] = (...args: unknown[]) => {
      calls.push([name, args[1] as number]);
      return original(...args);
    };
  }
  return {
    calls,
    restore: () => {
      for (const [name, original] of originals) pam[name] = original;
    },
  };
}

/** libpam's own text for `code`, for comparing error messages. */
export function strerror(code: number): string {
  return strerrorText(openPam(), code) ?? "";
}

/** A password the tests check never appears in any error message. */
export const SECRET = "s3cr3t-Pa55w0rd";

/** The path of a libpam-wrapper module, `undefined` when Debian's libpam-wrapper is absent. */
export { wrapperModule } from "../src/testing.ts";

/** Runs `fn`, asserts it throws an instance of `type`, and returns what it threw. */
export function thrown<T extends Error>(
  fn: () => unknown,
  type: abstract new (...args: never[]) => T,
  label?: string,
): T {
  try {
    fn();
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`${label ?? "call"}: expected a ${type.name}, got ${error}`, { cause: error });
  }
  throw new Error(`${label ?? "call"}: expected a ${type.name}, but nothing was thrown`);
}

let setenv: ((name: Uint8Array, value: Uint8Array, overwrite: number) => number) | undefined;

/**
 * Sets a variable in the C environment (`getenv` in modules such as
 * pam_set_items sees it). Bun's `process.env` does not reach C's environment,
 * so this binds libc's `setenv` for the test alone (the package never needs it).
 */
export function setCEnv(name: string, value: string): void {
  setenv ??= native.open(
    "libc.so.6",
    {
      setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
    } as const,
  ).setenv;
  if (setenv(c(name), c(value), 1) !== 0) throw new Error(`setenv(${name}) failed`);
}

/** `promise`, or a failure naming `what` if it takes longer than `ms` (a lost wake-up hangs). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no reply within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

/** Polls `condition` every 10 ms; fails naming `what` after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A skip note when pam_matrix (libpam-wrapper) is missing, else `false`. */
export const noMatrix: string | false = wrapperModule("pam_matrix")
  ? false
  : "pam_matrix (libpam-wrapper) is not installed";

/** A pam_matrix service for auth and account, for `createTestStack`'s users. */
export const matrix: string = [
  "auth required {{pam_matrix}} passdb={{passdb}}",
  "account required {{pam_matrix}} passdb={{passdb}}",
  "",
].join("\n");

/**
 * Asserts that alice's one-shot on a `web` service of {@linkcode matrix} at
 * `confdir` gets through within 10 s (beside whatever a test holds).
 */
export async function assertOneShotGetsThrough(confdir: string, what: string): Promise<void> {
  assert.deepEqual(
    await within(
      authenticate({ service: "web", user: "alice", password: "secret", confdir }),
      10_000,
      what,
    ),
    { user: "alice" },
  );
}
