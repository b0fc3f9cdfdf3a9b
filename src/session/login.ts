/**
 * Login sessions, as `pam_open_session(3)` describes them, each in a process
 * of its own: `login()` starts a session process that authenticates, checks
 * the account, establishes credentials, opens the session and writes the
 * utmp/wtmp login entries; it runs the user's programs as the user
 * (`session.spawn()`), and at the end writes the exit entries, closes the
 * session, deletes the credentials and ends the transaction — when
 * `close()` is called, when a program started with `endsSession` exits, or
 * when the caller itself dies. The caller's own process is never touched by
 * the session modules.
 *
 * @module
 */

import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { AsyncPamTransaction, type AsyncPamTransactionOptions } from "../async/transaction.ts";
import { detachSignal } from "../async/_link.ts";
import { conversationTimeout } from "../async/_start.ts";
import { threadUtmp } from "./_utmp_thread.ts";
import { checkConversation, describe, optionsObject } from "../_validate.ts";
import { diedError, quiet, SessionProcess } from "./_client.ts";
import { ProgramInput } from "./_program_input.ts";
import { relayStdin } from "./_stdin_relay.ts";
import type { Frame } from "./_frames.ts";
import {
  allSteps,
  checkKeys,
  checkUtmpFiles,
  closeSteps,
  explainExpired,
  type LoginPlan,
  type OpenedSession,
  openSession,
  planKeys,
  planLogin,
} from "./_lifecycle.ts";
import { decodeMessages, fromWire, type WireError } from "./_protocol.ts";
import { checkSize } from "./_pty.ts";
import { spawnAsUser, type SpawnPlan } from "./_spawn.ts";
import { hangUp, hangUpGraceMs, signalGroup } from "./_hang_up.ts";
import { newProgram, planSpawn, type ProgramPort, type ProgramSink } from "./_program.ts";
// Evaluated for its side effect too: SessionProgram's static block is what newProgram() calls.
import "./program.ts";
import type { SessionProgram, SpawnOptions } from "./program.ts";
import type { SessionRecord } from "./record.ts";

/**
 * Where and how {@linkcode login} writes the utmp and wtmp entries.
 *
 * @example
 * ```ts
 * import type { UtmpOptions } from "@seed/pam";
 * const utmp: UtmpOptions = { utmpFile: "/tmp/demo/utmp", wtmpFile: "/tmp/demo/wtmp" };
 * ```
 */
export interface UtmpOptions {
  /** The utmp file (default `/var/run/utmp`, writable by root only); created when missing. */
  utmpFile?: string | undefined;
  /** The wtmp file (default `/var/log/wtmp`, writable by root only); created when missing. */
  wtmpFile?: string | undefined;
  /** `ut_line`, at most 32 bytes (default: `tty` without `/dev/`). */
  line?: string | undefined;
  /** `ut_id`, at most 4 bytes (default: the last 4 bytes of the line, as login(1) does). */
  id?: string | undefined;
  /** `ut_host` (default: `rhost`, or empty). */
  host?: string | undefined;
  /**
   * `ut_pid` (default: the session process, or the caller with `inProcess`).
   * `who` hides entries of dead processes, so by default it lists the
   * session exactly while it lives.
   */
  pid?: number | undefined;
}

/**
 * What {@linkcode login} needs: how to start the transaction (service, user,
 * conversation, confdir, library, signal, conversationTimeoutMs, failDelay),
 * the items, flags and utmp entries, and where the session runs. The signal
 * bounds the login only: once `login()` has resolved, the session closes
 * whatever became of it. Before, an abort ends the session process even
 * inside a module (hung up, killed after two seconds), which undoes what it
 * opened, and `login()` rejects once it is gone: with the signal's reason,
 * or at a prompt with the `PamError` whose cause it is.
 *
 * @example
 * ```ts
 * import { type LoginOptions, passwordConversation } from "@seed/pam";
 * const options: LoginOptions = {
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 *   rhost: "203.0.113.7",
 * };
 * ```
 */
export interface LoginOptions extends AsyncPamTransactionOptions {
  /** `PAM_TTY`, set before authentication; also the default utmp line. */
  tty?: string | undefined;
  /** `PAM_RHOST`, set before authentication; also the default utmp host. */
  rhost?: string | undefined;
  /** `PAM_RUSER`, set before authentication. */
  ruser?: string | undefined;
  /** `PAM_SILENT` on every call: modules should not send messages. */
  silent?: boolean | undefined;
  /**
   * When account management answers `PAM_NEW_AUTHTOK_REQD`, change the
   * expired token (`pam_chauthtok` with `PAM_CHANGE_EXPIRED_AUTHTOK`) through
   * the conversation instead of failing (default `true`).
   */
  changeExpiredAuthtok?: boolean | undefined;
  /**
   * The utmp/wtmp entries: options, or `false` for none. By default they go
   * to the system files, which only root may write.
   */
  utmp?: false | UtmpOptions | undefined;
  /**
   * Runs PAM in the caller's own process (on a pool thread) instead of a
   * session process. Every session module then acts on the caller: pam_umask
   * sets its umask, pam_limits its limits, pam_loginuid its loginuid (once
   * and for good), pam_keyinit revokes its keyring at close, pam_systemd
   * moves it into the user's scope (and logind may kill it with the
   * session); a crashing module ends it; the session holds a pool thread
   * until it closes. Only for a program that is itself the session's process
   * and exits with it, such as a login(1) replacement run per terminal.
   */
  inProcess?: boolean | undefined;
  /**
   * A pseudo-terminal of this size for the session, opened in the session
   * process before `pam_start`: its slave `/dev/pts/N` is `PAM_TTY` and
   * `pts/N` the utmp line (unless `utmp.line` names another), and it belongs
   * to the user (mode 0620, group `tty`) once the session is open. Programs
   * run on it with `session.spawn(argv, { terminal: true })`. Not with `tty`
   * or `inProcess`.
   */
  terminal?: TerminalSize | undefined;
}

/**
 * A terminal's size in character cells, for {@linkcode LoginOptions.terminal}.
 *
 * @example
 * ```ts
 * import type { TerminalSize } from "@seed/pam";
 * const size: TerminalSize = { cols: 80, rows: 24 };
 * ```
 */
export interface TerminalSize {
  /** Columns, 1 to 65535. */
  cols: number;
  /** Rows, 1 to 65535. */
  rows: number;
}

const loginKeys = [
  ...planKeys,
  "conversation",
  "signal",
  "conversationTimeoutMs",
  "inProcess",
  "terminal",
];

/** Where the session process's pty stands in for `tty` while the caller plans the login. */
const ptyPlaceholder = "/dev/pts/0";

/** The checked `terminal` option, and whether the pty names the utmp line and id. */
function planTerminal(
  o: Record<string, unknown>,
): { cols: number; rows: number; line: boolean; id: boolean } | undefined {
  if (o.terminal === undefined) return undefined;
  const { cols, rows } = checkSize(o.terminal);
  if (o.tty !== undefined) {
    throw new TypeError("login() options.tty cannot be given with terminal: the pty is PAM_TTY");
  }
  if (o.inProcess) {
    throw new TypeError("login() options.terminal needs a session process, not inProcess");
  }
  const utmp = o.utmp !== null && typeof o.utmp === "object"
    ? o.utmp as Record<string, unknown>
    : {};
  return { cols, rows, line: utmp.line === undefined, id: utmp.id === undefined };
}

/** How a session's process serves it; one for a session process, one for `inProcess`. */
interface Backend {
  readonly pid: number;
  readonly closed: Promise<void>;
  close(): Promise<void>;
  detach(): Promise<void>;
  spawn(plan: SpawnPlan): Promise<SessionProgram>;
}

let createSession: (backend: Backend, opened: OpenedSession) => LoginSession;

/**
 * An open login session, from {@linkcode login}. Close it exactly once with
 * {@linkcode LoginSession.close} (or `await using`), or serialise
 * {@linkcode LoginSession.record} and close it from another process with
 * `closeSession`.
 *
 * @example
 * ```ts
 * import { login, passwordConversation } from "@seed/pam";
 * await using session = await login({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 * });
 * console.log(session.user, session.pid, session.env);
 * ```
 *
 * @tags allow-ffi, allow-run, allow-env
 */
export class LoginSession {
  /** `PAM_USER` as the modules left it (they may map the name that was typed). */
  readonly user: string;
  /** The PAM environment (`pam_getenvlist` after the session opened), for the user's processes. */
  readonly env: Readonly<Record<string, string>>;
  /** A JSON-serialisable description of the session, for `closeSession`. */
  readonly record: SessionRecord;
  /** The process the session runs in (the session process, or the caller with `inProcess`). */
  readonly pid: number;
  /**
   * Settles once the session has ended, whichever way: {@linkcode LoginSession.close},
   * an `endsSession` program's exit, {@linkcode LoginSession.detach}. Rejects
   * when the session process died (the error names its exit code or signal)
   * or a closing step failed.
   */
  readonly closed: Promise<void>;
  readonly #backend: Backend;
  #closing: Promise<void> | undefined;
  #detached = false;

  /**
   * Not for callers: `login()` makes one.
   *
   * @ignore
   */
  private constructor(backend: Backend, opened: OpenedSession) {
    this.#backend = backend;
    this.user = opened.user;
    this.env = Object.freeze({ ...opened.env });
    this.record = opened.record;
    this.pid = backend.pid;
    this.closed = backend.closed;
  }

  static {
    createSession = (backend, opened) => new LoginSession(backend, opened);
  }

  /**
   * Runs `argv` as the session's user (`PAM_USER` as the modules left it),
   * in the session's process: its uid, primary gid and the supplementary
   * groups `initgroups(3)` gives, in a new session (`setsid`), in its home
   * directory (or `/`), with the PAM environment plus HOME, USER, LOGNAME,
   * SHELL and PATH from its passwd entry; it inherits the session's umask and
   * limits. A caller that is not root can only run programs as itself.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * await using session = await login({ service: "login", user: "alice", utmp: false });
   * const id = await session.spawn(["id"], { stdin: "null" });
   * console.log(await new Response(id.stdout).text());
   * ```
   *
   * @throws {TypeError} For bad arguments, before anything runs.
   * @throws {Error} When the program cannot be started as the user (no such user, not root,
   *   the session is closed).
   */
  spawn(argv: readonly string[], options?: SpawnOptions): Promise<SessionProgram> {
    let plan: SpawnPlan;
    try {
      plan = planSpawn(argv, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#closing) {
      return Promise.reject(new Error("this session is closed: spawn() needs an open session"));
    }
    return this.#backend.spawn(plan);
  }

  /**
   * Hands the session over to another process: the session process ends its
   * PAM handle with `PAM_DATA_SILENT` (modules' cleanup must not tear the
   * session down) and exits, leaving the session open, its programs running
   * and the utmp entry in place, for `closeSession` with
   * {@linkcode LoginSession.record} elsewhere. `close()` afterwards rejects;
   * `await using` does nothing more.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * const session = await login({ service: "login", user: "alice", tty: "/dev/tty1" });
   * Deno.writeTextFileSync("/run/my-app/session.json", JSON.stringify(session.record));
   * await session.detach();
   * ```
   */
  detach(): Promise<void> {
    if (this.#closing) {
      return Promise.reject(
        new Error(`this session was already ${this.#detached ? "detached" : "closed"}`),
      );
    }
    this.#detached = true;
    this.#closing = this.#backend.detach();
    return this.#closing;
  }

  /**
   * Ends the session in the reverse order of {@linkcode login}: the programs
   * still running are hung up (SIGHUP, then SIGKILL after 2 s), the wtmp
   * logout record and the utmp entry cleared, then `pam_close_session`,
   * `pam_setcred(PAM_DELETE_CRED)` and `pam_end`. Every step runs even if
   * one fails; the promise rejects with the first failure. Calling it again
   * returns the same promise: the steps run exactly once.
   *
   * @example
   * ```ts
   * import { login, passwordConversation } from "@seed/pam";
   * const session = await login({ service: "login", user: "alice", conversation: passwordConversation("pw"), utmp: false });
   * try {
   *   // ... the user's activity ...
   * } finally {
   *   await session.close();
   * }
   * ```
   */
  close(): Promise<void> {
    if (this.#detached) {
      return Promise.reject(
        new Error(
          "this session was detached: close it with closeSession(session.record, { service })",
        ),
      );
    }
    this.#closing ??= this.#backend.close();
    return this.#closing;
  }

  /**
   * Closes the session, for `await using`.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * {
   *   await using session = await login({ service: "login", user: "alice", utmp: false });
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#detached ? this.#closing! : this.close();
  }
}

/**
 * A session process that died cannot hang up the programs it started (each leads a session of
 * its own): the caller does, as far as it may (SIGHUP, then SIGKILL after the grace period).
 */
function hangUpOrphans(pids: number[]): void {
  if (pids.length === 0) return;
  // Not the caller's children: their end cannot be awaited, only their grace period.
  for (const pid of pids) signalGroup(pid, "SIGHUP");
  const timer = setTimeout(() => {
    for (const pid of pids) signalGroup(pid, "SIGKILL");
  }, hangUpGraceMs);
  (timer as unknown as { unref?: () => void }).unref?.();
}

/** The session process's side of a session, seen from the caller. */
class ProcessBackend implements Backend {
  readonly pid: number;
  readonly closed: Promise<void>;
  readonly #proc: SessionProcess;
  readonly #handler: LoginOptions["conversation"];
  readonly #programs = new Map<number, ProgramSink>();
  /** The process ids of the programs still running, by request id. */
  readonly #pids = new Map<number, number>();
  readonly #spawning = new Map<
    number,
    { plan: SpawnPlan; resolve(p: SessionProgram): void; reject(e: unknown): void }
  >();
  /** The piped input of the programs still running, by request id. */
  readonly #inputs = new Map<number, ProgramInput>();
  #nextId = 1;
  #ending: { frame: string; resolve(): void; reject(e: unknown): void } | undefined;
  #endResult: Promise<void> | undefined;

  constructor(proc: SessionProcess, handler: LoginOptions["conversation"]) {
    this.#proc = proc;
    this.#handler = handler;
    this.pid = proc.pid;
    proc.onFrame = (frame) => this.#frame(frame);
    this.closed = quiet(
      proc.exited.then((exit) => {
        const error = diedError(proc, exit, "");
        for (const sink of this.#programs.values()) sink.lost(error);
        for (const input of this.#inputs.values()) input.close(error);
        this.#inputs.clear();
        if (!this.#endResult) hangUpOrphans([...this.#pids.values()]);
        this.#pids.clear();
        // The caller's stdin, relayed to programs that are gone, must not keep it alive.
        for (const relay of this.#inherited.values()) relay.stop();
        this.#inherited.clear();
        for (const pending of this.#spawning.values()) pending.reject(error);
        this.#programs.clear();
        this.#spawning.clear();
        if (this.#endResult) return this.#endResult;
        throw error;
      }),
    );
  }

  #frame({ header, payload }: Frame): void {
    const id = header.id as number;
    switch (header.t) {
      case "notice": {
        // Texts a module sends once the session is open: delivered, their answers ignored.
        try {
          const result = this.#handler?.(decodeMessages(header.messages, payload));
          Promise.resolve(result).catch(() => {});
        } catch {
          // A handler's trouble with a notice changes nothing in the session.
        }
        return;
      }
      case "spawned": {
        const pending = this.#spawning.get(id);
        if (!pending) return;
        this.#spawning.delete(id);
        this.#inputs.set(
          id,
          new ProgramInput(
            (part) => this.#proc.send({ t: "stdin", id }, part),
            () => this.#proc.send({ t: "stdin-end", id }),
          ),
        );
        const { program, sink } = newProgram(header.pid as number, pending.plan, this.#port(id));
        this.#programs.set(id, sink);
        // Signalled as a process group if the session process dies: never 0, 1 or a non-pid.
        const pid = header.pid;
        if (typeof pid === "number" && Number.isInteger(pid) && pid > 1) this.#pids.set(id, pid);
        this.#relayInherited(id, pending.plan);
        pending.resolve(program);
        return;
      }
      case "spawn-failed": {
        const pending = this.#spawning.get(id);
        this.#spawning.delete(id);
        pending?.reject(fromWire(header.error as WireError));
        return;
      }
      case "data": {
        const fd = header.fd === 2 ? 2 : 1;
        if (this.#inherited.get(id)?.[fd]) {
          (fd === 1 ? process.stdout : process.stderr).write(payload);
        } else {
          this.#programs.get(id)?.output(fd, payload);
        }
        return;
      }
      case "eof":
        return this.#programs.get(id)?.end(header.fd === 2 ? 2 : 1);
      case "stdin-taken":
        return this.#inputs.get(id)?.taken(header.bytes, header.failed === true);
      case "terminal-data":
        return this.#programs.get(id)?.screen(payload);
      case "terminal-eof":
        return this.#programs.get(id)?.screenEnd();
      case "exit": {
        const sink = this.#programs.get(id);
        this.#programs.delete(id);
        this.#inputs.get(id)?.close(new Error("the program has exited"));
        this.#inputs.delete(id);
        this.#pids.delete(id);
        this.#inherited.get(id)?.stop();
        this.#inherited.delete(id);
        sink?.end(1);
        sink?.end(2);
        sink?.exit({
          code: (header.code as number | null) ?? null,
          signal: (header.signal as string | null) ?? null,
        });
        return;
      }
      case "closed":
      case "detached": {
        const error = header.error ? fromWire(header.error as WireError) : undefined;
        // Whoever ended it (close(), an endsSession program), this is how it ended.
        this.#endResult ??= error ? Promise.reject(error) : Promise.resolve();
        quiet(this.#endResult);
        return;
      }
    }
  }

  readonly #inherited = new Map<number, { 1: boolean; 2: boolean; stop(): void }>();

  /** "inherit": the caller's own streams, relayed, since the session process's are its channel. */
  #relayInherited(id: number, plan: SpawnPlan): void {
    const stops: Array<() => void> = [];
    if (plan.stdin === "inherit") {
      const port = this.#port(id);
      stops.push(relayStdin({ write: (chunk) => port.write(chunk), end: () => port.endInput() }));
    }
    this.#inherited.set(id, {
      1: plan.stdout === "inherit",
      2: plan.stderr === "inherit",
      stop: () => stops.forEach((s) => s()),
    });
  }

  #port(id: number): ProgramPort {
    const input = this.#inputs.get(id)!;
    return {
      write: (bytes) => input.write(bytes),
      endInput: () => input.end(),
      cancelInput: () => input.cancel(),
      kill: (signal) => void this.#proc.send({ t: "kill", id, signal }).catch(() => {}),
      type: (bytes) => this.#proc.send({ t: "terminal-input", id }, bytes),
      resize: (cols, rows) =>
        void this.#proc.send({ t: "terminal-resize", id, cols, rows }).catch(() => {}),
      pause: (fd) => void this.#proc.send({ t: "pause", id, fd }).catch(() => {}),
      resume: (fd) => void this.#proc.send({ t: "resume", id, fd }).catch(() => {}),
    };
  }

  spawn(plan: SpawnPlan): Promise<SessionProgram> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#endResult) {
        reject(new Error("this session is closed: spawn() needs an open session"));
        return;
      }
      if (this.#proc.exit) {
        reject(diedError(this.#proc, this.#proc.exit, ""));
        return;
      }
      const release = this.#proc.hold();
      this.#spawning.set(id, {
        plan,
        resolve: (program) => {
          // A running program keeps the caller alive, as any child process does; one that ends
          // the session, until the session has ended.
          const until = plan.endsSession ? this.#proc.exited : program.status;
          void until.catch(() => {}).finally(release);
          resolve(program);
        },
        reject: (error) => {
          release();
          reject(error);
        },
      });
      this.#proc.send({ t: "spawn", id, plan }).catch((error) => {
        // Its death rejects the pending spawn; a request too large for the channel (a RangeError,
        // before anything was sent) is this call's own error.
        if (!(error instanceof RangeError)) return;
        const pending = this.#spawning.get(id);
        this.#spawning.delete(id);
        pending?.reject(error);
      });
    });
  }

  #end(frame: "close" | "detach"): Promise<void> {
    const release = this.#proc.hold();
    this.#proc.send({ t: frame }).catch(() => {});
    return this.closed.finally(release);
  }

  close(): Promise<void> {
    return this.#end("close");
  }

  detach(): Promise<void> {
    return this.#end("detach");
  }
}

/** `inProcess: true`: today's transaction on a pool thread of the caller. */
class InProcessBackend implements Backend {
  readonly pid: number = process.pid;
  readonly closed: Promise<void>;
  readonly #tx: AsyncPamTransaction;
  readonly #opened: OpenedSession;
  readonly #silent: boolean;
  #settle!: { resolve(): void; reject(e: unknown): void };
  /** The programs still running, and when each has exited. */
  readonly #live = new Map<ChildProcess, Promise<void>>();

  constructor(tx: AsyncPamTransaction, opened: OpenedSession, silent: boolean) {
    this.#tx = tx;
    this.#opened = opened;
    this.#silent = silent;
    this.closed = quiet(
      new Promise((resolve, reject) => {
        this.#settle = { resolve, reject };
      }),
    );
  }

  /** Set once the session began to end, whichever way: it ends once. */
  #ended = false;

  #finish(work: () => Promise<void>): Promise<void> {
    if (this.#ended) return this.closed;
    this.#ended = true;
    work().then(() => this.#settle.resolve(), (e) => this.#settle.reject(e));
    return this.closed;
  }

  close(): Promise<void> {
    return this.#finish(() => this.#close());
  }

  async #close(): Promise<void> {
    // As the session process does: the programs' groups hung up, what is left killed, before
    // the exit entries and PAM's close.
    await hangUp([...this.#live].map(([child, exited]) => ({
      pid: child.pid!,
      ended: exited,
      kill: (signal: NodeJS.Signals) => child.kill(signal),
    })));
    return allSteps(closeSteps(this.#tx, this.#opened.record, this.#silent, threadUtmp));
  }

  detach(): Promise<void> {
    return this.#finish(() => this.#tx.end({ silent: true }));
  }

  spawn(plan: SpawnPlan): Promise<SessionProgram> {
    if (this.#ended) {
      return Promise.reject(new Error("this session is closed: spawn() needs an open session"));
    }
    if (plan.terminal) {
      return Promise.reject(
        new Error("this session has no terminal: log in with login({ terminal: { cols, rows } })"),
      );
    }
    try {
      const mode = (m: string) => m === "piped" ? "pipe" : m === "null" ? "ignore" : "inherit";
      const child = spawnAsUser(this.#opened.user, this.#opened.env, plan, [
        mode(plan.stdin),
        mode(plan.stdout),
        mode(plan.stderr),
      ]);
      return new Promise((resolve, reject) => {
        child.once("error", reject);
        child.once("spawn", () => {
          // "exit", not "close": a program's end must not wait for a reader that paused.
          const exited = new Promise<void>((res) => child.once("exit", () => res()));
          this.#live.set(child, exited);
          void exited.then(() => this.#live.delete(child));
          // A write waits for the pipe to take it; an abort gives it up (Bun calls no write
          // callback for a destroyed stream, so the rejection cannot come from there).
          let giveUp: ((error: Error) => void) | undefined;
          const { program, sink } = newProgram(child.pid!, plan, {
            write: (bytes) =>
              new Promise((res, rej) => {
                giveUp = rej;
                child.stdin!.write(bytes, (e) => (e ? rej(e) : res()));
              }),
            endInput: () => child.stdin?.end(),
            cancelInput: () => {
              giveUp?.(new Error("the write to the program's stdin was aborted"));
              child.stdin?.destroy();
            },
            kill: (signal) => child.kill(signal as NodeJS.Signals),
            pause: (fd) => (fd === 1 ? child.stdout : child.stderr)?.pause(),
            resume: (fd) => (fd === 1 ? child.stdout : child.stderr)?.resume(),
          });
          child.stdin?.on("error", () => {});
          child.stdout?.on("data", (b: Uint8Array) => sink.output(1, b));
          child.stderr?.on("data", (b: Uint8Array) => sink.output(2, b));
          child.once("close", (code, signal) => {
            sink.end(1);
            sink.end(2);
            sink.exit({ code, signal });
            if (plan.endsSession) void this.close().catch(() => {});
          });
          resolve(program);
        });
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * Logs a user in, in the order `pam_open_session(3)` asks for: `pam_start`,
 * the items (`tty`, `rhost`, `ruser`), `pam_authenticate`, `pam_acct_mgmt`
 * (and `pam_chauthtok` when the password expired), `pam_setcred(ESTABLISH)`,
 * `pam_open_session`, and only then the utmp and wtmp login entries.
 *
 * All of it runs in a session process of its own (the same runtime, started
 * for this login), so session modules act on it and not on the caller; the
 * conversation is relayed to the caller's handler, which may be async. If
 * the caller dies, the session process closes the session and exits.
 *
 * If any step fails, what was done is undone in reverse (entries cleared,
 * session closed, credentials deleted, transaction ended) and the promise
 * rejects with the first error: a `PamError` for PAM failures
 * (`ReturnCode.SESSION_ERR` when a session module could not set up), an
 * `Error` saying the session process died (and how) when a module crashed it.
 *
 * @example
 * ```ts
 * import { login, passwordConversation } from "@seed/pam";
 *
 * await using session = await login({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 *   utmp: { utmpFile: "/tmp/demo/utmp", wtmpFile: "/tmp/demo/wtmp" },
 * });
 * console.log(`welcome, ${session.user}`);
 * ```
 *
 * @throws {TypeError} For bad options, before any C call or process start.
 * @throws {RangeError} For a utmp field, pid or `conversationTimeoutMs` out of range, as early.
 * @throws {PamError} When a PAM step fails.
 * @throws {Error} When the utmp/wtmp files cannot be written (before any PAM call), or the
 *   session process died.
 *
 * @tags allow-ffi, allow-run, allow-env
 */
export async function login(options: LoginOptions): Promise<LoginSession> {
  if (options === undefined) {
    throw new TypeError("login() needs options: { service, user?, conversation?, tty?, ... }");
  }
  const o = optionsObject<Record<string, unknown>>(options, "login() options");
  checkKeys(o, loginKeys, "login() options");
  const terminal = planTerminal(o);
  // The pty's slave is known only in the session process, which puts it in place of this.
  const plan = planLogin(terminal ? { ...o, tty: ptyPlaceholder } : o);
  checkConversation(o.conversation);
  const signal = o.signal as AbortSignal | undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`login() options.signal must be an AbortSignal, got ${describe(signal)}`);
  }
  // The async API's default and its Infinity, for the session process's relay as for inProcess.
  const ms = conversationTimeout(o.conversationTimeoutMs, "login() options.conversationTimeoutMs");
  if (o.inProcess !== undefined && typeof o.inProcess !== "boolean") {
    throw new TypeError(`inProcess must be a boolean, got ${describe(o.inProcess)}`);
  }
  const conversation = o.conversation as LoginOptions["conversation"];
  if (o.inProcess) return await loginInProcess(plan, { conversation, signal, ms });
  signal?.throwIfAborted();
  return await loginInSessionProcess(
    plan,
    conversation,
    signal,
    ms,
    terminal,
  );
}

async function loginInSessionProcess(
  plan: LoginPlan,
  conversation: LoginOptions["conversation"],
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  terminal?: ReturnType<typeof planTerminal>,
): Promise<LoginSession> {
  const proc = new SessionProcess(conversation, signal, timeoutMs);
  const release = proc.hold();
  try {
    return await openInSessionProcess(proc, plan, conversation, signal, terminal);
  } finally {
    release();
  }
}

async function openInSessionProcess(
  proc: SessionProcess,
  plan: LoginPlan,
  conversation: LoginOptions["conversation"],
  signal: AbortSignal | undefined,
  terminal?: ReturnType<typeof planTerminal>,
): Promise<LoginSession> {
  const result = quiet(
    new Promise<Frame>((resolve, reject) => {
      proc.onFrame = (frame) => {
        if (frame.header.t === "opened" || frame.header.t === "failed") resolve(frame);
      };
      proc.exited.then((exit) => reject(diedError(proc, exit, "before the login finished")));
    }),
  );
  // An abort must end the login even while the process is inside a module that never converses
  // (or still loads): the process is hung up and killed after a grace, and login() rejects once it
  // is gone, so that whatever it had opened is undone by then.
  let gone: Promise<unknown> | undefined;
  let onAbort = () => {};
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => {
      gone = proc.abandon(hangUpGraceMs);
      void gone.then(() => reject(signal!.reason));
    };
  });
  signal?.addEventListener("abort", onAbort, { once: true });
  let header: Frame["header"];
  try {
    await Promise.race([
      proc.sendJob({
        t: "login",
        plan,
        conversation: conversation !== undefined,
        ...(terminal ? { terminal } : {}),
      }),
      stopped,
    ]);
    ({ header } = await Promise.race([result, stopped]));
  } catch (error) {
    if (!gone) throw error;
    // Killed, or gone without a word: the abort is why.
    await gone;
    throw signal!.reason;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  if (gone) await gone;
  if (header.t === "failed") {
    // The conversation ran here: only here can its failure say the password expired. After an
    // abort at a prompt, this is the PamError whose cause is the reason.
    throw explainExpired(fromWire(header.error as WireError, proc.failure));
  }
  // Opened after the abort: the hung-up process has closed the session again.
  if (gone) throw signal!.reason;
  proc.detachSignal();
  const opened = {
    user: header.user as string,
    env: header.env as Record<string, string>,
    record: header.record as SessionRecord,
  };
  const backend = new ProcessBackend(proc, conversation);
  return createSession(backend, opened);
}

async function loginInProcess(
  plan: LoginPlan,
  options: {
    conversation: LoginOptions["conversation"];
    signal: AbortSignal | undefined;
    ms: number | undefined;
  },
): Promise<LoginSession> {
  await checkUtmpFiles(plan.utmp, threadUtmp);
  const tx = await AsyncPamTransaction.start({
    service: plan.service,
    ...(plan.user !== null ? { user: plan.user } : {}),
    ...(plan.confdir !== undefined ? { confdir: plan.confdir } : {}),
    ...(plan.library !== undefined ? { library: plan.library } : {}),
    ...(plan.failDelay !== undefined ? { failDelay: plan.failDelay } : {}),
    ...(options.conversation !== undefined ? { conversation: options.conversation } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    // undefined is Infinity here (conversationTimeout): start() would apply its default.
    conversationTimeoutMs: options.ms ?? Infinity,
  });
  let opened: OpenedSession;
  try {
    // Undo even after an abort: the transaction stops failing calls for the signal first.
    opened = await openSession(tx, plan, process.pid, () => detachSignal(tx), threadUtmp);
  } catch (error) {
    await tx.end().catch(() => {});
    throw error;
  }
  detachSignal(tx);
  return createSession(new InProcessBackend(tx, opened, plan.silent), opened);
}
