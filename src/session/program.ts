/**
 * The user's programs, started by `LoginSession.spawn()` in the session's
 * process, as the session's user.
 *
 * @module
 */

import { constants } from "node:os";
import type { SpawnPlan } from "./_spawn.ts";
import { describe } from "../_validate.ts";
import { programAccess, type ProgramPort, type ProgramSink } from "./_program.ts";
import { checkDimension } from "./_pty.ts";

/**
 * How one of a program's standard streams is connected: `"piped"`, a stream
 * on the {@linkcode SessionProgram}; `"inherit"`, the caller's own (relayed
 * through the session process); `"null"`, `/dev/null`.
 *
 * @example
 * ```ts
 * import type { StdioMode } from "@seed/pam";
 * const quiet: StdioMode = "null";
 * ```
 */
export type StdioMode = "piped" | "inherit" | "null";

/**
 * How {@linkcode LoginSession.spawn} runs a program.
 *
 * @example
 * ```ts
 * import type { SpawnOptions } from "@seed/pam";
 * const options: SpawnOptions = { env: { TERM: "dumb" }, stdin: "null", endsSession: true };
 * ```
 */
export interface SpawnOptions {
  /** Added to the session's environment (the PAM environment plus HOME, USER, LOGNAME, SHELL, PATH). */
  env?: Record<string, string> | undefined;
  /** The working directory (default: the user's home directory, or `/` when it is missing). */
  cwd?: string | undefined;
  /** `"piped"` (default): a stream on the returned object; `"inherit"`: the caller's own; `"null"`: none. */
  stdin?: StdioMode | undefined;
  /** As `stdin`. */
  stdout?: StdioMode | undefined;
  /** As `stdin`. */
  stderr?: StdioMode | undefined;
  /** When the program exits, the session closes itself (`session.closed` settles). */
  endsSession?: boolean | undefined;
  /**
   * Runs it on the session's pseudo-terminal (a login with `terminal`): the
   * slave is its stdin, stdout, stderr and controlling terminal, and
   * {@linkcode SessionProgram.terminal} is the other end. `TERM` defaults to
   * `xterm-256color`. Not with `stdin`, `stdout` or `stderr`.
   */
  terminal?: boolean | undefined;
}

/**
 * The caller's end of a program's pseudo-terminal, from
 * `session.spawn(argv, { terminal: true })`.
 *
 * @example
 * ```ts
 * import { login } from "@seed/pam";
 * await using session = await login({ service: "login", user: "alice", terminal: { cols: 80, rows: 24 } });
 * const shell = await session.spawn(["bash", "-l"], { terminal: true });
 * const keys = shell.terminal!.writable.getWriter();
 * await keys.write(new TextEncoder().encode("id -un\r"));
 * shell.terminal!.resize(120, 40);
 * for await (const chunk of shell.terminal!.readable) console.log(new TextDecoder().decode(chunk));
 * ```
 */
export interface SessionTerminal {
  /** What the program writes to the terminal; closes after its last output, once it exited. */
  readonly readable: ReadableStream<Uint8Array>;
  /** What the terminal's keyboard types: `"\x03"` is Ctrl-C, `"\x04"` Ctrl-D. */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Sets the terminal's size; the program's foreground job gets `SIGWINCH`.
   *
   * @throws {RangeError} When a dimension is not an integer from 1 to 65535.
   */
  resize(cols: number, rows: number): void;
}

/**
 * How a program ended: its exit code, or the signal that ended it.
 *
 * @example
 * ```ts
 * import type { ProgramStatus } from "@seed/pam";
 * const status: ProgramStatus = { code: 0, signal: null };
 * ```
 */
export interface ProgramStatus {
  /** The exit code, or `null` when a signal ended it. */
  readonly code: number | null;
  /** The signal's name (`"SIGTERM"`), or `null` when it exited. */
  readonly signal: string | null;
}

/** Output buffered for a reader before the program's stream is paused. */
const outputHighWaterMark = 256 * 1024;

const signalNames = new Set(Object.keys(constants.signals));

/**
 * A program running as the session's user, from {@linkcode LoginSession.spawn}.
 *
 * @example
 * ```ts
 * import { login } from "@seed/pam";
 * await using session = await login({ service: "login", user: "alice", utmp: false });
 * const program = await session.spawn(["id", "-un"]);
 * console.log(await new Response(program.stdout).text(), await program.status);
 * ```
 */
export class SessionProgram {
  /** The program's process id. */
  readonly pid: number;
  /**
   * Its standard input, when piped. A write resolves once no more than
   * 256 KiB are still on their way to a program that has not read them.
   */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** Its standard output, when piped; closes after its last output. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** Its standard error, when piped. */
  readonly stderr: ReadableStream<Uint8Array> | null;
  /** Settles when it has exited; rejects when the session process died first. */
  readonly status: Promise<ProgramStatus>;
  /** Its pseudo-terminal, when spawned with `terminal: true`; else `null`. */
  readonly terminal: SessionTerminal | null;
  readonly #port: ProgramPort;
  #exited = false;

  static {
    programAccess.create = (pid, plan, port) => {
      const outputs = new Map<1 | 2, ReadableStreamDefaultController<Uint8Array>>();
      // A reader that does not keep up pauses the program's stream (and so, through its pipe,
      // the program) instead of letting its output pile up in memory.
      const paused = new Set<1 | 2>();
      const readable = (fd: 1 | 2) =>
        new ReadableStream<Uint8Array>(
          {
            start: (c) => void outputs.set(fd, c),
            pull: () => {
              if (paused.delete(fd)) port.resume(fd);
            },
            cancel: () => {
              outputs.delete(fd);
              if (paused.delete(fd)) port.resume(fd);
            },
          },
          { highWaterMark: outputHighWaterMark, size: (chunk) => chunk?.byteLength ?? 0 },
        );
      const stdout = plan.stdout === "piped" ? readable(1) : null;
      const stderr = plan.stderr === "piped" ? readable(2) : null;
      let screen: ReadableStreamDefaultController<Uint8Array> | undefined;
      let screenPaused = false;
      const terminal = plan.terminal
        ? newTerminal(port, (c) => screen = c, () => {
          if (screenPaused) port.resume("terminal");
          screenPaused = false;
        })
        : null;
      const endScreen = (error?: Error) => {
        const c = screen;
        screen = undefined;
        try {
          if (error) c?.error(error);
          else c?.close();
        } catch {
          // Cancelled by its reader.
        }
      };
      let settle!: { resolve(s: ProgramStatus): void; reject(e: Error): void };
      const status = new Promise<ProgramStatus>((resolve, reject) => {
        settle = { resolve, reject };
      });
      status.catch(() => {}); // a caller that never looks at it must not see an unhandled rejection
      const program = new SessionProgram(pid, plan, port, stdout, stderr, status, terminal);
      const close = (fd: 1 | 2, error?: Error) => {
        const c = outputs.get(fd);
        outputs.delete(fd);
        try {
          if (error) c?.error(error);
          else c?.close();
        } catch {
          // Cancelled by its reader.
        }
      };
      const sink: ProgramSink = {
        output: (fd, bytes) => {
          const c = outputs.get(fd);
          if (!c) return; // Cancelled by its reader: the output has nowhere to go.
          try {
            c.enqueue(bytes);
            if ((c.desiredSize ?? 1) <= 0 && !paused.has(fd)) {
              paused.add(fd);
              port.pause(fd);
            }
          } catch {
            // Closed meanwhile.
          }
        },
        end: (fd) => close(fd),
        exit: (s) => {
          program.#exited = true;
          endScreen();
          settle.resolve(s);
        },
        lost: (error) => {
          program.#exited = true;
          close(1, error);
          close(2, error);
          endScreen(error);
          settle.reject(error);
        },
        screen: (bytes) => {
          try {
            screen?.enqueue(bytes);
            if (screen && (screen.desiredSize ?? 1) <= 0 && !screenPaused) {
              screenPaused = true;
              port.pause("terminal");
            }
          } catch {
            // The reader cancelled: the output has nowhere to go.
          }
        },
        screenEnd: () => endScreen(),
      };
      return { program, sink };
    };
  }

  /**
   * Not for callers: `LoginSession.spawn()` makes one.
   *
   * @ignore
   */
  private constructor(
    pid: number,
    plan: SpawnPlan,
    port: ProgramPort,
    stdout: ReadableStream<Uint8Array> | null,
    stderr: ReadableStream<Uint8Array> | null,
    status: Promise<ProgramStatus>,
    terminal: SessionTerminal | null,
  ) {
    this.pid = pid;
    this.terminal = terminal;
    this.#port = port;
    this.stdout = stdout;
    this.stderr = stderr;
    this.status = status;
    this.stdin = plan.stdin === "piped"
      ? new WritableStream<Uint8Array>({
        // abort() waits for the write in progress, which may wait for a program that never
        // reads: the controller's signal fires first, and gives that write up.
        start: (controller) =>
          controller.signal?.addEventListener("abort", () => port.cancelInput(), { once: true }),
        write: (chunk) => {
          if (!(chunk instanceof Uint8Array)) {
            throw new TypeError(`stdin takes Uint8Array chunks, got ${describe(chunk)}`);
          }
          return port.write(chunk);
        },
        close: () => port.endInput(),
        abort: () => port.endInput(),
      })
      : null;
  }

  /**
   * Sends `signal` (default `"SIGTERM"`) to the program. Does nothing once it has exited.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * await using session = await login({ service: "login", user: "alice", utmp: false });
   * const program = await session.spawn(["sleep", "60"]);
   * program.kill("SIGINT");
   * await program.status;
   * ```
   *
   * @throws {TypeError} When `signal` is not a signal name.
   */
  kill(signal: string = "SIGTERM"): void {
    if (typeof signal !== "string" || !signalNames.has(signal)) {
      throw new TypeError(`kill() takes a signal name such as "SIGTERM", got ${describe(signal)}`);
    }
    if (!this.#exited) this.#port.kill(signal);
  }
}

/** The caller's end of a terminal, relayed through `port`. */
function newTerminal(
  port: ProgramPort,
  onStart: (controller: ReadableStreamDefaultController<Uint8Array>) => void,
  onDrained: () => void,
): SessionTerminal {
  return Object.freeze({
    // As the program's piped output: a reader that does not keep up pauses the pty's reading.
    readable: new ReadableStream<Uint8Array>(
      { start: onStart, pull: onDrained, cancel: onDrained },
      { highWaterMark: outputHighWaterMark, size: (chunk) => chunk?.byteLength ?? 0 },
    ),
    writable: new WritableStream<Uint8Array>({
      write: (chunk) => {
        if (!(chunk instanceof Uint8Array)) {
          throw new TypeError(`a terminal takes Uint8Array chunks, got ${describe(chunk)}`);
        }
        return port.type!(chunk);
      },
    }),
    resize(cols: number, rows: number): void {
      checkDimension(cols, "cols");
      checkDimension(rows, "rows");
      port.resize!(cols, rows);
    },
  });
}
