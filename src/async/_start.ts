/**
 * The checks every async start shares (`AsyncPamTransaction.start()`,
 * `authenticate()`, `login()`), and the start request the worker gets.
 *
 * @module
 */

import type { StartRequest } from "./_channel.ts";
import {
  checkCString,
  checkFailDelay,
  checkService,
  checkTimeoutMs,
  describe,
} from "../_validate.ts";
import type { AsyncFailDelay, AsyncPamTransactionOptions } from "./transaction.ts";

/**
 * How long an async conversation waits for its handler unless told otherwise
 * (`conversationTimeoutMs`): a handler that never answers holds a thread,
 * which only the transaction's end or this gives back.
 */
const DEFAULT_CONVERSATION_TIMEOUT_MS = 300_000;

/** What {@linkcode checkStartOptions} returns: the start request, `failDelay` as the caller gave it. */
export interface CheckedStart {
  readonly options: Omit<StartRequest["options"], "failDelay"> & {
    failDelay?: AsyncFailDelay | undefined;
  };
  readonly conversationTimeoutMs?: number | undefined;
}

/**
 * A `conversationTimeoutMs` option, checked: the default when absent,
 * `undefined` (no timeout) for `Infinity`. Shared with `login()`.
 */
export function conversationTimeout(value: unknown, what: string): number | undefined {
  // Infinity is the one way to wait for ever: checkTimeoutMs refuses it, as setTimeout would
  // fire at once for it.
  if (value === Infinity) return undefined;
  return checkTimeoutMs(value, what) ?? DEFAULT_CONVERSATION_TIMEOUT_MS;
}

/** Checks the options every async start shares; also used by `login()` (src/session/login.ts). */
export function checkStartOptions(
  o: AsyncPamTransactionOptions,
  what: string,
): CheckedStart {
  checkService(o.service);
  if (o.user !== undefined && o.user !== null) checkCString(o.user, "user");
  if (o.confdir !== undefined && o.confdir !== null) checkCString(o.confdir, "confdir");
  if (o.library !== undefined) checkCString(o.library, "library");
  checkFailDelay(o.failDelay, true);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(`${what}.signal must be an AbortSignal, got ${describe(o.signal)}`);
  }
  const ms = conversationTimeout(o.conversationTimeoutMs, `${what}.conversationTimeoutMs`);
  const options: CheckedStart["options"] = { service: o.service };
  if (o.user !== undefined && o.user !== null) options.user = o.user;
  if (o.confdir !== undefined && o.confdir !== null) options.confdir = o.confdir;
  if (o.library !== undefined) options.library = o.library;
  if (o.failDelay !== undefined) options.failDelay = o.failDelay;
  return { options, conversationTimeoutMs: ms };
}

/**
 * The start request the worker gets: in `"async"` mode its libpam reports
 * the delay (the `PAM_FAIL_DELAY` callback) and the main thread waits it out.
 */
export function workerStart(start: CheckedStart): Omit<StartRequest, "conversation"> {
  return {
    options: {
      ...start.options,
      failDelay: start.options.failDelay === "native" ? "native" : "report",
    },
    conversationTimeoutMs: start.conversationTimeoutMs,
  };
}

/** Whether failures wait out their delay on the main thread (the async API's default). */
export const delaysOnTimer = (start: CheckedStart): boolean =>
  start.options.failDelay === undefined || start.options.failDelay === "async";
