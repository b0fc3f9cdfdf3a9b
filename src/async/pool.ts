/**
 * The controls of the pool of PAM worker threads behind
 * `AsyncPamTransaction` and `authenticate()` (the pool itself is
 * `src/async/_pool.ts`).
 *
 * @module
 */

import { MAX_THREADS, poolStats, resizePool, startPool } from "./_pool.ts";

/**
 * How busy the pool is. Transactions hold at most `maxThreads` minus a
 * reserve of `size` threads (at most half of `maxThreads`); the reserve stays for `authenticate()`
 * one-shots, so a one-shot always finds a thread however many transactions
 * wait for their conversation handlers.
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
  /**
   * The most threads alive at once (each transaction holds one from start to
   * end; transactions together at most `maxThreads` minus a reserve of `size`, at most half).
   */
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
  /**
   * Transactions and calls waiting for a thread or for a run slot (a
   * transaction also waits while transactions hold their whole share).
   */
  readonly queued: number;
  /** Threads started since the process began (a measure of reuse). */
  readonly started: number;
}

/**
 * Sets how many PAM worker threads may run libpam work at once (default 4),
 * and how many threads may be alive at once (`maxThreads`, default 64, at
 * least `threads`). Each transaction holds one thread from start to end,
 * but only its calls count against `threads`, and not while they wait for
 * the conversation handler: a login waiting for a person takes a thread,
 * not a turn. Transactions together hold at most `maxThreads - threads`
 * threads (at least one): the other `threads` are kept for `authenticate()`
 * one-shots, so that transactions whose conversations never answer cannot
 * lock one-shots out; an `AsyncPamTransaction.start()` beyond that share
 * waits until a transaction ends (its `signal` aborts the wait). Calls
 * beyond the bounds wait in a queue; threads idle beyond `threads` stop
 * after 10 s.
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
  resizePool(threads, max);
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
 * @throws {Error} when a thread cannot even be created (a program compiled
 *   with `bun build --compile` without the worker's entry: the message says
 *   what to add).
 * @example
 * ```ts
 * import { startWorkerPool } from "@seed/pam";
 * startWorkerPool(); // at server start, before listening
 * ```
 *
 * @tags allow-ffi
 */
export function startWorkerPool(): void {
  startPool();
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
  return poolStats();
}
