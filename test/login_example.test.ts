// examples/login.ts is the man page's flow as runnable code: keep it working on both runtimes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const isDeno = "Deno" in globalThis;
// The example's stack takes any account of this machine: log in as the one running the tests.
const me = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim();

function runExample(input: string, args: string[] = []) {
  const cmd = isDeno
    ? ["run", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", "--allow-run"]
    : [];
  return spawnSync(process.execPath, [...cmd, "examples/login.ts", ...args], {
    cwd: root,
    input,
    encoding: "utf8",
  });
}

test("the login example authenticates, runs the command in the session and logs out", () => {
  const run = runExample(`${me}\ncorrect horse\n`, [
    "--",
    "sh",
    "-c",
    'echo "in session: $DEMO_USER as $(id -un)"; exit 3',
  ]);
  assert.equal(run.status, 3, run.stdout + run.stderr);
  const out = run.stdout;
  assert.match(out, /^login: $/m);
  assert.match(out, /^Password: $/m);
  assert.match(out, new RegExp(`Welcome, ${me}, on example\\.`));
  assert.match(out, new RegExp(`Logged in as ${me} on example\\.`));
  assert.match(out, new RegExp(`who .*utmp:\\n\\s+${me}\\s+example\\s`));
  assert.match(out, new RegExp(`in session: ${me} as ${me}`));
  assert.match(out, /The command exited with 3; logging out/);
  assert.match(out, /after logout: \(nobody\)/);
  assert.match(
    out,
    new RegExp(`^${me}\\s+example\\s.*\\d\\d:\\d\\d - \\d\\d:\\d\\d\\s+\\(00:00\\)`, "m"),
  );
  assert.doesNotMatch(out + run.stderr, /correct horse/);
});

test("the login example refuses a wrong password and writes no entries", () => {
  const run = runExample("wrong\n", ["--user", me]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /Login incorrect \(PAM_AUTH_ERR\)/);
  assert.doesNotMatch(run.stdout, /Logged in/);
  assert.doesNotMatch(run.stdout, new RegExp(`^${me}\\s+example`, "m"));
});

test("--pty: the session's own pseudo-terminal is PAM_TTY, who's line and the command's tty", () => {
  const run = runExample(`correct horse\n`, ["--user", me, "--pty", "--", "sh", "-c", "tty"]);
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const out = run.stdout;
  const line = out.match(/Logged in as \S+ on (pts\/\d+)\./)?.[1];
  assert.ok(line, out);
  assert.match(out, new RegExp(`Welcome, ${me}, on /dev/${line}\\.`));
  assert.match(out, new RegExp(`who .*utmp:\\n\\s+${me}\\s+${line}\\s`));
  assert.match(out, new RegExp(`^/dev/${line}\\r?$`, "m"));
  assert.match(out, /after logout: \(nobody\)/);
  assert.match(out, new RegExp(`^${me}\\s+${line}\\s.*\\(00:00\\)`, "m"));
});
