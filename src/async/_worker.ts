/**
 * The entry of a PAM worker thread (started by `src/async/_pool.ts`, never imported).
 * It owns at most one PAM handle at a time and runs every libpam call of that
 * handle on this one thread, through the synchronous {@linkcode PamTransaction}.
 * Between requests it blocks on `Atomics.wait` over the shared buffer until
 * the main thread writes the next one there, and every few dozen requests it
 * lets its event loop run once; the conversation it gives libpam
 * blocks the same way until the main thread's handler, sync or async, has
 * answered through that buffer.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import {
  ANSWERED,
  ASLEEP,
  type ConverseMessage,
  FAILED,
  readAnswers,
  readMessage,
  type ReadyMessage,
  REPLY,
  REQUEST,
  type SerializedError,
  type StartRequest,
  STATE,
  stateWord,
  THREAD_ID,
  WAITING,
  type WorkerReply,
  type WorkerRequest,
  writeMessage,
} from "./_channel.ts";
import {
  type Conversation,
  type PamAnswer,
  type PamMessage,
  passwordConversation,
} from "../conversation.ts";
import { serializeError } from "../_error_wire.ts";
import { openLibc } from "../_library.ts";
import { PamTransaction } from "../transaction.ts";
import { callMethod, isTransactionMethod } from "./_methods.ts";

// The main thread's end of this port receives the conversations (the thread was started
// by src/_thread_spawner.ts, its parent).
const port = workerData?.port as MessagePort | undefined;
if (!parentPort || !port) {
  throw new Error(
    "src/async/_worker.ts is the entry of a PAM worker thread; import mod.ts instead",
  );
}
const channel: SharedArrayBuffer = workerData.channel;
const words = new Int32Array(channel, 0, THREAD_ID + 1);
/** Word 0: requests running libpam work across the pool. */
const pool = new Int32Array(workerData.pool);

/** How long one Atomics.wait lasts before the worker checks its own deadline. */
const WAIT_SLICE_MS = 250;
/** Past conversationTimeoutMs, how long the worker still waits for the main thread's verdict. */
const GRACE_MS = 1000;

/** How long a worker polls for its next request before it sleeps. */
const POLL_MS = 0.2;

/** Marks a conversation failed by the main side, whose own error becomes the PamError's cause. */
class MainSideFailure extends Error {
  override name = "ConversationError";
}

let transaction: PamTransaction | undefined;
let timeoutMs: number | undefined;
let seq = 0;
/** The request being served (its conversations name it, so a late one is dropped). */
let served = 0;

/** The blocking conversation libpam calls on this thread. */
function converse(messages: readonly PamMessage[]): PamAnswer[] {
  seq = (seq + 1) & 0x0fffffff;
  const waiting = stateWord(seq, WAITING);
  Atomics.store(words, STATE, waiting);
  port!.postMessage({ type: "converse", id: served, seq, messages } satisfies ConverseMessage);
  // A backstop: if the main thread's event loop is stuck (or it forgot us), give up
  // shortly after the main side's own timeout would have fired.
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs + GRACE_MS;
  for (;;) {
    const current = Atomics.load(words, STATE);
    if (current === stateWord(seq, ANSWERED)) return readAnswers(channel);
    if (current === stateWord(seq, FAILED)) {
      throw new MainSideFailure("the application's conversation handler did not answer");
    }
    const left = deadline - Date.now();
    if (
      left <= 0 &&
      Atomics.compareExchange(words, STATE, waiting, stateWord(seq, FAILED)) === waiting
    ) {
      throw new Error(
        `the main thread did not answer the conversation within ${timeoutMs} ms`,
      );
    }
    // Claimed by the main thread (WRITING): its answer waits for a run slot, so keep waiting,
    // in whole slices rather than spinning past the deadline.
    const slice = left > 0 ? Math.min(WAIT_SLICE_MS, left) : WAIT_SLICE_MS;
    Atomics.wait(words, STATE, current, Math.max(1, slice));
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

function handle(request: WorkerRequest): unknown {
  switch (request.op) {
    case "start":
      transaction = start(request);
      return undefined;
    case "call": {
      if (!transaction) throw new Error("this PAM worker owns no transaction");
      // Typed on the main side, but checked here too: only the table's methods are called.
      if (!isTransactionMethod(request.method)) {
        throw new TypeError(`unknown method ${request.method}`);
      }
      try {
        return callMethod(transaction, request.method, request.args);
      } finally {
        if (request.method === "setXAuthData") wipeXAuthData(request.args[0]);
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
      try {
        transaction?.end({ silent: request.silent === true });
      } finally {
        // Whatever end() threw, this thread must not keep a transaction for its next holder.
        transaction = undefined;
      }
      return undefined;
  }
}

/** This thread's copy of X authentication data is a secret too: zeroed once used. */
function wipeXAuthData(value: unknown): void {
  const data = (value as { data?: unknown } | null | undefined)?.data;
  if (data instanceof Uint8Array) data.fill(0);
}

function serialize(error: unknown): SerializedError {
  return serializeError(error, (cause) => cause instanceof MainSideFailure);
}

/** Requests served since this thread's event loop last ran. */
let sinceTurn = 0;
let lastTurn = 0;
/** Let the event loop run at the latest after this many requests, even with more waiting, */
const TURN_EVERY = 256;
/** and, when idle, after 32 requests or 50 ms. */
const TURN_IDLE_EVERY = 32;
const TURN_MS = 50;

/**
 * Runs one turn of this thread's event loop. The runtimes collect part of a
 * thread's garbage only from there (Bun's collector runs on timers of the
 * event loop): a worker that never returned to it grew with every request
 * for as long as it served (measured in docs/bench.md, "Figures behind the code").
 */
function turn(): Promise<void> {
  sinceTurn = 0;
  lastTurn = performance.now();
  return new Promise((resolve) => setImmediate(resolve));
}

function turnDue(idle: boolean): boolean {
  if (sinceTurn >= TURN_EVERY) return true;
  return idle && sinceTurn > 0 &&
    (sinceTurn >= TURN_IDLE_EVERY || performance.now() - lastTurn >= TURN_MS);
}

/**
 * Serves requests until the thread is terminated. Between turns of the event
 * loop (see {@linkcode turn}) it waits for the next request in
 * `Atomics.wait`: a worker still polling needs no wake-up at all, and one
 * blocked there wakes sooner than its event loop would for a message. (`terminate()` interrupts the wait
 * on both runtimes.)
 */
async function serve(): Promise<never> {
  for (;;) {
    let id = Atomics.load(words, REQUEST);
    if (id === served) {
      // A thread woken from Atomics.wait starts late (more so on a VM whose idle CPU halts),
      // and a caller that awaits one check before the next sends it soon after the reply
      // (figures: docs/bench.md, "Figures behind the code"): poll for it POLL_MS first, but only while this was the pool's one
      // request in flight, so polling never takes a CPU another thread's PAM work needs.
      const until = performance.now() + POLL_MS;
      while (id === served && Atomics.load(pool, 0) <= 1 && performance.now() < until) {
        id = Atomics.load(words, REQUEST);
      }
    }
    if (turnDue(id === served)) {
      await turn();
      continue;
    }
    if (id === served) {
      // Said before sleeping, and Atomics.wait compares REQUEST again: a request stored
      // after the check above either finds ASLEEP set (and notifies) or stops the wait.
      Atomics.store(words, ASLEEP, 1);
      Atomics.wait(words, REQUEST, served);
      Atomics.store(words, ASLEEP, 0);
      continue;
    }
    served = id;
    sinceTurn++;
    let reply: WorkerReply;
    // Only a method call's result can hold bytes or an array with holes; errors may carry
    // binary prompts' messages.
    let plain = false;
    try {
      const request = readMessage(channel) as WorkerRequest;
      plain = request.op !== "call";
      reply = { type: "result", id, value: handle(request) };
    } catch (error) {
      reply = { type: "error", id, error: serialize(error) };
      plain = false;
    }
    try {
      writeMessage(channel, reply, plain);
    } catch (error) {
      writeMessage(channel, { type: "error", id, error: serialize(error) } satisfies WorkerReply);
    } finally {
      // getXAuthData's result, now in the reply.
      if (reply.type === "result") wipeXAuthData(reply.value);
    }
    Atomics.store(words, REPLY, id);
    Atomics.notify(words, REPLY);
  }
}

// For the pool's check that this thread still exists (see THREAD_ID).
Atomics.store(words, THREAD_ID, openLibc().gettid?.() ?? 0);
// The pool hands this thread work only from now on: a thread that is still starting (on
// Deno, one started by the spawner thread starts late) would hold a check another could serve.
port.postMessage({ type: "ready" } satisfies ReadyMessage);
await serve();
