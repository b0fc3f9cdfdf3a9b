/**
 * What the caller and its session process say to each other over the
 * frames of `_frames.ts`, and how errors and answers cross. Internal.
 *
 * @module
 */

import type { MessageStyleValue } from "../constants.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { PamError } from "../errors.ts";

/** An error, flattened for the trip to the caller. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly pam?: {
    readonly code: number;
    readonly operation: string;
    readonly messages: readonly PamMessage[];
    readonly failDelayMs: number | undefined;
  };
  /** `"caller"`: the caller's own conversation failure is the cause. */
  readonly cause?: "caller" | { readonly name: string; readonly message: string };
}

/** Thrown in the session process when the caller's conversation failed; the caller knows why. */
export class CallerConversationFailure extends Error {
  constructor() {
    super("the caller's conversation failed");
  }
}

function plain(e: unknown): { name: string; message: string } {
  return {
    name: e instanceof Error ? e.name : "Error",
    message: e instanceof Error ? e.message : String(e),
  };
}

/** Flattens `error`; a `PamError` keeps everything the caller rebuilds it from. */
export function toWire(error: unknown): WireError {
  if (!(error instanceof PamError)) return plain(error);
  const cause = error.cause;
  return {
    ...plain(error),
    pam: {
      code: error.code,
      operation: error.operation,
      messages: error.messages.map(plainMessage),
      failDelayMs: error.failDelayMs,
    },
    ...(cause === undefined
      ? {}
      : { cause: cause instanceof CallerConversationFailure ? "caller" : plain(cause) }),
  };
}

/** Rebuilds an error; `callerFailure` is the caller's own reason its conversation failed. */
export function fromWire(w: WireError, callerFailure?: { error: unknown }): Error {
  if (w.pam) {
    const cause = w.cause === "caller"
      ? (callerFailure ? callerFailure.error : new Error("the conversation failed"))
      : w.cause
      ? plainError(w.cause)
      : undefined;
    const error = new PamError(w.pam.code, w.pam.operation, {
      messages: w.pam.messages,
      ...(cause !== undefined ? { cause } : {}),
      ...(w.pam.failDelayMs !== undefined ? { failDelayMs: w.pam.failDelayMs } : {}),
    });
    error.message = w.message;
    return error;
  }
  return plainError(w);
}

function plainError(s: { name: string; message: string }): Error {
  const Kind = s.name === "TypeError" ? TypeError : s.name === "RangeError" ? RangeError : Error;
  const error = new Kind(String(s.message));
  if (Kind === Error && s.name !== "Error") error.name = String(s.name);
  return error;
}

/** A message as the header carries it: binary data travels in the payload. */
export interface WireMessage {
  readonly style: MessageStyleValue;
  readonly text: string;
  readonly dataLength?: number;
}

function plainMessage(m: PamMessage): PamMessage {
  return m.data ? { style: m.style, text: m.text, data: m.data } : { style: m.style, text: m.text };
}

/** Messages for one frame: texts in the header, binary prompts' bytes concatenated in the payload. */
export function encodeMessages(messages: readonly PamMessage[]): {
  messages: WireMessage[];
  payload: Uint8Array;
} {
  const wire = messages.map((m) =>
    m.data ? { style: m.style, text: m.text, dataLength: m.data.length } : {
      style: m.style,
      text: m.text,
    }
  );
  const payload = new Uint8Array(messages.reduce((n, m) => n + (m.data?.length ?? 0), 0));
  let at = 0;
  for (const m of messages) {
    if (m.data) {
      payload.set(m.data, at);
      at += m.data.length;
    }
  }
  return { messages: wire, payload };
}

/** The inverse of {@linkcode encodeMessages}; throws on a header that does not fit its payload. */
export function decodeMessages(wire: unknown, payload: Uint8Array): PamMessage[] {
  if (!Array.isArray(wire)) throw new TypeError("conversation frame without messages");
  let at = 0;
  const out = wire.map((m: WireMessage) => {
    const style = m.style, text = m.text;
    if (typeof style !== "number" || typeof text !== "string") {
      throw new TypeError("malformed conversation message");
    }
    if (m.dataLength === undefined) return { style, text };
    const length = m.dataLength;
    if (!Number.isInteger(length) || length < 0 || at + length > payload.length) {
      throw new TypeError("malformed conversation message");
    }
    const data = payload.slice(at, at + length);
    at += length;
    return { style, text, data };
  });
  return out;
}

const encoder = new TextEncoder();

/**
 * Answers for one frame: each answer's byte length (or `null`) in the
 * header, the bytes in the payload, which the caller wipes once sent.
 */
export function encodeAnswers(answers: readonly PamAnswer[]): {
  lengths: (number | null)[];
  payload: Uint8Array;
} {
  const parts = answers.map((a) =>
    a === null || a === undefined ? null : typeof a === "string" ? encoder.encode(a) : a
  );
  const payload = new Uint8Array(parts.reduce((n, p) => n + (p?.length ?? 0), 0));
  let at = 0;
  const lengths = parts.map((p, i) => {
    if (!p) return null;
    payload.set(p, at);
    at += p.length;
    // Only the bytes we encoded are ours to wipe; a handler's own Uint8Array is wiped by its owner.
    if (typeof answers[i] === "string") p.fill(0);
    return p.length;
  });
  return { lengths, payload };
}

/** The inverse of {@linkcode encodeAnswers}: copies, so the payload can be wiped at once. */
export function decodeAnswers(lengths: unknown, payload: Uint8Array, count: number): PamAnswer[] {
  if (!Array.isArray(lengths) || lengths.length !== count) {
    throw new TypeError("the caller sent the wrong number of answers");
  }
  let at = 0;
  return lengths.map((length: unknown) => {
    if (length === null) return null;
    if (typeof length !== "number" || !Number.isInteger(length) || length < 0) {
      throw new TypeError("malformed answer");
    }
    if (at + length > payload.length) throw new TypeError("malformed answer");
    const bytes = payload.slice(at, at + length);
    at += length;
    return bytes;
  });
}
