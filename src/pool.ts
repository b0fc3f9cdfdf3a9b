/**
 * The pool of PAM worker threads behind `AsyncPamTransaction` and
 * `authenticate()`: a bound on the threads running libpam work at once
 * (`size`), a bound on the threads alive (`maxThreads`: each transaction
 * owns one, and a transaction waiting for its conversation handler, or
 * between calls, runs no libpam work), queued, reused, retired when idle,
 * and never keeping the process alive while idle.
 *
 * @module
 */

import { setInterval, setTimeout } from "node:timers";
import {
  ANSWERED,
  ASLEEP,
  CHANNEL_BYTES,
  type ConverseMessage,
  FAILED,
  readMessage,
  type ReadyMessage,
  REPLY,
  REQUEST,
  STATE,
  stateWord,
  THREAD_ID,
  WAITING,
  wipeAnswers,
  wipeChannel,
  type WorkerReply,
  type WorkerRequest,
  writeAnswers,
  writeMessage,
  WRITING,
} from "./async_channel.ts";
import type { PamMessage } from "./conversation.ts";
import { entryUrl } from "./entry_url.ts";
import { type SpawnedThread, spawnThread } from "./thread_spawner.ts";
import { openLibc } from "./library.ts";

/** A worker's reply to one request: its value, or the error flattened for the trip. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: Extract<WorkerReply, { type: "error" }>["error"] };

/**
 * Requests running libpam work across the pool (sent, not yet answered, not
 * waiting for a conversation handler); a worker polls for its next one only
 * while it is 1.
 */
const inFlight = new Int32Array(new SharedArrayBuffer(4));

type Pending = {
  resolve(outcome: Outcome): void;
  reject(error: Error): void;
  /** The thread's last request for its holder: released to the pool with the reply. */
  last: boolean;
};

/**
 * One worker thread, its shared buffer, and the one request in flight (a
 * transaction's calls are chained by its owner, so there is never a second).
 * Requests and replies travel through the buffer, handed over with
 * `Atomics.notify` and `Atomics.waitAsync`, not `postMessage`. The thread is
 * referenced (keeps the process alive) only while a request is in flight.
 */
export class PamWorker {
  readonly #thread: SpawnedThread;
  readonly #channel: SharedArrayBuffer = new SharedArrayBuffer(CHANNEL_BYTES);
  readonly #words: Int32Array = new Int32Array(this.#channel, 0, THREAD_ID + 1);
  /** The request in flight; its id is the REQUEST word. */
  #current: Pending | undefined;
  #lastId = 0;
  #death: Error | undefined;
  /** Whether this thread holds one of the pool's run slots (see {@linkcode takeSlot}). */
  #slot = false;
  #lease = 0;
  /** Whether the request in flight counts in {@linkcode inFlight}. */
  #counted = false;
  /** Bound once, so waiting for a reply allocates no closure per request. */
  readonly #poll = (): void => this.#pollReply();
  /** Called with each batch of messages the worker's conversation sends. */
  onConverse: ((seq: number, messages: readonly PamMessage[]) => void) | undefined;
  /** Called once when the thread runs and can take requests. */
  onReady: ((worker: PamWorker) => void) | undefined;
  #ready = false;
  /** Whether the thread is referenced while it starts (work waits for it). */
  #startRef = false;
  /** Called once when the thread dies. */
  onDeath: ((worker: PamWorker) => void) | undefined;

  constructor(url: URL | string) {
    this.#thread = spawnThread(url, { channel: this.#channel, pool: inFlight.buffer }, {
      message: (message) => this.#message(message as ConverseMessage | ReadyMessage),
      death: (reason) => this.#die(reason),
    });
  }

  /** Why the thread died, once it has. */
  get death(): Error | undefined {
    return this.#death;
  }

  /** Whether the thread has said it runs (see {@linkcode PamWorker.onReady}). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Keeps the process alive until the thread runs: a caller waits for it. */
  holdWhileStarting(): void {
    if (this.#ready || this.#startRef || this.#death) return;
    this.#startRef = true;
    this.#thread.ref();
  }

  /**
   * Sends one request once the pool has a run slot for it (see
   * {@linkcode setWorkerPoolSize}); resolves with the worker's outcome,
   * rejects if the thread dies. `answers` go into the answer area with it,
   * for the request to read (the one-shot's password); they are wiped again
   * if the request cannot be sent. With `last`, the thread goes back to the
   * pool the moment the reply is in (a one-shot, `end`), before whatever its
   * caller does next (a fail delay on a timer, say) and before the next
   * queued call looks for a thread.
   */
  request(
    request: WorkerRequest,
    answers?: readonly (string | Uint8Array)[],
    last = false,
  ): Promise<Outcome> {
    if (this.#death) return Promise.reject(this.#death);
    if (this.#current) {
      return Promise.reject(new Error("a PAM worker serves one request at a time"));
    }
    if (!this.#slot) {
      const wait = takeSlot();
      if (wait) {
        return wait.then(() => {
          this.#slot = true;
          return this.request(request, answers, last);
        });
      }
      this.#slot = true;
    }
    try {
      if (answers) writeAnswers(this.#channel, answers);
      writeMessage(this.#channel, request);
    } catch (error) {
      if (answers) wipeAnswers(this.#channel);
      this.#releaseSlot();
      return Promise.reject(error);
    }
    return new Promise<Outcome>((resolve, reject) => {
      this.#current = { resolve, reject, last };
      // Ids stay positive and never repeat back to back; 0 is "nothing sent yet".
      this.#lastId = (this.#lastId % 0x3fffffff) + 1;
      this.#thread.ref();
      this.#count(true);
      Atomics.store(this.#words, REQUEST, this.#lastId);
      // A worker still polling sees the new id by itself (see ASLEEP).
      if (Atomics.load(this.#words, ASLEEP) === 1) Atomics.notify(this.#words, REQUEST);
      this.#pollReply();
    });
  }

  /**
   * Delivers answers to conversation `seq`. Returns `false` when that
   * conversation is no longer waiting (the worker gave up or moved on).
   * Throws (and fails the conversation) when the answers do not fit.
   */
  answer(seq: number, answers: readonly (string | Uint8Array | null | undefined)[]): boolean {
    if (this.#death || !this.#claim(seq)) return false;
    this.#resume();
    try {
      writeAnswers(this.#channel, answers);
    } catch (error) {
      this.#settle(seq, FAILED);
      throw error;
    }
    this.#settle(seq, ANSWERED);
    return true;
  }

  /** Fails conversation `seq` (the handler threw, rejected, timed out or was aborted). */
  fail(seq: number): void {
    if (this.#death || !this.#claim(seq)) return;
    this.#resume();
    this.#settle(seq, FAILED);
  }

  /**
   * Counts the times this thread was lent to a holder: a holder releases
   * the thread it was lent, never its next holder's (see
   * {@linkcode releaseWorker}).
   */
  get lease(): number {
    return this.#lease;
  }

  /** Lends the thread to a new holder, with the run slot taken for its first request. */
  lend(): void {
    this.#lease++;
    this.#slot = true;
  }

  /**
   * The worker goes back to libpam work after a conversation: it counts
   * again, at once (a slot taken past the bound for a moment rather than an
   * answer held back).
   */
  #resume(): void {
    if (!this.#current) return;
    if (!this.#slot) {
      this.#slot = true;
      running++;
    }
    this.#count(true);
  }

  /** Gives the run slot back (the reply came, or the worker waits for the handler). */
  #releaseSlot(thenPump = true): void {
    if (!this.#slot) return;
    this.#slot = false;
    running--;
    if (thenPump) pump();
  }

  #count(on: boolean): void {
    if (this.#counted === on) return;
    this.#counted = on;
    Atomics.add(inFlight, 0, on ? 1 : -1);
  }

  /** Stops the thread (pool shrink, tests). Pending requests reject at once. */
  terminate(): void {
    this.#die("terminated");
  }

  /**
   * Fails the request in flight if the worker's OS thread no longer exists:
   * a module that calls `pthread_exit` ends it without the runtime reporting
   * an exit, and the request would wait forever.
   */
  checkThread(): void {
    if (!this.#current || this.#death) return;
    const tid = Atomics.load(this.#words, THREAD_ID);
    if (tid !== 0 && !threadExists(tid)) {
      this.#die("its OS thread ended inside libpam or a module, as pthread_exit does", {
        vanished: true,
      });
    }
  }

  #claim(seq: number): boolean {
    const waiting = stateWord(seq, WAITING);
    return Atomics.compareExchange(this.#words, STATE, waiting, stateWord(seq, WRITING)) ===
      waiting;
  }

  #settle(seq: number, phase: number): void {
    Atomics.store(this.#words, STATE, stateWord(seq, phase));
    Atomics.notify(this.#words, STATE);
  }

  /** Takes the reply if it is there, else waits for the worker to publish it. */
  #pollReply(): void {
    const id = this.#lastId;
    const words = this.#words;
    for (;;) {
      if (this.#death || !this.#current) return;
      const replied = Atomics.load(words, REPLY);
      if (replied === id) break;
      const wait = Atomics.waitAsync(words, REPLY, replied);
      if (wait.async) {
        wait.value.then(this.#poll);
        return;
      }
    }
    const pending = this.#current;
    const reply = readMessage(this.#channel) as WorkerReply;
    this.#current = undefined;
    this.#thread.unref();
    this.#count(false);
    // The slot first, then the thread, then the queue: the next caller finds both free.
    this.#releaseSlot(false);
    if (pending.last) releaseWorker(this, this.#lease);
    pump();
    pending.resolve(
      reply.type === "result"
        ? { ok: true, value: reply.value }
        : { ok: false, error: reply.error },
    );
  }

  #message(message: ConverseMessage | ReadyMessage): void {
    if (message.type === "ready") {
      if (this.#ready || this.#death) return;
      this.#ready = true;
      if (this.#startRef) {
        this.#startRef = false;
        if (!this.#current) this.#thread.unref();
      }
      this.onReady?.(this);
      return;
    }
    this.#converse(message);
  }

  #converse(message: ConverseMessage): void {
    // A conversation of a request that is over (the worker gave up waiting) is stale.
    if (message.type !== "converse" || !this.#current || message.id !== this.#lastId) return;
    if (!this.onConverse) return this.fail(message.seq);
    // Waiting for the application's handler (a person, maybe) is no libpam work: the slot
    // goes to the next request while this thread waits.
    this.#count(false);
    this.#releaseSlot();
    this.onConverse(message.seq, message.messages);
  }

  #die(reason: string, how: { cause?: Error; vanished?: boolean } = {}): void {
    if (this.#death) return;
    this.#death = new Error(`the PAM worker thread died (${reason}); its transaction is lost`, {
      cause: how.cause,
    });
    wipeChannel(this.#channel);
    const pending = this.#current;
    this.#current = undefined;
    this.#count(false);
    this.#releaseSlot();
    if (pending) pending.reject(this.#death);
    // Let the pending Atomics.waitAsync settle instead of waiting forever.
    Atomics.notify(this.#words, REPLY);
    this.#thread.unref();
    // Make sure the thread is gone (on request); a no-op once it has exited. Not for a thread
    // that no longer exists: Bun's terminate() would wait for it, and keep the process alive.
    if (!how.vanished) this.#thread.terminate();
    this.onDeath?.(this);
  }
}

/**
 * How busy the pool is.
 *
 * @example
 * ```ts
 * import { workerPoolStats } from "@seed/pam";
 * const { workers, busy, held, queued } = workerPoolStats();
 * console.log(`${busy} PAM threads at work, ${held}/${workers} held, ${queued} waiting`);
 * ```
 */
export interface WorkerPoolStats {
  /** The most threads running libpam work at once. */
  readonly size: number;
  /** The most threads alive at once (each transaction holds one from start to end). */
  readonly maxThreads: number;
  /** Threads alive now. */
  readonly workers: number;
  /**
   * Threads running libpam work now: a request sent and not yet answered,
   * and not waiting for the application's conversation handler.
   */
  readonly busy: number;
  /** Threads held by a transaction or one-shot, at work or not. */
  readonly held: number;
  /** Threads started that do not run yet (they take no work until they do). */
  readonly starting: number;
  /** Transactions and calls waiting for a thread or for a run slot. */
  readonly queued: number;
  /** Threads started since the process began (a measure of reuse). */
  readonly started: number;
}

/** A caller waiting for a run slot, and for a thread of its own when `thread` is set. */
type Waiter = {
  readonly thread: boolean;
  resolve(worker: PamWorker | undefined): void;
  reject(error: unknown): void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
};

// Found at the first thread, not at import: in a compiled Bun program that means a search.
let workerUrl: URL | string | undefined;
/** The default and smallest bound on threads alive; documented in docs/async.md. */
const MAX_THREADS = 64;
/** An idle thread beyond `size` is stopped after this long without work. */
const RETIRE_AFTER_MS = 10_000;
let size = 4;
let maxThreads = MAX_THREADS;
let started = 0;
/** Run slots taken: requests running libpam work (see {@linkcode PamWorker.request}). */
let running = 0;
const all = new Set<PamWorker>();
/** Threads started that have not said they run yet; no work goes to them. */
const starting = new Set<PamWorker>();
/** Threads no transaction holds, newest last, with when each became idle. */
const idle: PamWorker[] = [];
const idleSince = new WeakMap<PamWorker, number>();
const waiters: Waiter[] = [];
let retireTimer: ReturnType<typeof setTimeout> | undefined;

/** Whether thread `tid` of this process still exists (`tgkill` with signal 0 sends nothing). */
function threadExists(tid: number): boolean {
  const libc = openLibc();
  if (!libc.tgkill) return true;
  return libc.tgkill(libc.getpid(), tid, 0) === 0;
}

/** How often the pool looks for busy workers whose thread has vanished. */
const THREAD_CHECK_MS = 500;
let threadWatch: ReturnType<typeof setInterval> | undefined;

/** Starts the check once: it never keeps the process alive (a busy worker does). */
function watchThreads(): void {
  if (threadWatch !== undefined) return;
  threadWatch = setInterval(() => {
    for (const worker of all) worker.checkThread();
  }, THREAD_CHECK_MS).unref();
}

/**
 * Starts a thread; it joins the idle ones once it says it runs. `demand`:
 * a caller waits for it, so it keeps the process alive until then.
 */
function spawn(demand: boolean): void {
  // A string only worker.ts holds (its refusal to be imported), to find it in a compiled program.
  workerUrl ??= entryUrl("worker", import.meta.url, "is the entry of a PAM worker thread");
  watchThreads();
  const worker = new PamWorker(workerUrl);
  started++;
  all.add(worker);
  starting.add(worker);
  if (demand) worker.holdWhileStarting();
  worker.onReady = (ready) => {
    starting.delete(ready);
    idle.push(ready);
    idleSince.set(ready, performance.now());
    scheduleRetire();
    pump();
  };
  worker.onDeath = (dead) => {
    all.delete(dead);
    starting.delete(dead);
    const at = idle.indexOf(dead);
    if (at >= 0) idle.splice(at, 1);
    pump();
  };
}

/** An idle thread that runs; new threads are started by {@linkcode pump}. */
function freeWorker(): PamWorker | undefined {
  return idle.pop();
}

/**
 * Starts one idle thread ahead of need once `size` threads are held and none
 * is idle: then the next caller can only be served by a new thread, which on
 * Deno starts late (see src/thread_spawner.ts); a check arriving
 * beside held transactions (prompts waiting for a person) finds this one.
 */
function startSpare(): void {
  if (idle.length > 0 || starting.size > 0 || all.size >= maxThreads || all.size < size) return;
  spawn(false);
}

/** Takes a thread out of the pool for good. */
function retire(worker: PamWorker): void {
  all.delete(worker);
  worker.onDeath = undefined;
  worker.terminate();
}

/**
 * Stops the threads beyond `size` that have been idle for
 * {@linkcode RETIRE_AFTER_MS}, oldest first; a burst of waiting
 * conversations leaves no threads behind once it is over.
 */
function retireIdle(): void {
  retireTimer = undefined;
  const now = performance.now();
  while (all.size > size && idle.length > 0) {
    const oldest = idle[0];
    const since = idleSince.get(oldest) ?? 0;
    if (now - since < RETIRE_AFTER_MS) break;
    idle.shift();
    retire(oldest);
  }
  scheduleRetire();
}

function scheduleRetire(): void {
  if (retireTimer !== undefined || all.size <= size || idle.length === 0) return;
  const wait = RETIRE_AFTER_MS - (performance.now() - (idleSince.get(idle[0]) ?? 0));
  retireTimer = setTimeout(retireIdle, Math.max(1, wait));
  // The pool never keeps the process alive while idle.
  retireTimer.unref();
}

/**
 * Takes a run slot if one is free and nobody queues for one; otherwise
 * returns the promise of one (FIFO with {@linkcode acquireWorker}'s callers).
 */
function takeSlot(): Promise<void> | undefined {
  if (waiters.length === 0 && running < size) {
    running++;
    return undefined;
  }
  return new Promise<void>((resolve, reject) => {
    waiters.push({ thread: false, resolve: () => resolve(), reject });
    pump();
  });
}

/**
 * Hands free run slots (and threads) to the queue, in order. A caller that
 * needs a thread when none can start is passed over, not waited for: the
 * calls queued behind it may belong to the very transactions whose end
 * frees a thread.
 */
function pump(): void {
  let unserved = 0;
  for (let i = 0; i < waiters.length && running < size;) {
    const waiter = waiters[i];
    let worker: PamWorker | undefined;
    if (waiter.thread) {
      worker = freeWorker();
      if (!worker) {
        unserved++;
        i++;
        continue;
      }
      worker.lend();
      startSpare();
    }
    waiters.splice(i, 1);
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    running++;
    waiter.resolve(worker);
  }
  // Callers a run slot awaits but no thread: start threads for them (they join when running;
  // one freed before then serves the queue first), no more than could run now.
  unserved = Math.min(unserved, Math.max(0, size - running));
  while (starting.size < unserved && all.size < maxThreads) spawn(true);
  for (const worker of starting) if (unserved-- > 0) worker.holdWhileStarting();
}

/**
 * A thread for one transaction (idle, or new below `maxThreads`) and a run
 * slot for its first request; waits for both when the pool has neither.
 */
export function acquireWorker(signal?: AbortSignal): Promise<PamWorker> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (waiters.length === 0 && running < size) {
    const worker = freeWorker();
    if (worker) {
      running++;
      worker.lend();
      startSpare();
      return Promise.resolve(worker);
    }
  }
  return new Promise<PamWorker>((resolve, reject) => {
    const waiter: Waiter = {
      thread: true,
      resolve: (worker) => resolve(worker!),
      reject,
      signal,
    };
    if (signal) {
      waiter.onAbort = () => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
    }
    waiters.push(waiter);
    pump();
  });
}

/**
 * Returns a thread to the pool once its transaction has ended; `lease` is
 * the thread's {@linkcode PamWorker.lease} when it was lent. A no-op when
 * the thread went back already (with its last reply, see
 * {@linkcode PamWorker.request}) and maybe to another holder since.
 */
export function releaseWorker(worker: PamWorker, lease: number): void {
  if (worker.lease !== lease || idle.includes(worker)) return;
  worker.onConverse = undefined;
  if (worker.death || !all.has(worker)) return;
  idle.push(worker);
  idleSince.set(worker, performance.now());
  scheduleRetire();
  pump();
}

/**
 * Sets how many PAM worker threads may run libpam work at once (default 4),
 * and how many threads may be alive at once (`maxThreads`, default 64, at
 * least `threads`). Each transaction holds one thread from start to end,
 * but only its calls count against `threads`, and not while they wait for
 * the conversation handler: a login waiting for a person takes a thread,
 * not a turn. Calls beyond the bound wait in a queue; threads idle beyond
 * `threads` stop after 10 s.
 *
 * @throws {TypeError} when `threads` or `maxThreads` is not a number, or `options` is not an
 *   object or has an unknown key.
 * @throws {RangeError} when `threads` or `maxThreads` is not an integer from 1 to 1024, or
 *   `maxThreads` is below `threads`.
 * @example
 * ```ts
 * import { setWorkerPoolSize } from "@seed/pam";
 * setWorkerPoolSize(8, { maxThreads: 128 });
 * ```
 */
export function setWorkerPoolSize(threads: number, options?: { maxThreads?: number }): void {
  const bounded = (n: unknown) =>
    Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1024;
  if (typeof threads !== "number") {
    throw new TypeError(`setWorkerPoolSize() takes a number of threads, got ${typeof threads}`);
  }
  if (!bounded(threads)) {
    throw new RangeError(`setWorkerPoolSize() takes an integer from 1 to 1024, got ${threads}`);
  }
  if (options !== undefined) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("setWorkerPoolSize() options must be an object");
    }
    for (const key of Object.keys(options)) {
      if (key !== "maxThreads") {
        throw new TypeError(`setWorkerPoolSize() has no option ${JSON.stringify(key)}`);
      }
    }
  }
  const max = options?.maxThreads ?? Math.max(MAX_THREADS, threads);
  if (typeof max !== "number") {
    throw new TypeError(`setWorkerPoolSize() maxThreads must be a number, got ${typeof max}`);
  }
  if (!bounded(max) || max < threads) {
    throw new RangeError(
      `setWorkerPoolSize() maxThreads must be an integer from ${threads} to 1024, got ${max}`,
    );
  }
  size = threads;
  maxThreads = max;
  while (all.size > size && idle.length > 0) retire(idle.shift()!);
  pump();
}

/**
 * Starts `size` threads ahead of time, so that the first checks of a
 * server find them running (`workerPoolStats().starting` falls to 0).
 * Optional; the pool starts by itself on first use. On Deno the main
 * thread pays two threads' start-up (the first PAM thread, then the one
 * that starts all others, each in a turn of its own, tens of milliseconds,
 * once); later threads start without it.
 *
 * Run from local files rather than JSR, Deno's worker thread also needs
 * `--allow-read` for its module.
 *
 * @example
 * ```ts
 * import { startWorkerPool } from "@seed/pam";
 * startWorkerPool(); // at server start, before listening
 * ```
 *
 * @tags allow-ffi
 */
export function startWorkerPool(): void {
  while (all.size < size) spawn(false);
}

/**
 * The pool's bounds and current use.
 *
 * @example
 * ```ts
 * import { workerPoolStats } from "@seed/pam";
 * console.log(workerPoolStats().size); // 4
 * ```
 */
export function workerPoolStats(): WorkerPoolStats {
  return {
    size,
    maxThreads,
    workers: all.size,
    busy: running,
    held: all.size - idle.length - starting.size,
    starting: starting.size,
    queued: waiters.length,
    started,
  };
}

/**
 * Terminates every worker thread, busy or idle (for tests of thread death;
 * not exported from `mod.ts`). Their transactions' pending calls reject.
 */
export function terminateAllWorkers(): void {
  for (const worker of [...all]) worker.terminate();
}
