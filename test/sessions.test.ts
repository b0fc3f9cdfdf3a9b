// login(), LoginSession and closeSession(): the order pam_open_session(3) asks for, utmp/wtmp
// entries relative to open and close, undo on failure at every step, PAM_SILENT everywhere, and
// closing from a second process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  type AsyncConversation,
  closeSession,
  type Conversation,
  login,
  type LoginOptions,
  MessageStyle,
  PamError,
  type PamMessage,
  ReturnCode,
  type SessionRecord,
} from "../mod.ts";
import { createTestStack, type TestStack, wrapperModule } from "../src/testing.ts";
import { readUtmpxFile, UtmpType } from "../src/session/_utmp.ts";
import { readSteps, stepLogModule, stepNames } from "./_steplog.ts";

const isDeno = "Deno" in globalThis;
const steplog = stepLogModule();
const skip = steplog.path ? false : steplog.why!;
const SILENT = 0x8000;
const CHANGE_EXPIRED_AUTHTOK = 0x20;

interface Stage {
  auth?: string;
  account?: string;
  password?: string;
  session?: string;
}

/**
 * A stack that logs every call (the compiled step logger, first in each stack), snapshots
 * `who UTMP` and the wtmp size at each session call (pam_exec log=), and adds `extra` lines
 * after the logger in each stack — pam_debug failures, pam_echo, pam_env.
 */
function sessionStack(
  extra: Stage = {},
): TestStack & { steps: string; utmp: string; wtmp: string } {
  const step = `${steplog.path} log={{dir}}/steps`;
  const snapshot = `pam_exec.so log={{dir}}/exec.log {{dir}}/snapshot.sh {{dir}}/utmp {{dir}}/wtmp`;
  const stack = createTestStack({
    services: {
      app: [
        `auth     required ${step}`,
        extra.auth ?? "",
        "auth     required pam_permit.so",
        `account  required ${step}`,
        extra.account ?? "",
        "account  required pam_permit.so",
        `password required ${step}`,
        extra.password ?? "",
        "password required pam_permit.so",
        `session  required ${step}`,
        `session  optional ${snapshot}`,
        extra.session ?? "",
        "session  required pam_permit.so",
        "",
      ].join("\n"),
    },
  });
  const script = join(stack.dir, "snapshot.sh");
  writeFileSync(
    script,
    '#!/bin/sh\necho "$PAM_TYPE who=$(who "$1" | grep -c .) wtmp=$(stat -c %s "$2")"\n',
  );
  chmodSync(script, 0o755);
  return Object.assign(stack, {
    steps: join(stack.dir, "steps"),
    utmp: join(stack.dir, "utmp"),
    wtmp: join(stack.dir, "wtmp"),
  });
}

/** pam_exec's log, without its "*** date" headers. */
function snapshots(stack: TestStack): string[] {
  try {
    return readFileSync(join(stack.dir, "exec.log"), "utf8").split("\n")
      .filter((line) => line && !line.startsWith("***"));
  } catch {
    return [];
  }
}

function options(stack: ReturnType<typeof sessionStack>, more: Partial<LoginOptions> = {}) {
  return {
    service: "app",
    user: "alice",
    confdir: stack.confdir,
    tty: "/dev/pts/42",
    rhost: "198.51.100.2",
    ruser: "bob",
    utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp },
    ...more,
  } satisfies LoginOptions;
}

function who(file: string): string {
  const r = spawnSync("who", [file], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** `last -f FILE`, once the clock has left `sinceMs`'s second (else it prints "still running"). */
async function last(file: string, sinceMs: number): Promise<string> {
  const wait = 1000 - (sinceMs % 1000) + 20;
  if (Date.now() < sinceMs + wait) {
    await new Promise((r) => setTimeout(r, sinceMs + wait - Date.now()));
  }
  const r = spawnSync("last", ["-f", file, "--time-format", "iso"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function size(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

test(
  "login() runs the man page's order and close() reverses it, exactly once",
  { skip },
  async () => {
    await using stack = sessionStack();
    const session = await login(options(stack));

    assert.deepEqual(stepNames(readSteps(stack.steps)), [
      "authenticate",
      "acct_mgmt",
      "setcred(establish)",
      "open_session",
    ]);
    // Items are set before authentication; every module saw them.
    for (const s of readSteps(stack.steps)) {
      assert.deepEqual([s.user, s.tty, s.rhost, s.ruser], [
        "alice",
        "/dev/pts/42",
        "198.51.100.2",
        "bob",
      ]);
    }
    // pam_open_session ran before any utmp/wtmp entry existed...
    assert.deepEqual(snapshots(stack), ["open_session who=0 wtmp=0"]);
    // ...and the entries exist once login() resolved.
    assert.match(who(stack.utmp), /^alice\s+pts\/42\s.*\(198\.51\.100\.2\)$/m);
    const [entry] = readUtmpxFile(readFileSync(stack.utmp));
    assert.equal(entry.type, UtmpType.USER_PROCESS);
    // The entry is the session process's: `who` lists it exactly while that process lives.
    assert.notEqual(session.pid, process.pid);
    assert.equal(entry.pid, session.pid);
    assert.equal(entry.id, "s/42");
    assert.deepEqual([...entry.address!.subarray(0, 4)], [198, 51, 100, 2]);
    assert.equal(size(stack.wtmp), 384);

    assert.equal(session.user, "alice");
    const r = session.record;
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
    assert.deepEqual(
      { ...r, loginTime: undefined },
      {
        service: "app",
        user: "alice",
        items: { tty: "/dev/pts/42", rhost: "198.51.100.2", ruser: "bob" },
        confdir: stack.confdir,
        pid: session.pid,
        loginTime: undefined,
        line: "pts/42",
        id: "s/42",
        utmpFile: stack.utmp,
        wtmpFile: stack.wtmp,
      },
    );
    assert.ok(Math.abs(Date.parse(r.loginTime) - entry.timeMs) < 1);

    let closed = false;
    void session.closed.then(() => closed = true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(closed, false, "session.closed settled while the session was open");
    const first = session.close();
    assert.equal(session.close(), first);
    await Promise.all([first, session.close(), session[Symbol.asyncDispose](), session.closed]);
    assert.equal(closed, true);
    const closedAt = Date.now();

    assert.deepEqual(stepNames(readSteps(stack.steps)), [
      "authenticate",
      "acct_mgmt",
      "setcred(establish)",
      "open_session",
      "close_session",
      "setcred(delete)",
    ]);
    // The exit entries were written before pam_close_session ran.
    assert.deepEqual(snapshots(stack), [
      "open_session who=0 wtmp=0",
      "close_session who=0 wtmp=768",
    ]);
    assert.doesNotMatch(who(stack.utmp), /alice/);
    const wtmp = readUtmpxFile(readFileSync(stack.wtmp));
    assert.deepEqual(wtmp.map((e) => [e.type, e.line, e.id, e.user]), [
      [UtmpType.USER_PROCESS, "pts/42", "s/42", "alice"],
      [UtmpType.DEAD_PROCESS, "pts/42", "s/42", ""],
    ]);
    // last pairs the login with its logout time (not "still logged in").
    assert.match(
      await last(stack.wtmp, closedAt),
      /^alice\s+pts\/42\s+198\.51\.100\.2\s+\S+\s+-\s+\d{4}-\d\d-\d\dT\S+\s+\(00:00\)/m,
    );
  },
);

test("session.env is the PAM environment after open; await using closes", { skip }, async () => {
  await using stack = sessionStack({
    auth: "auth     required pam_env.so readenv=0 conffile={{dir}}/cred.conf",
    session: "session  required pam_env.so readenv=0 conffile={{dir}}/session.conf",
  });
  writeFileSync(join(stack.dir, "cred.conf"), "FROM_SETCRED DEFAULT=yes\n");
  writeFileSync(join(stack.dir, "session.conf"), "GREETING DEFAULT=hello-@{PAM_USER}\n");
  {
    await using session = await login(options(stack, { utmp: false }));
    assert.deepEqual(session.env, { FROM_SETCRED: "yes", GREETING: "hello-alice" });
    assert.ok(Object.isFrozen(session.env));
    assert.equal(session.record.line, undefined);
    assert.equal(session.record.utmpFile, undefined);
  }
  assert.deepEqual(stepNames(readSteps(stack.steps)).slice(-2), [
    "close_session",
    "setcred(delete)",
  ]);
  assert.equal(size(stack.utmp), 0);
});

test(
  "closeSession(record) in a second process closes with the same user, tty and rhost",
  { skip },
  async () => {
    await using stack = sessionStack();
    const session = await login(options(stack));
    const record: SessionRecord = JSON.parse(JSON.stringify(session.record));

    const child = join(stack.dir, "close.ts");
    const mod = new URL("../mod.ts", import.meta.url).href;
    writeFileSync(
      child,
      `import process from "node:process";\nimport { closeSession } from ${
        JSON.stringify(mod)
      };\n` +
        `const record = JSON.parse(process.env.SESSION_RECORD);\n` +
        // The closer names what it trusts; the record only has to agree.
        `await closeSession(record, { service: "app", silent: true, ` +
        `confdir: ${JSON.stringify(stack.confdir)}, ` +
        `utmp: { utmpFile: ${JSON.stringify(stack.utmp)}, wtmpFile: ${
          JSON.stringify(stack.wtmp)
        } } });\n` +
        `console.log("closed in", process.pid);\n`,
    );
    const args = isDeno
      ? ["run", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", "--allow-run", child]
      : [child];
    const run = spawnSync(process.execPath, args, {
      encoding: "utf8",
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...process.env, SESSION_RECORD: JSON.stringify(record) },
    });
    assert.equal(run.status, 0, run.stderr);
    const childPid = Number(/closed in (\d+)/.exec(run.stdout)?.[1]);
    assert.notEqual(childPid, process.pid);
    const closedAt = Date.now();

    const steps = readSteps(stack.steps);
    assert.deepEqual(stepNames(steps), [
      "authenticate",
      "acct_mgmt",
      "setcred(establish)",
      "open_session",
      "close_session",
      "setcred(delete)",
    ]);
    const open = steps[3], close = steps[4];
    assert.deepEqual(
      [close.user, close.tty, close.rhost, close.ruser],
      [open.user, open.tty, open.rhost, open.ruser],
    );
    assert.ok(steps.slice(4).every((s) => s.flags & SILENT), "silent reached the other process");
    assert.deepEqual(snapshots(stack), [
      "open_session who=0 wtmp=0",
      "close_session who=0 wtmp=768",
    ]);
    assert.doesNotMatch(who(stack.utmp), /alice/);
    assert.match(
      await last(stack.wtmp, closedAt),
      /^alice\s+pts\/42\s+198\.51\.100\.2\s+\S+\s+-\s+\d{4}-/m,
    );
    // This process's handle is still open; a real login program would have exited. End it here.
    await session.close().catch(() => {});
  },
);

interface FailureCase {
  name: string;
  stage: Stage;
  more?: Partial<LoginOptions>;
  code?: number;
  message?: RegExp;
  steps: string[];
  entriesLeft: { utmpUsers: number; wtmp: number };
  /** A pam_exec script run at open_session that breaks a file: "utmp" or "wtmp". */
  breakFile?: "utmp" | "wtmp";
}

const failures: FailureCase[] = [
  {
    name: "authentication",
    stage: { auth: "auth required pam_debug.so auth=auth_err" },
    code: ReturnCode.AUTH_ERR,
    steps: ["authenticate"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "account management",
    stage: { account: "account required pam_debug.so acct=acct_expired" },
    code: ReturnCode.ACCT_EXPIRED,
    steps: ["authenticate", "acct_mgmt"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "an expired password with changeExpiredAuthtok: false",
    stage: { account: "account required pam_debug.so acct=new_authtok_reqd" },
    more: { changeExpiredAuthtok: false },
    code: ReturnCode.NEW_AUTHTOK_REQD,
    steps: ["authenticate", "acct_mgmt"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "changing the expired password",
    stage: {
      account: "account required pam_debug.so acct=new_authtok_reqd",
      password: "password required pam_debug.so prechauthtok=authtok_err",
    },
    code: ReturnCode.AUTHTOK_ERR,
    steps: ["authenticate", "acct_mgmt", "chauthtok"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "establishing credentials",
    stage: { auth: "auth required pam_debug.so cred=cred_err" },
    code: ReturnCode.CRED_ERR,
    steps: ["authenticate", "acct_mgmt", "setcred(establish)"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "opening the session (PAM_SESSION_ERR)",
    stage: { session: "session required pam_debug.so open_session=session_err" },
    code: ReturnCode.SESSION_ERR,
    // Credentials are deleted; the session that never opened is not closed.
    steps: ["authenticate", "acct_mgmt", "setcred(establish)", "open_session", "setcred(delete)"],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "writing the utmp entry",
    stage: {},
    breakFile: "utmp",
    message: /utmp file/,
    steps: [
      "authenticate",
      "acct_mgmt",
      "setcred(establish)",
      "open_session",
      "close_session",
      "setcred(delete)",
    ],
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
  {
    name: "writing the wtmp record",
    stage: {},
    breakFile: "wtmp",
    message: /wtmp file/,
    steps: [
      "authenticate",
      "acct_mgmt",
      "setcred(establish)",
      "open_session",
      "close_session",
      "setcred(delete)",
    ],
    // The utmp entry that was written is cleared again.
    entriesLeft: { utmpUsers: 0, wtmp: 0 },
  },
];

for (const c of failures) {
  test(`a failure in ${c.name} undoes exactly what was done`, { skip }, async () => {
    const stage = { ...c.stage };
    if (c.breakFile) {
      // At open_session, turn the file into a directory: the write after open fails.
      stage.session = `session optional pam_exec.so {{dir}}/break.sh`;
    }
    await using stack = sessionStack(stage);
    if (c.breakFile) {
      const script = join(stack.dir, "break.sh");
      const target = c.breakFile === "utmp" ? stack.utmp : stack.wtmp;
      writeFileSync(
        script,
        `#!/bin/sh\n[ "$PAM_TYPE" = open_session ] && rm -f ${target} && mkdir ${target}\nexit 0\n`,
      );
      chmodSync(script, 0o755);
    }
    const error = await login(options(stack, c.more)).then(
      () => assert.fail("login() resolved"),
      (e: unknown) => e,
    );
    if (c.code !== undefined) {
      assert.ok(error instanceof PamError, String(error));
      assert.equal(error.code, c.code);
    } else {
      assert.ok(!(error instanceof PamError) && error instanceof Error, String(error));
      assert.match(error.message, c.message!);
    }
    assert.deepEqual(stepNames(readSteps(stack.steps)), c.steps);
    if (c.breakFile !== "utmp") {
      assert.equal(who(stack.utmp).trim().split("\n").filter(Boolean).length, 0);
    }
    if (c.breakFile !== "wtmp") assert.equal(size(stack.wtmp), c.entriesLeft.wtmp);
  });
}

test(
  "an expired password is changed (PAM_CHANGE_EXPIRED_AUTHTOK) and the login goes on",
  { skip },
  async () => {
    await using stack = sessionStack({
      account: "account required pam_debug.so acct=new_authtok_reqd",
    });
    const session = await login(options(stack, { utmp: false }));
    await session.close();
    const steps = readSteps(stack.steps);
    const names = stepNames(steps);
    assert.deepEqual(names, [
      "authenticate",
      "acct_mgmt",
      "chauthtok",
      "chauthtok",
      "setcred(establish)",
      "open_session",
      "close_session",
      "setcred(delete)",
    ]);
    for (const s of steps.filter((s) => s.name === "chauthtok")) {
      assert.ok(s.flags & CHANGE_EXPIRED_AUTHTOK, `chauthtok flags ${s.flags}`);
    }
  },
);

test("silent: PAM_SILENT reaches every call and pam_echo stays quiet", { skip }, async () => {
  const echo = (type: string) => `${type} optional pam_echo.so ${type} says hello to %u`;
  const stage = {
    auth: echo("auth"),
    account: echo("account"),
    session: echo("session"),
    password: echo("password"),
  };
  const seen: PamMessage[] = [];
  const conversation: Conversation = (messages) => {
    seen.push(...messages);
    return messages.map(() => null);
  };
  {
    await using stack = sessionStack(stage);
    const session = await login(options(stack, { silent: true, conversation, utmp: false }));
    await session.close();
    const steps = readSteps(stack.steps);
    assert.equal(steps.length, 6);
    for (const s of steps) {
      assert.ok(s.flags & SILENT, `${s.name} flags ${s.flags} lack PAM_SILENT`);
    }
    assert.equal(seen.length, 0, "no message got through");
  }
  {
    // The same stack without silent does talk, so the quiet above means something.
    await using stack = sessionStack(stage);
    const session = await login(options(stack, { conversation, utmp: false }));
    await session.close();
    for (const s of readSteps(stack.steps)) assert.equal(s.flags & SILENT, 0);
    // pam_echo talks at authenticate, acct_mgmt and open_session (its close is a no-op).
    assert.deepEqual(seen.map((m) => m.text), [
      "auth says hello to alice",
      "account says hello to alice",
      "session says hello to alice",
    ]);
  }
});

test("bad options throw before any PAM call; unwritable files fail before PAM runs", {
  skip,
}, async () => {
  await using stack = sessionStack();
  await assert.rejects(login(undefined as unknown as LoginOptions), TypeError);
  await assert.rejects(login({ ...options(stack), service: 7 as unknown as string }), TypeError);
  await assert.rejects(login({ ...options(stack), tty: undefined }), /need a line: pass tty/);
  await assert.rejects(
    login({ ...options(stack), utmp: { line: "x".repeat(33) } }),
    (e) => e instanceof RangeError && /1 to 32 bytes/.test(e.message),
  );
  await assert.rejects(
    login({
      ...options(stack),
      utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, id: "12345" },
    }),
    /utmp\.id must be 1 to 4 bytes/,
  );
  await assert.rejects(
    login({ ...options(stack), utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, pid: -1 } }),
    RangeError,
  );
  await assert.rejects(
    login({
      ...options(stack),
      utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, pid: "1" as never },
    }),
    TypeError,
  );
  await assert.rejects(
    login({ ...options(stack), silent: "yes" as unknown as boolean }),
    TypeError,
  );
  await assert.rejects(
    login({
      ...options(stack),
      utmp: { utmpFile: join(stack.dir, "no", "utmp"), wtmpFile: stack.wtmp },
    }),
    /cannot write the utmp file .* utmp: false/,
  );
  await assert.rejects(closeSession({} as SessionRecord, { service: "app" }), TypeError);
  await assert.rejects(
    closeSession({ service: "app", user: "a", items: {}, pid: 1, loginTime: "", line: "x" }, {
      service: "app",
    }),
    /go together/,
  );
  assert.deepEqual(readSteps(stack.steps), []);
});

test(
  "an async conversation answers the password prompt (pam_matrix); a wrong one undoes nothing more",
  { skip: skip || (wrapperModule("pam_matrix") ? false : "needs libpam-wrapper (pam_matrix)") },
  async () => {
    await using stack = createTestStack({
      services: {
        app: [
          `auth     required ${steplog.path} log={{dir}}/steps`,
          "auth     required {{pam_matrix}} passdb={{passdb}}",
          "account  required {{pam_matrix}} passdb={{passdb}}",
          "session  required pam_permit.so",
          "",
        ].join("\n"),
      },
      users: { alice: "s3cret" },
    });
    const answer = (password: string): AsyncConversation => async (messages) => {
      await new Promise((r) => setTimeout(r, 5));
      return messages.map((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? password : null);
    };
    const base = { service: "app", user: "alice", confdir: stack.confdir, utmp: false as const };
    await assert.rejects(
      login({ ...base, conversation: answer("wrong") }),
      (e: unknown) => e instanceof PamError && e.code === ReturnCode.AUTH_ERR,
    );
    await using session = await login({ ...base, conversation: answer("s3cret") });
    assert.equal(session.user, "alice");
    assert.deepEqual(stepNames(readSteps(join(stack.dir, "steps"))), [
      "authenticate",
      "authenticate",
      "setcred(establish)",
    ]);
  },
);

test("a login's signal bounds the login, not the session: close() still closes after it fires", {
  skip,
}, async () => {
  await using stack = sessionStack();
  const controller = new AbortController();
  const session = await login(options(stack, { signal: controller.signal }));
  assert.match(who(stack.utmp), /alice/);
  controller.abort(new Error("the login's deadline passed"));
  await session.close();
  assert.deepEqual(stepNames(readSteps(stack.steps)).slice(-2), [
    "close_session",
    "setcred(delete)",
  ]);
  assert.equal(who(stack.utmp), "");
});

test("an abort once the session is open still undoes all of it", { skip }, async () => {
  await using stack = sessionStack({ session: "session  optional pam_echo.so opening" });
  const controller = new AbortController();
  const conversation: AsyncConversation = (messages) => {
    if (messages.some((m) => m.text === "opening")) controller.abort(new Error("stop"));
    return messages.map(() => null);
  };
  await assert.rejects(
    login(options(stack, { signal: controller.signal, conversation })),
    /stop/,
  );
  const steps = stepNames(readSteps(stack.steps));
  assert.ok(steps.includes("open_session"), steps.join(", "));
  assert.deepEqual(steps.slice(-2), ["close_session", "setcred(delete)"]);
  assert.equal(who(stack.utmp), "");
});

/** What closeSession needs to trust a record of `stack`: its own service, confdir and files. */
function closer(stack: ReturnType<typeof sessionStack>) {
  return {
    service: "app",
    confdir: stack.confdir,
    utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp },
  };
}

for (const inProcess of [false, true]) {
  const how = inProcess ? " (inProcess)" : "";
  test(`a record is data: it cannot choose the modules or the files closeSession uses${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    await using evil = sessionStack({ session: "session optional pam_exec.so {{dir}}/pwned.sh" });
    const pwned = join(evil.dir, "pwned");
    writeFileSync(join(evil.dir, "pwned.sh"), `#!/bin/sh\ntouch ${pwned}\n`);
    chmodSync(join(evil.dir, "pwned.sh"), 0o755);
    const session = await login(options(stack, { inProcess }));
    const record: SessionRecord = JSON.parse(JSON.stringify(session.record));
    const victim = join(stack.dir, "victim.txt");
    writeFileSync(victim, "x".repeat(960));
    const edited: SessionRecord[] = [
      { ...record, confdir: evil.confdir },
      { ...record, confdir: undefined },
      { ...record, wtmpFile: victim },
      { ...record, utmpFile: victim },
    ];
    for (const r of edited) {
      await assert.rejects(closeSession(r, { ...closer(stack), inProcess }), TypeError);
    }
    // Without options the closer's defaults (/etc/pam.d, the system files) decide: refused too.
    await assert.rejects(
      closeSession(record, { service: "app", inProcess }),
      /is not the one this closer/,
    );
    assert.equal(size(pwned), 0);
    assert.throws(() => statSync(pwned));
    assert.equal(readFileSync(victim, "utf8"), "x".repeat(960));
    assert.equal(size(stack.wtmp), 384);
    assert.match(who(stack.utmp), /alice/);
    assert.ok(!stepNames(readSteps(stack.steps)).includes("close_session"));
    // The closer's own choice, which the record agrees with, closes it.
    await closeSession(record, { ...closer(stack), inProcess });
    assert.equal(who(stack.utmp), "");
    assert.equal(size(stack.wtmp), 768);
    await session.close().catch(() => {});
  });

  test(`a record cannot choose the service: closeSession takes the closer's, required${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    // Another stack under the very confdir the closer trusts: a forged record's service would
    // otherwise pick it.
    const pwned = join(stack.dir, "pwned");
    writeFileSync(join(stack.dir, "pwned.sh"), `#!/bin/sh\ntouch ${pwned}\n`);
    chmodSync(join(stack.dir, "pwned.sh"), 0o755);
    writeFileSync(
      join(stack.confdir, "evil"),
      `session optional pam_exec.so ${stack.dir}/pwned.sh\nsession required pam_permit.so\n`,
    );
    const session = await login(options(stack, { inProcess }));
    const record: SessionRecord = JSON.parse(JSON.stringify(session.record));
    await assert.rejects(
      closeSession({ ...record, service: "evil" }, { ...closer(stack), inProcess }),
      (e: unknown) =>
        e instanceof TypeError &&
        /the record's service \("evil"\) is not the one this closer runs \("app"\): pass closeSession\(record, \{ service \}\)/
          .test(e.message),
    );
    const { service: _, ...withoutService } = closer(stack);
    await assert.rejects(
      closeSession(record, { ...withoutService, inProcess } as never),
      (e: unknown) => e instanceof TypeError && /options\.service is required/.test(e.message),
    );
    await assert.rejects(
      closeSession(record, { ...closer(stack), service: "", inProcess }),
      TypeError,
    );
    assert.throws(() => statSync(pwned), "the forged record's stack never ran");
    assert.match(who(stack.utmp), /alice/);
    assert.ok(!stepNames(readSteps(stack.steps)).includes("close_session"));
    await closeSession(record, { ...closer(stack), inProcess });
    assert.equal(who(stack.utmp), "");
    assert.deepEqual(stepNames(readSteps(stack.steps)).slice(-2), [
      "close_session",
      "setcred(delete)",
    ]);
    await session.close().catch(() => {});
  });

  test(`utmp/wtmp files must be regular utmp files: refused before anything is written${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    const fifo = join(stack.dir, "fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    const text = join(stack.dir, "notes.txt");
    writeFileSync(text, "y".repeat(960));
    const link = join(stack.dir, "link");
    symlinkSync(text, link);
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ utmpFile: fifo }, /utmp file .*: it is a FIFO/],
      [{ wtmpFile: fifo }, /wtmp file .*: it is a FIFO/],
      [{ utmpFile: "/dev/zero" }, /utmp file "\/dev\/zero": it is a character device/],
      [{ wtmpFile: "/dev/zero" }, /wtmp file "\/dev\/zero": it is a character device/],
      [{ wtmpFile: text }, /960 bytes\) is not a whole number of 384-byte/],
      [{ utmpFile: link }, /symbolic link \(not followed\)/],
      [{ wtmpFile: link }, /symbolic link \(not followed\)/],
    ];
    for (const [files, message] of bad) {
      const utmp = { utmpFile: stack.utmp, wtmpFile: stack.wtmp, ...files };
      await assert.rejects(login(options(stack, { utmp, inProcess })), message);
    }
    assert.deepEqual(readSteps(stack.steps), [], "PAM never ran");
    assert.equal(readFileSync(text, "utf8"), "y".repeat(960));
    assert.equal(size(stack.wtmp), 0);

    // A file broken after login: the close refuses to write it, and still closes PAM.
    const session = await login(options(stack, { inProcess }));
    const record: SessionRecord = JSON.parse(JSON.stringify(session.record));
    await session.detach();
    const saved = readFileSync(stack.wtmp);
    rmSync(stack.wtmp);
    symlinkSync(text, stack.wtmp);
    await assert.rejects(closeSession(record, { ...closer(stack), inProcess }), /symbolic link/);
    assert.equal(readFileSync(text, "utf8"), "y".repeat(960));
    assert.match(who(stack.utmp), /alice/, "the utmp entry is not cleared without its logout");
    rmSync(stack.wtmp);
    writeFileSync(stack.wtmp, saved);
  });

  test(`an old record never ends a newer login on the same line and pid${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    // Both logins claim one pid (utmp.pid), as a reused pid would.
    const utmp = { utmpFile: stack.utmp, wtmpFile: stack.wtmp, pid: 4242 };
    const old = await login(options(stack, { utmp, inProcess }));
    const oldRecord: SessionRecord = JSON.parse(JSON.stringify(old.record));
    await old.detach();
    await new Promise((r) => setTimeout(r, 5)); // another login time
    const newer = await login(options(stack, { utmp, inProcess }));
    assert.notEqual(newer.record.loginTime, oldRecord.loginTime);
    const wtmpBefore = size(stack.wtmp);
    await closeSession(oldRecord, { ...closer(stack), inProcess });
    assert.match(who(stack.utmp), /^alice\s+pts\/42\s/m, "the newer login's entry is still there");
    assert.equal(size(stack.wtmp), wtmpBefore, "no wtmp logout for an entry that was not ours");
    await newer.close();
    assert.equal(who(stack.utmp), "");
    assert.equal(size(stack.wtmp), wtmpBefore + 384);
  });

  test(`closeSession whose pam_start fails still writes the exit entries first${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    const session = await login(options(stack, { inProcess }));
    const record: SessionRecord = JSON.parse(JSON.stringify(session.record));
    await session.detach();
    rmSync(join(stack.confdir, "app")); // and there is no "other": pam_start fails
    const error = await closeSession(record, { ...closer(stack), inProcess }).then(
      () => assert.fail("closeSession resolved"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof PamError, String(error));
    assert.equal(error.code, ReturnCode.ABORT);
    assert.equal(who(stack.utmp), "");
    const wtmp = readUtmpxFile(readFileSync(stack.wtmp));
    assert.deepEqual(wtmp.map((e) => e.type), [UtmpType.USER_PROCESS, UtmpType.DEAD_PROCESS]);
  });

  test(`control characters that would reach utmp are TypeErrors before anything runs${how}`, {
    skip,
  }, async () => {
    await using stack = sessionStack();
    const forged = "x\npts/0    2026-01-01 00:00 (evil)";
    const cases: Partial<LoginOptions>[] = [
      { rhost: forged },
      { tty: "/dev/pts/1\r" },
      { ruser: "bob\x1b[2J" },
      { user: forged },
      { utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, host: "h\u009b1m" } },
      { utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, line: "pts/\n" } },
      { utmp: { utmpFile: stack.utmp, wtmpFile: stack.wtmp, id: "a\tb" } },
    ];
    for (const more of cases) {
      await assert.rejects(
        login(options(stack, { ...more, inProcess })),
        (e: unknown) => e instanceof TypeError && /control characters/.test(e.message),
        JSON.stringify(more),
      );
    }
    assert.deepEqual(readSteps(stack.steps), []);
    assert.equal(size(stack.utmp), 0);
    assert.equal(size(stack.wtmp), 0);
  });
}

/** A /proc file, read by cat: Deno wants --allow-all to read most of /proc itself. */
function procFile(path: string): string {
  return spawnSync("cat", [path], { encoding: "utf8" }).stdout ?? "";
}

/** The pid of `pid`'s parent, from /proc. */
function parentOf(pid: number): number {
  try {
    return Number(procFile(`/proc/${pid}/stat`).replace(/^.*\) /s, "").split(" ")[1]);
  } catch {
    return 0;
  }
}

for (const inProcess of [false, true]) {
  test(
    `a utmp file another writer holds locked never blocks the caller's event loop${
      inProcess ? " (inProcess)" : ""
    }`,
    { skip },
    async () => {
      // No step that reads utmp itself (who would wait for the lock too).
      await using stack = createTestStack({
        services: {
          app: ["auth", "account", "session"].map((t) => `${t} required pam_permit.so`).join("\n"),
        },
      });
      const files = { utmpFile: join(stack.dir, "utmp"), wtmpFile: join(stack.dir, "wtmp") };
      writeFileSync(files.utmpFile, "");
      // glibc's utmp calls wait for this fcntl lock (up to 10 s) before they write.
      const holder = spawn("python3", [
        "-c",
        "import fcntl, sys\nf = open(sys.argv[1], 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\n" +
        "print('locked', flush=True)\nsys.stdin.read()\n",
        files.utmpFile,
      ], { stdio: ["pipe", "pipe", "inherit"] });
      await new Promise((resolve) => holder.stdout!.once("data", resolve));
      using _ = { [Symbol.dispose]: () => holder.kill() };
      let settled = false;
      const pending = login({
        service: "app",
        user: "alice",
        confdir: stack.confdir,
        tty: "/dev/pts/42",
        utmp: files,
        inProcess,
      }).finally(() => settled = true);
      // Seeing the login's utmp call wait for the lock (in /proc/locks) takes this event loop's
      // turns: a blocked loop would see it only once the call gave up (glibc's 10 s), failed.
      const ino = statSync(files.utmpFile).ino;
      const ours = (pid: number) => pid === process.pid || parentOf(pid) === process.pid;
      const waiting = () =>
        procFile("/proc/locks").split("\n").some((line) => {
          const f = line.trim().split(/\s+/);
          return f[1] === "->" && line.includes(`:${ino} `) && ours(Number(f[5]));
        });
      while (!waiting() && !settled) await new Promise((r) => setTimeout(r, 5));
      assert.equal(settled, false, "the login finished while the lock was held");
      holder.stdin!.end(); // releases the lock: the login goes on
      const session = await pending;
      assert.match(who(files.utmpFile), /alice/);
      await session.close();
      assert.equal(who(files.utmpFile), "");
    },
  );
}

test(
  "conversationTimeoutMs: Infinity waits for ever in both backends, as for AsyncPamTransaction",
  {
    skip,
  },
  async () => {
    await using stack = sessionStack();
    for (const inProcess of [false, true]) {
      await using session = await login(
        options(stack, { utmp: false, inProcess, conversationTimeoutMs: Infinity }),
      );
      assert.equal(session.record.user, "alice");
    }
    await assert.rejects(
      login(options(stack, { utmp: false, conversationTimeoutMs: 0 })),
      RangeError,
    );
  },
);
