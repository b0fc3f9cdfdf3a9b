/**
 * One login attempt as a sequence of steps a web page can show: `login()`
 * runs with an async conversation that parks each batch of PAM messages
 * here until the browser posts the answers.
 *
 * @module
 */

import {
  login,
  type LoginSession,
  MessageStyle,
  type PamAnswer,
  PamError,
  type PamMessage,
  ReturnCode,
} from "../../mod.ts";
import { isPrompt } from "./pages.ts";

/** PAM waits for answers to `messages`; `step` numbers the batches, `notices` are earlier info and error messages. */
export interface PromptStep {
  kind: "prompt";
  step: number;
  messages: readonly PamMessage[];
  notices: readonly PamMessage[];
}

/** The session is open. */
export interface SuccessStep {
  kind: "success";
  session: LoginSession;
  notices: readonly PamMessage[];
  /** What `id` printed, run as the user in the session process (or why it could not run). */
  id: string;
}

/** Runs `id` as the session's user, in its session process; at most 4 KiB of what it says. */
async function idOf(session: LoginSession): Promise<string> {
  try {
    const program = await session.spawn(["id"], { stdin: "null", stderr: "null" });
    const [out] = await Promise.all([new Response(program.stdout).text(), program.status]);
    return out.slice(0, 4096).trim();
  } catch (error) {
    return `id could not run as ${session.user}: ${error instanceof Error ? error.message : error}`;
  }
}

/** The attempt is over: `messages` are the modules' messages of the failed call. */
export interface FailureStep {
  kind: "failure";
  messages: readonly PamMessage[];
  description: string;
  failDelayMs: number | undefined;
}

/** Where a login attempt stands. */
export type Step = PromptStep | SuccessStep | FailureStep;

/** How a {@linkcode LoginFlow} starts `login()`. */
export interface LoginFlowOptions {
  service: string;
  user: string;
  confdir?: string;
  rhost?: string;
  /** A prompt unanswered this long fails the PAM call. */
  conversationTimeoutMs: number;
  /** Called with problems that are not PAM's answer (a bug, a binary prompt); never with answers. */
  onInternalError?: (error: unknown) => void;
}

type Pending = {
  step: number;
  messages: readonly PamMessage[];
  resolve: (answers: PamAnswer[]) => void;
};

/**
 * A login attempt in progress. `next()` waits for the next step; `answer()`
 * hands the browser's answers to the waiting conversation; `cancel()` fails
 * the pending conversation (`PAM_CONV_ERR`), which ends the attempt.
 *
 * @example
 * ```ts
 * import { LoginFlow } from "./flow.ts";
 * const flow = LoginFlow.start({ service: "web-login", user: "alice", conversationTimeoutMs: 60_000 });
 * let step = await flow.next();
 * while (step?.kind === "prompt") {
 *   flow.answer(step.step, step.messages.map(() => "secret"));
 *   step = await flow.next();
 * }
 * ```
 */
export class LoginFlow {
  readonly user: string;
  /** Resolves with the last step, `success` or `failure`. */
  readonly settled: Promise<SuccessStep | FailureStep>;
  #current: Step | undefined;
  #pending: Pending | undefined;
  #notices: PamMessage[] = [];
  #steps = 0;
  #wake: (() => void)[] = [];
  readonly #abort = new AbortController();

  private constructor(options: LoginFlowOptions) {
    this.user = options.user;
    this.settled = this.#run(options);
  }

  /**
   * Starts `login()` for `options.user`.
   *
   * @example
   * ```ts
   * import { LoginFlow } from "./flow.ts";
   * const flow = LoginFlow.start({ service: "web-login", user: "alice", conversationTimeoutMs: 60_000 });
   * ```
   */
  static start(options: LoginFlowOptions): LoginFlow {
    return new LoginFlow(options);
  }

  /** The step to show now; `undefined` while PAM works. */
  get current(): Step | undefined {
    return this.#current;
  }

  /** Waits for a step to show (at once when there is one). */
  async next(): Promise<Step | undefined> {
    while (!this.#current) await new Promise<void>((resolve) => this.#wake.push(resolve));
    return this.#current;
  }

  /**
   * Answers the batch numbered `step` with one value per prompt, in order.
   * Returns `false` when that batch is no longer waiting (a stale form, a
   * double submit).
   */
  answer(step: number, values: readonly string[]): boolean {
    const pending = this.#pending;
    if (!pending || pending.step !== step) return false;
    const answers: PamAnswer[] = [];
    let next = 0;
    for (const message of pending.messages) {
      answers.push(isPrompt(message) ? values[next++] ?? "" : null);
    }
    this.#pending = undefined;
    this.#set(undefined);
    pending.resolve(answers);
    return true;
  }

  /** Fails the pending conversation, which ends the attempt; a session that opens anyway is closed. */
  cancel(): void {
    this.#abort.abort(new Error("The login was cancelled or its browser went away"));
  }

  /** `true` once `cancel()` ran. */
  get cancelled(): boolean {
    return this.#abort.signal.aborted;
  }

  #set(step: Step | undefined): void {
    this.#current = step;
    const wake = this.#wake;
    this.#wake = [];
    for (const fn of wake) fn();
  }

  #takeNotices(): PamMessage[] {
    const notices = this.#notices;
    this.#notices = [];
    return notices;
  }

  #conversation = (messages: readonly PamMessage[]): PamAnswer[] | Promise<PamAnswer[]> => {
    if (messages.some((m) => m.style === MessageStyle.BINARY_PROMPT)) {
      // libpamc binary packets are for agents, not for a person at a web page.
      throw new Error("A module sent a binary prompt, which a web page cannot answer");
    }
    if (!messages.some(isPrompt)) {
      // Info and error only: answer at once and show them with the next page.
      this.#notices.push(...messages);
      return messages.map(() => null);
    }
    return new Promise<PamAnswer[]>((resolve) => {
      const step = ++this.#steps;
      this.#pending = { step, messages, resolve };
      this.#set({ kind: "prompt", step, messages, notices: this.#takeNotices() });
    });
  };

  async #run(options: LoginFlowOptions): Promise<SuccessStep | FailureStep> {
    let step: SuccessStep | FailureStep;
    try {
      const session = await login({
        service: options.service,
        user: options.user,
        confdir: options.confdir,
        rhost: options.rhost,
        conversation: this.#conversation,
        conversationTimeoutMs: options.conversationTimeoutMs,
        signal: this.#abort.signal,
        failDelay: "report",
        // An unprivileged demo server has no business writing the system's utmp.
        utmp: false,
      });
      if (this.cancelled) {
        await session.close().catch(options.onInternalError);
        // The catch below says why ("The login was cancelled.").
        throw new PamError(ReturnCode.CONV_ERR, "login");
      }
      step = { kind: "success", session, notices: this.#takeNotices(), id: await idOf(session) };
    } catch (error) {
      this.#pending = undefined;
      if (error instanceof PamError) {
        // The module decides the code (pam_matrix turns any conversation failure into
        // PAM_AUTHINFO_UNAVAIL); the cause says when it was the clock or a cancel.
        const cause = error.cause instanceof Error ? error.cause : undefined;
        const why = cause?.name === "TimeoutError"
          ? " The prompt was not answered in time."
          : this.cancelled
          ? " The login was cancelled."
          : "";
        step = {
          kind: "failure",
          messages: error.messages,
          description: error.message + why,
          failDelayMs: error.failDelayMs,
        };
      } else {
        options.onInternalError?.(error);
        step = {
          kind: "failure",
          messages: this.#takeNotices(),
          description: "The login failed on the server; its log has the details.",
          failDelayMs: undefined,
        };
      }
    }
    this.#set(step);
    return step;
  }
}
