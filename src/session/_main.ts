/**
 * The session process: the program `login()` and `closeSession()` start, one
 * per session, so that session modules act on it and not on the caller
 * (umask, limits, loginuid, groups, keyrings, cgroups, namespaces) and a
 * crashing module takes only it down. It runs PAM with the synchronous
 * `PamTransaction` on its main thread — the thread that later starts the
 * user's programs, so per-thread state such as a joined session keyring is
 * theirs too.
 *
 * The control channel is its stdin (frames from the caller) and its original
 * stdout, moved to another descriptor so that a module's stray output cannot
 * corrupt it (fd 1 then points at stderr). While PAM runs, conversations block
 * on a read of stdin; once the session is open, stdin is read by the event
 * loop and the process serves `spawn`, `close` and `detach` until the session
 * ends. End of file on stdin means the caller is gone: the session is closed
 * in the seed's order and the process exits. Internal; not an API.
 *
 * @module
 */

import type { ChildProcess, StdioOptions } from "node:child_process";
import process from "node:process";
import { clearTimeout, setImmediate, setTimeout } from "node:timers";
import { MessageStyle } from "../constants.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { wipeSnapshot } from "../_answers.ts";
import { lastErrno } from "../_library.ts";
import { PamTransaction } from "../transaction.ts";
import { encodeFrame, type Frame, FrameDecoder, readFrameSync } from "./_frames.ts";
import {
  allSteps,
  checkUtmpFiles,
  closeFromRecord,
  closeSteps,
  type LoginPlan,
  openSession,
  type RecordData,
} from "./_lifecycle.ts";
import { CallerConversationFailure, decodeAnswers, encodeMessages, toWire } from "./_protocol.ts";
import { dropCleanFilePages } from "./_idle_pages.ts";
import { openPty, type Pty, type PtyProcess } from "./_pty.ts";
import {
  launchAsUser,
  lookupUser,
  type PasswdEntry,
  processLibc,
  spawnAsUser,
  type SpawnPlan,
} from "./_spawn.ts";
import { exitQuietly } from "./_threads.ts";
import { hangUp } from "./_hang_up.ts";
import { idOfLine, lineOfTty } from "./_utmp.ts";

const EINTR = 4;
const EAGAIN = 11;

class ChannelClosed extends Error {
  constructor() {
    super("the caller closed the session process's channel");
  }
}

const F_DUPFD_CLOEXEC = 1030;
const CLOSE_RANGE_CLOEXEC = 4;
const lib = processLibc();
// Whatever the caller's runtime left open (fds without close-on-exec) must not reach the
// programs this process starts for the user; the runtime's own descriptors keep working.
lib.close_range?.(3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
const controlOut = lib.fcntl(1, F_DUPFD_CLOEXEC, 3);
if (controlOut < 0 || lib.dup2(2, 1) < 0) {
  console.error("session process: cannot set up its channel");
  process.exit(70);
}
const nap = new Int32Array(new SharedArrayBuffer(4));
/** Milliseconds of idleness before each drop of the runtime's file pages. */
const idleDrops = [1000, 2000, 10000, 60000];

/** Blocking; a non-blocking descriptor (the runtime's choice, not ours) is waited on. */
function retry(n: number): boolean {
  if (n >= 0) return false;
  const e = lastErrno();
  if (e === EINTR) return true;
  if (e === EAGAIN) {
    Atomics.wait(nap, 0, 0, 1);
    return true;
  }
  throw new ChannelClosed();
}

let channelOpen = true;

function send(header: object, payload?: Uint8Array): void {
  if (!channelOpen) throw new ChannelClosed();
  const bytes = encodeFrame(header, payload);
  let at = 0;
  try {
    while (at < bytes.length) {
      const chunk = at === 0 ? bytes : bytes.subarray(at);
      const n = lib.write(controlOut, chunk, chunk.length);
      if (retry(n)) continue;
      if (n === 0) throw new ChannelClosed();
      at += n;
    }
  } catch (error) {
    channelOpen = false;
    throw error;
  }
}

/** Sends unless the caller is gone: what it would have said has nobody to hear it. */
function trySend(header: object, payload?: Uint8Array): void {
  try {
    send(header, payload);
  } catch {
    // The caller is gone; shutting down follows from the closed stdin.
  }
}

function readSome(length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  for (;;) {
    const n = lib.read(0, buffer, length);
    if (retry(n)) continue;
    if (n === length) return buffer;
    const out = buffer.slice(0, n);
    buffer.fill(0);
    return out;
  }
}

function readFrame(): Frame {
  const frame = channelOpen ? readFrameSync(readSome) : null;
  if (!frame) {
    channelOpen = false;
    throw new ChannelClosed();
  }
  return frame;
}

/** "login": PAM calls are running, and conversations block on the caller's answers. */
let phase: "login" | "session" = "login";
/** Answers handed to the trampoline; wiped once it has copied them. */
let lastAnswers: PamAnswer[] = [];

function wipeLastAnswers(): void {
  wipeSnapshot(lastAnswers);
  lastAnswers = [];
}

function converse(messages: readonly PamMessage[]): PamAnswer[] {
  wipeLastAnswers();
  if (phase === "session") {
    // Once the session is open the caller's conversation is not waited on: texts reach it,
    // prompts fail (no stock module prompts at close).
    const wire = encodeMessages(messages);
    trySend({ t: "notice", messages: wire.messages }, wire.payload);
    if (
      messages.some((m) => m.style !== MessageStyle.TEXT_INFO && m.style !== MessageStyle.ERROR_MSG)
    ) {
      throw new TypeError("prompts are not answered once the session is open");
    }
    return messages.map(() => null);
  }
  const wire = encodeMessages(messages);
  send({ t: "conv", messages: wire.messages }, wire.payload);
  const { header, payload } = readFrame();
  try {
    if (header.t !== "answers") throw new TypeError("expected answers from the caller");
    if (header.ok !== true) throw new CallerConversationFailure();
    lastAnswers = decodeAnswers(header.lengths, payload, messages.length);
    return lastAnswers;
  } finally {
    payload.fill(0);
  }
}

interface LoginStart {
  t: "login";
  plan: LoginPlan;
  conversation: boolean;
  /** A pty to open before pam_start; `line`/`id`: the utmp line/id are to be the pty's. */
  terminal?: { cols: number; rows: number; line: boolean; id: boolean };
}

/** The plan with the pty's slave as PAM_TTY and, unless the caller named them, utmp line and id. */
function withPty(plan: LoginPlan, pty: Pty, t: NonNullable<LoginStart["terminal"]>): LoginPlan {
  const items = { ...plan.items, tty: pty.slavePath };
  if (!plan.utmp) return { ...plan, items };
  const line = t.line ? lineOfTty(pty.slavePath) : plan.utmp.line;
  const id = t.id ? idOfLine(line) : plan.utmp.id;
  return { ...plan, items, utmp: { ...plan.utmp, line, id } };
}

/** The session's terminal, and the passwd entry of the user it was given to. */
interface SessionTerminal {
  readonly pty: Pty;
  readonly owner: PasswdEntry;
}

/**
 * Gives the slave to the session's user, as login(1) does once the session
 * is open; returns the passwd entry it was given by, which the programs on
 * it then run as: looked up once, so the terminal's owner and its programs'
 * uid cannot differ.
 */
function giveTerminal(pty: Pty, user: string): PasswdEntry {
  const pw = lookupUser(user);
  if (!pw) throw new Error(`cannot give the terminal to "${user}": the user has no passwd entry`);
  // Without root the slave is already this process's, and so the user's own (the only one it
  // can run programs as).
  if (processLibc().getuid() === 0) pty.chown(pw.uid, pw.gid);
  return pw;
}

interface CloseStart {
  t: "close";
  record: RecordData;
  silent: boolean;
  confdir?: string;
  library?: string;
  conversation: boolean;
}

function startTransaction(
  service: string,
  user: string | null,
  confdir: string | undefined,
  library: string | undefined,
  failDelay: "native" | "report" | "async" | undefined,
  conversation: boolean,
): PamTransaction {
  return PamTransaction.start({
    service,
    ...(user !== null ? { user } : {}),
    ...(confdir !== undefined ? { confdir } : {}),
    ...(library !== undefined ? { library } : {}),
    // "async" asks that no thread of the caller be held while the delay runs: here the delay
    // sleeps in the session process, which holds none of the caller's, so libpam's own sleep
    // gives the caller exactly that (the failure arrives after the delay).
    ...(failDelay === "report" ? { failDelay } : {}),
    ...(conversation ? { conversation: converse } : {}),
  });
}

async function runClose(start: CloseStart): Promise<void> {
  const r = start.record;
  let error: unknown;
  try {
    await closeFromRecord(
      r,
      start.silent,
      () =>
        startTransaction(
          r.service,
          r.user,
          start.confdir,
          start.library,
          undefined,
          start.conversation,
        ),
    );
  } catch (e) {
    error = e;
  } finally {
    wipeLastAnswers();
  }
  trySend(error === undefined ? { t: "closed" } : { t: "closed", error: toWire(error) });
  exitQuietly();
}

async function runLogin(start: LoginStart): Promise<void> {
  let plan = start.plan;
  let tx: PamTransaction | undefined;
  let pty: Pty | undefined;
  try {
    if (start.terminal) {
      // Before pam_start: PAM_TTY, and the utmp line, are the pty's.
      pty = openPty({ cols: start.terminal.cols, rows: start.terminal.rows });
      plan = withPty(plan, pty, start.terminal);
    }
    await checkUtmpFiles(plan.utmp);
    tx = startTransaction(
      plan.service,
      plan.user,
      plan.confdir,
      plan.library,
      plan.failDelay,
      start.conversation,
    );
    const opened = await openSession(tx, plan, process.pid);
    wipeLastAnswers();
    phase = "session";
    let terminal: SessionTerminal | undefined;
    try {
      if (pty) terminal = { pty, owner: giveTerminal(pty, opened.user) };
      // Fails when the caller hung up during the last conversation (an abort, or its death):
      // nobody but this process will ever close the session it just opened.
      send({ t: "opened", user: opened.user, env: opened.env, record: opened.record });
    } catch (error) {
      const open = tx;
      tx = undefined;
      await allSteps(closeSteps(open, opened.record, plan.silent)).catch(() => {});
      throw error;
    }
    serve(tx, opened.user, opened.env, opened.record, plan.silent, terminal);
  } catch (error) {
    pty?.close();
    wipeLastAnswers();
    try {
      tx?.end();
    } catch {
      // The login's own failure is what the caller needs to see.
    }
    trySend({ t: "failed", error: toWire(error) });
    exitQuietly();
  }
}

/** The open session: serves the caller until the session ends, whichever way. */
function serve(
  tx: PamTransaction,
  user: string,
  env: Record<string, string>,
  record: RecordData,
  silent: boolean,
  terminal: SessionTerminal | undefined,
): void {
  const pty = terminal?.pty;
  const programs = new Map<number, ChildProcess>();
  /** Program streams the caller paused ("id:fd"): their reader has enough for now. */
  const callerPaused = new Set<string>();
  /** The one program on the session's terminal, by its spawn id. */
  let onTerminal: { id: number; process: PtyProcess } | undefined;
  const keys = pty?.writable.getWriter();
  const screenFlow = new Gate();
  let ending: Promise<void> | undefined;

  const end = (how: "close" | "detach"): Promise<void> => {
    ending ??= (async () => {
      let error: unknown;
      if (how === "detach") {
        try {
          tx.end({ silent: true });
        } catch (e) {
          error = e;
        }
      } else {
        await Promise.all([stopPrograms(programs), stopTerminal(onTerminal?.process, pty)]);
        try {
          await allSteps(closeSteps(tx, record, silent));
        } catch (e) {
          error = e;
        }
      }
      const t = how === "close" ? "closed" : "detached";
      trySend(error === undefined ? { t } : { t, error: toWire(error) });
      exitQuietly();
    })();
    return ending;
  };

  const spawnOnTerminal = async (id: number, plan: SpawnPlan) => {
    let program: PtyProcess;
    try {
      if (!pty) {
        throw new Error(
          "this session has no terminal: log in with login({ terminal: { cols, rows } })",
        );
      }
      if (onTerminal) {
        throw new Error(
          `the session's terminal already runs a program (pid ${onTerminal.process.pid})`,
        );
      }
      const { pw, env: userEnv, cwd } = launchAsUser(user, env, plan, terminal!.owner);
      program = await pty.spawn(plan.argv, { env: userEnv, cwd, uid: pw.uid, gid: pw.gid });
    } catch (error) {
      trySend({ t: "spawn-failed", id, error: toWire(error) });
      return;
    }
    onTerminal = { id, process: program };
    trySend({ t: "spawned", id, pid: program.pid });
    const screen = relayTerminal(id, pty, screenFlow);
    const status = await program.status.catch(() => ({ code: null, signal: null }));
    await lastOutput(screen, pty, screenFlow);
    trySend({ t: "terminal-eof", id });
    trySend({ t: "exit", id, code: status.code, signal: status.signal });
    if (plan.endsSession) void end("close");
  };

  const spawnProgram = (id: number, plan: SpawnPlan) => {
    // Past this point the programs have been hung up: a late request must not outlive the session.
    if (ending) {
      trySend({ t: "spawn-failed", id, error: toWire(new Error("this session is closing")) });
      return;
    }
    if (plan.terminal) return void spawnOnTerminal(id, plan);
    // "inherit" means the caller's own streams: relayed, since this process's are the channel.
    const relay = (m: string) => m === "null" ? "ignore" : "pipe";
    const stdio: StdioOptions = [relay(plan.stdin), relay(plan.stdout), relay(plan.stderr)];
    let child: ChildProcess;
    try {
      child = spawnAsUser(user, env, plan, stdio);
    } catch (error) {
      trySend({ t: "spawn-failed", id, error: toWire(error) });
      return;
    }
    let reported = false;
    child.on("error", (error) => {
      if (reported) return;
      reported = true;
      trySend({ t: "spawn-failed", id, error: toWire(error) });
    });
    if (child.pid === undefined) return;
    programs.set(id, child);
    trySend({ t: "spawned", id, pid: child.pid });
    const relayOutput = (stream: NodeJS.ReadableStream | null, fd: 1 | 2) => {
      if (!stream) return;
      // One chunk per event-loop turn: a program writing without pause must not keep the
      // caller's "pause" (read from stdin in between) from ever being seen.
      stream.on("data", (chunk: Uint8Array) => {
        rest(0);
        trySend({ t: "data", id, fd }, chunk);
        stream.pause();
        setImmediate(() => {
          if (!callerPaused.has(`${id}:${fd}`)) stream.resume();
        });
      });
      stream.on("end", () => trySend({ t: "eof", id, fd }));
    };
    relayOutput(child.stdout, 1);
    relayOutput(child.stderr, 2);
    child.stdin?.on("error", () => {}); // a program that exits before reading its input
    // "close": after the exit and all of its output, so nothing it wrote is lost.
    child.on("close", (code: number | null, signal: string | null) => {
      reported = true;
      programs.delete(id);
      trySend({ t: "exit", id, code, signal });
      if (plan.endsSession) void end("close");
    });
  };

  const handle = ({ header, payload }: Frame) => {
    const id = header.id as number;
    switch (header.t) {
      case "spawn":
        return spawnProgram(id, header.plan as SpawnPlan);
      case "stdin": {
        // Said once the program's pipe took the bytes (or never will): the caller sends no more
        // than a window ahead of that, so a program that does not read cannot fill this memory.
        const report = (failed: boolean) =>
          trySend({ t: "stdin-taken", id, bytes: payload.length, failed });
        const stdin = programs.get(id)?.stdin;
        if (!stdin || stdin.destroyed || stdin.writableEnded) return report(true);
        stdin.write(payload, (error) => report(error != null));
        return;
      }
      case "stdin-end":
        return programs.get(id)?.stdin?.end();
      case "terminal-input":
        // One writer for the session: its writes queue in the order the keys came.
        if (onTerminal?.id === id) keys!.write(payload).catch(() => {});
        return;
      case "terminal-resize":
        try {
          if (onTerminal?.id === id) pty!.resize(header.cols as number, header.rows as number);
        } catch {
          // Closed, or a size the caller's checks would have refused: nothing to resize.
        }
        return;
      case "kill":
        try {
          if (onTerminal?.id === id) onTerminal.process.kill(header.signal as string);
          programs.get(id)?.kill(header.signal as NodeJS.Signals);
        } catch {
          // Already gone: its exit frame says so.
        }
        return;
      case "pause":
      case "resume": {
        if (header.fd === "terminal") {
          if (onTerminal?.id === id) screenFlow.set(header.t === "pause");
          return;
        }
        const child = programs.get(id);
        const stream = header.fd === 2 ? child?.stderr : child?.stdout;
        const key = `${id}:${header.fd === 2 ? 2 : 1}`;
        if (header.t === "pause") callerPaused.add(key);
        else callerPaused.delete(key);
        if (header.t === "pause") stream?.pause();
        else stream?.resume();
        return;
      }
      case "close":
        return void end("close");
      case "detach":
        return void end("detach");
    }
  };

  // Idle: give back the runtime's file pages (see _idle_pages.ts), after one second, then
  // again after the runtime's own idle work (its collectors' timers) has touched some again.
  // Each frame from the caller or output of a program starts over; no timer keeps the process
  // alive.
  let idle: ReturnType<typeof setTimeout> | undefined;
  const rest = (step = 0) => {
    clearTimeout(idle);
    if (step >= idleDrops.length) return;
    idle = setTimeout(() => {
      dropCleanFilePages();
      rest(step + 1);
    }, idleDrops[step]).unref();
  };
  rest();

  const decoder = new FrameDecoder();
  process.stdin.on("data", (chunk: Uint8Array) => {
    rest(0);
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch {
      // A corrupt channel is a caller we can no longer understand: close as if it were gone.
      void end("close");
      return;
    }
    for (const frame of frames) handle(frame);
  });
  const gone = () => {
    channelOpen = false;
    void end("close");
  };
  process.stdin.on("end", gone);
  process.stdin.on("error", gone);
  // Terminated (an administrator, logind ending the session): close properly, then exit.
  for (const signal of ["SIGTERM", "SIGHUP"] as const) process.on(signal, () => void end("close"));
}

/** Closed while the caller's reader is behind: the pty is not read meanwhile. */
class Gate {
  #open: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  set(paused: boolean): void {
    if (paused && !this.#release) {
      this.#open = new Promise((resolve) => this.#release = resolve);
    } else if (!paused && this.#release) {
      this.#release();
      this.#release = undefined;
    }
  }

  get passed(): Promise<void> {
    return this.#open;
  }

  get paused(): boolean {
    return this.#release !== undefined;
  }
}

/** Sends what the terminal's programs write to the caller; settles once the pty has ended. */
async function relayTerminal(id: number, pty: Pty, flow: Gate): Promise<void> {
  try {
    for await (const chunk of pty.readable) {
      trySend({ t: "terminal-data", id }, chunk);
      // A turn of the event loop between chunks: a pty that always has more would otherwise
      // keep the caller's "pause" unread on stdin.
      await new Promise((resolve) => setImmediate(resolve));
      await flow.passed;
    }
  } catch {
    // The pty was closed under the reader: nothing more comes.
  }
}

/**
 * Once the program has exited: what it wrote last is still in the pty, and `readable` ends
 * after it. A job it left in the background may still hold the slave, and so keep `readable`
 * open: after a grace period the pty is hung up, which ends them and it.
 */
async function lastOutput(screen: Promise<void>, pty: Pty, flow: Gate): Promise<void> {
  const done = screen.then(() => "done" as const);
  for (;;) {
    const late = new Promise<"late">((resolve) => setTimeout(() => resolve("late"), 1000));
    if (await Promise.race([done, late]) === "done") return;
    // A caller that reads slowly is not a job left behind: its output is still coming.
    if (flow.paused) {
      await Promise.race([flow.passed, done]);
      continue;
    }
    pty.close();
    await screen;
    return;
  }
}

/** Hangs up the terminal (its program gets SIGHUP from the kernel), then kills what is left. */
async function stopTerminal(program: PtyProcess | undefined, pty: Pty | undefined): Promise<void> {
  pty?.close();
  if (!program) return;
  const kill = (signal: NodeJS.Signals) => program.kill(signal);
  await hangUp([{ pid: program.pid, ended: program.status.catch(() => {}), kill }], {
    signalled: true,
  });
}

/** Hangs up the programs still running (their process groups), then kills what is left. */
async function stopPrograms(programs: Map<number, ChildProcess>): Promise<void> {
  // "close", as their exit frames are sent: each program's last output reaches the caller
  // before this process exits (the map holds only programs not closed yet).
  await hangUp([...programs.values()].map((child) => ({
    pid: child.pid!,
    ended: new Promise<void>((resolve) => child.once("close", () => resolve())),
    kill: (signal: NodeJS.Signals) => child.kill(signal),
  })));
}

// A Ctrl-C at the caller's terminal reaches this process too: the caller decides what ends
// the session (its exit closes our stdin), not the keyboard.
process.on("SIGINT", () => {});

try {
  // Loaded: the caller may start the next session process.
  send({ t: "ready" });
  const { header } = readFrame();
  if (header.t === "login") await runLogin(header as unknown as LoginStart);
  else if (header.t === "close") await runClose(header as unknown as CloseStart);
  else throw new TypeError("unknown start frame");
} catch (error) {
  if (!(error instanceof ChannelClosed)) {
    console.error(`session process: ${error instanceof Error ? error.message : String(error)}`);
  }
  process.exit(70);
}
