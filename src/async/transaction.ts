/**
 * `AsyncPamTransaction`: PAM for servers. Every libpam call of a
 * transaction runs on one worker thread that owns the handle, so fail
 * delays, network modules and slow conversations never block the event
 * loop; conversation handlers may be async.
 *
 * @module
 */

import type { ItemName } from "../constants.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { endFlags, flagsOf, startOptionKeys } from "../_flags.ts";
import { holdModules } from "../_module_hold.ts";
import { acquireWorker, releaseWorker } from "./_pool.ts";
import type { PamWorker } from "./_worker_client.ts";
import type {
  AuthFlags,
  ChauthtokFlags,
  CredAction,
  PamTransaction,
  PamTransactionOptions,
  SilentFlag,
  XAuthData,
} from "../transaction.ts";
import { checkConversation, checkKnownKeys, optionsObject } from "../_validate.ts";
import { insideConversationOf, Link, transactionAccess } from "./_link.ts";
import { type MethodArguments, type TransactionMethod, transactionMethods } from "./_methods.ts";
import { checkStartOptions, workerStart } from "./_start.ts";

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
  /**
   * A prompt left unanswered this long fails the call (`cause`: a
   * `TimeoutError`). Default 300 000 (5 minutes): a waiting conversation
   * holds a thread. `Infinity` waits for ever (end the transaction, or use
   * `signal`, to give the thread back).
   */
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
    transactionAccess.detachSignal = (tx) => tx.#link.detachSignal();
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
   * busy, or when transactions hold their whole share of the threads
   * (`maxThreads` minus `size`, see `setWorkerPoolSize`); `signal` aborts
   * the wait.
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
   * @throws {Error} (a rejection) when libpam cannot be loaded, `signal` aborted (its reason),
   *   or worker threads die before they start (the last death is its `cause`).
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
      worker = await acquireWorker(signal, { transaction: true });
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
    return this.#call("authenticate", [flags]);
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
    return this.#call("acctMgmt", [flags]);
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
    return this.#call("setCred", [action, flags]);
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
    return this.#call("chauthtok", [flags]);
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
    return this.#call("openSession", [flags]);
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
    return this.#call("closeSession", [flags]);
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
    return this.#call("getItem", [name]);
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
    return this.#call("setItem", [name, value]);
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
    return this.#call("getXAuthData", []);
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
    return this.#call("setXAuthData", [xauth]);
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
    return this.#call("getEnv", [name]);
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
    return this.#call("putEnv", [entry]);
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
    return this.#call("getEnvList", []).then((env) => Object.assign(Object.create(null), env));
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
    let silent: boolean;
    try {
      this.#refuseInsideConversation("end");
      // From the checked snapshot: a getter read again could send the worker something else.
      silent = flagsOf(options, "end() options", endFlags) !== 0;
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
          await this.#link.request({ op: "end", silent }, undefined, true);
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

  #call<K extends TransactionMethod>(
    method: K,
    args: MethodArguments<K>,
  ): Promise<ReturnType<PamTransaction[K]>> {
    let checked: unknown[];
    try {
      if (this.ended) {
        throw new Error("this AsyncPamTransaction has ended (pam_end ran); start a new one");
      }
      this.#refuseInsideConversation(method);
      checked = (transactionMethods[method] as (...args: MethodArguments<K>) => unknown[])(
        ...args,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    // One call at a time, in order: the worker's conversation state belongs to one call.
    const run = () => {
      const signal = this.#link.signal;
      if (signal?.aborted) throw signal.reason;
      return this.#link.request({ op: "call", method, args: checked }) as Promise<
        ReturnType<PamTransaction[K]>
      >;
    };
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => {});
    return result;
  }
}
