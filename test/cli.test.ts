// The CLI against the real pamtester: the same stack, arguments and input
// must give the same exit status and the same stdout and stderr, apart from
// the program name and pam_wrapper's log lines.
//
// pamtester reads /etc/pam.d; `LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
// PAM_WRAPPER_SERVICE_DIR=DIR` (Debian's libpam-wrapper) points its libpam at
// the same directory the CLI gets with --confdir. What does not work there:
// - pam_matrix crashes (SIGSEGV, exit 139, right after the password prompt)
//   on a password-file line without the third, service, field
//   ("alice:secret"): it strtok()s the service and uses the NULL.
//   createTestStack writes "user:password:service", which works.
// - A module given by name ("pam_matrix.so") is looked up in
//   /lib/security under the wrapper: give test modules by absolute path
//   ({{pam_matrix}} expands to one).
// - pam_matrix's chauthtok crashes the same way when the new passwords do
//   not match (under pamtester and pam_wrapper; not in the CLI, which
//   does not preload the wrapper), so that case is tested on the CLI alone.
// - pam_exec splits its command line on blanks and honours no quotes, so
//   `/bin/sh -c "..."` fails with "System error": password checks run a
//   script file instead.
// - libpam logs through syslog; the wrapper turns that into
//   "PWRAP_ERROR[...] - SYSLOG(3): ..." lines on stderr, sometimes in the
//   middle of a line (after a prompt). They are removed before comparing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createTestStack, type TestStack, wrapperModule } from "../src/testing.ts";
import { evaluateFlagExpression, FlagExpressionError } from "../src/cli/flag_expression.ts";
import { compileModule } from "./_modules.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "src", "cli", "mod.ts");
const isDeno = "Deno" in globalThis;
// The CLI needs nothing but FFI under Deno: run it exactly like that.
const cliCommand = isDeno ? [process.execPath, "run", "--allow-ffi", cli] : [process.execPath, cli];

const which = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
const havePamtester = which("pamtester");
const haveWrapper = wrapperModule("pam_matrix") !== undefined;
const havePython = which("python3");
const noWrapper = haveWrapper
  ? false
  : "libpam-wrapper is not installed (apt-get install libpam-wrapper)";
// A sloppy module: it takes no answer (NULL, what misc_conv answers at end of input) for the
// empty password and so authenticates on it. Neither a closed nor an empty stdin may let the CLI
// report that as a success.
const nullAnswer = compileModule(
  "null_answer",
  `#include <security/pam_modules.h>
#include <security/pam_ext.h>
#include <stdlib.h>
int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  char *answer = NULL;
  int status = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "Password: ");
  if (status != PAM_SUCCESS) return status;
  int empty = answer == NULL || answer[0] == '\\0';
  free(answer);
  return empty ? PAM_SUCCESS : PAM_AUTH_ERR;
}
int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  return PAM_SUCCESS;
}
`,
);
const nullAnswerModule = nullAnswer.path;
const skipNullAnswer = nullAnswer.why ?? false;
const skipParity = !havePamtester
  ? "pamtester is not installed (apt-get install pamtester)"
  : noWrapper;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("PAM_WRAPPER") && key !== "LD_PRELOAD") {
      env[key] = value;
    }
  }
  return env;
}

/** What the program gets on stdin: these bytes on a pipe, or `null` for no stdin at all (`<&-`). */
type Input = string | null;

/** Runs `command` with stdin a pipe holding `input`, or closed: `sh` execs it with `<&-`. */
function spawnWith(command: string[], input: Input, env: Record<string, string>): Run {
  const [file, ...args] = input === null
    ? ["sh", "-c", 'exec "$@" <&-', "sh", ...command]
    : command;
  const r = spawnSync(file, args, { input: input ?? "", encoding: "utf8", env });
  return { status: r.status ?? 128 + 11, stdout: r.stdout, stderr: r.stderr };
}

function runCli(args: string[], input: Input = "", confdir?: string): Run {
  return spawnWith(
    [...cliCommand, ...(confdir ? ["--confdir", confdir] : []), ...args],
    input,
    cleanEnv(),
  );
}

function runPamtester(args: string[], input: Input, confdir: string): Run {
  return spawnWith(["pamtester", ...args], input, {
    ...cleanEnv(),
    LD_PRELOAD: "libpam_wrapper.so",
    PAM_WRAPPER: "1",
    PAM_WRAPPER_SERVICE_DIR: confdir,
  });
}

function normalize(text: string, program: string): string {
  return text
    .replace(/PWRAP_[A-Z]+\[[^\]]*\] - [^\n]*\n/g, "")
    .replaceAll(`${program}: `, "PROG: ");
}

/**
 * The services every parity case can use; those built on libpam-wrapper's modules only when it is
 * installed (the tests that use them skip otherwise).
 */
function services(): Record<string, string> {
  const matrix = "required {{pam_matrix}} passdb={{passdb}}";
  const wrapped = {
    matrix:
      `auth ${matrix}\naccount ${matrix}\npassword ${matrix}\nsession required pam_permit.so\n`,
    chatty: "auth required {{pam_chatty}} num_lines=2 error\nauth required {{pam_chatty}} info\n" +
      "auth required pam_permit.so\n",
    // pam_permit asks for the user when there is none; pam_matrix never does.
    login: `auth required pam_permit.so\nauth ${matrix}\n`,
  };
  return {
    ...(haveWrapper ? wrapped : {}),
    permit: "auth required pam_permit.so\naccount required pam_permit.so\n" +
      "session required pam_permit.so\npassword required pam_permit.so\n",
    deny: "auth required pam_deny.so\naccount required pam_deny.so\n" +
      "session required pam_deny.so\npassword required pam_deny.so\n",
    debug: "auth requisite pam_debug.so auth=perm_denied\n" +
      "account required pam_debug.so acct=new_authtok_reqd\n" +
      "session required pam_debug.so open_session=session_err close_session=success\n" +
      "password required pam_debug.so prechauthtok=success chauthtok=authtok_err\n",
    cred: "auth required pam_debug.so auth=success cred=cred_err\n" +
      "account required pam_debug.so acct=acct_expired\n",
    exec: "auth required pam_exec.so expose_authtok quiet {{dir}}/check.sh\n" +
      "account required pam_permit.so\n",
    stress: "auth required pam_stress.so\naccount required pam_stress.so expired\n" +
      "password required pam_stress.so\nsession required pam_permit.so\n",
    echo: "auth optional pam_echo.so user=%u tty=%t rhost=%H ruser=%U service=%s\n" +
      "auth required pam_permit.so\naccount required pam_echo.so account for %u\n" +
      "session required pam_echo.so session\n",
    prompt: "auth required pam_echo.so before\nauth required pam_permit.so\n" +
      "auth required pam_echo.so after %u\n",
    env: "auth required pam_exec.so stdout quiet {{dir}}/env.sh\n",
    ...(nullAnswerModule
      ? {
        "null-answer": `auth required ${nullAnswerModule}\naccount required pam_permit.so\n`,
      }
      : {}),
  };
}

function stackFor(): TestStack {
  const stack = createTestStack({ services: services(), users: { alice: "secret" } });
  const script = (name: string, text: string) => {
    writeFileSync(join(stack.dir, name), text);
    chmodSync(join(stack.dir, name), 0o755);
  };
  // pam_exec hands the password on stdin, NUL-terminated.
  script("check.sh", '#!/bin/sh\nIFS= read -r p || true\n[ "$p" = secret ]\n');
  script("env.sh", '#!/bin/sh\necho "FOO=${FOO-unset} BAR=${BAR-unset} EMPTY=${EMPTY-unset}"\n');
  return stack;
}

/** Runs pamtester and the CLI on identical fresh stacks and compares. */
function parity(args: string[], input: Input = ""): { pamtester: Run; cli: Run } {
  // A fresh stack each, so that chauthtok on one does not change the other's password file.
  using theirs = stackFor();
  using ours = stackFor();
  const pamtester = runPamtester(args, input, theirs.confdir);
  const cli = runCli(args, input, ours.confdir);
  const context = `args: ${JSON.stringify(args)}\npamtester: ${JSON.stringify(pamtester)}\n` +
    `cli: ${JSON.stringify(cli)}`;
  assert.equal(cli.status, pamtester.status, `exit status\n${context}`);
  assert.equal(
    normalize(cli.stdout, "seed-pam"),
    normalize(pamtester.stdout, "pamtester"),
    `stdout\n${context}`,
  );
  assert.equal(
    normalize(cli.stderr, "seed-pam"),
    normalize(pamtester.stderr, "pamtester"),
    `stderr\n${context}`,
  );
  return { pamtester, cli };
}

/** [name, args, stdin, expected exit status]: each becomes a test comparing with pamtester. */
const cases: [string, string[], Input, number][] = [
  // Usage errors: exit(-1), before pam_start.
  ["only a service", ["permit"], "", 255],
  ["no operation", ["permit", "alice"], "", 255],
  ["a dangling -I asks for the service", ["-I"], "", 255],
  ["-v twice", ["-v", "-v", "permit", "alice", "authenticate"], "", 255],
  ["-v and --verbose", ["-v", "--verbose", "permit", "alice", "authenticate"], "", 255],
  ["-v2 then -v", ["-v2", "-v", "permit", "alice", "authenticate"], "", 255],
  // Every operation, verbose and not.
  [
    "permit: every operation",
    ["permit", "alice", "authenticate", "acct_mgmt", "setcred", "open_session", "close_session"],
    "",
    0,
  ],
  ["permit: chauthtok, verbose", ["-v", "permit", "alice", "chauthtok"], "", 0],
  ["--verbose", ["--verbose", "permit", "alice", "authenticate", "acct_mgmt"], "", 0],
  ["-v0 is not verbose", ["-v0", "permit", "alice", "authenticate"], "", 0],
  ["-v7 is verbose", ["-v7", "permit", "alice", "authenticate"], "", 0],
  ["operation names ignore case", ["permit", "alice", "AUTHENTICATE", "Acct_Mgmt"], "", 0],
  // Failures: pam_strerror's text, exit 1, nothing after the first failure.
  ["deny: authenticate", ["deny", "alice", "authenticate", "acct_mgmt"], "", 1],
  ["deny: acct_mgmt", ["-v", "deny", "alice", "acct_mgmt"], "", 1],
  ["deny: open_session", ["deny", "alice", "open_session"], "", 1],
  ["deny: chauthtok", ["deny", "alice", "chauthtok"], "", 1],
  ["pam_debug: perm_denied", ["debug", "alice", "authenticate"], "", 1],
  ["pam_debug: new_authtok_reqd", ["debug", "alice", "acct_mgmt"], "", 1],
  ["pam_debug: session_err", ["debug", "alice", "close_session", "open_session"], "", 1],
  ["pam_debug: authtok_err", ["debug", "alice", "chauthtok"], "", 1],
  ["pam_debug: cred_err", ["cred", "alice", "authenticate", "setcred"], "", 1],
  ["pam_debug: acct_expired", ["cred", "alice", "acct_mgmt"], "", 1],
  ["unknown service", ["no-such-service", "alice", "authenticate"], "", 1],
  // Unknown operations fail when reached, after the earlier ones ran.
  ["unknown operation", ["-v", "permit", "alice", "authenticate", "frob", "acct_mgmt"], "", 1],
  ["options after the operands are operations", ["permit", "alice", "-v"], "", 1],
  // Passwords from stdin, one line per prompt.
  ["pam_matrix: right password", ["matrix", "alice", "authenticate", "acct_mgmt"], "secret\n", 0],
  ["pam_matrix: wrong password", ["matrix", "alice", "authenticate"], "wrong\n", 1],
  ["pam_matrix: unknown user", ["matrix", "bob", "authenticate"], "secret\n", 1],
  ["pam_matrix: no newline", ["matrix", "alice", "authenticate"], "secret", 0],
  ["pam_matrix: end of input", ["matrix", "alice", "authenticate"], "", 1],
  // No stdin at all (<&-): the read fails, and so does the conversation (PAM_CONV_ERR).
  ["closed stdin: pam_matrix", ["matrix", "alice", "authenticate"], null, 1],
  ["closed stdin: pam_exec", ["exec", "alice", "authenticate", "acct_mgmt"], null, 1],
  ["closed stdin: chauthtok", ["matrix", "alice", "chauthtok"], null, 1],
  ["closed stdin: the user prompt", ["-I", "user", "login", "alice", "authenticate"], null, 1],
  ["closed stdin: no prompt, no failure", ["echo", "alice", "authenticate", "acct_mgmt"], null, 0],
  [
    "pam_matrix: chauthtok then authenticate with the new password",
    ["matrix", "alice", "chauthtok", "authenticate"],
    "secret\nnew\nnew\nnew\n",
    0,
  ],
  ["pam_exec: right password", ["exec", "alice", "authenticate", "acct_mgmt"], "secret\n", 0],
  ["pam_exec: wrong password", ["exec", "alice", "authenticate"], "secret2\n", 1],
  ["pam_exec: CRLF is not a newline", ["exec", "alice", "authenticate"], "secret\r\n", 1],
  // An expired token: acct_mgmt asks for a new one, chauthtok changes it.
  ["pam_stress: expired", ["stress", "alice", "authenticate", "acct_mgmt"], "pw\n", 1],
  [
    "pam_stress: chauthtok",
    ["stress", "alice", "authenticate", "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)", "chauthtok"],
    "pw\nnew\nnew\n",
    0,
  ],
  ["pam_stress: retyped wrong", ["stress", "alice", "chauthtok"], "new\nold\n", 1],
  // Module messages: info on stdout, errors on stderr.
  ["pam_echo messages", ["echo", "alice", "authenticate", "acct_mgmt", "open_session"], "", 0],
  ["pam_chatty info and errors", ["chatty", "alice", "authenticate"], "", 0],
  // Items, including unsetting one, case-insensitive names and unknown ones.
  [
    "items",
    [
      "-I",
      "tty=/dev/pts/9",
      "-Irhost=203.0.113.7",
      "--item",
      "RUSER=bob",
      "echo",
      "alice",
      "authenticate",
    ],
    "",
    0,
  ],
  ["-I user=... replaces the user", ["-I", "user=carol", "echo", "alice", "authenticate"], "", 0],
  [
    "-I user unsets it: the module prompts",
    ["-I", "user", "echo", "alice", "authenticate"],
    "dave\n",
    0,
  ],
  [
    "-I prompt=... is the user prompt",
    ["-I", "user", "-I", "prompt=Who are you? ", "prompt", "alice", "authenticate"],
    "erin\n",
    0,
  ],
  ["the user prompt at end of input", ["-I", "user", "prompt", "alice", "authenticate"], "", 1],
  ["unknown item", ["-I", "tty=x", "-I", "colour=red", "permit", "alice", "authenticate"], "", 1],
  [
    "-I service=... switches service",
    ["-I", "service=deny", "permit", "alice", "authenticate"],
    "",
    1,
  ],
  // The PAM environment reaches pam_exec's child.
  [
    "env",
    [
      "-E",
      "FOO=hello",
      "-E",
      "EMPTY=",
      "--env",
      "BAR=x",
      "-E",
      "BAR",
      "env",
      "alice",
      "authenticate",
    ],
    "",
    0,
  ],
  ["env: deleting an unset variable", ["-E", "NOPE", "env", "alice", "authenticate"], "", 1],
  ["env: empty entry", ["-E", "", "env", "alice", "authenticate"], "", 1],
  ["env: no name", ["-E", "=x", "env", "alice", "authenticate"], "", 1],
  // Flags: names, prefixes, numbers, operators, and pamtester's errors.
  ["PAM_SILENT silences pam_echo", ["echo", "alice", "authenticate(PAM_SILENT)"], "", 0],
  ["a flag prefix, any case", ["echo", "alice", "authenticate(pam_s)"], "", 0],
  ["flags as a number", ["echo", "alice", "authenticate( 32768 )"], "", 0],
  [
    "flags combined",
    ["echo", "alice", "authenticate(PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)"],
    "",
    0,
  ],
  ["~ and &", ["echo", "alice", "authenticate(~PAM_SILENT&PAM_SILENT)"], "", 0],
  ["^", ["echo", "alice", "authenticate(PAM_SILENT^PAM_SILENT)"], "", 0],
  ["empty flags", ["echo", "alice", "authenticate()", "acct_mgmt( )"], "", 0],
  ["undefined constant", ["-v", "echo", "alice", "authenticate", "acct_mgmt(PAM_NOPE)"], "", 1],
  ["PAM_DELETE_CRED is not known", ["permit", "alice", "setcred(PAM_DELETE_CRED)"], "", 1],
  ["unexpected operator", ["permit", "alice", "authenticate(|PAM_SILENT)"], "", 1],
  ["unexpected operand", ["permit", "alice", "authenticate(1 2)"], "", 1],
  ["doubled operator", ["permit", "alice", "authenticate(1||2)"], "", 1],
  ["libpam rejects chauthtok's private flags", ["permit", "alice", "chauthtok(16384)"], "", 1],
  ["setcred flags", ["cred", "alice", "setcred(PAM_REFRESH_CRED|PAM_SILENT)"], "", 1],
];

for (const [name, args, input, status] of cases) {
  test(`pamtester parity: ${name}`, { skip: skipParity }, () => {
    const { cli } = parity(args, input);
    assert.equal(cli.status, status, "expected exit status");
  });
}

test("pamtester parity: closed stdin fails the conversation of a module that takes NULL for ''", {
  skip: skipParity || skipNullAnswer,
}, () => {
  // Before the fix the runtime's stand-in /dev/null gave end of input: a NULL answer, a success.
  const { cli } = parity(["null-answer", "alice", "authenticate"], null);
  assert.equal(cli.status, 1);
  assert.equal(cli.stderr, "Password: seed-pam: Conversation error\n");
  assert.equal(cli.stdout, "");
});

test("an empty stdin authenticates no one, where pamtester lets the module decide", {
  skip: skipNullAnswer,
}, () => {
  using stack = stackFor();
  const args = ["null-answer", "alice", "authenticate", "acct_mgmt"];
  if (!skipParity) {
    // The module takes misc_conv's NULL for the empty password: pamtester reports a success.
    const pamtester = runPamtester(["null-answer", "alice", "authenticate"], "", stack.confdir);
    assert.equal(pamtester.status, 0);
  }
  for (const input of ["", null]) {
    const run = runCli(args, input, stack.confdir);
    assert.equal(run.status, 1, JSON.stringify(input));
    assert.doesNotMatch(run.stdout, /successfully/);
  }
  const empty = runCli(args, "", stack.confdir);
  assert.equal(empty.stderr, "Password: seed-pam: No answer at a prompt (end of input)\n");
  const json = runCli(["--json", ...args], "", stack.confdir);
  assert.equal(json.status, 1);
  assert.deepEqual(JSON.parse(json.stdout), {
    operation: "authenticate",
    ok: false,
    flags: 0,
    endOfInput: true,
    error: "No answer at a prompt (end of input)",
  });
  // An empty line is an answer (the empty password), as in pamtester: the module decides.
  const line = runCli(args, "\n", stack.confdir);
  assert.equal(line.status, 0, line.stderr);
  assert.equal(
    line.stdout,
    "seed-pam: successfully authenticated\nseed-pam: account management done.\n",
  );
});

test("differs from pamtester on purpose: stdin read-write on /dev/null counts as closed", {
  skip: skipParity,
}, () => {
  // The runtimes cannot tell `<>/dev/null` from the /dev/null they open for a closed stdin.
  using stack = stackFor();
  const args = ["exec", "alice", "authenticate"];
  const command = [...cliCommand, "--confdir", stack.confdir, ...args];
  const r = spawnSync("sh", ["-c", 'exec "$@" <>/dev/null', "sh", ...command], {
    encoding: "utf8",
    env: cleanEnv(),
  });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, "Password: seed-pam: Conversation error\n");
  // Read-only, it is end of input, as for pamtester.
  const readOnly = spawnSync("sh", ["-c", 'exec "$@" </dev/null', "sh", ...command], {
    encoding: "utf8",
    env: cleanEnv(),
  });
  assert.equal(readOnly.status, 1);
  assert.equal(readOnly.stderr, "Password: seed-pam: System error\n");
});

test("pamtester parity: no arguments prints the usage line", { skip: skipParity }, () => {
  using stack = stackFor();
  const pamtester = runPamtester([], "", stack.confdir);
  const cli = runCli([]);
  assert.equal(pamtester.status, 255);
  assert.equal(cli.status, 255);
  assert.equal(
    normalize(cli.stderr, "seed-pam").replace("seed-pam", "PROG"),
    normalize(pamtester.stderr, "pamtester").replace("pamtester", "PROG"),
  );
});

test("differs from pamtester on purpose: malformed operations end with a newline", {
  skip: skipParity,
}, () => {
  for (const spec of ["authenticate(PAM_SILENT", "(PAM_SILENT)"]) {
    using stack = stackFor();
    const pamtester = runPamtester(["permit", "alice", spec], "", stack.confdir);
    const cli = runCli(["permit", "alice", spec], "", stack.confdir);
    assert.equal(cli.status, 255);
    assert.equal(pamtester.status, 255);
    assert.equal(pamtester.stderr, `pamtester: incorrect op_name spec "${spec}".`);
    assert.equal(cli.stderr, `seed-pam: incorrect op_name spec "${spec}".\n`);
  }
});

test("differs from pamtester on purpose: unknown options are usage errors", () => {
  // pamtester builds the same message and then ignores it (and the option).
  using stack = stackFor();
  for (const option of ["-x", "--frob", "--toString", "--constructor", "--__proto__"]) {
    const cli = runCli([option, "permit", "alice", "authenticate"], "", stack.confdir);
    assert.equal(cli.status, 255);
    assert.equal(cli.stderr, `seed-pam: Unknown option "${option}"\n`);
  }
  const value = runCli(["--json=yes", "permit", "alice", "authenticate"], "", stack.confdir);
  assert.equal(value.status, 255);
  assert.equal(value.stderr, 'seed-pam: Option "--json" takes no value\n');
  // pamtester ignores --item=VALUE as an unknown option; here it sets the item.
  const item = runCli(["--item=tty=pts/4", "echo", "alice", "authenticate"], "", stack.confdir);
  assert.equal(item.status, 0, item.stderr);
  assert.match(item.stdout, /tty=pts\/4 /);
});

test("differs from pamtester on purpose: -I service without a value is refused, not a crash", {
  skip: skipParity,
}, () => {
  using stack = stackFor();
  const pamtester = runPamtester(
    ["-I", "service", "permit", "alice", "authenticate"],
    "",
    stack.confdir,
  );
  assert.equal(pamtester.status, 128 + 11, "pamtester segfaults in libpam");
  const cli = runCli(["-I", "service", "permit", "alice", "authenticate"], "", stack.confdir);
  assert.equal(cli.status, 1);
  assert.equal(cli.stderr, "seed-pam: the service item cannot be unset\n");
});

test("pam_matrix: mistyped new passwords fail the change (pamtester crashes here)", {
  skip: noWrapper,
}, () => {
  using stack = stackFor();
  const run = runCli(["matrix", "alice", "chauthtok"], "secret\na\nb\n", stack.confdir);
  assert.equal(run.status, 1);
  assert.equal(
    run.stderr,
    "Old password: New Password :Verify New Password :Passwords do not match\n" +
      "seed-pam: Authentication service cannot retrieve authentication info\n",
  );
  assert.equal(readFileSync(stack.passdb("matrix"), "utf8"), "alice:secret:matrix\n");
});

test("--confdir: without it the CLI reads /etc/pam.d like pamtester", () => {
  using stack = stackFor();
  const withDir = runCli(["permit", "alice", "authenticate"], "", stack.confdir);
  assert.equal(withDir.status, 0, withDir.stderr);
  assert.equal(withDir.stdout, "seed-pam: successfully authenticated\n");
  // No /etc/pam.d/seed-pam-test-... service: libpam falls back to "other" and fails or asks.
  const without = runCli(["seed-pam-no-such-service", "alice", "authenticate"], "");
  assert.notEqual(without.status, 0);
  const twice = runCli(["--confdir", "/a", "permit", "alice", "authenticate"], "", stack.confdir);
  assert.equal(twice.status, 255);
  assert.match(twice.stderr, /Option "confdir" may not be specified twice or more/);
});

test("--json: one object per operation on stdout, human errors still on stderr", {
  skip: noWrapper,
}, () => {
  using stack = stackFor();
  const ok = runCli(
    ["--json", "echo", "alice", "authenticate(PAM_SILENT)", "acct_mgmt", "open_session"],
    "",
    stack.confdir,
  );
  assert.equal(ok.status, 0, ok.stderr);
  const lines = ok.stdout.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines, [
    { operation: "authenticate", ok: true, flags: 0x8000, code: 0, codeName: "PAM_SUCCESS" },
    {
      operation: "acct_mgmt",
      ok: true,
      flags: 0,
      code: 0,
      codeName: "PAM_SUCCESS",
      messages: [{ style: 4, styleName: "PAM_TEXT_INFO", text: "account for alice" }],
    },
    {
      operation: "open_session",
      ok: true,
      flags: 0,
      code: 0,
      codeName: "PAM_SUCCESS",
      messages: [{ style: 4, styleName: "PAM_TEXT_INFO", text: "session" }],
    },
  ]);
  // Info messages move to stderr so that stdout stays JSON.
  assert.equal(ok.stderr, "account for alice\nsession\n");

  const failed = runCli(
    ["--json", "matrix", "alice", "authenticate", "acct_mgmt"],
    "wrong\n",
    stack.confdir,
  );
  assert.equal(failed.status, 1);
  assert.deepEqual(JSON.parse(failed.stdout), {
    operation: "authenticate",
    ok: false,
    flags: 0,
    code: 7,
    codeName: "PAM_AUTH_ERR",
    error: "Authentication failure",
  });
  assert.equal(failed.stderr, "Password: seed-pam: Authentication failure\n");
  assert.doesNotMatch(failed.stdout + failed.stderr, /wrong/);

  const unknown = runCli(["--json", "permit", "alice", "frob"], "", stack.confdir);
  assert.equal(unknown.status, 1);
  assert.deepEqual(JSON.parse(unknown.stdout), {
    operation: "frob",
    ok: false,
    error: 'Unsupported operation "frob"',
  });
  const start = runCli(["--json", "nope", "alice", "authenticate"], "", stack.confdir);
  assert.equal(start.status, 1);
  assert.equal(JSON.parse(start.stdout).operation, "start");
  assert.equal(JSON.parse(start.stdout).error, "Initialization failure");
});

test("--help and --version", () => {
  const help = runCli(["--help"]);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage: seed-pam \[options\] service user operation/);
  assert.match(help.stdout, /--confdir DIR/);
  assert.equal(runCli(["-h", "permit"]).status, 0);
  const version = runCli(["--version"]);
  assert.equal(version.status, 0);
  const { version: expected } = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
  assert.equal(version.stdout, `seed-pam ${expected} (@seed/pam, pamtester 0.1.2 compatible)\n`);
});

test("a password never shows up in the output", { skip: noWrapper }, () => {
  using stack = stackFor();
  for (const input of ["secret\n", "hunter2-wrong\n"]) {
    const run = runCli(["-v", "--json", "matrix", "alice", "authenticate"], input, stack.confdir);
    assert.doesNotMatch(run.stdout + run.stderr, /secret|hunter2/);
  }
});

// pamtester's flag expressions, evaluated the way it does (checked against
// pamtester's parser; the parity cases above show libpam receives them).
test("flag expressions: values, prefixes and pamtester's precedence", () => {
  const cases: [string, number | undefined][] = [
    ["", undefined],
    ["  \t ", undefined],
    ["PAM_SILENT", 0x8000],
    ["pam_silent", 0x8000],
    ["pam", 0x8000],
    ["PAM_D", 0x0001],
    ["PAM_RE", 0x0008], // PAM_REINITIALIZE_CRED comes before PAM_REFRESH_CRED
    ["PAM_REF", 0x0010],
    ["PAM_C", 0x0020],
    ["PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK", 0x8001],
    [" PAM_SILENT  |\tPAM_ESTABLISH_CRED ", 0x8002],
    ["~PAM_SILENT", ~0x8000],
    ["~~1", ~1],
    ["42", 42],
    ["+7", 7],
    ["-1", -1],
    ["4294967297", 1], // a long stored in an int
    ["1|", 1],
    ["1~2", 1],
    ["~", 0],
    ["6&3|8", 10],
    ["8|6&3", 10], // | then & : & reduces nothing, the end folds right to left
    ["1|2&3", 3], // 1 | (2 & 3)
    ["12^10&6", 14], // 12 ^ (10 & 6) = 12 ^ 2
    ["12&10^6", 14], // (12 & 10) ^ 6 = 8 ^ 6
    ["1^2|4", 7],
    ["1|2^3", 1 | (2 ^ 3)],
  ];
  for (const [text, expected] of cases) {
    assert.equal(evaluateFlagExpression(text), expected, JSON.stringify(text));
  }
  const errors: [string, string][] = [
    ["PAM_NOPE", 'undefined constant "PAM_NOPE"'],
    ["PAM_SILENTX", 'undefined constant "PAM_SILENTX"'],
    ["PAM_DELETE_CRED", 'undefined constant "PAM_DELETE_CRED"'],
    ["5abc", 'undefined constant "5abc"'],
    ["99999999999999999999", 'undefined constant "99999999999999999999"'],
    ["|1", 'unexpected token "|"'],
    ["1 2", 'unexpected token "2"'],
    ["1||2", 'unexpected token "|"'],
    ["1 &", "ok"],
    ["1|&", 'unexpected token "&"'],
  ];
  for (const [text, message] of errors) {
    if (message === "ok") {
      assert.equal(evaluateFlagExpression(text), 1);
      continue;
    }
    assert.throws(() => evaluateFlagExpression(text), (error: unknown) => {
      assert.ok(error instanceof FlagExpressionError, text);
      assert.ok(error instanceof SyntaxError, text);
      assert.equal(error.message, message, text);
      return true;
    });
  }
});

// The terminal: a real pseudo-terminal, driven by test/_pty.py.
interface PtyResult {
  output: string;
  status: number;
  echo: boolean[];
  echoAfter: boolean | null;
  error?: string;
}

function onPty(script: ({ expect: string } | { send: string })[], command: string[]): PtyResult {
  const r = spawnSync(
    "python3",
    [join(root, "test", "_pty.py"), JSON.stringify(script), ...command],
    { encoding: "utf8", env: cleanEnv() },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const result = JSON.parse(r.stdout) as PtyResult;
  assert.equal(result.error, undefined, result.output);
  return result;
}

const skipPty = havePython ? false : "python3 is not installed (drives the pseudo-terminal)";

test(
  "terminal: the password is read with echo off, then echo is back on",
  { skip: skipPty || noWrapper },
  () => {
    using stack = stackFor();
    const command = [...cliCommand, "--confdir", stack.confdir, "matrix", "alice", "authenticate"];
    const run = onPty([{ expect: "Password: " }, { send: "secret\r" }], command);
    assert.equal(run.status, 0, run.output);
    assert.deepEqual(run.echo, [false]);
    assert.equal(run.echoAfter, true);
    assert.equal(run.output, "Password: \r\nseed-pam: successfully authenticated\r\n");
  },
);

test("terminal: the same screen as pamtester's", { skip: skipPty || skipParity }, () => {
  for (const input of ["secret\r", "wrong\r"]) {
    using theirs = stackFor();
    using ours = stackFor();
    const script = [{ expect: "Password: " }, { send: input }];
    const pamtester = onPty(script, [
      "env",
      "LD_PRELOAD=libpam_wrapper.so",
      "PAM_WRAPPER=1",
      `PAM_WRAPPER_SERVICE_DIR=${theirs.confdir}`,
      "pamtester",
      "matrix",
      "alice",
      "authenticate",
    ]);
    const cli = onPty(script, [
      ...cliCommand,
      "--confdir",
      ours.confdir,
      "matrix",
      "alice",
      "authenticate",
    ]);
    assert.equal(cli.status, pamtester.status);
    assert.deepEqual(cli.echo, pamtester.echo);
    const clean = (text: string) => text.replace(/PWRAP_[A-Z]+\[[^\]]*\] - [^\n]*\n/g, "");
    assert.equal(
      clean(cli.output).replaceAll("seed-pam: ", "PROG: "),
      clean(pamtester.output).replaceAll("pamtester: ", "PROG: "),
    );
  }
});

test("terminal: echo-on prompts echo, and line editing works at echo-off prompts", {
  skip: skipPty || noWrapper,
}, () => {
  using stack = stackFor();
  const command = [
    ...cliCommand,
    "--confdir",
    stack.confdir,
    "-I",
    "user",
    "login",
    "ignored",
    "authenticate",
  ];
  // Backspace (DEL), ^U (kill the line) and ^W (erase a word) at the password prompt.
  const run = onPty([
    { expect: "login:" },
    { send: "alice\r" },
    { expect: "Password: " },
    { send: "garbage\x15two words\x17\x17secx\x7fret\r" },
  ], command);
  assert.equal(run.status, 0, run.output);
  assert.deepEqual(run.echo, [true, false]);
  assert.equal(run.echoAfter, true);
  assert.equal(
    run.output,
    "login:alice\r\nPassword: \r\nseed-pam: successfully authenticated\r\n",
  );
});

test(
  "terminal: Ctrl-C at the password prompt restores echo and exits 130",
  { skip: skipPty || noWrapper },
  () => {
    using stack = stackFor();
    const command = [...cliCommand, "--confdir", stack.confdir, "matrix", "alice", "authenticate"];
    const run = onPty([{ expect: "Password: " }, { send: "sec" }, { send: "\x03" }], command);
    assert.equal(run.status, 130);
    assert.equal(run.echoAfter, true, "echo must be restored");
    assert.equal(run.output, "Password: \r\n");
    // pamtester (misc_conv) dies of the SIGINT with echo still off; this is the difference.
  },
);

test("terminal: Ctrl-D at an empty password prompt answers NULL", { skip: skipPty }, () => {
  using stack = stackFor();
  const command = [...cliCommand, "--confdir", stack.confdir, "exec", "alice", "authenticate"];
  const run = onPty([{ expect: "Password: " }, { send: "\x04" }], command);
  assert.equal(run.echoAfter, true);
  assert.notEqual(run.status, 0);
  assert.match(run.output, /^Password: \r\nseed-pam: /);
});
