/**
 * The entry of a PAM worker thread (started by `src/pool.ts`, never imported).
 * It owns at most one PAM handle at a time and runs every libpam call of that
 * handle on this one thread, through the synchronous {@linkcode PamTransaction}.
 * The conversation it gives libpam blocks this thread on `Atomics.wait` until
 * the main thread's handler, sync or async, has answered through the shared
 * buffer.
 *
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";
import {
  ANSWERED,
  FAILED,
  readAnswers,
  type SerializedError,
  type StartRequest,
  STATE,
  stateWord,
  WAITING,
  type WorkerReply,
  type WorkerRequest,
} from "./async_channel.ts";
import {
  type Conversation,
  type PamAnswer,
  type PamMessage,
  passwordConversation,
} from "./conversation.ts";
import { PamError } from "./errors.ts";
import { PamTransaction } from "./transaction.ts";

const port = parentPort;
if (!port) {
  throw new Error("src/worker.ts is the entry of a PAM worker thread; import mod.ts instead");
}
const channel: SharedArrayBuffer = workerData.channel;
const state = new Int32Array(channel, 0, 1);

/** How long one Atomics.wait lasts before the worker checks its own deadline. */
const WAIT_SLICE_MS = 250;
/** Past conversationTimeoutMs, how long the worker still waits for the main thread's verdict. */
const GRACE_MS = 1000;

/** Marks a conversation failed by the main side, whose own error becomes the PamError's cause. */
class MainSideFailure extends Error {
  override name = "ConversationError";
}

let transaction: PamTransaction | undefined;
let timeoutMs: number | undefined;
let seq = 0;

/** The blocking conversation libpam calls on this thread. */
function converse(messages: readonly PamMessage[]): PamAnswer[] {
  seq = (seq + 1) & 0x0fffffff;
  const waiting = stateWord(seq, WAITING);
  Atomics.store(state, STATE, waiting);
  port!.postMessage({ type: "converse", seq, messages } satisfies WorkerReply);
  // A backstop: if the main thread's event loop is stuck (or it forgot us), give up
  // shortly after the main side's own timeout would have fired.
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs + GRACE_MS;
  for (;;) {
    const current = Atomics.load(state, STATE);
    if (current === stateWord(seq, ANSWERED)) return readAnswers(channel);
    if (current === stateWord(seq, FAILED)) {
      throw new MainSideFailure("the application's conversation handler did not answer");
    }
    const left = deadline - Date.now();
    if (
      left <= 0 &&
      Atomics.compareExchange(state, STATE, waiting, stateWord(seq, FAILED)) === waiting
    ) {
      throw new Error(
        `the main thread did not answer the conversation within ${timeoutMs} ms`,
      );
    }
    Atomics.wait(state, STATE, current, Math.max(1, Math.min(WAIT_SLICE_MS, left)));
  }
}

function start(request: StartRequest, conversation?: Conversation): PamTransaction {
  if (transaction && !transaction.ended) {
    throw new Error("this PAM worker already owns a transaction");
  }
  timeoutMs = request.conversationTimeoutMs;
  return PamTransaction.start({
    ...request.options,
    conversation: conversation ?? (request.conversation ? converse : undefined),
  });
}

const callable = new Set([
  "authenticate",
  "acctMgmt",
  "setCred",
  "chauthtok",
  "openSession",
  "closeSession",
  "getItem",
  "setItem",
  "getXAuthData",
  "setXAuthData",
  "getEnv",
  "putEnv",
  "getEnvList",
]);

function handle(request: WorkerRequest): unknown {
  switch (request.op) {
    case "start":
      transaction = start(request);
      return undefined;
    case "call": {
      if (!transaction) throw new Error("this PAM worker owns no transaction");
      if (!callable.has(request.method)) throw new TypeError(`unknown method ${request.method}`);
      const method = (transaction as unknown as Record<string, (...a: unknown[]) => unknown>)[
        request.method
      ];
      try {
        return method.apply(transaction, request.args);
      } finally {
        // This thread's copy of X authentication data is a secret too.
        const xauth = request.method === "setXAuthData" ? request.args[0] : undefined;
        if (xauth && (xauth as { data?: unknown }).data instanceof Uint8Array) {
          (xauth as { data: Uint8Array }).data.fill(0);
        }
      }
    }
    case "oneShot": {
      // The password the main thread put in the shared buffer (wiped there as it is read).
      const password = request.preloadedPassword ? readAnswers(channel)[0] : null;
      let tx: PamTransaction;
      try {
        tx = start(request, password ? passwordConversation(password) : undefined);
      } catch (error) {
        password?.fill(0);
        throw error;
      }
      try {
        for (const [name, value] of Object.entries(request.items)) {
          tx.setItem(name as never, value);
        }
        tx.authenticate(request.flags);
        tx.acctMgmt(request.flags);
        return tx.getItem("user");
      } finally {
        tx.end();
        password?.fill(0);
      }
    }
    case "end":
      transaction?.end({ silent: request.silent });
      transaction = undefined;
      return undefined;
  }
}

function serialize(error: unknown): SerializedError {
  const plain = (e: unknown) => ({
    name: e instanceof Error ? e.name : "Error",
    message: e instanceof Error ? e.message : String(e),
  });
  if (!(error instanceof PamError)) return plain(error);
  const cause = error.cause;
  return {
    ...plain(error),
    pam: {
      code: error.code,
      operation: error.operation,
      messages: [...error.messages],
      failDelayMs: error.failDelayMs,
    },
    cause: cause === undefined
      ? undefined
      : cause instanceof MainSideFailure
      ? "main"
      : plain(cause),
  };
}

port.on("message", (request: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = { type: "result", id: request.id, value: handle(request) };
  } catch (error) {
    reply = { type: "error", id: request.id, error: serialize(error) };
  }
  port.postMessage(reply);
});
