/**
 * A small terminal login, the flow of `pam_open_session(3)` as runnable code:
 * ask for the user and (echo off) the password; then, in a session process of
 * its own, authenticate, check the account, open the session, write the
 * utmp/wtmp entries, run a command there as the user with the PAM
 * environment, then write the exit entries and close the session.
 *
 * It uses the stack in `examples/pam.d/login-example` (stock modules, no
 * root; any account of this machine, password "correct horse" — the stack's
 * own, not the system's) and utmp/wtmp files in a temporary directory, which
 * `who` and `last` read at the end. Without root, log in as yourself; as root,
 * any account (`--user nobody`).
 *
 * With `--pty` the session gets a pseudo-terminal of its own (`login({ terminal })`):
 * PAM_TTY and the utmp line are its `pts/N`, which `who` then shows, and the
 * command runs on it as its controlling terminal (`spawn(..., { terminal: true })`),
 * this terminal relayed to it in raw mode, resizes included.
 *
 * Run:
 *   deno run --allow-ffi --allow-read --allow-write --allow-env --allow-run examples/login.ts [--user NAME] [--pty] [-- command...]
 *   bun examples/login.ts [--user NAME] [--pty] [-- command...]
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import {
  type AsyncConversation,
  login,
  type LoginSession,
  MessageStyle,
  PamError,
  type ProgramStatus,
} from "../mod.ts";

const examples = dirname(fileURLToPath(import.meta.url));
// [--user NAME] [--pty] [--] [command...]; Bun drops a "--" right after the script, Deno keeps it.
let args = process.argv.slice(2);
let userArg: string | undefined;
let pty = false;
for (;;) {
  if (args[0] === "--user") [userArg, args] = [args[1], args.slice(2)];
  else if (args[0] === "--pty") [pty, args] = [true, args.slice(1)];
  else break;
}
if (args[0] === "--") args = args.slice(1);
const command = args.length
  ? args
  : ["sh", "-c", 'echo "$DEMO_GREETING; PAM says you are $DEMO_USER, on $(tty)"'];

// One line reader over stdin. Without an `output`, readline does not echo:
// the terminal does, and `stty -echo` turns that off for the password.
const input = createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();
const interactive = process.stdin.isTTY === true;

async function ask(prompt: string, echo: boolean): Promise<string> {
  process.stdout.write(prompt);
  const quiet = !echo && interactive;
  if (quiet) spawnSync("stty", ["-echo"], { stdio: ["inherit", "inherit", "inherit"] });
  try {
    const next = await lines.next();
    if (next.done) throw new Error("end of input");
    return next.value;
  } finally {
    if (quiet) spawnSync("stty", ["echo"], { stdio: ["inherit", "inherit", "inherit"] });
    // The terminal echoed the Enter of a visible answer; nothing else ends the line.
    if (quiet || !interactive) process.stdout.write("\n");
  }
}

/** The terminal conversation: prompts go to the user, messages to the screen. */
const conversation: AsyncConversation = async (messages) => {
  const answers: (string | null)[] = [];
  for (const m of messages) {
    if (m.style === MessageStyle.PROMPT_ECHO_OFF) answers.push(await ask(m.text, false));
    else if (m.style === MessageStyle.PROMPT_ECHO_ON) answers.push(await ask(m.text, true));
    else {
      (m.style === MessageStyle.ERROR_MSG ? console.error : console.log)(m.text);
      answers.push(null);
    }
  }
  return answers;
};

function terminal(): string | undefined {
  if (!interactive) return undefined;
  const tty = spawnSync("tty", [], { stdio: ["inherit", "pipe", "ignore"], encoding: "utf8" });
  return tty.status === 0 ? tty.stdout.trim() : undefined;
}

const dir = mkdtempSync(join(tmpdir(), "seed-pam-login-"));
const confdir = join(dir, "pam.d");
const utmpFile = join(dir, "utmp");
const wtmpFile = join(dir, "wtmp");
let status = 0;
try {
  mkdirSync(confdir);
  const template = readFileSync(join(examples, "pam.d", "login-example"), "utf8");
  writeFileSync(join(confdir, "login-example"), template.replaceAll("{{examples}}", examples));

  const user = userArg ?? await ask("login: ", true);
  const tty = terminal();
  let loggedIn = false;
  try {
    await using session = await login({
      service: "login-example",
      user,
      confdir,
      conversation,
      // --pty: the session process opens the pty; its pts/N is PAM_TTY and the utmp line.
      ...(pty
        ? { terminal: { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 } }
        : { tty: tty ?? "example" }),
      utmp: { utmpFile, wtmpFile },
    });
    loggedIn = true;
    console.log(`Logged in as ${session.user} on ${session.record.line}.`);
    console.log(`who ${utmpFile}:\n  ${who()}`);
    // The command runs in the session process, as the user, with the PAM environment: it gets
    // the umask and limits the session modules set there, this process none of them.
    input.close();
    const ended = pty ? await onTerminal(session, command) : await (await session.spawn(command, {
      stdin: interactive ? "inherit" : "null",
      stdout: "inherit",
      stderr: "inherit",
    })).status;
    status = ended.code ?? 128;
    console.log(
      `The command ${ended.signal ? `was killed by ${ended.signal}` : `exited with ${status}`}; ` +
        "logging out.",
    );
  } catch (error) {
    if (!(error instanceof PamError)) throw error;
    // A failure after the session opened comes from logging out (`await using` closing it).
    console.error(
      loggedIn ? `Logout failed (${error.codeName})` : `Login incorrect (${error.codeName})`,
    );
    if (!loggedIn || status === 0) status = 1;
  }
  // `await using` closed the session: exit entries written, then pam_close_session.
  console.log(`who ${utmpFile} after logout: ${who() || "(nobody)"}`);
  // `last` calls a logout in the very second it runs "still running": let the clock tick.
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 10));
  const last = spawnSync("last", ["-f", wtmpFile], { encoding: "utf8" });
  if (last.status === 0) console.log(`last -f ${wtmpFile}:\n${last.stdout.trimEnd()}`);
} finally {
  input.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);

/**
 * Runs `command` on the session's pty: this terminal in raw mode (the pty does the line
 * editing, echo and Ctrl-C now), its keys to the pty, the pty's output here, its size kept.
 */
async function onTerminal(session: LoginSession, command: string[]): Promise<ProgramStatus> {
  const program = await session.spawn(command, { terminal: true });
  const terminal = program.terminal!;
  const raw = interactive && typeof process.stdin.setRawMode === "function";
  if (raw) process.stdin.setRawMode(true);
  const keys = terminal.writable.getWriter();
  const onKeys = (chunk: Uint8Array) => void keys.write(new Uint8Array(chunk)).catch(() => {});
  const onResize = () => terminal.resize(process.stdout.columns, process.stdout.rows);
  // The line reader paused stdin when it closed: a "data" listener alone would not resume it.
  if (interactive) process.stdin.on("data", onKeys).resume();
  process.stdout.on("resize", onResize);
  try {
    for await (const chunk of terminal.readable) process.stdout.write(chunk);
    return await program.status;
  } finally {
    process.stdout.off("resize", onResize);
    process.stdin.off("data", onKeys);
    process.stdin.pause();
    if (raw) process.stdin.setRawMode(false);
  }
}

function who(): string {
  return spawnSync("who", [utmpFile], { encoding: "utf8" }).stdout?.trim() ?? "";
}
