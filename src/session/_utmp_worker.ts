/**
 * The entry of the utmp thread (started by `src/session/_utmp_thread.ts`, never
 * imported): runs the glibc utmp calls one at a time, off the caller's event
 * loop. Its first message hands over the port its requests come in on.
 * Internal.
 *
 * @module
 */

import { MessageChannel, type MessagePort, workerData } from "node:worker_threads";
import { serializeError } from "../_error_wire.ts";
import { utmpCalls, type UtmpRequest } from "./_utmp.ts";

const out = (workerData as { port: MessagePort }).port;
const { port1: requests, port2 } = new MessageChannel();
requests.on("message", (request: UtmpRequest & { seq: number }) => {
  const { seq } = request;
  try {
    const value = utmpCalls[request.op](...(request.args as [never, never, never]));
    out.postMessage({ seq, ok: true, value });
  } catch (error) {
    out.postMessage({ seq, ok: false, error: serializeError(error, () => false) });
  }
});
out.postMessage({ seq: 0, ok: true, value: port2 }, [port2]);
