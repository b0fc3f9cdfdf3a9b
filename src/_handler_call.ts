/**
 * One guarded call of a conversation handler, shared by the async API's
 * link to its worker thread and by `login()`'s link to its session process:
 * the handler may answer at once or through a promise, under the caller's
 * signal and timeout, and whatever it returns is read exactly once. Its
 * `then` is read once and the result adopted through that read; a throwing
 * getter or Proxy trap fails the call with its error; answers are
 * snapshotted against the styles as C sent them (never against objects the
 * handler can reach), and byte answers that come too late are zeroed.
 * Internal; not an API.
 *
 * @module
 */

import type { PamAnswer } from "./conversation.ts";
import { readThen, snapshotAnswers, wipeByteAnswers } from "./_answers.ts";

/** What the caller of {@linkcode callHandler} may hook into. */
export interface HandlerCallHooks {
  /** Called before the handler runs, with the function that fails the call from outside. */
  started?(cancel: (reason: unknown) => void): void;
  /** Called once the call has settled, whichever way. */
  settled?(): void;
}

/**
 * Runs `invoke` (the handler on its messages) and resolves with the snapshot
 * of its answers, or rejects with why it failed: its own error, the
 * signal's reason, a `TimeoutError` after `timeoutMs`, or a cancel. The
 * snapshot is the caller's to wipe.
 */
export function callHandler(
  invoke: () => unknown,
  styles: readonly number[],
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  hooks: HandlerCallHooks = {},
): Promise<PamAnswer[]> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => fail(signal!.reason);
    const done = () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      hooks.settled?.();
    };
    const fail = (error: unknown) => {
      if (settled) return;
      done();
      reject(error);
    };
    // Every property access on what the handler returned happens in here, guarded.
    const succeed = (answers: unknown) => {
      if (settled) {
        wipeByteAnswers(answers);
        return;
      }
      done();
      // The snapshot zeroes the handler's own byte answers, on every path.
      try {
        resolve(snapshotAnswers(answers, styles));
      } catch (error) {
        reject(error);
      }
    };
    hooks.started?.(fail);
    if (signal?.aborted) return fail(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () =>
          fail(
            new DOMException(
              `the conversation handler did not answer within ${timeoutMs} ms (conversationTimeoutMs)`,
              "TimeoutError",
            ),
          ),
        timeoutMs,
      );
    }
    let result: unknown;
    let then: unknown;
    try {
      result = invoke();
      // Read once: a getter may answer differently the second time, or throw.
      then = readThen(result);
    } catch (error) {
      return fail(error);
    }
    if (typeof then !== "function") return succeed(result);
    // Adopted through the `then` already read; a throw from it rejects, and so does a
    // throwing getter of whatever it resolves with (the promise machinery reads that one).
    new Promise<unknown>((res, rej) => {
      (then as (this: unknown, ...a: unknown[]) => unknown).call(result, res, rej);
    }).then(succeed, fail).catch(fail);
  });
}
