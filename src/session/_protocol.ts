/**
 * What the caller and its session process say to each other over the
 * frames of `_frames.ts`, and how errors and answers cross. Internal.
 *
 * @module
 */

import type { MessageStyleValue } from "../constants.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { rebuildError, type SerializedError, serializeError } from "../_error_wire.ts";

/** An error, flattened for the trip to the caller. */
export type WireError = SerializedError;

/** Thrown in the session process when the caller's conversation failed; the caller knows why. */
export class CallerConversationFailure extends Error {
  constructor() {
    super("the caller's conversation failed");
  }
}

/** Flattens `error`; a `PamError` keeps everything the caller rebuilds it from. */
export function toWire(error: unknown): WireError {
  return serializeError(error, (cause) => cause instanceof CallerConversationFailure);
}

/** Rebuilds an error; `callerFailure` is the caller's own reason its conversation failed. */
export function fromWire(w: WireError, callerFailure?: { error: unknown }): Error {
  return rebuildError(w, callerFailure);
}

/** A message as the header carries it: binary data travels in the payload. */
export interface WireMessage {
  readonly style: MessageStyleValue;
  readonly text: string;
  readonly dataLength?: number;
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
