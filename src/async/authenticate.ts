/**
 * `authenticate()`: the check a login form needs, in one call on a pooled
 * worker thread.
 *
 * @module
 */

import { type PamMessage, passwordConversation } from "../conversation.ts";
import { checkAnswerSize } from "../_answers.ts";
import { holdModules } from "../_module_hold.ts";
import { acquireWorker, releaseWorker } from "./_pool.ts";
import {
  checkCString,
  checkKnownKeys,
  describe,
  optionalBoolean,
  optionsObject,
} from "../_validate.ts";
import { Link } from "./_link.ts";
import { checkStartOptions, workerStart } from "./_start.ts";
import type { AsyncFailDelay } from "./transaction.ts";

/**
 * What {@linkcode authenticate} checks.
 *
 * @example
 * ```ts
 * import type { AuthenticateOptions } from "@seed/pam";
 * const options: AuthenticateOptions = {
 *   service: "webapp",
 *   user: "alice",
 *   password: "secret",
 *   rhost: "203.0.113.7",
 *   signal: AbortSignal.timeout(10_000),
 * };
 * ```
 */
export interface AuthenticateOptions {
  /** The PAM service: the file name in the configuration directory. */
  service: string;
  /** The user name. */
  user: string;
  /** The password, given to every echo-off prompt. A `Uint8Array` is copied, not zeroed: wipe yours when done. */
  password: string | Uint8Array;
  /** Read service files from this directory instead of `/etc/pam.d`. */
  confdir?: string | undefined;
  /** The remote host (`PAM_RHOST`), for logging and modules such as pam_access. */
  rhost?: string | undefined;
  /** The terminal (`PAM_TTY`). */
  tty?: string | undefined;
  /** The remote user (`PAM_RUSER`). */
  ruser?: string | undefined;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string | undefined;
  /**
   * `"async"` (default): a failure rejects after the delay libpam computed, on
   * a timer, while the thread serves other checks; `"native"` sleeps it on the
   * worker; `"report"` rejects at once and sets `PamError.failDelayMs`.
   */
  failDelay?: AsyncFailDelay | undefined;
  /** `PAM_DISALLOW_NULL_AUTHTOK` for both calls. */
  disallowNullAuthtok?: boolean | undefined;
  /** Receives the modules' info and error messages. */
  onMessage?: ((message: PamMessage) => void) | undefined;
  /** Aborts the check (while queued for a thread, or at a pending prompt). */
  signal?: AbortSignal | undefined;
  /**
   * A prompt this binding cannot answer within this long fails the check
   * (only `onMessage` runs on the main thread). Default 300 000 (5 minutes);
   * `Infinity` waits for ever.
   */
  conversationTimeoutMs?: number | undefined;
}

const authenticateKeys = Object.keys(
  {
    service: true,
    user: true,
    password: true,
    confdir: true,
    rhost: true,
    tty: true,
    ruser: true,
    library: true,
    failDelay: true,
    disallowNullAuthtok: true,
    onMessage: true,
    signal: true,
    conversationTimeoutMs: true,
  } satisfies Record<keyof AuthenticateOptions, true>,
);

/**
 * What a successful {@linkcode authenticate} returns.
 *
 * @example
 * ```ts
 * import type { AuthenticateResult } from "@seed/pam";
 * const result: AuthenticateResult = { user: "alice" };
 * ```
 */
export interface AuthenticateResult {
  /** `PAM_USER` after the check: modules may map the name the user typed to another. */
  user: string;
}

/**
 * The check a login form needs, in one call: starts a transaction on a
 * pooled worker thread, sets the items, authenticates with `password`,
 * checks the account (`pam_acct_mgmt`) and ends. Rejects with
 * {@linkcode PamError} on any failure (`codeName` tells which).
 *
 * Run from local files rather than JSR, Deno's worker thread also needs
 * `--allow-read` for its module.
 *
 * @example
 * ```ts
 * import { authenticate, PamError } from "@seed/pam";
 * try {
 *   const { user } = await authenticate({ service: "login", user: "alice", password: "secret" });
 *   console.log(`welcome, ${user}`);
 * } catch (error) {
 *   if (error instanceof PamError) console.log(`refused: ${error.codeName}`);
 *   else throw error;
 * }
 * ```
 *
 * @throws {TypeError} (a rejection) for options of the wrong type, an unknown key, or a
 *   string with a NUL byte, before any thread is involved.
 * @throws {RangeError} (a rejection) for a password past `MAX_ANSWER_BYTES`, or a
 *   `conversationTimeoutMs` out of range.
 * @throws {PamError} (a rejection) when a PAM step fails (`codeName` tells which).
 * @throws {Error} (a rejection) when libpam cannot be loaded, `signal` aborted (its reason), or
 *   worker threads die before they start (the last death is its `cause`).
 *
 * @tags allow-ffi
 */
export async function authenticate(options: AuthenticateOptions): Promise<AuthenticateResult> {
  const what = "authenticate() options";
  if (options === undefined) throw new TypeError(`${what} are required`);
  const o = optionsObject<AuthenticateOptions>(options, what);
  checkKnownKeys(o, authenticateKeys, what);
  checkCString(o.user, "user");
  if (typeof o.password !== "string" && !(o.password instanceof Uint8Array)) {
    throw new TypeError(`password must be a string or a Uint8Array, got ${describe(o.password)}`);
  }
  if (typeof o.password === "string" ? o.password.includes("\0") : o.password.includes(0)) {
    throw new TypeError("password contains a NUL byte, which C would silently truncate");
  }
  // The conversation's limit, with or without onMessage: a RangeError before any thread.
  checkAnswerSize(o.password, "password");
  if (o.onMessage !== undefined && typeof o.onMessage !== "function") {
    throw new TypeError(`onMessage must be a function, got ${describe(o.onMessage)}`);
  }
  optionalBoolean(o.disallowNullAuthtok, "disallowNullAuthtok");
  const start = checkStartOptions(o, what);
  const items: Record<string, string> = {};
  for (const name of ["rhost", "tty", "ruser"] as const) {
    const value = o[name];
    if (value === undefined) continue;
    checkCString(value, name);
    items[name] = value;
  }
  // Without onMessage nothing needs the main thread during the check: the password goes
  // into the worker's shared buffer up front (never through structured clone) and the
  // worker answers the prompts itself, saving a round trip per prompt.
  const preload = o.onMessage === undefined;
  const conversation = preload
    ? undefined
    : passwordConversation(o.password, { onMessage: o.onMessage });
  const modules = holdModules(start.options);
  try {
    const worker = await acquireWorker(o.signal);
    const link = new Link(worker, conversation, o.signal, start);
    try {
      // `last`: the thread goes back to the pool with the reply, before a fail delay.
      const user = await link.request(
        {
          op: "oneShot",
          ...workerStart(start),
          conversation: !preload,
          preloadedPassword: preload,
          items,
          flags: o.disallowNullAuthtok ? { disallowNullAuthtok: true } : {},
        },
        preload ? [o.password] : undefined,
        true,
      );
      return { user: typeof user === "string" ? user : o.user };
    } finally {
      releaseWorker(worker, link.lease);
    }
  } finally {
    modules.release();
  }
}
