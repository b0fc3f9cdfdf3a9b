/**
 * The entry of the utmp thread (started by `src/_utmp_thread.ts`, never
 * imported): runs the glibc utmp calls one at a time, off the caller's event
 * loop. Internal.
 *
 * @module
 */

import { parentPort } from "node:worker_threads";
import { utmpCalls, type UtmpRequest } from "./utmp.ts";

parentPort!.on("message", (request: UtmpRequest & { seq: number }) => {
  const { seq } = request;
  try {
    const value = utmpCalls[request.op](...(request.args as [never, never, never]));
    parentPort!.postMessage({ seq, ok: true, value });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    parentPort!.postMessage({ seq, ok: false, name: e.name, message: e.message });
  }
});
