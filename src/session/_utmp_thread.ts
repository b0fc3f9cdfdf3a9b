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

import type { MessagePort } from "node:worker_threads";
import { rebuildError, type SerializedError } from "../_error_wire.ts";
import { type SpawnedThread, spawnThread } from "../_thread_spawner.ts";
import type { UtmpCalls, UtmpRequest } from "./_utmp.ts";

const url = import.meta.url.endsWith(".js")
  ? new URL("./_utmp_worker.js", import.meta.url)
  : new URL("./_utmp_worker.ts", import.meta.url);

interface Reply {
  seq: number;
  ok: boolean;
  value?: unknown;
  error?: SerializedError;
}

interface Thread {
  thread: SpawnedThread;
  /** Where requests go, once the thread has handed it over (seq 0); queued until then. */
  port?: MessagePort;
  queue: Array<UtmpRequest & { seq: number }>;
}

let current: Thread | undefined;
let seq = 0;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

function thread(): Thread {
  if (current) return current;
  const t: Thread = {
    queue: [],
    thread: spawnThread(url, {}, {
      message(message) {
        const reply = message as Reply;
        if (reply.seq === 0) {
          t.port = reply.value as MessagePort;
          t.port.unref();
          for (const request of t.queue) t.port.postMessage(request);
          t.queue = [];
          return;
        }
        const waiter = pending.get(reply.seq);
        pending.delete(reply.seq);
        if (pending.size === 0) t.thread.unref();
        if (!waiter) return;
        if (reply.ok) waiter.resolve(reply.value);
        else waiter.reject(rebuildError(reply.error!, undefined));
      },
      death(reason) {
        if (current === t) current = undefined;
        for (const w of pending.values()) w.reject(new Error(`the utmp thread died: ${reason}`));
        pending.clear();
      },
    }),
  };
  current = t;
  return t;
}

function call(request: UtmpRequest): Promise<never> {
  return new Promise((resolve, reject) => {
    const t = thread();
    const id = ++seq;
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    t.thread.ref();
    if (t.port) t.port.postMessage({ ...request, seq: id });
    else t.queue.push({ ...request, seq: id });
  });
}

/** {@linkcode UtmpCalls} that run on the utmp thread; each returns a promise. */
export const threadUtmp: UtmpCalls = {
  ensureWritable: (...args) => call({ op: "ensureWritable", args }),
  putUtmpx: (...args) => call({ op: "putUtmpx", args }),
  appendWtmpx: (...args) => call({ op: "appendWtmpx", args }),
  clearUtmpx: (...args) => call({ op: "clearUtmpx", args }),
};
