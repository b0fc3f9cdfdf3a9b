// Terminal sessions: login({ terminal }) opens a pty in the session process before pam_start
// (PAM_TTY, the utmp line, the slave the user's), and spawn(argv, { terminal: true }) runs a
// program on it as its controlling terminal, relayed to the caller: size and resize, job
// control in an interactive shell, the last output before readable closes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { login, type LoginOptions, type SessionProgram } from "../mod.ts";
import { createTestStack, type TestStack } from "../src/testing.ts";

const isRoot = spawnSync("id", ["-u"], { encoding: "utf8" }).stdout.trim() === "0";
const me = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim();
// As root, a user other than the caller: the terminal must be given to them. nobody's shell is
// nologin, but spawn runs argv itself, not the login shell.
const user = isRoot ? "nobody" : me;
const encoder = new TextEncoder();
const WAIT_MS = 20_000;

function stack(): TestStack {
  return createTestStack({
    services: {
      app: [
        "auth     required pam_permit.so",
        "account  required pam_permit.so",
        "session  required pam_permit.so",
        "",
      ].join("\n"),
    },
  });
}

function options(s: TestStack, more: Partial<LoginOptions> = {}): LoginOptions {
  return {
    service: "app",
    user,
    confdir: s.confdir,
    utmp: { utmpFile: join(s.dir, "utmp"), wtmpFile: join(s.dir, "wtmp") },
    terminal: { cols: 80, rows: 24 },
    ...more,
  };
}

/** What a program writes to its terminal, collected as it comes, and a bounded wait for text. */
class Screen {
  text = "";
  readonly ended: Promise<void>;

  constructor(program: SessionProgram) {
    const decoder = new TextDecoder();
    this.ended = (async () => {
      for await (const chunk of program.terminal!.readable) {
        this.text += decoder.decode(chunk, { stream: true });
      }
    })();
  }

  /** Waits until `wanted` appears after offset `from`; the offset just past it. */
  async waitFor(wanted: string | RegExp, from = 0): Promise<number> {
    const deadline = Date.now() + WAIT_MS;
    const find = () => {
      const rest = this.text.slice(from);
      if (typeof wanted === "string") {
        const at = rest.indexOf(wanted);
        return at < 0 ? -1 : from + at + wanted.length;
      }
      const m = wanted.exec(rest);
      return m ? from + m.index + m[0].length : -1;
    };
    for (let at = find();; at = find()) {
      if (at >= 0) return at;
      if (Date.now() > deadline) {
        throw new Error(`Gave up waiting for ${wanted} in ${JSON.stringify(this.text)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function type(program: SessionProgram, text: string): Promise<void> {
  const writer = program.terminal!.writable.getWriter();
  try {
    await writer.write(encoder.encode(text));
  } finally {
    writer.releaseLock();
  }
}

test("tty is the pty's slave: PAM_TTY, the record, and who's pts/N line while open, not after", async () => {
  await using s = stack();
  const session = await login(options(s));
  const tty = session.record.items.tty!;
  assert.match(tty, /^\/dev\/pts\/\d+$/);
  assert.equal(session.record.line, tty.slice(5));
  assert.equal(session.record.id, tty.slice(5).slice(-4));
  const program = await session.spawn(["sh", "-c", "tty; stat -c '%U %G %a' \"$(tty)\""], {
    terminal: true,
  });
  assert.equal(program.stdin, null);
  assert.equal(program.stdout, null);
  const screen = new Screen(program);
  assert.deepEqual(await program.status, { code: 0, signal: null });
  await screen.ended;
  const [printed, owner] = screen.text.split("\r\n");
  assert.equal(printed, tty);
  // login(1)'s rule: the user's, group tty, mode 0620, once the session is open.
  assert.equal(owner, `${user} tty 620`);
  const who = () => spawnSync("who", [join(s.dir, "utmp")], { encoding: "utf8" }).stdout;
  assert.match(who(), new RegExp(`^${user}\\s+${session.record.line}\\s`, "m"));
  await session.close();
  assert.equal(who(), "");
  const last = spawnSync("last", ["-f", join(s.dir, "wtmp")], { encoding: "utf8" }).stdout;
  assert.match(last, new RegExp(`^${user}\\s+${session.record.line}\\s`, "m"));
});

test("stty size reports the login's size, then the resized one; the program gets SIGWINCH", async () => {
  await using s = stack();
  await using session = await login(options(s, { terminal: { cols: 100, rows: 30 }, utmp: false }));
  const program = await session.spawn(
    ["sh", "-c", "trap 'echo winched' WINCH; stty size; echo ready; read line; stty size"],
    { terminal: true },
  );
  const screen = new Screen(program);
  const ready = await screen.waitFor("ready");
  assert.match(screen.text, /^30 100\r\n/);
  program.terminal!.resize(132, 43);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await type(program, "\r");
  await program.status;
  await screen.ended;
  assert.match(screen.text.slice(ready), /43 132\r\n/);
  assert.match(screen.text.slice(ready), /winched/);
  assert.throws(() => program.terminal!.resize(0, 10), RangeError);
  assert.throws(() => program.terminal!.resize("80" as unknown as number, 10), TypeError);
});

test("job control: Ctrl-C interrupts the foreground sleep, not sh -i; Ctrl-D at the prompt ends it", async () => {
  await using s = stack();
  await using session = await login(options(s, { utmp: false }));
  const program = await session.spawn(["sh", "-i"], { terminal: true, env: { PS1: "pty$ " } });
  const screen = new Screen(program);
  let at = await screen.waitFor("pty$ ");
  await type(program, "sleep 30\r");
  at = await screen.waitFor("sleep 30\r\n", at);
  // The sleep must be the foreground job before the key that interrupts it.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const t0 = Date.now();
  await type(program, "\x03");
  at = await screen.waitFor("pty$ ", at);
  assert.ok(Date.now() - t0 < 10_000, "the sleep was interrupted, not waited out");
  await type(program, "echo still-here\r");
  at = await screen.waitFor("still-here\r\n", at);
  await screen.waitFor("pty$ ", at);
  await type(program, "\x04");
  assert.deepEqual(await program.status, { code: 0, signal: null });
  await screen.ended;
});

test("the last output is delivered before readable closes, and exit follows it", async () => {
  await using s = stack();
  await using session = await login(options(s, { utmp: false }));
  const tail = "z".repeat(20_000);
  const program = await session.spawn(["sh", "-c", `printf '%s' ${tail}; exit 7`], {
    terminal: true,
  });
  const screen = new Screen(program);
  assert.deepEqual(await program.status, { code: 7, signal: null });
  await screen.ended;
  assert.equal(screen.text, tail);
});

test("close() hangs up a shell still on the terminal, and the session closes", async () => {
  await using s = stack();
  const session = await login(options(s));
  const program = await session.spawn(["sh", "-i"], { terminal: true, env: { PS1: "pty$ " } });
  const screen = new Screen(program);
  await screen.waitFor("pty$ ");
  await session.close();
  const status = await program.status;
  assert.ok(status.signal === "SIGHUP" || status.code !== 0, JSON.stringify(status));
  await screen.ended;
  assert.equal(spawnSync("who", [join(s.dir, "utmp")], { encoding: "utf8" }).stdout, "");
});

test("terminal: bad options are TypeErrors; a session without one says so", async () => {
  await using s = stack();
  await assert.rejects(login(options(s, { tty: "/dev/pts/9" })), TypeError);
  await assert.rejects(login(options(s, { inProcess: true })), TypeError);
  await assert.rejects(login(options(s, { terminal: { cols: 0, rows: 24 } })), RangeError);
  await assert.rejects(
    login(options(s, { terminal: { cols: 80 } as unknown as { cols: number; rows: number } })),
    TypeError,
  );
  await assert.rejects(
    login(options(s, { terminal: { cols: 80, rows: 24, x: 1 } as never })),
    TypeError,
  );
  {
    await using session = await login(options(s, { utmp: false }));
    await assert.rejects(session.spawn(["true"], { terminal: true, stdin: "null" }), TypeError);
    const first = await session.spawn(["sleep", "30"], { terminal: true });
    await assert.rejects(session.spawn(["true"], { terminal: true }), /already runs a program/);
    first.kill("SIGKILL");
    assert.equal((await first.status).signal, "SIGKILL");
  }
  {
    await using session = await login(options(s, { terminal: undefined, utmp: false }));
    await assert.rejects(session.spawn(["true"], { terminal: true }), /has no terminal/);
  }
});

test("a reader that does not keep up holds the program back; then every byte arrives in order", async () => {
  await using s = stack();
  await using session = await login(options(s, { utmp: false }));
  const size = 4_000_000;
  const program = await session.spawn(
    ["sh", "-c", `head -c ${size} /dev/zero | tr '\\0' z; echo done`],
    { terminal: true },
  );
  let exited = false;
  void program.status.then(() => exited = true);
  // Nobody reads: the pty, the channel and the caller's buffer fill, and the program waits.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(exited, false, "the program wrote 4 MB that nobody read");
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of program.terminal!.readable) {
    text += decoder.decode(chunk, { stream: true });
  }
  assert.equal(text.length, size + "done\r\n".length);
  assert.equal(text.indexOf("done"), size);
  assert.match(text.slice(0, size), /^z+$/);
  assert.deepEqual(await program.status, { code: 0, signal: null });
});
