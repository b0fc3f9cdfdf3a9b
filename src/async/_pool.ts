/**
 * The pool of PAM worker threads behind `AsyncPamTransaction` and
 * `authenticate()`: a bound on the threads running libpam work at once
 * (`size`), a bound on the threads alive (`maxThreads`: each transaction
 * owns one, and a transaction waiting for its conversation handler, or
 * between calls, runs no libpam work), of which transactions may hold all
 * but `size` (the one-shots' reserve), queued, reused, retired when idle,
 * and never keeping the process alive while idle. Threads that die before
 * they run fail their callers rather than being started again and again.
 * Its public controls are `src/async/pool.ts`.
 *
 * @module
 */

import { setInterval, setTimeout } from "node:timers";
import { entryUrl } from "../_entry_url.ts";
import type { WorkerPoolStats } from "./pool.ts";
import { PamWorker, type PoolHooks } from "./_worker_client.ts";

/** A caller waiting for a run slot, and for a thread of its own when `thread` is set. */
type Waiter = {
  readonly thread: boolean;
  /** A transaction's start: it may hold only its share of the threads ({@linkcode transactionShare}). */
  readonly transaction: boolean;
  resolve(worker: PamWorker | undefined): void;
  reject(error: unknown): void;
  signal?: AbortSignal | undefined;
  onAbort?: () => void;
};

// Found at the first thread, not at import: in a compiled Bun program that means a search.
let workerUrl: URL | string | undefined;
/** The entry tests start threads from instead ({@linkcode _setWorkerEntryForTests}). */
let testEntry: URL | string | undefined;
/** After this many threads in a row die before they run, their callers are failed. */
const STILLBORN_LIMIT = 3;
/** Threads in a row that died before they ran; back to 0 once one runs. */
let stillborn = 0;
/**
 * Set when threads cannot be started (one could not be created, or
 * {@linkcode STILLBORN_LIMIT} in a row died before they ran): no thread is
 * started for the queue until a new caller asks.
 */
let cannotStart = false;
/** The default and smallest bound on threads alive; documented in docs/async.md. */
export const MAX_THREADS = 64;
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
/** Threads lent to transactions (not one-shots), at most {@linkcode transactionShare}. */
const transactions = new Set<PamWorker>();
let retireTimer: ReturnType<typeof setTimeout> | undefined;

/** What each worker asks of the pool: run slots, the queue, its return. */
const hooks: PoolHooks = {
  takeSlot,
  freeSlot(thenPump) {
    running--;
    if (thenPump) pump();
  },
  pump,
  release: (worker, lease) => releaseWorker(worker, lease),
};

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
 * Points the pool at another worker entry (`undefined`: the real one), for
 * tests of threads that cannot start; not exported from `mod.ts`.
 *
 * @example
 * ```ts ignore
 * import { _setWorkerEntryForTests } from "./_pool.ts";
 * _setWorkerEntryForTests(new URL("./throws_at_import.mjs", import.meta.url));
 * ```
 */
export function _setWorkerEntryForTests(url: URL | string | undefined): void {
  testEntry = url;
}

/**
 * Starts a thread; it joins the idle ones once it says it runs. `demand`:
 * a caller waits for it, so it keeps the process alive until then. Returns
 * why it could not (the thread could not even be created), after failing
 * the callers that wait for a thread with that error.
 */
function spawn(demand: boolean): unknown {
  let worker: PamWorker;
  try {
    // A string only _worker.ts holds (its refusal to be imported), to find it in a compiled
    // program; that search throws when the program lacks the entry.
    const url = testEntry ??
      (workerUrl ??= entryUrl("async/_worker", "is the entry of a PAM worker thread"));
    worker = new PamWorker(url, hooks);
  } catch (error) {
    const why = error ?? new Error("a PAM worker thread could not be created");
    threadsCannotStart(why);
    return why;
  }
  watchThreads();
  started++;
  all.add(worker);
  starting.add(worker);
  if (demand) worker.holdWhileStarting();
  worker.onReady = (ready) => {
    stillborn = 0;
    starting.delete(ready);
    idle.push(ready);
    idleSince.set(ready, performance.now());
    scheduleRetire();
    pump();
  };
  worker.onDeath = (dead) => {
    all.delete(dead);
    starting.delete(dead);
    transactions.delete(dead);
    const at = idle.indexOf(dead);
    if (at >= 0) idle.splice(at, 1);
    // Counted in a row, so that one crash at start-up is retried but a broken entry (a module
    // that throws at import, a runtime that refuses the thread) is not started forever.
    if (dead.stillborn && ++stillborn >= STILLBORN_LIMIT) {
      threadsCannotStart(
        new Error(
          `PAM worker threads die before they start (${stillborn} in a row); ` +
            "the cause is the last one's death",
          { cause: dead.death },
        ),
      );
    }
    pump();
  };
  return undefined;
}

/**
 * Fails every caller waiting for a thread with `error` (its message says
 * only how threads fail, never what a caller sent), and starts no thread for
 * the queue until a new caller asks ({@linkcode acquireWorker},
 * {@linkcode startPool}). Callers waiting only for a run slot hold a thread
 * already and stay queued.
 */
function threadsCannotStart(error: unknown): void {
  cannotStart = true;
  for (let i = 0; i < waiters.length;) {
    const waiter = waiters[i];
    // A transaction waiting for its share waits for a transaction's end, not for a new thread.
    if (!waiter.thread || (waiter.transaction && transactions.size >= transactionShare())) {
      i++;
      continue;
    }
    waiters.splice(i, 1);
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    waiter.reject(error);
  }
}

/**
 * How many threads transactions may hold: all but a reserve of `size` for
 * one-shots, so that transactions whose conversations never answer cannot
 * lock `authenticate()` out. The reserve is at most half of `maxThreads`: a
 * pool whose `maxThreads` is (or defaults to) its `size` must not leave
 * transactions one thread.
 */
function transactionShare(): number {
  return maxThreads - Math.min(size, Math.floor(maxThreads / 2));
}

/** An idle thread that runs; new threads are started by {@linkcode pump}. */
function freeWorker(): PamWorker | undefined {
  return idle.pop();
}

/**
 * Starts one idle thread ahead of need once `size` threads are held and none
 * is idle: then the next caller can only be served by a new thread, which on
 * Deno starts late (see src/_thread_spawner.ts); a check arriving
 * beside held transactions (prompts waiting for a person) finds this one.
 */
function startSpare(): void {
  if (
    cannotStart || idle.length > 0 || starting.size > 0 || all.size >= maxThreads ||
    all.size < size
  ) return;
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
    waiters.push({ thread: false, transaction: false, resolve: () => resolve(), reject });
    pump();
  });
}

/**
 * Hands free run slots (and threads) to the queue, in order. A caller that
 * needs a thread when none can start, or a transaction past its share, is
 * passed over, not waited for: the calls queued behind it may belong to the
 * very transactions whose end frees a thread.
 */
function pump(): void {
  let unserved = 0;
  for (let i = 0; i < waiters.length && running < size;) {
    const waiter = waiters[i];
    let worker: PamWorker | undefined;
    if (waiter.thread) {
      if (waiter.transaction && transactions.size >= transactionShare()) {
        i++;
        continue;
      }
      worker = freeWorker();
      if (!worker) {
        unserved++;
        i++;
        continue;
      }
    }
    waiters.splice(i, 1);
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    running++;
    if (worker) lend(worker, waiter.transaction);
    waiter.resolve(worker);
  }
  // After the loop: a spare that cannot be created fails the queue it walks.
  startSpare();
  // Callers a run slot awaits but no thread: start threads for them (they join when running;
  // one freed before then serves the queue first), no more than could run now.
  unserved = Math.min(unserved, Math.max(0, size - running));
  while (!cannotStart && starting.size < unserved && all.size < maxThreads) {
    if (spawn(true) !== undefined) return;
  }
  for (const worker of starting) if (unserved-- > 0) worker.holdWhileStarting();
}

/** Lends an idle thread, with the run slot the caller took for it. */
function lend(worker: PamWorker, transaction: boolean): void {
  worker.lend();
  if (transaction) transactions.add(worker);
}

/**
 * A thread for one transaction or one-shot (idle, or new below
 * `maxThreads`) and a run slot for its first request; waits for both when
 * the pool has neither. A `transaction` also waits while transactions hold
 * their whole share ({@linkcode transactionShare}). Rejects when threads
 * cannot be started (see {@linkcode threadsCannotStart}); a new call tries
 * again.
 */
export function acquireWorker(
  signal?: AbortSignal,
  { transaction = false }: { transaction?: boolean } = {},
): Promise<PamWorker> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  // A new caller asks: threads may be started again (one that dies before it runs fails it).
  cannotStart = false;
  if (
    waiters.length === 0 && running < size &&
    !(transaction && transactions.size >= transactionShare())
  ) {
    const worker = freeWorker();
    if (worker) {
      running++;
      lend(worker, transaction);
      startSpare();
      return Promise.resolve(worker);
    }
  }
  return new Promise<PamWorker>((resolve, reject) => {
    const waiter: Waiter = {
      thread: true,
      transaction,
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
 * the thread's {@linkcode PamWorker.lease} when it was lent. Each lease is
 * released once: the release changes the lease, so a second one (the
 * thread went back already with its last reply, see
 * {@linkcode PamWorker.request}, and maybe to another holder since) is a
 * no-op.
 */
export function releaseWorker(worker: PamWorker, lease: number): void {
  if (worker.lease !== lease) return;
  worker.endLease();
  worker.onConverse = undefined;
  const share = transactions.delete(worker);
  if (worker.death || !all.has(worker)) {
    // A dead thread left the share when it died; nothing more to hand out.
    if (share) pump();
    return;
  }
  idle.push(worker);
  idleSince.set(worker, performance.now());
  scheduleRetire();
  pump();
}

/** The bounds, checked by `setWorkerPoolSize()`: threads beyond the new size stop now. */
export function resizePool(threads: number, max: number): void {
  size = threads;
  maxThreads = max;
  while (all.size > size && idle.length > 0) retire(idle.shift()!);
  pump();
}

/**
 * Starts threads up to `size` (`startWorkerPool()`); throws why when a
 * thread cannot even be created (a compiled program without the entry).
 */
export function startPool(): void {
  cannotStart = false;
  while (all.size < size) {
    const error = spawn(false);
    if (error !== undefined) throw error;
  }
}

/** The pool's bounds and current use (`workerPoolStats()`). */
export function poolStats(): WorkerPoolStats {
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
