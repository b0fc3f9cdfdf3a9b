/**
 * Errors flattened for a trip between the side that runs libpam (a worker
 * thread, a session process) and the side that runs the conversation
 * handler, and rebuilt there: a `PamError` keeps its code, operation,
 * messages and fail delay, and its cause becomes the handler's own failure
 * when that is what failed the conversation. Internal.
 *
 * @module
 */

import type { PamMessage } from "./conversation.ts";
import { PamError } from "./errors.ts";

/** An error, flattened. */
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
  /** The cause: `"main"`, the handler's side's own failure (it knows what); or an error here. */
  readonly cause?: "main" | { readonly name: string; readonly message: string } | undefined;
}

function plain(e: unknown): { name: string; message: string } {
  return {
    name: e instanceof Error ? e.name : "Error",
    message: e instanceof Error ? e.message : String(e),
  };
}

/**
 * Flattens `error`. `handlerFailed(cause)` says whether the cause stands for
 * the handler side's failure, which that side fills in again.
 */
export function serializeError(
  error: unknown,
  handlerFailed: (cause: unknown) => boolean,
): SerializedError {
  if (!(error instanceof PamError)) return plain(error);
  const cause = error.cause;
  return {
    ...plain(error),
    pam: {
      code: error.code,
      operation: error.operation,
      messages: error.messages.map((m) =>
        m.data ? { style: m.style, text: m.text, data: m.data } : { style: m.style, text: m.text }
      ),
      failDelayMs: error.failDelayMs,
    },
    ...(cause === undefined ? {} : { cause: handlerFailed(cause) ? "main" : plain(cause) }),
  };
}

/**
 * Rebuilds an error. `handlerFailure` is this side's own reason the
 * conversation failed; `dropFailDelay` leaves `failDelayMs` out (a delay
 * waited out before the rejection, as libpam would have slept it).
 */
export function rebuildError(
  s: SerializedError,
  handlerFailure: { error: unknown } | undefined,
  dropFailDelay = false,
): Error {
  if (!s.pam) return plainError(s);
  const cause = s.cause === "main"
    ? (handlerFailure ? handlerFailure.error : new Error("the conversation failed"))
    : s.cause
    ? plainError(s.cause)
    : undefined;
  const failDelayMs = dropFailDelay ? undefined : s.pam.failDelayMs;
  const error = new PamError(s.pam.code, s.pam.operation, {
    messages: s.pam.messages,
    ...(cause !== undefined ? { cause } : {}),
    ...(failDelayMs !== undefined ? { failDelayMs } : {}),
  });
  error.message = String(s.message);
  return error;
}

function plainError(s: { name: string; message: string }): Error {
  const Kind = s.name === "TypeError" ? TypeError : s.name === "RangeError" ? RangeError : Error;
  const error = new Kind(String(s.message));
  if (Kind === Error && s.name !== "Error") error.name = String(s.name);
  return error;
}
