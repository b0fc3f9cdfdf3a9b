/**
 * Ending a session's programs the way a terminal's hangup ends a login's:
 * `SIGHUP` to each program's process group (each was started by `setsid`,
 * so it leads a session and a group of its own, and what it started in the
 * background is in that group too), then, after a grace period, `SIGKILL`
 * to what is left, and whatever is left in their groups once they have ended. One implementation for the session process, the caller
 * of an `inProcess` session, and a caller whose session process died.
 * Internal.
 *
 * @module
 */

import process from "node:process";
import { clearTimeout, setTimeout } from "node:timers";

/** How long hung-up programs have to end before they are killed. */
export const hangUpGraceMs = 2000;

/** A program to hang up. */
export interface HangUpTarget {
  /** Its process id: the leader of its process group. */
  readonly pid: number;
  /** Settles once it has ended. */
  readonly ended: Promise<unknown>;
  /** Signals the program alone: for when its group cannot be signalled. */
  kill?(signal: NodeJS.Signals): void;
}

/**
 * Sends `signal` to the process group `pid` leads, or, when that fails, to
 * `kill` (the program alone); a program already gone is no error.
 */
export function signalGroup(
  pid: number,
  signal: NodeJS.Signals,
  kill?: (signal: NodeJS.Signals) => void,
): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      kill?.(signal);
    } catch {
      // Already gone, or not ours to signal.
    }
  }
}

/**
 * Hangs up `targets` (`SIGHUP` to each one's group; not when `signalled`
 * says the hangup already happened, as closing a pty's master does), waits
 * up to {@linkcode hangUpGraceMs} for all of them to end, kills the groups
 * of those still running, and resolves once every target has ended.
 */
export async function hangUp(
  targets: readonly HangUpTarget[],
  options: { signalled?: boolean } = {},
): Promise<void> {
  if (targets.length === 0) return;
  const live = new Set(targets);
  // A program that died of the hangup may leave a background job in its group that ignores
  // SIGHUP: its group goes the moment it has ended. While the group has members its id cannot
  // be reused; once it is empty the kill finds nothing, and the sooner it comes the less time
  // a new process has had to take that id for a group of its own.
  const sweep = (t: HangUpTarget) => {
    live.delete(t);
    try {
      process.kill(-t.pid, "SIGKILL");
    } catch {
      // The group is empty: nothing was left behind.
    }
  };
  const ended = Promise.all(targets.map((t) => t.ended.then(() => sweep(t), () => sweep(t))));
  if (!options.signalled) { for (const t of targets) signalGroup(t.pid, "SIGHUP", t.kill); }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), hangUpGraceMs);
  });
  try {
    if (await Promise.race([ended.then(() => "done" as const), late]) !== "done") {
      for (const t of live) signalGroup(t.pid, "SIGKILL", t.kill);
      await ended;
    }
  } finally {
    clearTimeout(timer);
  }
}
