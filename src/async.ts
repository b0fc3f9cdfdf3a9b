/**
 * `AsyncPamTransaction` and the one-shot `authenticate()`: PAM for servers.
 * Every libpam call of a transaction runs on one worker thread that owns the
 * handle, so fail delays, network modules and slow conversations never block
 * the event loop; conversation handlers may be async.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { ItemName } from "./constants.ts";
import {
  checkAnswerSize,
  isObjectLike,
  type PamAnswer,
  type PamMessage,
  passwordConversation,
  snapshotAnswers,
  wipeByteAnswers,
  wipeSnapshot,
} from "./conversation.ts";
import {
  authFlags,
  chauthtokFlags,
  credFlag,
  endFlags,
  flagsOf,
  itemType,
  silentFlags,
  startOptionKeys,
} from "./flags.ts";
import { holdModules } from "./loaded_modules.ts";
import { acquireWorker, type Outcome, type PamWorker, releaseWorker } from "./pool.ts";
import type {
  AuthFlags,
  ChauthtokFlags,
  CredAction,
  PamTransactionOptions,
  SilentFlag,
  XAuthData,
} from "./transaction.ts";
import {
  checkConversation,
  checkCString,
  checkEnvEntry,
  checkFailDelay,
  checkKnownKeys,
  checkService,
  checkTimeoutMs,
  checkXAuthData,
  describe,
  optionalBoolean,
  optionsObject,
} from "./validate.ts";
import type { SerializedError, StartRequest } from "./async_channel.ts";
import { rebuildError } from "./_error_wire.ts";

/**
 * Answers one batch of messages, one answer per message; may return a
 * Promise (a synchronous {@linkcode Conversation} works too). Throwing,
 * rejecting, or the wrong number or type of answers fails the PAM call with
 * `PAM_CONV_ERR`; it never authenticates.
 *
 * @example
 * ```ts
 * import { type AsyncConversation, MessageStyle } from "@seed/pam";
 * const askUser = async (text: string) => "123456"; // e.g. over a WebSocket
 * const conversation: AsyncConversation = (messages) =>
 *   Promise.all(messages.map((m) =>
 *     m.style === MessageStyle.PROMPT_ECHO_OFF ? askUser(m.text) : null
 *   ));
 * ```
 */
export type AsyncConversation = (
  messages: readonly PamMessage[],
) => PamAnswer[] | Promise<PamAnswer[]>;

/**
 * How an {@linkcode AsyncPamTransaction} starts: the synchronous options,
 * an async-capable conversation, and cancellation.
 *
 * @example
 * ```ts
 * import type { AsyncPamTransactionOptions } from "@seed/pam";
 * const options: AsyncPamTransactionOptions = {
 *   service: "login",
 *   user: "alice",
 *   conversation: async (messages) => messages.map(() => "secret"),
 *   signal: AbortSignal.timeout(30_000),
 *   conversationTimeoutMs: 10_000,
 *   failDelay: "report",
 * };
 * ```
 */
export interface AsyncPamTransactionOptions
  extends Omit<PamTransactionOptions, "conversation" | "failDelay"> {
  /** Answers the modules' prompts, on the main thread; without one, prompts fail the call. */
  conversation?: AsyncConversation | undefined;
  /**
   * `"async"` (default): the call fails after the delay libpam computed, on a
   * timer of the main thread, and the transaction's next call waits for it
   * too; no thread sleeps. `"native"`: libpam sleeps it on the worker
   * thread. `"report"`: fail at once, `PamError.failDelayMs` says how long.
   */
  failDelay?: AsyncFailDelay | undefined;
  /**
   * Fails a pending conversation at once (the call rejects with `PamError`,
   * `cause` = the signal's reason) and every later call except `end()`.
   * Before the transaction has a thread, it rejects `start()` itself.
   */
  signal?: AbortSignal | undefined;
  /** A prompt left unanswered this long fails the call (`cause`: a `TimeoutError`). */
  conversationTimeoutMs?: number | undefined;
}

// The sync start's keys and the async ones; a record, so that the compiler says when an
// option is added to the interface but not here.
const asyncStartKeys: readonly string[] = [
  ...startOptionKeys,
  ...Object.keys(
    { signal: true, conversationTimeoutMs: true } satisfies Record<
      Exclude<keyof AsyncPamTransactionOptions, keyof PamTransactionOptions>,
      true
    >,
  ),
];

/**
 * How the async API treats a fail delay (see
 * {@linkcode AsyncPamTransactionOptions.failDelay}).
 *
 * @example
 * ```ts
 * import type { AsyncFailDelay } from "@seed/pam";
 * const mode: AsyncFailDelay = "async";
 * ```
 */
export type AsyncFailDelay = "async" | "native" | "report";

/** What {@linkcode checkStartOptions} returns: the start request, `failDelay` as the caller gave it. */
export interface CheckedStart {
  readonly options: Omit<StartRequest["options"], "failDelay"> & {
    failDelay?: AsyncFailDelay | undefined;
  };
  readonly conversationTimeoutMs?: number | undefined;
}

/** Checks the options every async start shares; also used by `login()` (src/session.ts). */
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
  const ms = checkTimeoutMs(o.conversationTimeoutMs, `${what}.conversationTimeoutMs`);
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
function workerStart(start: CheckedStart): Omit<StartRequest, "conversation"> {
  return {
    options: {
      ...start.options,
      failDelay: start.options.failDelay === "native" ? "native" : "report",
    },
    conversationTimeoutMs: start.conversationTimeoutMs,
  };
}

/** Whether failures wait out their delay on the main thread (the async API's default). */
const delaysOnTimer = (start: CheckedStart): boolean =>
  start.options.failDelay === undefined || start.options.failDelay === "async";

/**
 * Detaches a transaction from its start() signal, so that cleanup still runs
 * once that signal has fired: `login()` bounds the login with its caller's
 * signal, not the session it opens (src/session.ts). Not public.
 */
export let detachSignal: (tx: AsyncPamTransaction) => void;

/** One conversation in progress on the main thread, as its handler's async context sees it. */
interface ConversationTurn {
  readonly link: Link;
  settled: boolean;
}

/**
 * Which conversation the running code belongs to: a transaction's methods
 * called from inside its own pending conversation (the handler, or anything
 * it awaits) are refused at once, as they would wait for the very call that
 * waits for them.
 */
const conversationContext = new AsyncLocalStorage<ConversationTurn>();

/** Whether code running now is inside `link`'s own conversation, still waiting for its answer. */
function insideConversationOf(link: Link): boolean {
  const turn = conversationContext.getStore();
  return turn !== undefined && turn.link === link && !turn.settled;
}

/**
 * The main side of one worker while a transaction (or one-shot) holds it:
 * runs the handler for each conversation and turns the worker's outcomes
 * back into values and errors.
 */
class Link {
  readonly worker: PamWorker;
  /** The worker's lease when this link got it (see `releaseWorker`). */
  readonly lease: number;
  /** `failDelay: "async"`: a failure rejects only after its delay, on a timer. */
  readonly #delayFailures: boolean;
  readonly #handler: AsyncConversation | undefined;
  #signal: AbortSignal | undefined;
  readonly #timeoutMs: number | undefined;
  /** Why this call's conversation failed on the main side: the cause of its PamError. */
  /** The worker's newest conversation: only its failure is this call's cause. */
  #latestSeq = -1;
  #failure: { error: unknown } | undefined;
  /** Fails the conversation waiting for the handler, if one is. */
  #cancelPending: ((reason: unknown) => void) | undefined;

  constructor(
    worker: PamWorker,
    handler: AsyncConversation | undefined,
    signal: AbortSignal | undefined,
    start: CheckedStart,
  ) {
    const timeoutMs = start.conversationTimeoutMs;
    this.worker = worker;
    this.lease = worker.lease;
    this.#delayFailures = delaysOnTimer(start);
    this.#handler = handler;
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
    worker.onConverse = (seq, messages) => this.#converse(seq, messages);
  }

  /**
   * Sends one request and returns its value or throws its error; in
   * `failDelay: "async"` mode a failure with a fail delay throws only once
   * the delay has passed, on a timer (the worker is free by then: its slot
   * went back with the reply, and with `last` the thread too).
   */
  async request(
    request: Parameters<PamWorker["request"]>[0],
    answers?: Parameters<PamWorker["request"]>[1],
    last?: boolean,
  ): Promise<unknown> {
    this.#failure = undefined;
    const outcome: Outcome = await this.worker.request(request, answers, last);
    if (outcome.ok) return outcome.value;
    const error = this.#rebuild(outcome.error);
    const delayMs = this.#delayFailures ? outcome.error.pam?.failDelayMs : undefined;
    if (delayMs !== undefined && delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    throw error;
  }

  #converse(seq: number, received: readonly PamMessage[]): void {
    const handler = this.#handler;
    const signal = this.#signal;
    this.#latestSeq = seq;
    // What the answers are checked against, taken before the handler can reach the messages;
    // the handler gets them frozen.
    const styles = received.map((m) => m.style);
    for (const message of received) Object.freeze(message);
    const messages = Object.freeze(received);
    const turn: ConversationTurn = { link: this, settled: false };
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => fail(signal!.reason);
    const done = () => {
      settled = true;
      turn.settled = true;
      // A conversation the worker gave up on may settle after the next one began:
      // it must not take that one's cancel function or blame it for its own failure.
      if (this.#cancelPending === fail) this.#cancelPending = undefined;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const blame = (error: unknown) => {
      if (seq === this.#latestSeq) this.#failure = { error };
    };
    const fail = (error: unknown) => {
      if (settled) return;
      done();
      blame(error);
      this.worker.fail(seq);
    };
    // Every property access on what the handler returned happens in here, guarded.
    const succeed = (answers: unknown) => {
      if (settled) {
        wipeByteAnswers(answers);
        return;
      }
      done();
      let snapshot: PamAnswer[] | undefined;
      try {
        snapshot = snapshotAnswers(answers, styles);
        this.worker.answer(seq, snapshot);
      } catch (error) {
        blame(error);
        this.worker.fail(seq);
      } finally {
        if (snapshot) wipeSnapshot(snapshot);
      }
    };
    if (!handler) return fail(new TypeError("the transaction has no conversation"));
    this.#cancelPending = fail;
    if (signal?.aborted) return fail(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (this.#timeoutMs !== undefined) {
      const ms = this.#timeoutMs;
      timer = setTimeout(
        () =>
          fail(
            new DOMException(
              `the conversation handler did not answer within ${ms} ms (conversationTimeoutMs)`,
              "TimeoutError",
            ),
          ),
        ms,
      );
    }
    let result: unknown;
    let then: unknown;
    try {
      result = conversationContext.run(turn, handler, messages);
      // Read once: a getter may answer differently the second time, or throw.
      then = isObjectLike(result) ? (result as { then?: unknown }).then : undefined;
    } catch (error) {
      return fail(error);
    }
    if (typeof then !== "function") return succeed(result);
    // Adopted through the `then` already read; a throw from it rejects, and so does a
    // throwing getter of whatever it resolves with (the promise machinery reads that one).
    new Promise<unknown>((resolve, reject) => {
      (then as (this: unknown, ...a: unknown[]) => unknown).call(result, resolve, reject);
    }).then(succeed, fail).catch(() => this.worker.fail(seq));
  }

  /** The start() signal, until {@linkcode Link.detachSignal}. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** From now on, neither calls nor conversations fail when the start() signal fires. */
  detachSignal(): void {
    this.#signal = undefined;
  }

  /** Fails the pending conversation, if any, with `reason` as the call's cause. */
  cancel(reason: unknown): void {
    this.#cancelPending?.(reason);
  }

  #rebuild(s: SerializedError): Error {
    // With delayed failures the delay was waited out here, as libpam would have slept it.
    return rebuildError(s, this.#failure, this.#delayFailures);
  }
}

/**
 * One PAM transaction whose libpam calls all run on one worker thread that
 * owns the handle; every method returns a Promise, so neither a fail delay,
 * nor a module blocking on the network, nor a user taking their time to
 * answer a prompt holds up the event loop. Same methods, options and
 * {@linkcode PamError}s as the synchronous `PamTransaction`.
 *
 * Run from local files rather than JSR, Deno's worker thread also needs
 * `--allow-read` for its module.
 *
 * @example
 * ```ts
 * import { AsyncPamTransaction, PamError } from "@seed/pam";
 *
 * await using tx = await AsyncPamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: async (messages) => messages.map(() => "secret"),
 *   conversationTimeoutMs: 30_000,
 * });
 * try {
 *   await tx.authenticate();
 *   await tx.acctMgmt();
 * } catch (error) {
 *   if (error instanceof PamError) console.log(error.codeName);
 * }
 * ```
 *
 * @tags allow-ffi
 */
export class AsyncPamTransaction {
  readonly #link: Link;
  /** The service's modules, held loaded while this transaction lives (and a moment after). */
  readonly #modules: { release(): void };

  static {
    detachSignal = (tx) => tx.#link.detachSignal();
  }
  #tail: Promise<unknown> = Promise.resolve();
  #endPromise: Promise<void> | undefined;

  /**
   * Not for callers: `AsyncPamTransaction.start()` makes one.
   *
   * @ignore
   */
  private constructor(link: Link, modules: { release(): void }) {
    this.#link = link;
    this.#modules = modules;
  }

  /**
   * Starts a transaction on a pooled worker thread (`pam_start`, or
   * `pam_start_confdir` with `confdir`). Waits for a thread when all are
   * busy (see `setWorkerPoolSize`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * ```
   *
   * @throws {TypeError} (a rejection) for options of the wrong type, an unknown key, or a
   *   string with a NUL byte, before any thread is involved.
   * @throws {RangeError} (a rejection) for a `conversationTimeoutMs` out of range.
   * @throws {PamError} (a rejection) when `pam_start` fails.
   * @throws {Error} (a rejection) when libpam cannot be loaded, or `signal` aborted (its reason).
   */
  static async start(options: AsyncPamTransactionOptions): Promise<AsyncPamTransaction> {
    const what = "AsyncPamTransaction.start() options";
    const o = optionsObject<AsyncPamTransactionOptions>(options, what);
    checkKnownKeys(o, asyncStartKeys, what);
    checkConversation(o.conversation);
    const start = checkStartOptions(o, what);
    const signal = o.signal;
    const modules = holdModules(start.options);
    let worker: PamWorker;
    try {
      worker = await acquireWorker(signal);
    } catch (error) {
      modules.release();
      throw error;
    }
    const link = new Link(worker, o.conversation, signal, start);
    try {
      await link.request({
        op: "start",
        ...workerStart(start),
        conversation: o.conversation !== undefined,
      });
    } catch (error) {
      // pam_start failed, so the worker owns no handle: it can serve the next transaction.
      releaseWorker(worker, link.lease);
      modules.release();
      throw error;
    }
    const tx = new AsyncPamTransaction(link, modules);
    if (signal?.aborted) {
      await tx.end();
      throw signal.reason;
    }
    return tx;
  }

  /** `true` once {@linkcode AsyncPamTransaction.end} has been called. */
  get ended(): boolean {
    return this.#endPromise !== undefined;
  }

  /**
   * Authenticates the user (`pam_authenticate`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction, passwordConversation } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice", conversation: passwordConversation("pw") });
   * await tx.authenticate({ disallowNullAuthtok: true });
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_authenticate` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  authenticate(flags?: AuthFlags): Promise<void> {
    return this.#call(
      "authenticate",
      [flags],
      () => flagsOf(flags, "authenticate() flags", authFlags),
    ) as Promise<void>;
  }

  /**
   * Checks that the account may be used now (`pam_acct_mgmt`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.acctMgmt();
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_acct_mgmt` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  acctMgmt(flags?: AuthFlags): Promise<void> {
    return this.#call(
      "acctMgmt",
      [flags],
      () => flagsOf(flags, "acctMgmt() flags", authFlags),
    ) as Promise<void>;
  }

  /**
   * Establishes, deletes, reinitialises or refreshes the user's credentials (`pam_setcred`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.setCred("establish");
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_setcred` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  setCred(action: CredAction, flags?: SilentFlag): Promise<void> {
    return this.#call("setCred", [action, flags], () => {
      credFlag(action);
      flagsOf(flags, "setCred() flags", silentFlags);
    }) as Promise<void>;
  }

  /**
   * Changes the user's authentication token (`pam_chauthtok`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "passwd", user: "alice" });
   * await tx.chauthtok({ changeExpiredAuthtok: true });
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_chauthtok` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  chauthtok(flags?: ChauthtokFlags): Promise<void> {
    return this.#call(
      "chauthtok",
      [flags],
      () => flagsOf(flags, "chauthtok() flags", chauthtokFlags),
    ) as Promise<void>;
  }

  /**
   * Opens a session (`pam_open_session`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.openSession();
   * await tx.closeSession();
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_open_session` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  openSession(flags?: SilentFlag): Promise<void> {
    return this.#call(
      "openSession",
      [flags],
      () => flagsOf(flags, "openSession() flags", silentFlags),
    ) as Promise<void>;
  }

  /**
   * Closes the session (`pam_close_session`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.openSession();
   * await tx.closeSession({ silent: true });
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_close_session` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  closeSession(flags?: SilentFlag): Promise<void> {
    return this.#call(
      "closeSession",
      [flags],
      () => flagsOf(flags, "closeSession() flags", silentFlags),
    ) as Promise<void>;
  }

  /**
   * Reads a string item; `undefined` when it is unset.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * console.log(await tx.getItem("user")); // "alice"
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_get_item` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  getItem(name: ItemName): Promise<string | undefined> {
    return this.#call("getItem", [name], () => itemType(name)) as Promise<
      string | undefined
    >;
  }

  /**
   * Sets a string item. The value reaches the worker thread by structured
   * clone; prefer the conversation for secrets.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.setItem("rhost", "203.0.113.7");
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_set_item` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  setItem(name: ItemName, value: string): Promise<void> {
    return this.#call("setItem", [name, value], () => {
      itemType(name);
      checkCString(value, `the value of item "${name}"`);
    }) as Promise<void>;
  }

  /**
   * Reads `PAM_XAUTHDATA`; `undefined` when unset.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * console.log((await tx.getXAuthData())?.name);
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_get_item` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  getXAuthData(): Promise<XAuthData | undefined> {
    return this.#call("getXAuthData", [], () => {}) as Promise<XAuthData | undefined>;
  }

  /**
   * Sets `PAM_XAUTHDATA`. The worker's byte array is zeroed afterwards, but the
   * data crosses threads as a JSON array of numbers, a copy no one can wipe:
   * prefer the synchronous `PamTransaction.setXAuthData` for long-lived secrets.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.setXAuthData({ name: "MIT-MAGIC-COOKIE-1", data: crypto.getRandomValues(new Uint8Array(16)) });
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_set_item` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  setXAuthData(xauth: XAuthData): Promise<void> {
    return this.#call("setXAuthData", [xauth], () => checkXAuthData(xauth)) as Promise<void>;
  }

  /**
   * Reads one variable of the PAM environment (`pam_getenv`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.putEnv("LANG=C.UTF-8");
   * console.log(await tx.getEnv("LANG")); // "C.UTF-8"
   * ```
   *
   * @throws {TypeError} (a rejection) for a bad name, before the worker is asked.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  getEnv(name: string): Promise<string | undefined> {
    return this.#call(
      "getEnv",
      [name],
      () => checkCString(name, "the environment variable name"),
    ) as Promise<string | undefined>;
  }

  /**
   * Sets (`"NAME=value"`), empties (`"NAME="`) or deletes (`"NAME"`) a
   * variable of the PAM environment (`pam_putenv`).
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * await tx.putEnv("EDITOR=vi");
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_putenv` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  putEnv(entry: string): Promise<void> {
    return this.#call("putEnv", [entry], () => checkEnvEntry(entry)) as Promise<void>;
  }

  /**
   * The whole PAM environment (`pam_getenvlist`), as an object without a prototype.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * const env = await tx.getEnvList();
   * ```
   *
   * @throws {TypeError} (a rejection) for bad arguments, before the worker is asked.
   * @throws {PamError} (a rejection) when `pam_getenvlist` fails.
   * @throws {Error} (a rejection) once the transaction has ended, or its worker thread died.
   */
  getEnvList(): Promise<Record<string, string>> {
    // JSON brought the names across as own properties; keep them on an object without a
    // prototype, as the synchronous API returns (a name `__proto__` must stay a name).
    return this.#call("getEnvList", [], () => {}).then((env) =>
      Object.assign(Object.create(null), env)
    );
  }

  /**
   * Ends the transaction (`pam_end`, with the status of the last call) and
   * returns the thread to the pool, after the calls already made. A prompt
   * still waiting for the handler fails (that call rejects). Safe to call
   * again; every other method rejects afterwards. Works after an abort, a
   * timeout or a dead thread.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * const tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * try {
   *   await tx.authenticate();
   * } finally {
   *   await tx.end();
   * }
   * ```
   *
   * @throws {TypeError} (a rejection) for bad options.
   * @throws {Error} (a rejection) when called from inside the transaction's own conversation.
   */
  end(options?: SilentFlag): Promise<void> {
    if (this.#endPromise) return this.#endPromise;
    try {
      this.#refuseInsideConversation("end");
      flagsOf(options, "end() options", endFlags);
    } catch (error) {
      return Promise.reject(error);
    }
    // Giving up on the transaction gives up on a prompt still waiting for an answer.
    this.#link.cancel(
      new Error("end() was called while the conversation was waiting for an answer"),
    );
    const worker = this.#link.worker;
    const run = async () => {
      try {
        if (!worker.death) {
          await this.#link.request({ op: "end", silent: options?.silent }, undefined, true);
        }
      } catch (error) {
        // A thread that died has taken the handle with it: nothing is left to end.
        if (!worker.death) throw error;
      } finally {
        releaseWorker(worker, this.#link.lease);
        this.#modules.release();
      }
    };
    this.#endPromise = this.#tail.then(run, run);
    return this.#endPromise;
  }

  /**
   * Ends the transaction, for `await using`.
   *
   * @example
   * ```ts
   * import { AsyncPamTransaction } from "@seed/pam";
   * {
   *   await using tx = await AsyncPamTransaction.start({ service: "login", user: "alice" });
   * } // pam_end has run here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.end();
  }

  /**
   * Every method, reads included, refuses at once inside the transaction's own
   * conversation: the handle's thread is inside a module, waiting for that very answer.
   */
  #refuseInsideConversation(method: string): void {
    if (!insideConversationOf(this.#link)) return;
    throw new Error(
      `${method}() was called from inside this AsyncPamTransaction's own conversation: its ` +
        "thread is waiting for that answer, so the call could never run; read what the " +
        "handler needs before the call, or after it",
    );
  }

  #call(method: string, args: unknown[], validate: () => void): Promise<unknown> {
    try {
      if (this.ended) {
        throw new Error("this AsyncPamTransaction has ended (pam_end ran); start a new one");
      }
      this.#refuseInsideConversation(method);
      validate();
    } catch (error) {
      return Promise.reject(error);
    }
    // One call at a time, in order: the worker's conversation state belongs to one call.
    const run = () => {
      const signal = this.#link.signal;
      if (signal?.aborted) throw signal.reason;
      return this.#link.request({ op: "call", method, args });
    };
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => {});
    return result;
  }
}

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
  /** A prompt this binding cannot answer within this long fails the check. */
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
 * @throws {Error} (a rejection) when libpam cannot be loaded, or `signal` aborted (its reason).
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
