// The demo is the README's first command: keep it working on both runtimes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const isDeno = "Deno" in globalThis;

test("the demo rejects the wrong password and runs a whole session", () => {
  const args = isDeno
    ? ["run", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", "examples/demo.ts"]
    : ["examples/demo.ts"];
  const run = spawnSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /PamError PAM_AUTH_ERR/);
  assert.match(run.stdout, /-> authenticated/);
  assert.match(run.stdout, /DEMO_USER.*demo/);
  assert.match(run.stdout, /session closed/);
  assert.doesNotMatch(run.stdout + run.stderr, /correct horse/);
});
