// Pseudo-terminals for the session process: the slave as the program's controlling terminal,
// its size and resizes, job control in an interactive shell, the last output before readable
// closes, hang-up on close, and no thread per idle terminal.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { openPty, type Pty, type PtyProcess } from "../src/session/_pty.ts";
import { splitRootEnv } from "../src/session/_root_env.ts";

const isRoot = spawnSync("id", ["-u"], { encoding: "utf8" }).stdout.trim() === "0";
const hasCc = spawnSync("cc", ["--version"]).status === 0;
const notRoot = isRoot ? false : "needs root: only root runs programs as another user";
const env = { PATH: "/usr/bin:/bin", HOME: "/", TERM: "dumb", PS1: "pty$ " };
const encoder = new TextEncoder();
const WAIT_MS = 20_000;

/** Everything a pty's programs write, collected as it comes, and a bounded wait for text in it. */
class Screen {
  text = "";
  readonly ended: Promise<void>;

  constructor(pty: Pty) {
    const decoder = new TextDecoder();
    this.ended = (async () => {
      for await (const chunk of pty.readable) this.text += decoder.decode(chunk, { stream: true });
    })();
  }

  /** Waits until `wanted` appears after offset `from`; the offset just past it. */
  async waitFor(wanted: string, from = 0): Promise<number> {
    await until(
      () => this.text.indexOf(wanted, from) >= 0,
      () => `${JSON.stringify(wanted)} in ${JSON.stringify(this.text)}`,
    );
    return this.text.indexOf(wanted, from) + wanted.length;
  }
}

/** Polls `condition`; fails the test (instead of hanging it) after WAIT_MS. */
async function until(condition: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function type(pty: Pty, text: string): Promise<void> {
  const writer = pty.writable.getWriter();
  try {
    await writer.write(encoder.encode(text));
  } finally {
    writer.releaseLock();
  }
}

/** The pid of a `comm` process in session `sid` that is its terminal's foreground job, if any. */
function foregroundIn(sid: number, comm: string): number | undefined {
  // ps, not /proc: Deno wants --allow-all to read /proc files.
  const ps = spawnSync("ps", ["-o", "pid=,pgid=,tpgid=,comm=", "-s", String(sid)], {
    encoding: "utf8",
  });
  for (const line of ps.stdout.trim().split("\n")) {
    const [pid, pgid, tpgid, name] = line.trim().split(/\s+/);
    if (name === comm && pgid === tpgid) return Number(pid);
  }
  return undefined;
}

function alive(pid: number): boolean {
  return spawnSync("ps", ["-p", String(pid)]).status === 0;
}

/** A program started on a fresh pty of `size`, whose output a Screen collects; disposing closes the pty. */
async function start(argv: string[], size = { cols: 80, rows: 24 }) {
  const pty = openPty(size);
  const screen = new Screen(pty);
  const program = await pty.spawn(argv, { env });
  return { pty, screen, program, [Symbol.dispose]: () => pty.close() };
}

async function finish(program: PtyProcess, screen: Screen) {
  const status = await program.status;
  await screen.ended;
  return status;
}

test("tty prints the slave; the last output comes before readable closes, then the exit code", async () => {
  using run = await start(
    ["sh", "-c", 'tty; echo "pid=$$ sid=$(cut -d" " -f6 /proc/$$/stat)"; printf done; exit 3'],
  );
  const { pty, screen, program } = run;
  assert.match(pty.slavePath, /^\/dev\/pts\/\d+$/);
  assert.deepEqual(await finish(program, screen), { code: 3, signal: null });
  assert.equal(
    screen.text,
    `${pty.slavePath}\r\npid=${program.pid} sid=${program.pid}\r\ndone`,
    "tty names the slave, the program leads its own session, and its last bytes arrive",
  );
});

test("the program holds the slave as 0, 1 and 2 and nothing of the master", async () => {
  using run = await start(
    ["sh", "-c", 'for f in /proc/$$/fd/*; do echo "${f##*/}=$(readlink "$f")"; done'],
  );
  const { pty, screen, program } = run;
  assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
  const fds = new Map(
    screen.text.trim().split("\r\n").map((line) => line.split("=") as [string, string]),
  );
  for (const fd of ["0", "1", "2"]) assert.equal(fds.get(fd), pty.slavePath, `fd ${fd}`);
  for (const [fd, target] of fds) {
    assert.ok(!/ptmx/.test(target), `fd ${fd} is the master (${target})`);
  }
});

test("stty size reports the size given, then the new one after resize(); SIGWINCH arrives", async () => {
  using run = await start(
    ["sh", "-c", "trap 'echo winch' WINCH; stty size; read line; stty size"],
    { cols: 100, rows: 30 },
  );
  const { pty, screen, program } = run;
  const after = await screen.waitFor("30 100\r\n");
  pty.resize(120, 40);
  await type(pty, "\r");
  await screen.waitFor("40 120\r\n", after);
  assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
  assert.match(screen.text.slice(after), /winch/, "the resize reached the program as SIGWINCH");
});

test("an interactive sh survives Ctrl-C sent to a foreground sleep, answers, and ends at Ctrl-D", async () => {
  using run = await start(["sh", "-i"]);
  const { pty, screen, program: shell } = run;
  let at = await screen.waitFor("pty$ ");
  await type(pty, "sleep 30\r");
  let sleeper: number | undefined;
  await until(
    () => (sleeper = foregroundIn(shell.pid, "sleep")) !== undefined,
    () => "sleep 30 to run as the terminal's foreground job",
  );
  await type(pty, "\x03");
  at = await screen.waitFor("pty$ ", at);
  await until(() => !alive(sleeper!), () => `sleep (pid ${sleeper}) to end`);
  await type(pty, "echo ok\r");
  at = await screen.waitFor("\r\nok\r\n", at);
  await screen.waitFor("pty$ ", at);
  await type(pty, "\x04");
  assert.deepEqual(await finish(shell, screen), { code: 0, signal: null });
});

test("close() hangs up the program and ends readable", async () => {
  const { pty, screen, program } = await start([
    "sh",
    "-c",
    "echo ready; while :; do sleep 1; done",
  ]);
  await screen.waitFor("ready");
  pty.close();
  pty.close();
  assert.deepEqual(await finish(program, screen), { code: null, signal: "SIGHUP" });
  assert.throws(() => pty.resize(80, 24), /closed/);
  await assert.rejects(pty.spawn(["true"]), /closed/);
});

test("a write the program is not yet reading waits, without blocking, and arrives whole", async () => {
  const size = 200_000; // far more than the slave's input queue holds
  using run = await start(
    ["sh", "-c", `stty raw -echo; echo ready; sleep 1; head -c ${size} | wc -c`],
  );
  const { pty, screen, program } = run;
  await screen.waitFor("ready");
  const bytes = new Uint8Array(size + 8).fill(0x61).subarray(8); // a view with an offset
  const writer = pty.writable.getWriter();
  await writer.write(bytes);
  writer.releaseLock();
  await finish(program, screen);
  assert.match(screen.text, new RegExp(`\\b${size}\\b`));
});

test("idle terminals hold no thread: file operations go on, and close() ends pending reads", async () => {
  // Bun's node:fs reads would each block a thread of its pool; four stall every file operation.
  const ptys = Array.from({ length: 8 }, () => openPty({ cols: 80, rows: 24 }));
  const pending = ptys.map((pty) => pty.readable.getReader().read());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const text = await Promise.race([
    readFile("/etc/passwd", "utf8"),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("a file read stalled behind idle terminals")),
        WAIT_MS,
      );
    }),
  ]);
  clearTimeout(timer);
  assert.ok(text.length > 0);
  for (const pty of ptys) pty.close();
  for (const read of pending) assert.deepEqual(await read, { done: true, value: undefined });
});

test("the slave stays usable when it was opened and closed before the program came", async () => {
  using pty = openPty({ cols: 80, rows: 24 });
  const screen = new Screen(pty);
  // What a session module may do with PAM_TTY before any program runs.
  spawnSync("sh", ["-c", `exec 3<>${pty.slavePath}`]);
  const program = await pty.spawn(["echo", "still here"], { env });
  assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
  assert.equal(screen.text, "still here\r\n");
  await assert.rejects(pty.spawn(["true"]), /open a new pty/);
});

test("bad sizes, argv and options are errors before anything runs", async () => {
  assert.throws(() => openPty(undefined as never), TypeError);
  assert.throws(() => openPty({ cols: "80", rows: 24 } as never), TypeError);
  assert.throws(() => openPty({ cols: 80, rows: 24, colour: 1 } as never), /no option "colour"/);
  assert.throws(() => openPty({ cols: 0, rows: 24 }), RangeError);
  assert.throws(() => openPty({ cols: 80, rows: 65536 }), RangeError);
  using pty = openPty({ cols: 80, rows: 24 });
  assert.throws(() => pty.resize(1.5, 24), RangeError);
  assert.throws(() => pty.chown(-1, 0), RangeError);
  assert.throws(() => pty.chown(0, 2 ** 32 - 1), RangeError);
  assert.throws(() => pty.chown(0, 0, 0o1777), RangeError);
  assert.throws(() => pty.chown("0" as never, 0), TypeError);
  assert.throws(() => pty.chown(0, 0, "0600" as never), TypeError);
  await assert.rejects(pty.spawn([]), TypeError);
  await assert.rejects(pty.spawn(["a\0b"]), /NUL/);
  // The same checks as LoginSession.spawn's (one function for both): an empty program name too.
  await assert.rejects(pty.spawn([""]), /argv\[0\] must not be empty/);
  await assert.rejects(pty.spawn(["true"], { shell: true } as never), /no option "shell"/);
  await assert.rejects(pty.spawn(["true"], { uid: 0 }), /go together/);
  await assert.rejects(
    pty.spawn(["true"], { env: { "A=B": "c" } }),
    /"A=B" is not an environment variable's name/,
  );
  await assert.rejects(pty.spawn(["true"], { env: { A: 1 } as never }), TypeError);
  await assert.rejects(pty.spawn(["true"], { cwd: "/nonexistent-seed-pam" }), /ENOENT/);
  const screen = new Screen(pty);
  const program = await pty.spawn(["echo", "a failed start leaves the pty usable"], { env });
  assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
  assert.equal(screen.text, "a failed start leaves the pty usable\r\n");
  const writer = pty.writable.getWriter();
  await assert.rejects(writer.write("text" as never), TypeError);
});

test("chown gives the slave to the user: group tty, mode 0620", { skip: notRoot }, () => {
  using pty = openPty({ cols: 80, rows: 24 });
  // stat(1), not node:fs: Deno wants --allow-all to look at a file under /dev.
  const owner = () =>
    spawnSync("stat", ["-c", "%u %g %a", pty.slavePath], { encoding: "utf8" }).stdout.trim();
  pty.chown(65534, 65534);
  const tty = spawnSync("getent", ["group", "tty"], { encoding: "utf8" }).stdout.split(":")[2];
  assert.equal(owner(), tty === undefined ? "65534 65534 600" : `65534 ${tty} 620`);
  pty.chown(65534, 65534, 0o600);
  assert.match(owner(), / 600$/);
});

test(
  "spawn as nobody: its uid, gid and initgroups' groups, on its own terminal",
  { skip: notRoot },
  async () => {
    using pty = openPty({ cols: 80, rows: 24 });
    pty.chown(65534, 65534);
    const screen = new Screen(pty);
    const program = await pty.spawn(["sh", "-c", "id -u; id -g; id -G; tty"], {
      env,
      cwd: "/",
      uid: 65534,
      gid: 65534,
    });
    assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
    const groups = spawnSync("id", ["-G", "nobody"], { encoding: "utf8" }).stdout.trim();
    assert.equal(screen.text, `65534\r\n65534\r\n${groups}\r\n${pty.slavePath}\r\n`);
  },
);

test(
  "without root, spawning as another user is an error",
  { skip: isRoot ? "runs only without root (as root every user is allowed)" : false },
  async () => {
    using pty = openPty({ cols: 80, rows: 24 });
    await assert.rejects(pty.spawn(["true"], { uid: 0, gid: 0 }), /only root/);
  },
);

test(
  "the user's LD_PRELOAD and its kin reach the program, never the root-run steps before it",
  { skip: notRoot || (hasCc ? false : "no C compiler (cc) to build the preloaded library") },
  async () => {
    // A user can put LD_PRELOAD into the PAM environment (pam_env's user_readenv): setsid, sh and
    // setpriv run as root, and a library they preload would run as root.
    const dir = mkdtempSync(join(tmpdir(), "seed-pam-pty-"));
    try {
      chmodSync(dir, 0o755);
      writeFileSync(
        join(dir, "tell.c"),
        "#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void tell(void)" +
          ' { dprintf(2, "preloaded as %d\\n", (int)geteuid()); }\n',
      );
      const built = spawnSync("cc", [
        "-shared",
        "-fPIC",
        "-o",
        join(dir, "tell.so"),
        join(dir, "tell.c"),
      ], {
        encoding: "utf8",
      });
      assert.equal(built.status, 0, built.stderr);
      using pty = openPty({ cols: 80, rows: 24 });
      const screen = new Screen(pty);
      const program = await pty.spawn(["/usr/bin/env"], {
        env: { ...env, LD_PRELOAD: join(dir, "tell.so"), GCONV_PATH: "/nowhere" },
        uid: 65534,
        gid: 65534,
      });
      assert.deepEqual(await finish(program, screen), { code: 0, signal: null });
      const [first, ...printed] = screen.text.trim().split("\r\n");
      assert.equal(first, "preloaded as 65534", "preloaded once, into the program, as the user");
      assert.ok(printed.includes(`LD_PRELOAD=${join(dir, "tell.so")}`), screen.text);
      assert.ok(printed.includes("GCONV_PATH=/nowhere"), screen.text);
      assert.ok(!/preloaded|SEED_PAM_ASIDE_/.test(printed.join("\n")), screen.text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("splitRootEnv renames what root must not see, keeps the rest, refuses what it cannot carry", () => {
  const { rootEnv, restore } = splitRootEnv({ PATH: "/usr/bin", LD_AUDIT: "a", TMPDIR: "/t" });
  assert.deepEqual(rootEnv, {
    PATH: "/usr/bin",
    SEED_PAM_ASIDE_LD_AUDIT: "a",
    SEED_PAM_ASIDE_TMPDIR: "/t",
  });
  assert.equal(restore.length, 4);
  assert.ok(!restore.join(" ").includes("/t"), "no value on the command line");
  // env -i: Deno's spawnSync adds its own environment to the one it is given.
  const assignments = Object.entries(rootEnv).map(([name, value]) => `${name}=${value}`);
  const named = spawnSync("/usr/bin/env", ["-i", ...assignments, ...restore, "/usr/bin/env"], {
    encoding: "utf8",
  });
  assert.deepEqual(named.stdout.trim().split("\n").filter((v) => !v.startsWith("PWD=")).sort(), [
    "LD_AUDIT=a",
    "PATH=/usr/bin",
    "TMPDIR=/t",
  ]);
  assert.deepEqual(splitRootEnv({ TERM: "dumb" }), { rootEnv: { TERM: "dumb" }, restore: [] });
  assert.throws(() => splitRootEnv({ "LD_A-B": "x" }), TypeError);
  assert.throws(() => splitRootEnv({ SEED_PAM_ASIDE_X: "x" }), TypeError);
});
