/**
 * The internals of a session's programs: how a program's process and its
 * `SessionProgram` talk (the port and the sink), and the check of
 * `spawn()`'s arguments.
 *
 * @module
 */

import { checkArgv, checkEnv, type SpawnPlan } from "./_spawn.ts";
import { checkCString, describe, optionalBoolean, optionsObject } from "../_validate.ts";
import { checkKeys } from "./_lifecycle.ts";
import type { ProgramStatus, SessionProgram, StdioMode } from "./program.ts";

/** How a program's streams and signals reach the process that runs it. Internal. */
export interface ProgramPort {
  write(bytes: Uint8Array): Promise<void>;
  /** Ends the input after the writes so far. */
  endInput(): void;
  /** Gives up on a write in progress (the stream was aborted): it rejects. */
  cancelInput(): void;
  kill(signal: string): void;
  /** Keys for its terminal. */
  type?(bytes: Uint8Array): Promise<void>;
  /** Its terminal's new size. */
  resize?(cols: number, rows: number): void;
  /**
   * Stops reading the program's output `fd` (or its terminal's) until
   * {@linkcode ProgramPort.resume}: backpressure.
   */
  pause(fd: 1 | 2 | "terminal"): void;
  resume(fd: 1 | 2 | "terminal"): void;
}

/** What the process running a program reports of it. Internal. */
export interface ProgramSink {
  output(fd: 1 | 2, bytes: Uint8Array): void;
  end(fd: 1 | 2): void;
  exit(status: ProgramStatus): void;
  /** The session process died: the program's fate is unknown. */
  lost(error: Error): void;
  /** What it wrote to its terminal. */
  screen(bytes: Uint8Array): void;
  /** Its terminal's last output has been delivered. */
  screenEnd(): void;
}

/** Set by `SessionProgram`'s static block: only the class may construct one. */
export const programAccess: {
  create?: (
    pid: number,
    plan: SpawnPlan,
    port: ProgramPort,
  ) => { program: SessionProgram; sink: ProgramSink };
} = {};

/** Builds a program and the sink its process reports to. Internal. */
export function newProgram(
  pid: number,
  plan: SpawnPlan,
  port: ProgramPort,
): { program: SessionProgram; sink: ProgramSink } {
  return programAccess.create!(pid, plan, port);
}

const spawnKeys = ["env", "cwd", "stdin", "stdout", "stderr", "endsSession", "terminal"];
const modes = ["piped", "inherit", "null"];

function mode(value: unknown, what: string): StdioMode {
  if (value === undefined) return "piped";
  if (typeof value !== "string" || !modes.includes(value)) {
    throw new TypeError(`${what} must be "piped", "inherit" or "null", got ${describe(value)}`);
  }
  return value as StdioMode;
}

/** Checks `spawn()`'s arguments before anything is sent, into plain data. Internal. */
export function planSpawn(argv: unknown, options: unknown): SpawnPlan {
  const args = checkArgv(argv, "spawn()");
  const o = optionsObject<Record<string, unknown>>(options, "spawn() options");
  checkKeys(o, spawnKeys, "spawn() options");
  const env = o.env === undefined ? {} : checkEnv(o.env, "env");
  let cwd: string | undefined;
  if (o.cwd !== undefined) {
    checkCString(o.cwd, "cwd");
    cwd = o.cwd as string;
  }
  const terminal = optionalBoolean(o.terminal, "terminal") ?? false;
  if (terminal) {
    const streams = ["stdin", "stdout", "stderr"].filter((name) => o[name] !== undefined);
    if (streams.length) {
      throw new TypeError(
        `terminal: true connects the program's streams to the terminal; ${
          streams.join(", ")
        } cannot be given with it`,
      );
    }
    env.TERM ??= "xterm-256color";
  }
  return {
    argv: args,
    env,
    ...(cwd !== undefined ? { cwd } : {}),
    stdin: terminal ? "null" : mode(o.stdin, "stdin"),
    stdout: terminal ? "null" : mode(o.stdout, "stdout"),
    stderr: terminal ? "null" : mode(o.stderr, "stderr"),
    endsSession: optionalBoolean(o.endsSession, "endsSession") ?? false,
    terminal,
  };
}
