// keepModulesLoaded(): a service's modules stay mapped between transactions, on the calling
// thread and on the async API's workers, until release(); bad options are TypeErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { authenticate, keepModulesLoaded, PamTransaction } from "../mod.ts";
import { createTestStack, type TestStack } from "../src/testing.ts";

const permit = [
  "/usr/lib/x86_64-linux-gnu/security/pam_permit.so",
  "/lib/x86_64-linux-gnu/security/pam_permit.so",
  "/usr/lib64/security/pam_permit.so",
  "/lib/security/pam_permit.so",
].find(existsSync);
const skip = permit ? false : "pam_permit.so not found";

/**
 * A stack whose only module is a copy of pam_permit under a name of its own, so that
 * /proc/self/maps tells whether this test's module is loaded, whatever other tests did.
 */
function keptStack(): TestStack & { module: string; mapped(): boolean } {
  const stack = createTestStack({
    services: {
      kept: "auth required {{dir}}/pam_kept.so\naccount required {{dir}}/pam_kept.so\n",
    },
  });
  const module = join(stack.dir, "pam_kept.so");
  copyFileSync(permit!, module);
  // Read by a child: Deno lets a script read its own /proc/self/maps only with --allow-all.
  const mapped = () => spawnSync("grep", ["-qF", module, `/proc/${process.pid}/maps`]).status === 0;
  return Object.assign(stack, { module, mapped });
}

test("keepModulesLoaded: the modules stay mapped between transactions until release()", {
  skip,
}, () => {
  using stack = keptStack();
  const run = () => {
    using tx = PamTransaction.start({ service: "kept", user: "alice", confdir: stack.confdir });
    tx.authenticate();
    tx.acctMgmt();
  };
  run();
  assert.equal(stack.mapped(), false, "pam_end unloads the modules");
  const modules = keepModulesLoaded({ service: "kept", confdir: stack.confdir });
  assert.equal(modules.released, false);
  assert.equal(stack.mapped(), true);
  run();
  run();
  assert.equal(stack.mapped(), true, "still mapped after the transactions ended");
  modules.release();
  assert.equal(modules.released, true);
  assert.equal(stack.mapped(), false, "release() lets them go");
  modules.release();
  run();
  assert.equal(stack.mapped(), false);
});

test("keepModulesLoaded: the async API's worker threads share the loaded modules", {
  skip,
}, async () => {
  using stack = keptStack();
  const check = () =>
    authenticate({ service: "kept", user: "alice", password: "unused", confdir: stack.confdir });
  {
    using _modules = keepModulesLoaded({ service: "kept", confdir: stack.confdir });
    assert.deepEqual(await check(), { user: "alice" });
    assert.equal(stack.mapped(), true);
  }
  await check();
  assert.equal(stack.mapped(), false);
});

test("keepModulesLoaded: bad options are TypeErrors before any C call", () => {
  assert.throws(() => keepModulesLoaded(undefined as never), TypeError);
  assert.throws(() => keepModulesLoaded(null as never), TypeError);
  assert.throws(() => keepModulesLoaded({ service: 7 as unknown as string }), TypeError);
  assert.throws(() => keepModulesLoaded({ service: "a\0b" }), TypeError);
  assert.throws(() => keepModulesLoaded({ service: "login", confdir: 5 as never }), TypeError);
});
