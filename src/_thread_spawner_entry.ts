/**
 * The entry of the thread that starts PAM worker threads for the main thread
 * (see `src/_thread_spawner.ts`; never imported). Deno's `new Worker()` blocks
 * the thread that calls it until the new thread's runtime exists; here that
 * is this thread, which has nothing else to do.
 *
 * @module
 */

import { parentPort, Worker } from "node:worker_threads";
import type { SpawnerReport, SpawnerRequest } from "./_thread_spawner.ts";

const port = parentPort;
if (!port) {
  throw new Error("src/_thread_spawner_entry.ts is the entry of a thread; import mod.ts instead");
}
const workers = new Map<number, Worker>();

function report(message: SpawnerReport): void {
  port!.postMessage(message);
}

port.on("message", (request: SpawnerRequest) => {
  if (request.type === "terminate") {
    workers.get(request.id)?.terminate();
    return;
  }
  const { id } = request;
  let worker: Worker;
  try {
    worker = new Worker(new URL(request.url), {
      workerData: request.workerData,
      transferList: [request.workerData.port as never],
    });
  } catch (error) {
    report({ type: "died", id, reason: `it could not start: ${error}` });
    return;
  }
  workers.set(id, worker);
  let reported = false;
  const died = (reason: string) => {
    if (reported) return;
    reported = true;
    workers.delete(id);
    report({ type: "died", id, reason });
  };
  worker.on("error", (error: Error) => {
    died(`${error.name}: ${error.message}`);
    // Make sure it is gone; a no-op once it has exited.
    worker.terminate();
  });
  worker.on("exit", (code: number) => died(`exit code ${code}`));
});
