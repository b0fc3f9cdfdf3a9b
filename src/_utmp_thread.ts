/**
 * The utmp calls of a caller that runs sessions itself (`inProcess`): glibc's
 * utmp functions block (a lock another writer holds waits up to 10 s, a slow
 * file system longer), so they run on one thread of their own, one at a time
 * (`utmpxname` is process-wide state), and never on the caller's event loop.
 * The thread is started on first use and does not keep the process alive
 * while idle. Internal.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import { workerEntry } from "./pool.ts";
import type { UtmpCalls, UtmpRequest } from "./utmp.ts";

const url = import.meta.url.endsWith(".js")
  ? new URL("./_utmp_worker.js", import.meta.url)
  : new URL("./_utmp_worker.ts", import.meta.url);

interface Reply {
  seq: number;
  ok: boolean;
  value?: unknown;
  name?: string;
  message?: string;
}

let worker: Worker | undefined;
let seq = 0;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(workerEntry(url));
  w.unref();
  w.on("message", (reply: Reply) => {
    const waiter = pending.get(reply.seq);
    pending.delete(reply.seq);
    if (pending.size === 0) w.unref();
    if (!waiter) return;
    if (reply.ok) waiter.resolve(reply.value);
    else {
      waiter.reject(
        reply.name === "TypeError" ? new TypeError(reply.message) : new Error(reply.message),
      );
    }
  });
  const die = (why: string) => {
    if (worker === w) worker = undefined;
    for (const waiter of pending.values()) {
      waiter.reject(new Error(`the utmp thread died (${why})`));
    }
    pending.clear();
  };
  w.on("error", (error: Error) => die(error.message));
  w.on("exit", (code: number) => die(`exit code ${code}`));
  worker = w;
  return w;
}

function call(request: UtmpRequest): Promise<never> {
  return new Promise((resolve, reject) => {
    const w = thread();
    const id = ++seq;
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    w.ref();
    w.postMessage({ ...request, seq: id });
  });
}

/** {@linkcode UtmpCalls} that run on the utmp thread; each returns a promise. */
export const threadUtmp: UtmpCalls = {
  ensureWritable: (...args) => call({ op: "ensureWritable", args }),
  putUtmpx: (...args) => call({ op: "putUtmpx", args }),
  appendWtmpx: (...args) => call({ op: "appendWtmpx", args }),
  clearUtmpx: (...args) => call({ op: "clearUtmpx", args }),
};
