/**
 * Pseudo-terminals for the session process: a master this process reads and
 * writes on its event loop, and programs started with the slave as their
 * stdin, stdout, stderr and controlling terminal, as the session's user.
 *
 * The master comes from libc (`posix_openpt`) because neither runtime opens
 * one; the runtime reads it through `NativeAdapter.readStream` (ffi/types.ts)
 * (neither Deno's files nor node:fs can adopt a descriptor they did not
 * open), and writes go through libc's `write` on the non-blocking descriptor.
 *
 * @module
 */

import { spawn as spawnChild } from "node:child_process";
import {
  groupLayout,
  native,
  pointerSize,
  termiosConstants,
  winsizeLayout,
} from "../../ffi/mod.ts";
import { errnoText, lastErrno } from "../_library.ts";
import {
  checkCString,
  checkIntegerIn,
  checkKnownKeys,
  cString,
  describe,
  optionsObject,
} from "../_validate.ts";
import { splitRootEnv } from "./_root_env.ts";
import { checkArgv, checkEnv, nssLookup, privilegeDrop, processLibc, utilLinux } from "./_spawn.ts";

/**
 * A terminal's size in character cells.
 *
 * @example
 * ```ts ignore
 * import { openPty, type PtySize } from "./_pty.ts";
 * const size: PtySize = { cols: 120, rows: 40 };
 * using pty = openPty(size);
 * ```
 */
export interface PtySize {
  /** Columns, 1 to 65535. */
  cols: number;
  /** Rows, 1 to 65535. */
  rows: number;
}

/**
 * How {@linkcode Pty.spawn} runs a program.
 *
 * @example
 * ```ts ignore
 * import type { PtySpawnOptions } from "./_pty.ts";
 * const asNobody: PtySpawnOptions = { env: { PATH: "/usr/bin:/bin" }, cwd: "/", uid: 65534, gid: 65534 };
 * ```
 */
export interface PtySpawnOptions {
  /**
   * The program's whole environment (default: this process's). With a `uid`,
   * the variables that would make a root process load or read what the user
   * chose (`LD_*`, and those glibc drops for setuid programs) reach the
   * program but not the steps before it that still run as root.
   */
  env?: Record<string, string> | undefined;
  /** Its working directory (default: this process's). */
  cwd?: string | undefined;
  /**
   * The user to run it as, with {@linkcode PtySpawnOptions.gid} and the
   * supplementary groups `initgroups(3)` gives (util-linux `setpriv`). Only
   * root may name a user other than itself.
   */
  uid?: number | undefined;
  /** The primary group to run it with; given exactly when `uid` is. */
  gid?: number | undefined;
}

/**
 * How a program ended: its exit code, or the signal that killed it.
 *
 * @example
 * ```ts ignore
 * import type { PtyStatus } from "./_pty.ts";
 * const describe = (s: PtyStatus): string => s.signal ?? `exit ${s.code}`;
 * ```
 */
export interface PtyStatus {
  /** The exit code, or `null` when a signal ended it. */
  code: number | null;
  /** The signal's name (`"SIGKILL"`), or `null` when it exited. */
  signal: string | null;
}

/**
 * A program running on a pseudo-terminal.
 *
 * @example
 * ```ts ignore
 * import { openPty } from "./_pty.ts";
 * using pty = openPty({ cols: 80, rows: 24 });
 * const sleeper = await pty.spawn(["sleep", "30"]);
 * sleeper.kill("SIGINT");
 * console.log(await sleeper.status); // { code: null, signal: "SIGINT" }
 * ```
 */
export interface PtyProcess {
  /** Its process id: the leader of its session, whose controlling terminal the pty is. */
  readonly pid: number;
  /** Settles once it has ended. */
  readonly status: Promise<PtyStatus>;
  /** Sends it `signal` (default `"SIGTERM"`); nothing once it has ended. */
  kill(signal?: string): void;
}

/**
 * A pseudo-terminal: the master end in this process, the slave at
 * {@linkcode Pty.slavePath} for the programs {@linkcode Pty.spawn} starts.
 *
 * {@linkcode Pty.readable} closes once the last program holding the slave
 * has closed it, after everything it wrote; call {@linkcode Pty.close} (or
 * `using`) when done, which also hangs up programs still running on it.
 *
 * @example
 * ```ts ignore
 * import { openPty } from "./_pty.ts";
 * using pty = openPty({ cols: 80, rows: 24 });
 * pty.chown(1000, 1000); // the user's, before their shell starts
 * const shell = await pty.spawn(["bash", "-l"], { uid: 1000, gid: 1000 });
 * const keys = pty.writable.getWriter();
 * await keys.write(new TextEncoder().encode("echo hello\r"));
 * pty.resize(100, 30);
 * ```
 */
export interface Pty {
  /** The slave's path, `/dev/pts/N`: `PAM_TTY`, and `pts/N` is the utmp line. */
  readonly slavePath: string;
  /** What the programs write to the terminal. */
  readonly readable: ReadableStream<Uint8Array>;
  /** What the terminal's keyboard would type: bytes for the programs to read. */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Sets the terminal's size; the kernel sends `SIGWINCH` to its foreground job.
   *
   * @throws {RangeError} when a dimension is not an integer from 1 to 65535.
   * @throws {Error} when the pty is closed, or the kernel refuses.
   */
  resize(cols: number, rows: number): void;
  /**
   * Gives the slave to a user the way login(1) and sshd do: owner `uid`,
   * group `tty` and mode 0620 where that group exists (so `write` and
   * `wall` reach it), else group `gid` and mode 0600. Needs root unless
   * `uid` is this process's own; call it before the program's spawn (once
   * the last program has exited the slave is let go).
   *
   * @param mode overrides the mode (permission bits only).
   * @throws {TypeError} for ids or a mode that are not numbers.
   * @throws {RangeError} for ids or a mode out of range.
   * @throws {Error} when the pty is closed or let go, or the system refuses
   * (`EPERM` without root).
   */
  chown(uid: number, gid: number, mode?: number): void;
  /**
   * Starts `argv` in a new session with the slave as its stdin, stdout,
   * stderr and controlling terminal, as the user `options` names. Resolves
   * once it runs. Programs may share one pty while any of them runs; once
   * the last has exited the slave is let go (so `readable` can close), and
   * another spawn is an error: open a new pty.
   *
   * @throws {TypeError} for a bad `argv` or options (unknown keys included).
   * @throws {Error} when the pty is closed or let go, when this process may
   * not run programs as `uid`, or when the program could not start.
   */
  spawn(argv: readonly string[], options?: PtySpawnOptions): Promise<PtyProcess>;
  /** Closes the master (programs still on the slave get `SIGHUP`) and ends `readable`; idempotent. */
  close(): void;
  /** {@linkcode Pty.close}. */
  [Symbol.dispose](): void;
}

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const { TIOCSWINSZ } = termiosConstants;
const EINTR = 4;
const EAGAIN = 11;
// write(2) takes at most this much per call, so its ssize_t result fits the int it is bound as.
const WRITE_MAX = 64 * 1024;
// The longest wait between two tries of a write the slave's full input queue refused.
const WRITE_RETRY_MAX_MS = 50;

// A session leader that opens a terminal without O_NOCTTY makes it its controlling terminal:
// setsid(1) makes the session, sh opens the slave as stdin, stdout and stderr, then execs the
// rest of its arguments (setpriv, then the program). Opening it in the child, not handing it
// over as stdio, is what keeps every other descriptor out of the program on both runtimes.
const ATTACH = 'exec 0<>"$0" 1>&0 2>&0 && exec "$@"';

const decoder = new TextDecoder();

/**
 * Opens a pseudo-terminal of `size`.
 *
 * @example
 * ```ts ignore
 * import { openPty } from "./_pty.ts";
 * using pty = openPty({ cols: 80, rows: 24 });
 * const program = await pty.spawn(["tty"]);
 * for await (const chunk of pty.readable) console.log(new TextDecoder().decode(chunk));
 * console.log(await program.status); // { code: 0, signal: null }
 * ```
 *
 * @throws {TypeError} for a size that is not `{ cols, rows }`.
 * @throws {RangeError} for a dimension that is not an integer from 1 to 65535.
 * @throws {Error} when the system has no pseudo-terminal to give.
 */
export function openPty(size: PtySize): Pty {
  const { cols, rows } = checkSize(size);
  const libc = processLibc();
  // Non-blocking, so the runtime can poll it and a full input queue never stalls a write;
  // close-on-exec, so no program ever holds the master.
  const master = libc.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (master < 0) throw new Error(`cannot open a pseudo-terminal (posix_openpt): ${errnoText()}`);
  const opened = [master];
  try {
    if (libc.grantpt(master) !== 0 || libc.unlockpt(master) !== 0) {
      throw new Error(`cannot unlock the pseudo-terminal's slave: ${errnoText()}`);
    }
    const name = new Uint8Array(64);
    const failed = libc.ptsname_r(master, name, name.length);
    if (failed) throw new Error(`cannot name the pseudo-terminal's slave: ${errnoText(failed)}`);
    const slavePath = decoder.decode(name.subarray(0, name.indexOf(0)));
    setWindowSize(master, cols, rows);
    // Held until a program has had it: once every slave descriptor has been closed, reading
    // the master fails with EIO, which would end `readable` before the program even started.
    const slave = libc.open(cString(slavePath, "the slave's path"), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) throw new Error(`cannot open the slave ${slavePath}: ${errnoText()}`);
    opened.push(slave);
    // The reader gets a descriptor of its own to close: it closes it when it ends, which must
    // not free the master's number while writes and resizes still use it.
    const reader = libc.fcntl(master, F_DUPFD_CLOEXEC, 0);
    if (reader < 0) throw new Error(`cannot duplicate the master: ${errnoText()}`);
    opened.push(reader);
    const terminal = new Terminal(master, slave, reader, slavePath);
    opened.length = 0; // The terminal owns them now.
    return terminal;
  } catch (error) {
    for (const fd of opened) libc.close_fd(fd);
    throw error;
  }
}

class Terminal implements Pty {
  readonly slavePath: string;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  #master: number;
  #slave: number;
  #source: ReadableStreamDefaultReader<Uint8Array>;
  #running = 0;
  #started = 0;

  constructor(master: number, slave: number, reader: number, slavePath: string) {
    this.#master = master;
    this.#slave = slave;
    this.slavePath = slavePath;
    const source = native.readStream(reader).getReader();
    this.#source = source;
    let cancelled = false;
    // A stream of our own in front of the adapter's: close() must end it even while a caller
    // holds a reader on `readable`, and only the holder of a lock can cancel.
    this.readable = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await source.read();
        if (cancelled) return;
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        cancelled = true;
        return source.cancel(reason);
      },
    }, { highWaterMark: 0 });
    this.writable = new WritableStream<Uint8Array>({ write: (chunk) => this.#write(chunk) });
  }

  resize(cols: number, rows: number): void {
    checkDimension(cols, "cols");
    checkDimension(rows, "rows");
    setWindowSize(this.#open(), cols, rows);
  }

  chown(uid: number, gid: number, mode?: number): void {
    checkId(uid, "uid");
    checkId(gid, "gid");
    if (mode !== undefined) {
      checkIntegerIn(mode, 0, 0o777, "mode", "permission bits from 0 to 0o777");
    }
    const slave = this.#held();
    const tty = ttyGroupId();
    const libc = processLibc();
    if (
      libc.fchown(slave, uid, tty ?? gid) !== 0 ||
      libc.fchmod(slave, mode ?? (tty === undefined ? 0o600 : 0o620)) !== 0
    ) {
      throw new Error(`cannot give ${this.slavePath} to uid ${uid}: ${errnoText()}`);
    }
  }

  async spawn(argv: readonly string[], options?: PtySpawnOptions): Promise<PtyProcess> {
    const args = checkArgv(argv, "spawn()");
    const { env, cwd, uid, gid } = checkSpawnOptions(options);
    this.#held();
    const drop = uid === undefined ? [] : privilegeDrop(uid, gid!);
    const { rootEnv, restore } = drop.length && env
      ? splitRootEnv(env)
      : { rootEnv: env, restore: [] };
    const child = spawnChild(
      utilLinux("setsid"),
      ["/bin/sh", "-c", ATTACH, this.slavePath, ...drop, ...restore, ...args],
      { env: rootEnv, cwd, stdio: "ignore" },
    );
    this.#running++;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.#running--;
      if (this.#running === 0 && this.#started > 0) this.#letGo();
    };
    const status = new Promise<PtyStatus>((resolve, reject) => {
      child.once("exit", (code, signal) => {
        end();
        resolve({ code, signal });
      });
      child.once("error", (error) => {
        end();
        reject(error);
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", () => {
        // Counted at once: its exit must let the slave go even if it comes before this resumes.
        this.#started++;
        resolve();
      });
      status.catch(reject);
    });
    return {
      pid: child.pid!,
      status,
      kill(signal = "SIGTERM") {
        if (!ended) child.kill(signal as Parameters<typeof child.kill>[0]);
      },
    };
  }

  close(): void {
    if (this.#master < 0) return;
    processLibc().close_fd(this.#master);
    this.#master = -1;
    this.#letGo();
    // Closes the reader's descriptor, the master's last: the kernel then hangs up the slave.
    this.#source.cancel().catch(() => {});
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(): number {
    if (this.#master < 0) throw new Error(`the pseudo-terminal ${this.slavePath} is closed`);
    return this.#master;
  }

  #held(): number {
    this.#open();
    if (this.#slave < 0) {
      throw new Error(
        `the programs on ${this.slavePath} have all exited and its slave is let go: open a new pty`,
      );
    }
    return this.#slave;
  }

  #letGo(): void {
    if (this.#slave < 0) return;
    processLibc().close_fd(this.#slave);
    this.#slave = -1;
  }

  async #write(chunk: unknown): Promise<void> {
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError(`a terminal takes Uint8Array chunks, got ${describe(chunk)}`);
    }
    const libc = processLibc();
    let done = 0;
    let wait = 1;
    while (done < chunk.length) {
      const length = Math.min(WRITE_MAX, chunk.length - done);
      const written = libc.write(this.#open(), chunk.subarray(done, done + length), length);
      if (written >= 0) {
        done += written;
        wait = 1;
        continue;
      }
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) {
        throw new Error(`cannot write to ${this.slavePath}: ${errnoText(errno)}`);
      }
      // The slave's input queue is full: its program is not reading. Neither runtime says when
      // a descriptor has room again, so try again, less and less often.
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, WRITE_RETRY_MAX_MS);
    }
  }
}

function setWindowSize(fd: number, cols: number, rows: number): void {
  // Unsigned shorts in host (little) order; the pixel sizes stay 0.
  const winsize = new Uint8Array(winsizeLayout.size);
  const view = new DataView(winsize.buffer);
  view.setUint16(winsizeLayout.row.offset, rows, true);
  view.setUint16(winsizeLayout.col.offset, cols, true);
  if (processLibc().ioctl(fd, TIOCSWINSZ, winsize) !== 0) {
    throw new Error(`cannot set the terminal's size: ${errnoText()}`);
  }
}

/** The `tty` group's id (`getgrnam_r`), or `undefined` where there is none. */
function ttyGroupId(): number | undefined {
  const libc = processLibc();
  const group = new Uint8Array(groupLayout.size);
  const result = new Uint8Array(pointerSize);
  const name = cString("tty", "group");
  const found = nssLookup(
    (buffer, size) => libc.getgrnam_r(name, group, buffer, size, result),
    result,
    1024,
  );
  return found ? new DataView(group.buffer).getUint32(groupLayout.gid.offset, true) : undefined;
}

/** `size` as a checked copy. Internal. */
export function checkSize(size: unknown): PtySize {
  if (size === undefined) throw new TypeError("openPty needs a size: { cols, rows }");
  const o = optionsObject<PtySize>(size, "the terminal size");
  checkKnownKeys(o, ["cols", "rows"], "terminal sizes");
  checkDimension(o.cols, "cols");
  checkDimension(o.rows, "rows");
  return { cols: o.cols, rows: o.rows };
}

/** A terminal dimension: an integer from 1 to 65535. Internal. */
export function checkDimension(value: unknown, what: string): asserts value is number {
  checkIntegerIn(value, 1, 0xffff, what, "an integer from 1 to 65535");
}

function checkId(value: unknown, what: string): asserts value is number {
  // 2^32 - 1 is (uid_t)-1, which chown and setresuid take as "leave unchanged".
  checkIntegerIn(value, 0, 0xfffffffe, what, "an integer from 0 to 4294967294");
}

function checkSpawnOptions(options: unknown): PtySpawnOptions {
  const o = optionsObject<PtySpawnOptions>(options, "spawn options");
  checkKnownKeys(o, ["env", "cwd", "uid", "gid"], "spawn options");
  const { env, cwd, uid, gid } = o;
  if (cwd !== undefined) checkCString(cwd, "cwd");
  if ((uid === undefined) !== (gid === undefined)) {
    throw new TypeError("uid and gid go together: give both or neither");
  }
  if (uid !== undefined) {
    checkId(uid, "uid");
    checkId(gid, "gid");
  }
  if (env === undefined) return { cwd, uid, gid };
  return { env: checkEnv(env, "env"), cwd, uid, gid };
}
