/**
 * Starts the PAM worker threads from a thread of their own, so that the main
 * thread never waits for one to exist. Deno's `new Worker()` blocks its
 * caller until the new thread has built its JavaScript runtime (the entry
 * module loads later, in the new thread), tens of milliseconds per thread
 * (measured in docs/bench.md, "Figures behind the code"); Deno's web
 * `Worker` blocks less but cannot be unreferenced, and would keep the
 * process alive. The spawner thread takes that wait instead. The main thread
 * runs two `new Worker()`s in all, each in a turn of its own: the process's
 * first PAM thread (a thread started from a thread starts later on Deno,
 * whatever its parent does: a wait inside the runtime, not work, and the
 * first check should not wait for that), and, one event loop turn later,
 * the spawner; every later thread is a message to the spawner. A thread's
 * death ends every thread it started, so the spawner is a thread of its own,
 * not a PAM thread, which a module's `pthread_exit` or the pool's retiring
 * could end. Each thread's conversation messages reach the main thread
 * through a `MessageChannel` of its own, not through the spawner.
 *
 * @module
 */

import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";

/** What the spawner thread reports about one of its threads. */
export type SpawnerReport = { readonly type: "died"; readonly id: number; readonly reason: string };

/** What the main thread asks of the spawner. */
export type SpawnerRequest =
  | {
    readonly type: "spawn";
    readonly id: number;
    readonly url: string;
    readonly workerData: Record<string, unknown>;
  }
  | { readonly type: "terminate"; readonly id: number };

/** One thread started through the spawner, as the main thread sees it. */
export interface SpawnedThread {
  /** Keeps the process alive (a call is in flight). */
  ref(): void;
  /** Lets the process exit without waiting for this thread. */
  unref(): void;
  /** Stops the thread; its death is reported by the spawner as any other. */
  terminate(): void;
}

/** What a spawned thread's owner hears from it. */
export interface ThreadEvents {
  /** A message the thread posted on its port (`workerData.port`). */
  message(message: unknown): void;
  /** The thread is gone: exited, terminated, or an error escaped it. */
  death(reason: string): void;
}

let spawner: Worker | undefined;
/** Requests for the spawner made before it exists (it starts in a later turn). */
let queued: { request: SpawnerRequest; transfer: MessagePort[] }[] | undefined;
/** Whether the process's first thread was started (directly, see the module doc). */
let firstStarted = false;
let nextId = 0;
/** Threads that hold a reference: the spawner keeps the process alive while any does. */
let refs = 0;
const threads = new Map<number, ThreadEvents>();

// JSR's npm build (how Bun and Node users install from JSR) transpiles .ts files to .js
// but cannot rewrite a URL string, so follow this module's own extension.
const spawnerUrl = new URL(
  import.meta.url.endsWith(".js") ? "./_thread_spawner_entry.js" : "./_thread_spawner_entry.ts",
  import.meta.url,
);

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

/** Sends `request` to the spawner, which starts in a turn of its own if it is not there yet. */
function send(request: SpawnerRequest, transfer: MessagePort[] = []): void {
  if (spawner) return spawner.postMessage(request, transfer);
  if (!queued) {
    queued = [];
    // A turn of its own: its new Worker() must not add to the stall of the one before.
    setTimeout(startSpawner, 0);
  }
  queued.push({ request, transfer });
}

/** The spawner thread: one `new Worker()` on the main thread. */
function theSpawner(): Worker {
  if (spawner) return spawner;
  const worker = new Worker(workerEntry(spawnerUrl));
  // Bun re-references a worker when a listener is added after unref(): listen first.
  worker.on("message", (report: SpawnerReport) => {
    if (report.type === "died") dead(report.id, report.reason);
  });
  const lost = (reason: string) => {
    if (spawner !== worker) return;
    spawner = undefined;
    for (const id of [...threads.keys()]) dead(id, `the thread spawner ${reason}`);
  };
  worker.on("error", (error: Error) => lost(`failed: ${error.name}: ${error.message}`));
  worker.on("exit", (code: number) => lost(`exited with code ${code}`));
  if (refs === 0) worker.unref();
  spawner = worker;
  for (const { request, transfer } of queued ?? []) worker.postMessage(request, transfer);
  queued = undefined;
  return worker;
}

function dead(id: number, reason: string): void {
  const events = threads.get(id);
  if (!events) return;
  threads.delete(id);
  events.death(reason);
}

/**
 * Starts the spawner thread now, so that the first thread the pool needs
 * does not stall the event loop (Deno) while it starts.
 */
export function startSpawner(): void {
  theSpawner();
}

/**
 * Starts a thread running `url` with `workerData` plus `port`, the end of a
 * `MessageChannel` whose other end delivers its messages to `events`.
 * Returns at once; requests written to shared memory before the thread runs
 * wait there for it.
 */
export function spawnThread(
  url: URL | string,
  workerData: Record<string, unknown>,
  events: ThreadEvents,
): SpawnedThread {
  // A string is an entry inside a `bun build --compile` program (src/_entry_url.ts): no spawner
  // there, which would be one more entry to embed, and Bun's new Worker() does not block.
  if (typeof url === "string" || (!firstStarted && !spawner)) {
    firstStarted = true;
    return startDirectly(url, workerData, events);
  }
  const id = ++nextId;
  const { port1, port2 } = new MessageChannel();
  const port: MessagePort = port1;
  port.on("message", (message: unknown) => events.message(message));
  port.unref();
  threads.set(id, {
    message: events.message,
    death(reason) {
      if (referenced) unref();
      port.close();
      events.death(reason);
    },
  });
  let referenced = false;
  const unref = () => {
    referenced = false;
    if (--refs === 0) spawner?.unref();
  };
  send({
    type: "spawn",
    id,
    url: String(workerEntry(url)),
    workerData: { ...workerData, port: port2 },
  }, [
    port2,
  ]);
  return {
    ref() {
      if (referenced || !threads.has(id)) return;
      referenced = true;
      // Before the spawner exists, its pending start (a timer) keeps the process alive.
      if (refs++ === 0) spawner?.ref();
    },
    unref() {
      if (referenced) unref();
    },
    terminate() {
      if (threads.has(id)) send({ type: "terminate", id });
    },
  };
}

/** The process's first thread, started by the main thread itself (see the module doc). */
function startDirectly(
  url: URL | string,
  workerData: Record<string, unknown>,
  events: ThreadEvents,
): SpawnedThread {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(workerEntry(url), {
    workerData: { ...workerData, port: port2 },
    transferList: [port2],
  });
  let gone = false;
  const died = (reason: string) => {
    if (gone) return;
    gone = true;
    port1.close();
    worker.unref();
    // Make sure it is gone (after an 'error'); a no-op after 'exit'.
    worker.terminate();
    events.death(reason);
  };
  // Bun re-references a worker when a listener is added after unref(): listen first.
  port1.on("message", (message: unknown) => events.message(message));
  worker.on("error", (error: Error) => died(`${error.name}: ${error.message}`));
  worker.on("exit", (code: number) => died(`exit code ${code}`));
  port1.unref();
  worker.unref();
  return {
    ref: () => worker.ref(),
    unref: () => worker.unref(),
    terminate: () => worker.terminate(),
  };
}
