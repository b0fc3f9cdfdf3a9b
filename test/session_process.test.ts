// The session process: login() runs every session module in a process of its own, so the
// caller's umask, limits and environment stay as they were before, during and after; the
// user's programs run there as the user; the session ends when close() is called, when an
// endsSession program exits, or when the caller dies; a crashing module takes only it down.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  authenticate,
  login,
  type LoginOptions,
  type LoginSession,
  PamError,
  passwordConversation,
  type SessionProgram,
} from "../mod.ts";
import { defaultLibraries, native, prioritySymbols } from "../ffi/mod.ts";
import { createTestStack, type TestStack } from "../src/testing.ts";
import { cleanFileMappings } from "../src/session/_idle_pages.ts";
import { INPUT_WINDOW_BYTES, ProgramInput } from "../src/session/_program_input.ts";
import { compileModule } from "./_modules.ts";
import { until, within } from "./_helpers.ts";

const isDeno = "Deno" in globalThis;
const isRoot = spawnSync("id", ["-u"], { encoding: "utf8" }).stdout.trim() === "0";
// Bun's os.userInfo() says "unknown" for root; id(1) asks the passwd database as PAM does.
const me = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim();
const rootOnly = isRoot ? false : "needs root: spawning as another user";

const crashSource = String.raw`
#include <security/pam_modules.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
static int crash(int argc, const char **argv) {
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "segv") == 0) { volatile int *p = 0; *p = 1; }
    if (strcmp(argv[i], "abort") == 0) abort();
    if (strcmp(argv[i], "exit") == 0) exit(3);
  }
  return PAM_SUCCESS;
}
int pam_sm_authenticate(pam_handle_t *h, int f, int c, const char **v) { return crash(c, v); }
int pam_sm_setcred(pam_handle_t *h, int f, int c, const char **v) { return PAM_SUCCESS; }
int pam_sm_open_session(pam_handle_t *h, int f, int c, const char **v) { return crash(c, v); }
int pam_sm_close_session(pam_handle_t *h, int f, int c, const char **v) { return PAM_SUCCESS; }
`;

/** A stack of permits around `session` lines, with pam_exec logging `$PAM_TYPE $PPID`. */
function stack(session: string[] = [], auth: string[] = []): TestStack & { log: string } {
  const s = createTestStack({
    services: {
      app: [
        ...auth,
        "auth     required pam_permit.so",
        "account  required pam_permit.so",
        "session  required pam_exec.so {{dir}}/who-ran.sh",
        ...session,
        "session  required pam_permit.so",
        "",
      ].join("\n"),
    },
  });
  const script = join(s.dir, "who-ran.sh");
  writeFileSync(script, `#!/bin/sh\necho "$PAM_TYPE $PPID" >> ${s.dir}/ran.log\n`);
  chmodSync(script, 0o755);
  return Object.assign(s, { log: join(s.dir, "ran.log") });
}

function ranLog(s: { log: string }): string[] {
  try {
    return readFileSync(s.log, "utf8").trim().split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

function base(s: TestStack, more: Partial<LoginOptions> = {}): LoginOptions {
  return { service: "app", user: me, confdir: s.confdir, utmp: false, ...more };
}

/** The caller's own state that session modules would change if they ran here. */
function callerState(): { umask: string; nofile: string; groups: string; env: string } {
  // Read by cat: Deno wants --allow-all for this process's own /proc files.
  const proc = (file: string) =>
    spawnSync("cat", [`/proc/${process.pid}/${file}`], { encoding: "utf8" }).stdout;
  const status = proc("status");
  const limits = proc("limits");
  return {
    umask: /^Umask:\s*(\S+)/m.exec(status)![1],
    nofile: /^Max open files\s+(.*)$/m.exec(limits)![1].trim(),
    groups: /^Groups:\s*(.*)$/m.exec(status)![1].trim(),
    env: JSON.stringify(Object.keys(process.env).sort()),
  };
}

/** The caller's state now, compared with later: `check()` throws if any of it changed. */
function watchCaller(): { check(when: string): void } {
  const before = callerState();
  return { check: (when) => assert.deepEqual(callerState(), before, `the caller changed ${when}`) };
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by whoever adopted it) does not. */
function running(pid: number): boolean {
  const stat = spawnSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" });
  return stat.status === 0 && !/^\d+ \(.*\) Z/.test(stat.stdout);
}

/** The pid a program prints on its first line of output (`echo $!` of a background job). */
async function firstLinePid(program: SessionProgram): Promise<number> {
  const reader = program.stdout!.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const pid = Number(out.trim());
  assert.ok(pid > 1 && running(pid), out);
  return pid;
}

/** Waits up to a second for `pid` to stop running (reaping it is its new parent's business). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && running(pid); i++) await new Promise((r) => setTimeout(r, 10));
  return !running(pid);
}

/** Kills what a test left behind, if anything. */
function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      if (pid > 1) process.kill(pid, "SIGKILL");
    } catch {
      // Gone, as it should be.
    }
  }
}

async function run(
  session: LoginSession,
  argv: string[],
): Promise<{ out: string; err: string; code: number | null }> {
  const p = await session.spawn(argv, { stdin: "null" });
  const [out, err, status] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.status,
  ]);
  return { out, err, code: status.code };
}

test("pam_umask and pam_limits act on the session process and its programs, not the caller", async () => {
  await using s = stack([
    "session  required pam_umask.so umask=0077",
    "session  required pam_limits.so conf={{dir}}/limits.conf",
  ]);
  writeFileSync(join(s.dir, "limits.conf"), `${me} hard nofile 77\n${me} soft nofile 77\n`);
  const before = callerState();
  const session = await login(base(s));
  assert.deepEqual(callerState(), before);
  const r = await run(session, ["sh", "-c", "umask; ulimit -Hn; ulimit -Sn"]);
  assert.equal(r.out, "0077\n77\n77\n", r.err);
  await session.close();
  assert.deepEqual(callerState(), before);
});

/** The nice value of every thread of `pid` (field 19 of each thread's stat), read by cat. */
function niceOfThreads(pid: number): number[] {
  const tasks = spawnSync("ls", [`/proc/${pid}/task`], { encoding: "utf8" }).stdout.split(/\s+/);
  return tasks.filter(Boolean).map((tid) => {
    const stat = spawnSync("cat", [`/proc/${pid}/task/${tid}/stat`], { encoding: "utf8" }).stdout;
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  }).filter((n) => !Number.isNaN(n));
}

test("a session process exits with every thread at nice 19, with only its own permissions", () => {
  const dir = mkdtempSync(join(tmpdir(), "seed-pam-exit-"));
  try {
    const script = join(dir, "exit.ts");
    const threads = new URL("../src/session/_threads.ts", import.meta.url).href;
    // Read from outside while it exits: its 'exit' listeners run after exitQuietly's setpriority.
    writeFileSync(
      script,
      `import process from "node:process";\nimport { spawnSync } from "node:child_process";\n` +
        `import { writeSync } from "node:fs";\n` +
        `import { exitQuietly } from ${JSON.stringify(threads)};\n` +
        `process.on("exit", () => {\n` +
        `  const r = spawnSync("sh", ["-c", "cat /proc/" + process.pid + "/task/*/stat"]);\n` +
        `  writeSync(1, r.stdout);\n});\nexitQuietly();\n`,
    );
    // The session process's own permissions (src/session/_client.ts): /proc is not among them.
    const args = isDeno
      ? [
        "run",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        "--allow-run",
        "--allow-env",
        script,
      ]
      : [script];
    const r = spawnSync(process.execPath, args, { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const nice = r.stdout.trim().split("\n").map((stat) =>
      Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])
    );
    assert.ok(nice.length > 1, `the runtime has several threads: ${r.stdout}`);
    assert.deepEqual(new Set(nice), new Set([19]), r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// A session process loads at nice 19 when the caller may give it its priority back
// (src/session/_client.ts): it has it back before PAM runs, so the programs get the caller's
// priority, or the one a session module set.
test("the session process and its programs have the caller's priority, or pam_limits'", async () => {
  await using s = stack(["session  required pam_limits.so conf={{dir}}/limits.conf"]);
  writeFileSync(join(s.dir, "limits.conf"), "");
  const callerNice = niceOfThreads(process.pid)[0];
  const plain = await login(base(s));
  assert.deepEqual(new Set(niceOfThreads(plain.pid)), new Set([callerNice]));
  assert.equal((await run(plain, ["nice"])).out, `${callerNice}\n`);
  await plain.close();
  writeFileSync(join(s.dir, "limits.conf"), `${me} - priority 7\n`);
  const session = await login(base(s));
  assert.equal((await run(session, ["nice"])).out, "7\n");
  await session.close();
  assert.equal(niceOfThreads(process.pid)[0], callerNice);
});

test("a caller at nice 3 starts session processes and programs at nice 3", {
  skip: rootOnly,
}, async () => {
  await using s = stack();
  const libc = native.open(defaultLibraries.libc, prioritySymbols);
  // The thread that starts session processes: this one (nice values are per thread).
  assert.equal(libc.setpriority(0, 0, 3), 0);
  try {
    const session = await login(base(s));
    assert.deepEqual(new Set(niceOfThreads(session.pid)), new Set([3]));
    assert.equal((await run(session, ["nice"])).out, "3\n");
    await session.close();
  } finally {
    libc.setpriority(0, 0, 0);
    libc.close();
  }
});

test("pam_env: values reach session.env and spawned programs, not the caller's environment", async () => {
  await using s = stack(["session  required pam_env.so readenv=0 conffile={{dir}}/env.conf"]);
  writeFileSync(join(s.dir, "env.conf"), "SEED_PAM_GREETING DEFAULT=hello-@{PAM_USER}\n");
  const caller = watchCaller();
  await using session = await login(base(s));
  caller.check("by login()");
  assert.equal(session.env.SEED_PAM_GREETING, `hello-${me}`);
  assert.equal(process.env.SEED_PAM_GREETING, undefined);
  const r = await run(session, ["sh", "-c", 'echo "$SEED_PAM_GREETING"']);
  assert.equal(r.out, `hello-${me}\n`);
});

test("session modules run in the session process (pam_exec's parent), and so does close", async () => {
  await using s = stack();
  const caller = watchCaller();
  const session = await login(base(s));
  caller.check("by login()");
  assert.notEqual(session.pid, process.pid);
  assert.deepEqual(ranLog(s), [`open_session ${session.pid}`]);
  await session.close();
  caller.check("by close()");
  assert.deepEqual(ranLog(s), [`open_session ${session.pid}`, `close_session ${session.pid}`]);
  // The session process exits once the session closed.
  await session.closed;
  assert.equal(running(session.pid), false);
});

test("spawn runs as the user: uid, initgroups' groups, HOME/USER/SHELL, cwd, setsid", {
  skip: rootOnly,
}, async () => {
  await using s = stack();
  const caller = watchCaller();
  await using session = await login(base(s, { user: "nobody" }));
  caller.check("by login()");
  const r = await run(session, [
    "sh",
    "-c",
    'id -u; id -G; echo "$HOME $USER $LOGNAME $SHELL"; pwd; ps -o sid= -p $$; echo $$',
  ]);
  const lines = r.out.trim().split("\n");
  const expect = (args: string[]) => spawnSync("id", args, { encoding: "utf8" }).stdout.trim();
  assert.equal(lines[0], expect(["-u", "nobody"]));
  assert.equal(lines[1], expect(["-G", "nobody"]));
  const pw = spawnSync("getent", ["passwd", "nobody"], { encoding: "utf8" }).stdout.trim()
    .split(":");
  assert.equal(lines[2], `${pw[5]} nobody nobody ${pw[6]}`);
  // nobody's home (/nonexistent) is missing: the program starts in /.
  assert.equal(lines[3], pw[5] === "/nonexistent" ? "/" : pw[5]);
  assert.equal(lines[4].trim(), lines[5], "the program leads a session of its own");
});

test("spawn as another user is a clear error when the session process is not root", {
  skip: isRoot ? "runs as root: every user is reachable" : false,
}, async () => {
  await using s = stack();
  await using session = await login(base(s, { user: me }));
  // PAM_USER is the caller here; a program as root would need root.
  const r = await run(session, ["id", "-un"]);
  assert.equal(r.out.trim(), me);
});

test("spawn: bad arguments are TypeErrors; piped stdin reaches the program", async () => {
  await using s = stack();
  // A login too large for the channel is this call's RangeError, and its process is ended.
  await assert.rejects(login(base(s, { rhost: "h".repeat(2 << 20) })), RangeError);
  await using session = await login(base(s));
  await assert.rejects(session.spawn([] as string[]), TypeError);
  await assert.rejects(session.spawn(["a\0b"]), TypeError);
  await assert.rejects(session.spawn(["true"], { bogus: 1 } as never), /no option "bogus"/);
  await assert.rejects(session.spawn(["true"], { stdin: "file" as never }), TypeError);
  await assert.rejects(
    session.spawn(["true"], { env: { "A=B": "c" } }),
    /"A=B" is not an environment variable's name/,
  );
  await assert.rejects(session.spawn([""]), /argv\[0\] must not be empty/);
  // Too large for the channel to the session process: this call's error, and the session goes on.
  await assert.rejects(
    session.spawn(["true"], { env: { BIG: "x".repeat(2 << 20) } }),
    RangeError,
  );
  const p = await session.spawn(["sh", "-c", "read line; echo got:$line; exit 4"]);
  const writer = p.stdin!.getWriter();
  await writer.write(new TextEncoder().encode("hello\n"));
  await writer.close();
  assert.equal(await new Response(p.stdout).text(), "got:hello\n");
  assert.deepEqual(await p.status, { code: 4, signal: null });
  const sleeper = await session.spawn(["sleep", "30"], { stdout: "null", stderr: "null" });
  assert.throws(() => sleeper.kill("SIGNOPE"), TypeError);
  sleeper.kill("SIGTERM");
  assert.deepEqual(await sleeper.status, { code: null, signal: "SIGTERM" });
});

test("piped stdin waits for a program that does not read, and loses nothing for one that reads late", async () => {
  await using s = stack();
  await using session = await login(base(s));
  // Never reads: the writer must stall near the window (256 KiB) plus the pipe's 64 KiB, not
  // push all 16 MiB into the session process's memory.
  const stuck = await session.spawn(["sleep", "30"], { stdout: "null", stderr: "null" });
  const writer = stuck.stdin!.getWriter();
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let written = 0;
  const writing = (async () => {
    for (let i = 0; i < 256; i++) {
      await writer.write(chunk);
      written += chunk.length;
    }
  })();
  writing.catch(() => {});
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(written <= 1024 * 1024, `${written} bytes accepted for a program that reads nothing`);
  assert.ok(written >= 64 * 1024, `only ${written} bytes accepted: the window never opened`);
  // Its exit frees the waiting writer.
  stuck.kill("SIGKILL");
  await within(writing.catch(() => {}), 10_000, "a write waiting for a killed program");
  await stuck.status;
  // Its input is closed now: a write says so rather than vanish.
  const after = await session.spawn(["true"], { stdout: "null", stderr: "null" });
  await after.status;
  await assert.rejects(after.stdin!.getWriter().write(chunk), /the program has exited/);
  // abort() gives up a write that waits for a program that never reads.
  const never = await session.spawn(["sleep", "30"], { stdout: "null", stderr: "null" });
  const w1 = never.stdin!.getWriter();
  const filling = (async () => {
    for (;;) await w1.write(chunk);
  })();
  filling.catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  await within(w1.abort(new Error("enough")), 10_000, "abort() of a waiting write");
  await assert.rejects(filling);
  never.kill("SIGKILL");
  // Reads only after a while, then everything: 8 MiB in one write (past a frame's 1 MiB) and
  // more in small ones all arrive.
  const late = await session.spawn(["sh", "-c", "sleep 0.3; wc -c"]);
  const w = late.stdin!.getWriter();
  const out = new Response(late.stdout).text();
  await w.write(new Uint8Array(8 << 20).fill(0x62));
  for (let i = 0; i < 100; i++) await w.write(new Uint8Array(1000));
  await w.close();
  assert.equal((await out).trim(), String((8 << 20) + 100_000));
  assert.deepEqual(await late.status, { code: 0, signal: null });
});

test("a program's input: writes in order, a bounded window, reports out of range ignored", async () => {
  const sent: string[] = [];
  const input = new ProgramInput(
    (part) => {
      sent.push(`${part.length}`);
      return Promise.resolve();
    },
    () => {
      sent.push("end");
      return Promise.resolve();
    },
  );
  let done = false;
  const big = input.write(new Uint8Array(INPUT_WINDOW_BYTES + 1)).then(() => done = true);
  input.write(new Uint8Array(1)).catch(() => {});
  input.end();
  await new Promise((r) => setTimeout(r, 20));
  // Past the window, nothing more goes until reports come back; the end waits behind the writes.
  assert.deepEqual(sent, ["65536", "65536", "65536", "65536", "1"]);
  assert.equal(done, false);
  for (const bad of [-1, 1.5, "1", 2 ** 60, undefined]) input.taken(bad, false);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, "a report out of range must not open the window");
  input.taken(65536, false);
  await big;
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(sent.slice(5), ["1", "end"]);
  // A failed report closes the input: the next write says so.
  input.taken(1, true);
  await assert.rejects(input.write(new Uint8Array(1)), /stdin is closed/);
});

/**
 * A caller script run by this runtime: `body` after `login()` of `s` as `session`. Returns how
 * to start it.
 */
function callerScript(
  s: TestStack,
  body: string,
  head = "",
): { command: string; args: string[]; cwd: string } {
  const script = join(s.dir, "caller.ts");
  const mod = new URL("../mod.ts", import.meta.url).href;
  writeFileSync(
    script,
    `import { login } from ${JSON.stringify(mod)};\n${head}` +
      `await using session = await login(${JSON.stringify(base(s))});\n${body}`,
  );
  const args = isDeno ? ["run", "--allow-all", script] : [script];
  return { command: process.execPath, args, cwd: fileURLToPath(new URL("..", import.meta.url)) };
}

test('"inherit" stdin no longer holds the caller once its programs are gone', async () => {
  // The caller's stdin is a pipe that never ends: relaying it to `true` must not keep the
  // caller alive after the session closed.
  await using s = stack();
  const { command, args, cwd } = callerScript(
    s,
    `const p = await session.spawn(["true"], { stdin: "inherit" });\n` +
      "await p.status;\nawait session.close();\n",
  );
  const caller = spawn(command, args, { cwd, stdio: ["pipe", "pipe", "inherit"] });
  try {
    const code = await within(
      new Promise<number | null>((resolve) => caller.once("exit", resolve)),
      20_000,
      "the caller's exit",
    );
    assert.equal(code, 0);
  } finally {
    caller.kill("SIGKILL");
  }
});

test('"inherit" stdin relays all of the caller\'s input, a chunk at a time', async () => {
  // Bun reads a redirected file in chunks of 512 KiB, several frames each: all of it arrives.
  await using s = stack();
  const { command, args, cwd } = callerScript(
    s,
    `const p = await session.spawn(["sh", "-c", "sleep 0.5; wc -c"], { stdin: "inherit" });\n` +
      // A second reader that stops after 5 bytes must neither stall the first nor end it.
      `const q = await session.spawn(["sh", "-c", "head -c 5 >/dev/null"], { stdin: "inherit" });\n` +
      "await q.status;\n" +
      "console.log((await new Response(p.stdout).text()).trim(), JSON.stringify(await p.status));\n",
    // Strings from the caller's setEncoding() go back to the very bytes read.
    `import process from "node:process";\nprocess.stdin.setEncoding("latin1");\n`,
  );
  const r = spawnSync(command, args, {
    cwd,
    input: new Uint8Array(6 << 20).fill(0xe9),
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `${6 << 20} {"code":0,"signal":null}`);
});

test("endsSession: the program's exit closes the session; who and last see it end", async () => {
  await using s = stack();
  const utmp = join(s.dir, "utmp"), wtmp = join(s.dir, "wtmp");
  const session = await login(
    base(s, { tty: "/dev/pts/77", utmp: { utmpFile: utmp, wtmpFile: wtmp } }),
  );
  const who = () => spawnSync("who", [utmp], { encoding: "utf8" }).stdout;
  assert.match(who(), new RegExp(`^${me}\\s+pts/77`, "m"));
  assert.equal(session.record.pid, session.pid);
  const caller = watchCaller();
  const p = await session.spawn(["sh", "-c", "sleep 0.3; echo bye"], { endsSession: true });
  assert.equal(await new Response(p.stdout).text(), "bye\n");
  await session.closed;
  caller.check("by the session's end");
  assert.equal(who(), "");
  assert.deepEqual(ranLog(s).map((l) => l.split(" ")[0]), ["open_session", "close_session"]);
  await new Promise((r) => setTimeout(r, 1100)); // last prints "still running" within the second
  const last = spawnSync("last", ["-f", wtmp], { encoding: "utf8" }).stdout;
  assert.match(last, new RegExp(`^${me}\\s+pts/77\\s.*\\(00:0\\d\\)`, "m"));
  await assert.rejects(session.spawn(["true"]), /closed/);
});

test("the caller killed with SIGKILL: the session process closes the session and exits", async () => {
  await using s = stack();
  const utmp = join(s.dir, "utmp"), wtmp = join(s.dir, "wtmp");
  const script = join(s.dir, "caller.ts");
  const mod = new URL("../mod.ts", import.meta.url).href;
  writeFileSync(
    script,
    `import { login } from ${JSON.stringify(mod)};\n` +
      `const session = await login(${
        JSON.stringify(base(s, { tty: "/dev/pts/78", utmp: { utmpFile: utmp, wtmpFile: wtmp } }))
      });\n` +
      `const p = await session.spawn(["sleep", "60"], { stdout: "null", stderr: "null" });\n` +
      "console.log(`open ${session.pid} ${p.pid}`);\nsetInterval(() => {}, 1000);\n",
  );
  const args = isDeno ? ["run", "--allow-all", script] : [script];
  const caller = spawn(process.execPath, args, {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const opened = await new Promise<string[]>((resolve, reject) => {
    caller.stdout!.on("data", (d) => {
      out += d;
      const m = /open (\d+) (\d+)/.exec(out);
      if (m) resolve([m[1], m[2]]);
    });
    caller.on("exit", (code) => reject(new Error(`caller exited ${code}: ${out}`)));
  });
  const [sessionPid, programPid] = opened;
  assert.match(spawnSync("who", [utmp], { encoding: "utf8" }).stdout, /pts\/78/);
  caller.kill("SIGKILL");
  const alive = (pid: string) => running(Number(pid));
  for (let i = 0; i < 200 && (alive(sessionPid) || alive(programPid)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(alive(sessionPid), false, "the session process exited");
  assert.equal(alive(programPid), false, "the session's program was hung up");
  assert.deepEqual(ranLog(s).map((l) => l.split(" ")[0]), ["open_session", "close_session"]);
  assert.equal(spawnSync("who", [utmp], { encoding: "utf8" }).stdout, "");
});

for (const how of ["segv", "abort", "exit"] as const) {
  const mod = compileModule("crash", crashSource);
  test(`a module that crashes (${how}) fails that login with an Error; the caller goes on`, {
    skip: mod.why ?? false,
  }, async () => {
    await using s = stack([`session  required ${mod.path} ${how}`]);
    const caller = watchCaller();
    const error = await login(base(s)).then(
      () => assert.fail("login() resolved"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error && error.constructor === Error, String(error));
    const expected = how === "segv" ? /SIGSEGV/ : how === "abort" ? /SIGABRT/ : /exit code 3/;
    assert.match((error as Error).message, /session process died/);
    assert.match((error as Error).message, expected);
    caller.check("by the crash");
    // The same caller logs the next person in.
    await using ok = stack();
    await using session = await login(base(ok));
    assert.equal(session.user, me);
  });
}

test("100 concurrent open sessions hold no pool thread: a one-shot check still runs", async () => {
  await using s = stack(["session  required pam_umask.so umask=0077"]);
  const caller = watchCaller();
  const sessions = await Promise.all(Array.from({ length: 100 }, () => login(base(s))));
  caller.check("by 100 logins");
  assert.equal(new Set(sessions.map((x) => x.pid)).size, 100);
  const r = await authenticate({ service: "app", user: me, confdir: s.confdir, password: "x" });
  assert.equal(r.user, me);
  await Promise.all(sessions.map((x) => x.close()));
  caller.check("by 100 closes");
  assert.equal(ranLog(s).filter((l) => l.startsWith("close_session")).length, 100);
});

test("close() leaves nothing of a program's group: a background job that ignores SIGHUP is killed when its shell dies of it", async () => {
  await using s = stack();
  for (const inProcess of [true, false]) {
    const session = await login(base(s, { inProcess }));
    // The shell dies of SIGHUP at once; its background sleep ignores it (ignored across exec).
    const program = await session.spawn(
      ["sh", "-c", "(trap '' HUP; exec sleep 60) & echo $!; wait"],
      { stdin: "null" },
    );
    let background = 0;
    try {
      background = await firstLinePid(program);
      await session.close();
      assert.ok(await gone(background), `inProcess ${inProcess}: the background job is gone too`);
      // Its stdout closes with the background job: a survivor would hold it for a minute.
      assert.deepEqual(await within(program.status, 5000, "the program's status"), {
        code: null,
        signal: "SIGHUP",
      });
    } finally {
      killAll([background]);
    }
  }
});

test("inProcess close() hangs up a program's group as the session process does: SIGHUP ignored, SIGKILL", async () => {
  await using s = stack();
  const session = await login(base(s, { inProcess: true }));
  // Ignored signals stay ignored across exec: the shell and its background sleep both shrug
  // SIGHUP off.
  const program = await session.spawn(
    ["sh", "-c", "trap '' HUP; sleep 60 & echo $!; wait"],
    { stdin: "null" },
  );
  let background = 0;
  try {
    background = await firstLinePid(program);
    await session.close();
    assert.ok(!running(program.pid), "the program is gone once close() has resolved");
    assert.deepEqual(await program.status, { code: null, signal: "SIGKILL" });
    // Killed with its group.
    assert.ok(await gone(background), "what it started in the background is gone too");
    assert.ok(ranLog(s).some((l) => l.startsWith("close_session")));
  } finally {
    killAll([program.pid, background]);
  }
});

test("inProcess: true still runs the modules in the caller (its umask changes)", async () => {
  await using s = stack(["session  required pam_umask.so umask=0077"]);
  // In a process of its own, so that this test runner's umask stays as it is.
  const script = join(s.dir, "in-process.ts");
  const mod = new URL("../mod.ts", import.meta.url).href;
  writeFileSync(
    script,
    `import { readFileSync } from "node:fs";\nimport { login } from ${JSON.stringify(mod)};\n` +
      `const umask = () => /Umask:\\s*(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1];\n` +
      `const before = umask();\n` +
      `const session = await login({ ...${JSON.stringify(base(s))}, inProcess: true });\n` +
      `const during = umask();\nawait session.close();\n` +
      `console.log(JSON.stringify({ before, during, pid: session.pid === process.pid }));\n`,
  );
  const args = isDeno ? ["run", "--allow-all", script] : [script];
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  assert.notEqual(got.before, "0077");
  assert.deepEqual({ during: got.during, pid: got.pid }, { during: "0077", pid: true });
});

test("a conversation crosses to the session process: async handler, timeout, abort", async () => {
  const auth = ["auth     required pam_exec.so expose_authtok {{dir}}/check.sh"];
  await using s = stack([], auth);
  writeFileSync(join(s.dir, "check.sh"), '#!/bin/sh\nread pw\n[ "$pw" = "s3cret" ]\n');
  chmodSync(join(s.dir, "check.sh"), 0o755);
  const answer = (pw: string) => async (messages: readonly { style: number }[]) => {
    await new Promise((r) => setTimeout(r, 5));
    return messages.map(() => pw);
  };
  await using session = await login(base(s, { conversation: answer("s3cret") }));
  assert.equal(session.user, me);
  // pam_exec reports a failing script as PAM_SYSTEM_ERR.
  await assert.rejects(login(base(s, { conversation: answer("wrong") })), /PAM_SYSTEM_ERR/);
  const never = () => new Promise<string[]>(() => {});
  const timedOut = await login(base(s, { conversation: never, conversationTimeoutMs: 50 })).catch(
    (e) => e,
  );
  assert.equal(timedOut.cause?.name, "TimeoutError", String(timedOut));
  // An abort at a prompt fails it as AsyncPamTransaction's does: a PamError, the reason its cause.
  const controller = new AbortController();
  let prompted!: () => void;
  const atPrompt = new Promise<void>((resolve) => prompted = resolve);
  const waiting = () => {
    prompted();
    return never();
  };
  const pending = login(base(s, { conversation: waiting, signal: controller.signal }));
  const reason = new Error("gave up");
  await atPrompt;
  controller.abort(reason);
  const aborted = await pending.catch((e) => e);
  assert.ok(aborted instanceof PamError, String(aborted));
  assert.equal(aborted.cause, reason);
});

/** Waits until a script wrote its line to `file` (its sign that it runs); returns the line. */
async function appears(file: string): Promise<string> {
  const line = () => existsSync(file) ? readFileSync(file, "utf8") : "";
  await until(() => line().endsWith("\n"), `${file} written`, 20_000);
  return line();
}

test("an abort ends a login stuck in a module that never converses: hung up, then killed", async () => {
  // The module sits in pam_exec's waitpid for 60 s: only the session process's end frees the
  // caller. Without the abort reaching it, login() would resolve once sleep ends.
  await using s = stack([], ["auth     required pam_exec.so {{dir}}/stuck.sh"]);
  const mark = join(s.dir, "stuck.pids");
  writeFileSync(join(s.dir, "stuck.sh"), `#!/bin/sh\necho "$PPID $$" > ${mark}\nexec sleep 60\n`);
  chmodSync(join(s.dir, "stuck.sh"), 0o755);
  const controller = new AbortController();
  const pending = login(base(s, { signal: controller.signal })).catch((e) => e);
  const [sessionPid, sleepPid] = (await appears(mark)).trim().split(" ").map(Number);
  try {
    assert.ok(running(sessionPid), "the session process runs the module");
    const reason = new Error("the client went away");
    controller.abort(reason);
    assert.equal(await within(pending, 15_000, "the aborted login"), reason);
    assert.equal(running(sessionPid), false, "the session process is gone once login() rejects");
  } finally {
    try {
      process.kill(sleepPid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
});

test("an abort while a module works, before the session opens: the process undoes the session", async () => {
  // pam_exec returns 1.5 s after the abort; nothing converses after it, so the session opens in
  // a hung-up process, which closes it again before login() rejects. Its close steps take 1 s
  // more, past the 2 s grace: a process past its login modules is not killed in the middle.
  await using s = stack([
    "session  required pam_exec.so {{dir}}/slow-close.sh",
    "session  required pam_exec.so {{dir}}/last.sh",
  ], ["auth     required pam_exec.so {{dir}}/slow.sh"]);
  const mark = join(s.dir, "slow.started");
  const script = (name: string, body: string) => {
    writeFileSync(join(s.dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(s.dir, name), 0o755);
  };
  script("slow.sh", `echo started > ${mark}\nsleep 1.5`);
  script("slow-close.sh", '[ "$PAM_TYPE" = close_session ] && sleep 1\nexit 0');
  script("last.sh", `echo "$PAM_TYPE last" >> ${s.log}`);
  const controller = new AbortController();
  const pending = login(base(s, { signal: controller.signal })).catch((e) => e);
  await appears(mark);
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(await within(pending, 15_000, "the aborted login"), reason);
  const log = ranLog(s);
  assert.deepEqual(log.map((line) => line.split(" ")[0]), [
    "open_session",
    "open_session",
    "close_session",
    "close_session",
  ]);
  assert.equal(log.at(-1), "close_session last", log.join(", "));
  assert.equal(running(Number(log[0].split(" ")[1])), false);
});

test("an abort at a prompt before a 3 s fail delay still fails as the PamError of the reason", async () => {
  // libpam sleeps the delay after the failed answer: the kill must not cut it short.
  await using s = stack([], [
    "auth     optional pam_faildelay.so delay=3000000",
    "auth     required pam_exec.so expose_authtok {{dir}}/check.sh",
  ]);
  writeFileSync(join(s.dir, "check.sh"), '#!/bin/sh\nread pw\n[ "$pw" = "s3cret" ]\n');
  chmodSync(join(s.dir, "check.sh"), 0o755);
  const controller = new AbortController();
  let prompted!: () => void;
  const atPrompt = new Promise<void>((resolve) => prompted = resolve);
  const conversation = () => {
    prompted();
    return new Promise<string[]>(() => {});
  };
  const pending = login(base(s, { conversation, signal: controller.signal })).catch((e) => e);
  await atPrompt;
  const reason = new Error("gave up");
  controller.abort(reason);
  const error = await within(pending, 30_000, "the aborted login");
  assert.ok(error instanceof PamError, String(error));
  assert.equal(error.cause, reason);
});

const forkHelperSource = String.raw`
#include <security/pam_modules.h>
#include <unistd.h>
/* A helper forked without exec keeps the session process's channel open for 20 s. */
int pam_sm_authenticate(pam_handle_t *h, int f, int c, const char **v) {
  if (fork() == 0) { sleep(20); _exit(0); }
  sleep(60);
  return PAM_SUCCESS;
}
int pam_sm_setcred(pam_handle_t *h, int f, int c, const char **v) { return PAM_SUCCESS; }
`;

{
  const mod = compileModule("fork_helper", forkHelperSource);
  test("an aborted login does not wait for a module's helper that holds the channel open", {
    skip: mod.why ?? false,
  }, async () => {
    await using s = stack([], [`auth     required ${mod.path}`]);
    const controller = new AbortController();
    const pending = login(base(s, { signal: controller.signal })).catch((e) => e);
    await new Promise((r) => setTimeout(r, 1000));
    const reason = new Error("gone");
    controller.abort(reason);
    // The 2 s grace, the kill, then half a second of draining: well before the helper's 20 s.
    assert.equal(await within(pending, 12_000, "the aborted login"), reason);
  });
}

test("a program inherits no descriptor but its three streams (no channel, nothing of the caller)", async () => {
  await using s = stack();
  await using session = await login(base(s));
  const r = await run(session, ["ls", "-1", "/proc/self/fd"]);
  // ls's own directory stream is the one more.
  assert.deepEqual(r.out.trim().split("\n").map(Number).sort((a, b) => a - b), [0, 1, 2, 3]);
});

const preloadSource = String.raw`
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void said(void) { fprintf(stderr, "preloaded as %d\n", (int)getuid()); }
`;

test("LD_PRELOAD from the PAM environment reaches the program, never the steps run as root", {
  skip: rootOnly,
}, async () => {
  const preload = compileModule("preload", preloadSource);
  if (!preload.path) return;
  await using s = stack(["session  required pam_env.so readenv=0 conffile={{dir}}/env.conf"]);
  writeFileSync(join(s.dir, "env.conf"), `LD_PRELOAD DEFAULT=${preload.path}\n`);
  await using session = await login(base(s, { user: "nobody" }));
  const r = await run(session, ["sh", "-c", 'echo "$LD_PRELOAD"']);
  assert.equal(r.out.trim(), preload.path);
  const uid = spawnSync("id", ["-u", "nobody"], { encoding: "utf8" }).stdout.trim();
  assert.doesNotMatch(r.err, /preloaded as 0\b/, r.err);
  assert.match(r.err, new RegExp(`preloaded as ${uid}\\b`));
});

test("a bun build --compile binary starts its session process from itself", {
  skip: isDeno ? "bun build --compile is Bun's (Deno runs the suite from source)" : false,
}, async () => {
  await using s = stack();
  const app = join(s.dir, "app.ts");
  const mod = fileURLToPath(new URL("../mod.ts", import.meta.url));
  writeFileSync(
    app,
    `import { login } from ${JSON.stringify(mod)};\n` +
      `const session = await login(${JSON.stringify(base(s))});\n` +
      `const p = await session.spawn(["id", "-un"]);\n` +
      "console.log(`as ${(await new Response(p.stdout).text()).trim()} in ${session.pid}`);\n" +
      "await session.close();\n",
  );
  const binary = join(s.dir, "app");
  const build = spawnSync(process.execPath, ["build", "--compile", app, "--outfile", binary], {
    encoding: "utf8",
  });
  assert.equal(build.status, 0, build.stderr);
  const r = spawnSync(binary, [], { encoding: "utf8", cwd: s.dir });
  assert.equal(r.status, 0, r.stderr);
  const m = /^as (\S+) in (\d+)$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.equal(m[1], me);
  assert.deepEqual(ranLog(s), [`open_session ${m[2]}`, `close_session ${m[2]}`]);
});

test("the session process killed while open: closed rejects saying how; spawn and close reject", async () => {
  await using s = stack();
  const session = await login(base(s));
  const program = await session.spawn(["sleep", "30"], { stdout: "null", stderr: "null" });
  process.kill(session.pid, "SIGKILL");
  await assert.rejects(session.closed, /the session process died \(killed by SIGKILL\)/);
  await assert.rejects(program.status, /died/);
  await assert.rejects(session.spawn(["true"]), /died/);
  await assert.rejects(session.close(), /died/);
  // Its program leads a session of its own: the caller hung it up, as the session process could not.
  const alive = () => running(program.pid);
  for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(alive(), false, "the orphaned program was hung up");
});

test("hostile handler results fail the login with PamError, cause set; answers are read once", async () => {
  const auth = ["auth     required pam_exec.so expose_authtok {{dir}}/check.sh"];
  await using s = stack([], auth);
  writeFileSync(join(s.dir, "check.sh"), '#!/bin/sh\nread pw\n[ "$pw" = "s3cret" ]\n');
  chmodSync(join(s.dir, "check.sh"), 0o755);
  const boom = new Error("boom");
  const revocable = Proxy.revocable([] as string[], {});
  revocable.revoke();
  const hostile: Array<[string, () => unknown]> = [
    ["a then getter that throws", () => ({
      get then() {
        throw boom;
      },
    })],
    ["a Proxy whose traps throw", () =>
      new Proxy([], {
        get() {
          throw boom;
        },
      })],
    ["a revoked Proxy", () => revocable.proxy],
    [
      "a thenable that rejects",
      () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject(boom) }),
    ],
  ];
  for (const [what, make] of hostile) {
    const error = await login(base(s, { conversation: make as never })).catch((e) => e);
    assert.ok(error instanceof PamError, `${what}: ${error}`);
    assert.ok(error.cause instanceof Error, `${what}: no cause`);
  }
  // An element read once: a getter that would answer differently the second time.
  let reads = 0;
  const once = () => {
    const answers: string[] = [];
    Object.defineProperty(answers, 0, {
      get: () => (reads++ === 0 ? "s3cret" : "s3cret\0tail"),
      enumerable: true,
    });
    return answers;
  };
  await using session = await login(base(s, { conversation: once }));
  assert.equal(reads, 1);
  assert.equal(session.user, me);
});

test("a reader that does not keep up holds the program back (backpressure), then gets all of it", async () => {
  await using s = stack();
  await using session = await login(base(s));
  const size = 20_000_000;
  const p = await session.spawn(["head", "-c", String(size), "/dev/zero"], { stdin: "null" });
  let exited = false;
  void p.status.then(() => exited = true);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(exited, false, "the program wrote 20 MB with nobody reading");
  let got = 0;
  for await (const chunk of p.stdout!) got += chunk.byteLength;
  assert.equal(got, size);
  assert.deepEqual(await p.status, { code: 0, signal: null });
});

test("an expired password with passwordConversation: login() says a new one cannot be asked for", async () => {
  await using s = createTestStack({
    services: {
      // pam_stress "expired": acct_mgmt says NEW_AUTHTOK_REQD, chauthtok asks for a new one.
      app: "auth required pam_permit.so\naccount required pam_stress.so expired\n" +
        "password required pam_stress.so expired\nsession required pam_permit.so\n",
    },
  });
  for (const inProcess of [false, true]) {
    const error = await login(base(s, { conversation: passwordConversation("old"), inProcess }))
      .catch((e) => e);
    assert.ok(error instanceof PamError, String(error));
    assert.equal(error.operation, "pam_chauthtok");
    assert.match(error.message, /password has expired.*ask for a new one/);
  }
});

/** VmRSS of `pid` in KiB, read by cat (Deno wants --allow-all for /proc of its children too). */
function rssKiB(pid: number): number {
  const status = spawnSync("cat", [`/proc/${pid}/status`], { encoding: "utf8" }).stdout;
  return Number(/^VmRSS:\s*(\d+)/m.exec(status)![1]);
}

test("an idle session process gives back the runtime's file pages and still serves", async () => {
  await using s = stack();
  const session = await login(base(s));
  try {
    // Busy: the caller keeps talking, so the pages the runtime loaded stay mapped.
    const busy = rssKiB(session.pid);
    // Idle for over a second: the clean file pages are dropped (the page cache keeps them).
    let idle = busy;
    for (let i = 0; i < 40 && idle > busy - 8192; i++) {
      await new Promise((r) => setTimeout(r, 100));
      idle = rssKiB(session.pid);
    }
    assert.ok(idle <= busy - 8192, `RSS ${busy} KiB busy, ${idle} KiB idle`);
    // What was dropped comes back on use: the session still runs programs and closes.
    assert.equal((await run(session, ["echo", "still here"])).out, "still here\n");
  } finally {
    await session.close();
  }
  assert.deepEqual(ranLog(s).map((l) => l.split(" ")[0]), ["open_session", "close_session"]);
});

test("only clean, read-only file mappings are dropped when idle", () => {
  const smaps = [
    "55d0c0000000-55d0c2000000 r-xp 00001000 08:01 1234   /usr/bin/deno",
    "Rss:                1024 kB",
    "Private_Dirty:         0 kB",
    "Anonymous:             0 kB",
    // Relocated, then made read-only: its pages are this process's own copies.
    "55d0c2000000-55d0c2100000 r--p 02000000 08:01 1234   /usr/bin/deno",
    "Private_Dirty:        64 kB",
    "Anonymous:            64 kB",
    "55d0c2100000-55d0c2200000 rw-p 02100000 08:01 1234   /usr/bin/deno",
    "Anonymous:             0 kB",
    "7f0000000000-7f0000100000 r--s 00000000 08:01 99     /dev/shm/shared",
    "7f0000100000-7f0000200000 r--p 00000000 00:00 0 ",
    "7f0000200000-7f0000300000 r--p 00000000 08:01 77     /usr/lib/libc.so.6",
    "Anonymous:             0 kB",
    "Locked:                0 kB",
    "7f0000300000-7f0000400000 r-xp 00000000 08:01 78     /usr/lib/libpam.so.0",
    "Locked:                4 kB",
    "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0      [vdso]",
    // Huge pages written, then made read-only: counted in Private_Hugetlb only.
    "7ffe00000000-7ffe00200000 r--p 00000000 00:10 5      /anon_hugepage (deleted)",
    "Anonymous:             0 kB",
    "Private_Hugetlb:    2048 kB",
    "VmFlags: rd mr mw me ht",
    // Hugetlb with no page yet: refused by its flag alone.
    "7ffe00200000-7ffe00400000 r--p 00000000 00:10 6      /dev/hugepages/x",
    "Private_Hugetlb:       0 kB",
    "VmFlags: rd sh mr ht",
    "7ffe00400000-7ffe00500000 r--p 00000000 08:01 79     /usr/lib/libm.so.6",
    "VmFlags: rd mr mw me sd",
    "",
  ].join("\n");
  assert.deepEqual(cleanFileMappings(smaps), [
    { start: 0x55d0c0000000, end: 0x55d0c2000000 },
    { start: 0x7f0000000000, end: 0x7f0000100000 },
    { start: 0x7f0000200000, end: 0x7f0000300000 },
    { start: 0x7ffe00400000, end: 0x7ffe00500000 },
  ]);
});

test("login() reads each option once: a getter cannot pass the check and then change", async () => {
  await using s = stack();
  let reads = 0;
  const options = {
    ...base(s),
    get conversation() {
      reads++;
      return reads === 1 ? passwordConversation("pw") : 42;
    },
  };
  await using session = await login(options as LoginOptions);
  assert.equal(reads, 1);
  assert.ok(session.pid > 0);
});
