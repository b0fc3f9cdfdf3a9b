/**
 * The caller's side of a session process: starts it (the same runtime,
 * `_main.ts`), sends frames, hands each frame it receives to whoever waits
 * for it, answers its conversations with the caller's handler, and reports
 * how it ended. Internal.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
// node:timers for a timer with unref() on both runtimes.
import { clearTimeout as clearNodeTimer, setTimeout as nodeTimer } from "node:timers";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { native } from "../../ffi/mod.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { wipeSnapshot } from "../_answers.ts";
import { callHandler } from "../_handler_call.ts";
import { encodeFrame, type Frame, FrameDecoder } from "./_frames.ts";
import { decodeMessages, encodeAnswers } from "./_protocol.ts";
import {
  lowestNice,
  PRIO_PROCESS,
  setNiceOfThreads,
  type ThreadLibc,
  threadLibc,
} from "./_threads.ts";

/** A conversation handler as `login()` takes it: may be async. */
export type Handler = (messages: readonly PamMessage[]) => unknown;

/** How the session process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** The words for a process's end, for error messages. */
export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/** A promise that a caller who never looks at it does not see as an unhandled rejection. */
export function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/**
 * How long an abandoned login's process may take past the kill grace when
 * it was answering a prompt: libpam's fail delay runs after the failed
 * answer (Debian's login asks for 3 s, which libpam may stretch by a quarter).
 */
const FAIL_DELAY_ALLOWANCE_MS = 10_000;

/** How long the channel is read after the session process exited, if it stays open. */
const EXIT_DRAIN_MS = 500;

/** The error for a session process that ended without saying how the session ended. */
export function diedError(proc: SessionProcess, exit: ProcessExit, when: string): Error {
  const suffix = when ? ` ${when}` : "";
  if (proc.startError) {
    return new Error(
      `cannot start the session process (${proc.startError.message})${suffix}: it runs ` +
        `${proc.command}; on Deno the caller needs --allow-run and --allow-env for it`,
      { cause: proc.startError },
    );
  }
  return new Error(`the session process died (${describeExit(exit)})${suffix}`);
}

function scriptOf(url: URL): string {
  return url.protocol === "file:" ? fileURLToPath(url) : url.href;
}

/**
 * The session process's entry. JSR's npm build (how Bun users install from
 * JSR) turns .ts files into .js but cannot rewrite a URL string: it follows
 * this module's own extension.
 */
const sessionEntry = scriptOf(
  new URL(import.meta.url.endsWith(".js") ? "./_main.js" : "./_main.ts", import.meta.url),
);

/**
 * Runs `handler` on a frozen copy of `messages` under the caller's signal
 * and timeout, and resolves with a snapshot of its answers, checked against
 * the styles as they came from the session process (see `callHandler`).
 */
export function runHandler(
  handler: Handler | undefined,
  messages: readonly PamMessage[],
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): Promise<PamAnswer[]> {
  if (!handler) return Promise.reject(new TypeError("the login has no conversation"));
  const styles = messages.map((m) => m.style);
  const copy = Object.freeze(messages.map((m) => Object.freeze({ ...m })));
  return callHandler(() => handler(copy), styles, signal, timeoutMs);
}

// A binary made by `bun build --compile` runs its own entry whatever it is given, so the
// session process is the program itself, started with this flag: here, while the program's
// imports are still being evaluated, it becomes the session process and never returns to them.
// (Modules the program imports before this package have already run by then.)
// Only inside a compiled binary, and only for this very entry: an ordinary program that imports
// the package must not turn into a session process because of what its own arguments say.
if (
  process.argv[2] === "--seed-pam-run-module" && sessionEntry.includes("/$bunfs/") &&
  process.argv[3] === sessionEntry
) {
  await import("./_main.ts");
  await new Promise<never>(() => {});
}

/**
 * How many session processes may be starting at once. Starting one blocks
 * the caller for a moment (until the runtime's executable runs), and each
 * then needs some tens of milliseconds of CPU to load; twenty logins
 * arriving together would otherwise starve the caller's own event loop of
 * CPU on a small machine. So they start one per event-loop turn, and at most
 * one per core but one (the caller's) is still loading (until it says
 * "ready") at any time.
 */
const bootSlots = Math.max(1, availableParallelism() - 1);
/** How long a starting session process may hold its boot slot. */
const bootSlotMaxMs = 10_000;
let booting = 0;
const waitingToBoot: Array<() => void> = [];

function acquireBootSlot(): Promise<() => void> {
  return new Promise((resolve) => {
    const grant = () => {
      booting++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        clearNodeTimer(stuck);
        booting--;
        waitingToBoot.shift()?.();
      };
      // A process that never says "ready" (stopped, stuck loading) gives its slot up after a
      // while: the slot only paces starts, and must not stop every later login.
      const stuck = nodeTimer(release, bootSlotMaxMs).unref();
      // The next start waits for a new turn of the event loop, whatever freed the slot.
      setTimeout(() => resolve(release), 0);
    };
    if (booting < bootSlots) grant();
    else waitingToBoot.push(grant);
  });
}

/** Cleared once the caller turned out unable to give a process its priority back. */
let mayLowerPriority = true;
let priorityLibc: ThreadLibc | undefined;

/**
 * Binds libc's priority calls before the first start: in the turn of the
 * first `login()`, not in the turn that spawns its process, which costs most.
 */
function preparePriorityLibc(): void {
  if (!mayLowerPriority || priorityLibc) return;
  try {
    priorityLibc = threadLibc();
  } catch {
    mayLowerPriority = false;
  }
}

/**
 * Starting a runtime costs a session process tens of milliseconds of CPU
 * on several threads, and twenty logins together would take both cores
 * of a small machine from the caller's event loop. So a session process
 * loads at nice 19, and gets the priority it inherited back once it is
 * loaded, before any PAM call (pam_limits may set one) and before it can
 * start a program. Only a caller allowed to lower a nice value can give
 * it back (CAP_SYS_NICE, or an RLIMIT_NICE that allows it): that is tried
 * on the new process itself, one step below the nice value it inherited.
 * Returns the nice value to give back, or `undefined` when the process was
 * left as it was.
 */
function lowerWhileLoading(pid: number): number | undefined {
  const lib = priorityLibc;
  if (!mayLowerPriority || !lib) return undefined;
  try {
    // The spawning thread's (nice values are per thread), which the process inherited.
    const nice = lib.getpriority(PRIO_PROCESS, 0);
    if (nice <= -20 || nice >= lowestNice) return undefined;
    if (lib.setpriority(PRIO_PROCESS, pid, nice - 1) !== 0) {
      mayLowerPriority = false;
      return undefined;
    }
    if (lib.setpriority(PRIO_PROCESS, pid, lowestNice) !== 0) {
      lib.setpriority(PRIO_PROCESS, pid, nice);
      return undefined;
    }
    return nice;
  } catch {
    mayLowerPriority = false;
    return undefined;
  }
}

/** One running session process, from the caller's side. */
export class SessionProcess {
  #child: ChildProcess | undefined;
  readonly #decoder = new FrameDecoder();
  /** Receives every frame that is not a conversation. */
  onFrame: (frame: Frame) => void = () => {};
  /** Why the newest conversation failed on this side: the cause of the PamError that follows. */
  failure: { error: unknown } | undefined;
  /** Settles when the process has exited (or could not start). */
  readonly exited: Promise<ProcessExit>;
  #resolveExit!: (exit: ProcessExit) => void;
  #exit: ProcessExit | undefined;
  /** Settles once the process was started (or could not be). */
  readonly #started: Promise<void>;
  /** kill() came, perhaps before the process started (then it never does). */
  #killed = false;
  /** Why the process could not be started, when it could not. */
  startError: Error | undefined;
  /** The runtime's executable. */
  readonly command: string;
  readonly #args: readonly string[];
  #handler: Handler | undefined;
  #releaseBoot: (() => void) | undefined;
  #signal: AbortSignal | undefined;
  #timeoutMs: number | undefined;
  /** The nice value to give the process back once it is loaded, while it runs at 19. */
  #nice: number | undefined;
  #loaded!: () => void;
  /** Settles once the process is loaded and has its priority back. */
  readonly #ready = new Promise<void>((resolve) => this.#loaded = resolve);

  constructor(handler: Handler | undefined, signal?: AbortSignal, timeoutMs?: number) {
    this.#handler = handler;
    this.#signal = signal;
    this.#timeoutMs = timeoutMs;
    const { command, args } = native.scriptCommand(sessionEntry, [
      "ffi",
      "read",
      "write",
      "run",
      "env",
    ]);
    this.command = command;
    this.#args = args;
    preparePriorityLibc();
    this.exited = new Promise((resolve) => {
      this.#resolveExit = (exit) => {
        this.#exit ??= exit;
        resolve(this.#exit);
      };
    });
    this.#started = acquireBootSlot().then((release) => {
      this.#releaseBoot = release;
      if (this.#killed) {
        // Killed while it waited for its slot: it never starts, and it ends as if killed.
        release();
        this.#resolveExit({ code: null, signal: "SIGKILL" });
        return;
      }
      this.#start();
      if (!this.#child) release();
      else void this.exited.then(release);
    });
  }

  #start(): void {
    let child: ChildProcess;
    try {
      // cwd "/": the session must not pin the caller's directory, nor pick up its config files.
      child = spawn(this.command, [...this.#args], {
        cwd: "/",
        stdio: ["pipe", "pipe", "inherit"],
      });
    } catch (error) {
      // Deno without --allow-run throws here; Bun reports through "error".
      this.startError = error as Error;
      this.#resolveExit({ code: null, signal: null });
      return;
    }
    this.#child = child;
    if (child.pid !== undefined) this.#nice = lowerWhileLoading(child.pid);
    this.#setRef(this.#holds > 0);
    // "close", not "exit": only once the channel is drained too, so the frames the process sent
    // last (how its session ended) are read before its end is reported. But a module's helper
    // forked without exec holds the channel open for as long as it lives: after the exit, the
    // frames already written are read within EXIT_DRAIN_MS, then the channel is let go.
    let drain: ReturnType<typeof nodeTimer> | undefined;
    child.once("exit", (code, signal) => {
      drain = nodeTimer(() => {
        child.stdout?.destroy();
        this.#resolveExit({ code, signal });
      }, EXIT_DRAIN_MS);
    });
    child.once("close", (code, signal) => {
      if (drain !== undefined) clearNodeTimer(drain);
      this.#resolveExit({ code, signal });
    });
    child.once("error", (error) => {
      this.startError ??= error;
      this.#resolveExit({ code: null, signal: null });
    });
    child.stdin!.on("error", () => {}); // a dead process: reported through `exited`
    child.stdout!.on("data", (chunk: Uint8Array) => {
      let frames: Frame[];
      try {
        frames = this.#decoder.push(chunk);
      } catch {
        this.kill();
        return;
      }
      for (const frame of frames) {
        if (frame.header.t === "conv") this.#converse(frame);
        else if (frame.header.t === "ready") this.#onReady(child);
        else {
          if (frame.header.t === "opened") this.#sessionOpened();
          this.onFrame(frame);
        }
      }
    });
  }

  #onReady(child: ChildProcess): void {
    // Every thread: those started while it loaded inherited nice 19. The main thread, the one
    // that runs PAM and starts the user's programs, must have it back.
    if (this.#nice !== undefined && !setNiceOfThreads(child.pid!, this.#nice)) {
      // Only a process already gone can refuse: never let it run PAM at the wrong priority.
      this.kill();
    }
    this.#nice = undefined;
    this.#loaded();
    this.#releaseBoot?.();
  }

  /** The session process's pid. */
  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  /** Set once the process has exited. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** From now on, conversations neither wait for nor fail with the login's signal. */
  detachSignal(): void {
    this.#signal = undefined;
  }

  /**
   * Sends the frame that starts this process's one job (a login, a close):
   * one too large for the channel (a `RangeError`, nothing sent) ends the
   * process and is the caller's error; any other failure is its death's,
   * which the caller hears through {@linkcode SessionProcess.exited}.
   */
  async sendJob(header: object): Promise<void> {
    try {
      await this.send(header);
    } catch (error) {
      if (!(error instanceof RangeError)) return;
      this.kill();
      throw error;
    }
  }

  /** Sends one frame; resolves once it was handed to the pipe. `secret` payloads are wiped then. */
  async send(header: object, payload?: Uint8Array, secret = false): Promise<void> {
    let bytes: Uint8Array;
    try {
      // A RangeError here (a frame too large for the channel) means nothing was sent.
      bytes = encodeFrame(header, payload);
    } finally {
      if (secret) payload?.fill(0);
    }
    await this.#started;
    // Nothing reaches a process before it has its priority back.
    if (this.#nice !== undefined) await Promise.race([this.#ready, this.exited]);
    return new Promise((resolve, reject) => {
      const stdin = this.#child?.stdin;
      if (!stdin || this.#exit || stdin.destroyed) {
        bytes.fill(0);
        reject(new Error("the session process has ended"));
        return;
      }
      stdin.write(bytes, (error) => {
        if (secret) bytes.fill(0);
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** Closes the channel: the session process closes the session and exits. */
  hangUp(): void {
    this.#child?.stdin?.end();
  }

  /** Kills the process outright (a corrupt channel). */
  kill(): void {
    this.#killed = true;
    // One still waiting for its boot slot never starts: it has ended now, not when a slot frees.
    if (!this.#child) this.#resolveExit({ code: null, signal: "SIGKILL" });
    try {
      this.#child?.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /**
   * Ends the process of a login nobody waits for any more, whatever it is
   * doing: the closed channel makes it undo what it opened and exit at its
   * next conversation, or once its session is open; one still running after
   * `graceMs` (inside a module that never returns, or still loading) is
   * killed. Settles once it has exited.
   */
  abandon(graceMs: number): Promise<ProcessExit> {
    if (this.#exit) return Promise.resolve(this.#exit);
    // Not started yet (waiting for a boot slot): it never will.
    if (!this.#child) this.kill();
    // A conversation waiting on the caller fails first with the abort (its handler hears the
    // same signal), so that the login fails as a PamError whose cause is the reason.
    const answering = this.#answering;
    const armKill = (ms: number) => {
      // One that said its session is open is past every login module: it is closing the
      // session, and a kill now would cut its close steps short.
      if (this.#opened || this.#exit) return;
      this.#abandonTimer = nodeTimer(() => this.kill(), ms);
    };
    if (answering) {
      // After the failed answer libpam sleeps its fail delay before the call returns (Debian's
      // login: 3 s, randomised by a quarter): the grace counts from after it.
      void answering.finally(() => {
        this.hangUp();
        armKill(graceMs + FAIL_DELAY_ALLOWANCE_MS);
      });
    } else {
      this.hangUp();
      armKill(graceMs);
    }
    return this.exited.finally(() => this.#spare());
  }

  #opened = false;
  #abandonTimer: ReturnType<typeof nodeTimer> | undefined;

  /**
   * The process said its session is open: an abandoned one is closing it
   * now, and is not killed for taking its time ({@linkcode SessionProcess.abandon}).
   */
  #sessionOpened(): void {
    this.#opened = true;
    this.#spare();
  }

  #spare(): void {
    if (this.#abandonTimer !== undefined) clearNodeTimer(this.#abandonTimer);
    this.#abandonTimer = undefined;
  }

  #holds = 0;

  /**
   * Keeps the caller's event loop alive until the returned function is
   * called. An open session holds nothing by itself: a caller that exits
   * without closing it has its session closed by the session process (its
   * channel closes), not hung waiting for it.
   */
  hold(): () => void {
    if (this.#holds++ === 0) this.#setRef(true);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#holds === 0) this.#setRef(false);
    };
  }

  #setRef(on: boolean): void {
    const child = this.#child;
    if (!child) return;
    const method = on ? "ref" : "unref";
    child[method]();
    for (const stream of [child.stdout, child.stdin]) {
      (stream as unknown as Record<string, (() => void) | undefined> | null)?.[method]?.();
    }
  }

  #converse({ header, payload }: Frame): void {
    let messages: PamMessage[];
    try {
      messages = decodeMessages(header.messages, payload);
    } catch {
      this.kill();
      return;
    }
    const answering = runHandler(this.#handler, messages, this.#signal, this.#timeoutMs).then(
      (answers) => {
        this.failure = undefined;
        const { lengths, payload } = encodeAnswers(answers);
        wipeSnapshot(answers);
        return this.send({ t: "answers", ok: true, lengths }, payload, true);
      },
      (error) => {
        this.failure = { error };
        return this.send({ t: "answers", ok: false });
      },
    ).catch(() => {
      // The process is gone; `exited` reports it.
    }).finally(() => {
      if (this.#answering === answering) this.#answering = undefined;
    });
    this.#answering = answering;
  }

  /** The answer to the conversation in progress, until it is sent. */
  #answering: Promise<void> | undefined;
}
