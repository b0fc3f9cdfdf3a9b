/**
 * The pool of PAM worker threads behind `AsyncPamTransaction` and
 * `authenticate()`: bounded, queued, reused, and never keeping the process
 * alive while idle.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import {
  ANSWERED,
  ASLEEP,
  CHANNEL_BYTES,
  type ConverseMessage,
  FAILED,
  readMessage,
  REPLY,
  REQUEST,
  STATE,
  stateWord,
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

/** A worker's reply to one request: its value, or the error flattened for the trip. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: Extract<WorkerReply, { type: "error" }>["error"] };

/** Requests in flight across the pool; a worker polls for its next one only while it is 1. */
const inFlight = new Int32Array(new SharedArrayBuffer(4));

type Pending = {
  resolve(outcome: Outcome): void;
  reject(error: Error): void;
};

/**
 * One worker thread, its shared buffer, and the one request in flight (a
 * transaction's calls are chained by its owner, so there is never a second).
 * Requests and replies travel through the buffer, handed over with
 * `Atomics.notify` and `Atomics.waitAsync`, not `postMessage`. The thread is
 * referenced (keeps the process alive) only while a request is in flight.
 */
export class PamWorker {
  readonly #worker: Worker;
  readonly #channel: SharedArrayBuffer = new SharedArrayBuffer(CHANNEL_BYTES);
  readonly #words: Int32Array = new Int32Array(this.#channel, 0, ASLEEP + 1);
  /** The request in flight; its id is the REQUEST word. */
  #current: Pending | undefined;
  #lastId = 0;
  #death: Error | undefined;
  /** Bound once, so waiting for a reply allocates no closure per request. */
  readonly #poll = (): void => this.#pollReply();
  /** Called with each batch of messages the worker's conversation sends. */
  onConverse: ((seq: number, messages: readonly PamMessage[]) => void) | undefined;
  /** Called once when the thread dies. */
  onDeath: ((worker: PamWorker) => void) | undefined;

  constructor(url: URL | string) {
    this.#worker = new Worker(workerEntry(url), {
      workerData: { channel: this.#channel, pool: inFlight.buffer },
    });
    this.#worker.unref();
    this.#worker.on("message", (message: ConverseMessage) => this.#converse(message));
    this.#worker.on("error", (error: Error) => this.#die(`${error.name}: ${error.message}`, error));
    this.#worker.on("exit", (code: number) => this.#die(`exit code ${code}`));
  }

  /** Why the thread died, once it has. */
  get death(): Error | undefined {
    return this.#death;
  }

  /**
   * Sends one request; resolves with the worker's outcome, rejects if the
   * thread dies. `answers` go into the answer area with it, for the request
   * to read (the one-shot's password); they are wiped again if the request
   * cannot be sent.
   */
  request(
    request: WorkerRequest,
    answers?: readonly (string | Uint8Array)[],
  ): Promise<Outcome> {
    if (this.#death) return Promise.reject(this.#death);
    if (this.#current) {
      return Promise.reject(new Error("a PAM worker serves one request at a time"));
    }
    try {
      if (answers) writeAnswers(this.#channel, answers);
      writeMessage(this.#channel, request);
    } catch (error) {
      if (answers) wipeAnswers(this.#channel);
      return Promise.reject(error);
    }
    return new Promise<Outcome>((resolve, reject) => {
      this.#current = { resolve, reject };
      // Ids stay positive and never repeat back to back; 0 is "nothing sent yet".
      this.#lastId = (this.#lastId % 0x3fffffff) + 1;
      this.#worker.ref();
      Atomics.add(inFlight, 0, 1);
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
    if (!this.#death && this.#claim(seq)) this.#settle(seq, FAILED);
  }

  /** Stops the thread (pool shrink, tests). Pending requests reject at once. */
  terminate(): void {
    this.#die("terminated");
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
    this.#worker.unref();
    Atomics.sub(inFlight, 0, 1);
    pending.resolve(
      reply.type === "result"
        ? { ok: true, value: reply.value }
        : { ok: false, error: reply.error },
    );
  }

  #converse(message: ConverseMessage): void {
    // A conversation of a request that is over (the worker gave up waiting) is stale.
    if (message.type !== "converse" || !this.#current || message.id !== this.#lastId) return;
    if (this.onConverse) this.onConverse(message.seq, message.messages);
    else this.fail(message.seq);
  }

  #die(reason: string, error?: Error): void {
    if (this.#death) return;
    this.#death = new Error(`The PAM worker thread died (${reason}); its transaction is lost`, {
      cause: error,
    });
    wipeChannel(this.#channel);
    const pending = this.#current;
    this.#current = undefined;
    if (pending) {
      Atomics.sub(inFlight, 0, 1);
      pending.reject(this.#death);
    }
    // Let the pending Atomics.waitAsync settle instead of waiting forever.
    Atomics.notify(this.#words, REPLY);
    this.#worker.unref();
    // Make sure the thread is gone (after an 'error' or on request); a no-op after 'exit'.
    this.#worker.terminate();
    this.onDeath?.(this);
  }
}

/**
 * The URL to start a worker from. Deno's `node:worker_threads` takes only
 * `file:` and `data:` URLs, but from JSR this module is an `https:` one: a
 * one-line `data:` module then imports the real entry (Deno's module cache
 * and `--allow-import` rules apply to it as to any import).
 */
function workerEntry(url: URL | string): URL | string {
  if (typeof url === "string" || url.protocol === "file:") return url;
  return new URL(`data:text/javascript,import ${encodeURIComponent(JSON.stringify(url.href))};`);
}

/**
 * How busy the pool is.
 *
 * @example
 * ```ts
 * import { workerPoolStats } from "@seed/pam";
 * const { workers, busy, queued } = workerPoolStats();
 * console.log(`${busy}/${workers} PAM threads busy, ${queued} waiting`);
 * ```
 */
export interface WorkerPoolStats {
  /** The most threads the pool starts. */
  readonly size: number;
  /** Threads alive now. */
  readonly workers: number;
  /** Threads holding a transaction. */
  readonly busy: number;
  /** Transactions waiting for a thread. */
  readonly queued: number;
  /** Threads started since the process began (a measure of reuse). */
  readonly started: number;
}

type Waiter = {
  resolve(worker: PamWorker): void;
  reject(error: unknown): void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
};

// Found at the first thread, not at import: in a compiled Bun program that means a search.
let workerUrl: URL | string | undefined;
let size = 4;
let started = 0;
const all = new Set<PamWorker>();
const idle: PamWorker[] = [];
const waiters: Waiter[] = [];

function spawn(): PamWorker {
  // A string only worker.ts holds (its refusal to be imported), to find it in a compiled program.
  workerUrl ??= entryUrl("worker", import.meta.url, "is the entry of a PAM worker thread");
  const worker = new PamWorker(workerUrl);
  started++;
  all.add(worker);
  worker.onDeath = (dead) => {
    all.delete(dead);
    const at = idle.indexOf(dead);
    if (at >= 0) idle.splice(at, 1);
    pump();
  };
  return worker;
}

/** An idle thread, or a new one while the pool is below its bound. */
function freeWorker(): PamWorker | undefined {
  return idle.pop() ?? (all.size < size ? spawn() : undefined);
}

/** Takes a thread out of the pool for good (the pool shrank). */
function retire(worker: PamWorker): void {
  all.delete(worker);
  worker.onDeath = undefined;
  worker.terminate();
}

/** Hands free capacity to waiting transactions, replacing dead threads as needed. */
function pump(): void {
  while (waiters.length > 0) {
    const worker = freeWorker();
    if (!worker) return;
    const waiter = waiters.shift()!;
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    waiter.resolve(worker);
  }
}

/** A thread for one transaction: idle, new (below the bound), or the next to be released. */
export function acquireWorker(signal?: AbortSignal): Promise<PamWorker> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const worker = freeWorker();
  if (worker) return Promise.resolve(worker);
  return new Promise<PamWorker>((resolve, reject) => {
    const waiter: Waiter = { resolve, reject, signal };
    if (signal) {
      waiter.onAbort = () => {
        const at = waiters.indexOf(waiter);
        if (at >= 0) waiters.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
    }
    waiters.push(waiter);
  });
}

/** Returns a thread to the pool once its transaction has ended. */
export function releaseWorker(worker: PamWorker): void {
  worker.onConverse = undefined;
  if (worker.death) return;
  if (all.size > size) retire(worker);
  else idle.push(worker);
  pump();
}

/**
 * Sets how many PAM worker threads may run at once (default 4). Each
 * transaction holds one thread from start to end; more transactions wait
 * in a queue. Raise it when modules block on the network or when many
 * failures each sleep out a fail delay (`failDelay: "native"`).
 *
 * @example
 * ```ts
 * import { setWorkerPoolSize } from "@seed/pam";
 * setWorkerPoolSize(16);
 * ```
 */
export function setWorkerPoolSize(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
    throw new TypeError(`setWorkerPoolSize() takes an integer from 1 to 1024, got ${threads}`);
  }
  size = threads;
  while (all.size > size && idle.length > 0) retire(idle.pop()!);
  pump();
}

/**
 * The pool's bound and current use.
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
    workers: all.size,
    busy: all.size - idle.length,
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
