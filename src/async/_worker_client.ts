/**
 * The main thread's side of one PAM worker thread: its shared buffer, the
 * one request in flight and its reply, the conversations it forwards, and
 * its death. The pool (`src/async/_pool.ts`) lends it to transactions and
 * hands it run slots through {@linkcode PoolHooks}.
 *
 * @module
 */

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
} from "./_channel.ts";
import type { PamMessage } from "../conversation.ts";
import { openLibc } from "../_library.ts";
import { type SpawnedThread, spawnThread } from "../_thread_spawner.ts";

/** What a worker asks of the pool it belongs to. */
export interface PoolHooks {
  /** Takes a run slot if one is free; otherwise returns the promise of one. */
  takeSlot(): Promise<void> | undefined;
  /** Gives a run slot back; with `thenPump`, the queue is served at once. */
  freeSlot(thenPump: boolean): void;
  /** Hands free run slots and threads to the queue. */
  pump(): void;
  /** Returns the thread to the pool: its holder's last reply is in. */
  release(worker: PamWorker, lease: number): void;
}

/** Whether thread `tid` of this process still exists (`tgkill` with signal 0 sends nothing). */
function threadExists(tid: number): boolean {
  const libc = openLibc();
  if (!libc.tgkill) return true;
  return libc.tgkill(libc.getpid(), tid, 0) === 0;
}

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
  /** Whether this thread holds one of the pool's run slots (see {@linkcode PoolHooks.takeSlot}). */
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
  /** Whether the pool stopped the thread (see {@linkcode PamWorker.stillborn}). */
  #stopped = false;
  /** Whether the thread is referenced while it starts (work waits for it). */
  #startRef = false;
  /** Called once when the thread dies. */
  onDeath: ((worker: PamWorker) => void) | undefined;

  readonly #pool: PoolHooks;

  constructor(url: URL | string, pool: PoolHooks) {
    this.#pool = pool;
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
   * `setWorkerPoolSize()`); resolves with the worker's outcome,
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
    if (this.#death) {
      // A slot granted while the thread died (the call waited in takeSlot) goes back.
      this.#releaseSlot();
      return Promise.reject(this.#death);
    }
    if (this.#current) {
      return Promise.reject(new Error("a PAM worker serves one request at a time"));
    }
    if (!this.#slot) {
      const wait = this.#pool.takeSlot();
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
      // Only a method call's arguments can hold bytes (setXAuthData) or undefined in an array.
      writeMessage(this.#channel, request, request.op !== "call");
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
    try {
      writeAnswers(this.#channel, answers);
    } catch (error) {
      this.#resume(seq, FAILED);
      throw error;
    }
    this.#resume(seq, ANSWERED);
    return true;
  }

  /** Fails conversation `seq` (the handler threw, rejected, timed out or was aborted). */
  fail(seq: number): void {
    if (this.#death || !this.#claim(seq)) return;
    this.#resume(seq, FAILED);
  }

  /**
   * Changes each time the thread changes hands (lent, or given back): a
   * holder's lease is the value when it was lent, and releases the thread
   * once, never its next holder's (see `releaseWorker()`).
   */
  get lease(): number {
    return this.#lease;
  }

  /** Lends the thread to a new holder, with the run slot taken for its first request. */
  lend(): void {
    this.#lease++;
    this.#slot = true;
  }

  /** Ends the holder's lease: the thread is back in the pool (see `releaseWorker()`). */
  endLease(): void {
    this.#lease++;
  }

  /**
   * Whether the thread died before it ever said it runs, of itself (not
   * terminated by the pool): its entry cannot start (see `src/async/_pool.ts`).
   */
  get stillborn(): boolean {
    return this.#death !== undefined && !this.#ready && !this.#stopped;
  }

  /**
   * Hands conversation `seq`'s outcome (`phase`, its answers already in the
   * buffer) to the worker once it has a run slot again: it goes back to
   * libpam work, which counts against `size` like any request. No deadlock
   * can come of the wait: a slot is held only by a request at libpam work on
   * a thread of its own (a conversation gives its slot back, and a one-shot's
   * worker answers its prompts itself), never by one waiting for the main
   * thread. Meanwhile the state word says WRITING, so the worker neither
   * reads the answers early nor gives up on them.
   */
  #resume(seq: number, phase: number): void {
    if (!this.#current || this.#slot) return this.#deliver(seq, phase);
    const wait = this.#pool.takeSlot();
    if (!wait) {
      this.#slot = true;
      return this.#deliver(seq, phase);
    }
    const request = this.#lastId;
    wait.then(() => {
      this.#slot = true;
      // The thread died meanwhile (its buffer is wiped): the slot goes back.
      if (this.#death || !this.#current || this.#lastId !== request) return this.#releaseSlot();
      this.#deliver(seq, phase);
    });
  }

  #deliver(seq: number, phase: number): void {
    if (this.#current) this.#count(true);
    this.#settle(seq, phase);
  }

  /** Gives the run slot back (the reply came, or the worker waits for the handler). */
  #releaseSlot(thenPump = true): void {
    if (!this.#slot) return;
    this.#slot = false;
    this.#pool.freeSlot(thenPump);
  }

  #count(on: boolean): void {
    if (this.#counted === on) return;
    this.#counted = on;
    Atomics.add(inFlight, 0, on ? 1 : -1);
  }

  /** Stops the thread (pool shrink, tests). Pending requests reject at once. */
  terminate(): void {
    this.#stopped = true;
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
    if (pending.last) this.#pool.release(this, this.#lease);
    this.#pool.pump();
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
