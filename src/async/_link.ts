/**
 * The main side of one worker while a transaction (or one-shot) holds it:
 * the link runs the handler for each conversation, in the handler's own
 * async context, and turns the worker's outcomes back into values and
 * errors.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { PamMessage } from "../conversation.ts";
import { wipeSnapshot } from "../_answers.ts";
import { callHandler } from "../_handler_call.ts";
import type { SerializedError } from "./_channel.ts";
import { rebuildError } from "../_error_wire.ts";
import type { Outcome, PamWorker } from "./_worker_client.ts";
import type { AsyncConversation, AsyncPamTransaction } from "./transaction.ts";
import { type CheckedStart, delaysOnTimer } from "./_start.ts";

/** Set by `AsyncPamTransaction`'s static block, which alone reaches a transaction's link. */
export const transactionAccess: { detachSignal?: (tx: AsyncPamTransaction) => void } = {};

/**
 * Detaches a transaction from its start() signal, so that cleanup still runs
 * once that signal has fired: `login()` bounds the login with its caller's
 * signal, not the session it opens (src/session/login.ts).
 */
export function detachSignal(tx: AsyncPamTransaction): void {
  transactionAccess.detachSignal!(tx);
}

/** One conversation in progress on the main thread, as its handler's async context sees it. */
interface ConversationTurn {
  readonly link: Link;
  settled: boolean;
}

/**
 * Which conversation the running code belongs to: a transaction's methods
 * called from inside its own pending conversation (the handler, or anything
 * it awaits) are refused at once, as they would wait for the very call that
 * waits for them.
 */
const conversationContext = new AsyncLocalStorage<ConversationTurn>();

/** Whether code running now is inside `link`'s own conversation, still waiting for its answer. */
export function insideConversationOf(link: Link): boolean {
  const turn = conversationContext.getStore();
  return turn !== undefined && turn.link === link && !turn.settled;
}

/**
 * The main side of one worker while a transaction (or one-shot) holds it:
 * runs the handler for each conversation and turns the worker's outcomes
 * back into values and errors.
 */
export class Link {
  readonly worker: PamWorker;
  /** The worker's lease when this link got it (see `releaseWorker`). */
  readonly lease: number;
  /** `failDelay: "async"`: a failure rejects only after its delay, on a timer. */
  readonly #delayFailures: boolean;
  readonly #handler: AsyncConversation | undefined;
  #signal: AbortSignal | undefined;
  readonly #timeoutMs: number | undefined;
  /** Why this call's conversation failed on the main side: the cause of its PamError. */
  /** The worker's newest conversation: only its failure is this call's cause. */
  #latestSeq = -1;
  #failure: { error: unknown } | undefined;
  /** Fails the conversation waiting for the handler, if one is. */
  #cancelPending: ((reason: unknown) => void) | undefined;

  constructor(
    worker: PamWorker,
    handler: AsyncConversation | undefined,
    signal: AbortSignal | undefined,
    start: CheckedStart,
  ) {
    const timeoutMs = start.conversationTimeoutMs;
    this.worker = worker;
    this.lease = worker.lease;
    this.#delayFailures = delaysOnTimer(start);
    this.#handler = handler;
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
    worker.onConverse = (seq, messages) => this.#converse(seq, messages);
  }

  /**
   * Sends one request and returns its value or throws its error; in
   * `failDelay: "async"` mode a failure with a fail delay throws only once
   * the delay has passed, on a timer (the worker is free by then: its slot
   * went back with the reply, and with `last` the thread too).
   */
  async request(
    request: Parameters<PamWorker["request"]>[0],
    answers?: Parameters<PamWorker["request"]>[1],
    last?: boolean,
  ): Promise<unknown> {
    this.#failure = undefined;
    const outcome: Outcome = await this.worker.request(request, answers, last);
    if (outcome.ok) return outcome.value;
    const error = this.#rebuild(outcome.error);
    const delayMs = this.#delayFailures ? outcome.error.pam?.failDelayMs : undefined;
    if (delayMs !== undefined && delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
    throw error;
  }

  #converse(seq: number, received: readonly PamMessage[]): void {
    const handler = this.#handler;
    this.#latestSeq = seq;
    // What the answers are checked against, taken before the handler can reach the messages;
    // the handler gets them frozen.
    const styles = received.map((m) => m.style);
    for (const message of received) Object.freeze(message);
    const messages = Object.freeze(received);
    const failWith = (error: unknown) => {
      if (seq === this.#latestSeq) this.#failure = { error };
      this.worker.fail(seq);
    };
    if (!handler) return failWith(new TypeError("the transaction has no conversation"));
    const turn: ConversationTurn = { link: this, settled: false };
    let cancel: ((reason: unknown) => void) | undefined;
    callHandler(
      () => conversationContext.run(turn, handler, messages),
      styles,
      this.#signal,
      this.#timeoutMs,
      {
        started: (fail) => this.#cancelPending = cancel = fail,
        settled: () => {
          turn.settled = true;
          // A conversation the worker gave up on may settle after the next one began:
          // it must not take that one's cancel function or blame it for its own failure.
          if (this.#cancelPending === cancel) this.#cancelPending = undefined;
        },
      },
    ).then((snapshot) => {
      try {
        this.worker.answer(seq, snapshot);
      } finally {
        wipeSnapshot(snapshot);
      }
    }).catch(failWith);
  }

  /** The start() signal, until {@linkcode Link.detachSignal}. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** From now on, neither calls nor conversations fail when the start() signal fires. */
  detachSignal(): void {
    this.#signal = undefined;
  }

  /** Fails the pending conversation, if any, with `reason` as the call's cause. */
  cancel(reason: unknown): void {
    this.#cancelPending?.(reason);
  }

  #rebuild(s: SerializedError): Error {
    // With delayed failures the delay was waited out here, as libpam would have slept it.
    return rebuildError(s, this.#failure, this.#delayFailures);
  }
}
