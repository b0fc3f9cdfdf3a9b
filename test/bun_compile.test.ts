// A program compiled with `bun build --compile` that uses the async API: the worker thread's
// entry is embedded as Bun documents for workers (a further entrypoint) and found from inside
// the executable; without it, the first async call says what to add instead of a missing module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const localBun = join(root, ".tools", "node_modules", ".bin", "bun");
const bun = "Bun" in globalThis ? process.execPath : existsSync(localBun) ? localBun : undefined;

const program = `
import { AsyncPamTransaction, authenticate, PamTransaction } from ${
  JSON.stringify(join(root, "mod.ts"))
};
import { createTestStack } from ${JSON.stringify(join(root, "src", "testing.ts"))};
await using stack = createTestStack({
  services: { app: "auth required pam_permit.so\\naccount required pam_permit.so\\n" },
});
const confdir = stack.confdir;
{
  using tx = PamTransaction.start({ service: "app", user: "alice", confdir });
  tx.authenticate();
}
try {
  const { user } = await authenticate({ service: "app", user: "alice", password: "pw", confdir });
  await using tx = await AsyncPamTransaction.start({ service: "app", user: user, confdir });
  await tx.authenticate();
  await tx.acctMgmt();
  console.log("ok " + (await tx.getItem("user")));
} catch (error) {
  console.log("error " + (error as Error).message);
}
`;

function compile(dir: string, name: string, entrypoints: string[]): string {
  const outfile = join(dir, name);
  const r = spawnSync(bun!, ["build", "--compile", ...entrypoints, "--outfile", outfile], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return outfile;
}

test("bun build --compile: authenticate() and AsyncPamTransaction run in the executable", {
  skip: bun ? false : "needs bun (npm install puts it in .tools/)",
}, () => {
  const dir = mkdtempSync(join(tmpdir(), "seed-pam-compile-"));
  try {
    const source = join(dir, "app.ts");
    writeFileSync(source, program);
    const app = compile(dir, "app", [source, join(root, "src", "async", "_worker.ts")]);
    const run = spawnSync(app, [], { encoding: "utf8", cwd: dir });
    assert.equal(run.stdout, "ok alice\n", run.stderr);
    assert.equal(run.status, 0, run.stderr);

    // Without the worker entry: the sync API still works, the async one says what to do.
    const bare = compile(dir, "bare", [source]);
    const missing = spawnSync(bare, [], { encoding: "utf8", cwd: dir });
    assert.equal(missing.status, 0, missing.stderr);
    assert.match(missing.stdout, /^error this program was compiled with `bun build --compile`/);
    assert.match(missing.stdout, /src\/async\/_worker\.js/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
