// keepModulesLoaded(): a service's modules stay mapped between transactions, on the calling
// thread and on the async API's workers, until release(); bad options are TypeErrors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  AsyncPamTransaction,
  authenticate,
  keepModulesLoaded,
  PamError,
  PamTransaction,
  setModuleIdleWindow,
} from "../mod.ts";
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
  // Without the async API's own idle window, so that only keepModulesLoaded() holds them.
  setModuleIdleWindow(0);
  try {
    const check = () =>
      authenticate({ service: "kept", user: "alice", password: "unused", confdir: stack.confdir });
    {
      using _modules = keepModulesLoaded({ service: "kept", confdir: stack.confdir });
      assert.deepEqual(await check(), { user: "alice" });
      assert.equal(stack.mapped(), true);
    }
    await check();
    assert.equal(stack.mapped(), false);
  } finally {
    setModuleIdleWindow(1000);
  }
});

test("keepModulesLoaded: bad options are TypeErrors before any C call", () => {
  assert.throws(() => keepModulesLoaded(undefined as never), TypeError);
  assert.throws(() => keepModulesLoaded(null as never), TypeError);
  assert.throws(() => keepModulesLoaded({ service: 7 as unknown as string }), TypeError);
  assert.throws(() => keepModulesLoaded({ service: "a\0b" }), TypeError);
  assert.throws(() => keepModulesLoaded({ service: "login", confdir: 5 as never }), TypeError);
});

const noGcc = spawnSync("gcc", ["--version"]).status === 0 ? false : "gcc is not installed";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A stack whose one module is built here, in two versions: version 1 lets everyone in,
 * version 2 refuses everyone. `install(v)` replaces the file on disk the way a package
 * upgrade does (a new file renamed over the old one; the loaded copy stays mapped).
 */
function versionedStack(): TestStack & { install(version: 1 | 2): void } {
  const stack = createTestStack({
    services: {
      versioned: "auth required {{dir}}/pam_versioned.so\naccount required pam_permit.so\n",
    },
  });
  const source = join(stack.dir, "versioned.c");
  writeFileSync(
    source,
    `#include <security/pam_modules.h>
int pam_sm_authenticate(pam_handle_t *h, int flags, int argc, const char **argv) {
  return VERSION == 1 ? PAM_SUCCESS : PAM_AUTH_ERR;
}
int pam_sm_setcred(pam_handle_t *h, int flags, int argc, const char **argv) { return PAM_SUCCESS; }
`,
  );
  for (const version of [1, 2]) {
    const built = spawnSync("gcc", [
      "-shared",
      "-fPIC",
      `-DVERSION=${version}`,
      "-o",
      join(stack.dir, `v${version}.so`),
      source,
    ]);
    assert.equal(built.status, 0, String(built.stderr));
  }
  const install = (version: 1 | 2) => {
    const next = join(stack.dir, "pam_versioned.so.new");
    copyFileSync(join(stack.dir, `v${version}.so`), next);
    renameSync(next, join(stack.dir, "pam_versioned.so"));
  };
  install(1);
  return Object.assign(stack, { install });
}

/** What version 1 or 2 of the module says: the user is let in, or refused. */
async function verdict(confdir: string): Promise<"in" | "refused"> {
  try {
    await authenticate({ service: "versioned", user: "u", password: "p", confdir });
    return "in";
  } catch (error) {
    assert.ok(error instanceof PamError);
    assert.equal(error.codeName, "PAM_AUTH_ERR");
    return "refused";
  }
}

test("the async API keeps a busy service's modules loaded, and lets go after its idle window", {
  skip: skip || noGcc,
}, async () => {
  using stack = versionedStack();
  try {
    assert.equal(await verdict(stack.confdir), "in");
    // Upgraded on disk while the service is busy: the loaded version still runs.
    const tx = await AsyncPamTransaction.start({ service: "versioned", confdir: stack.confdir });
    stack.install(2);
    assert.equal(await verdict(stack.confdir), "in", "still version 1 while a transaction lives");
    await tx.end();
    // No transaction left, but within the idle window (1 s): still loaded.
    assert.equal(await verdict(stack.confdir), "in", "still version 1 within the idle window");
    // Idle for longer than the window: the next transaction loads the new file.
    await sleep(1300);
    assert.equal(await verdict(stack.confdir), "refused", "version 2 after the idle window");
    // Turned off: every transaction on its own loads what is on disk.
    setModuleIdleWindow(0);
    stack.install(1);
    assert.equal(await verdict(stack.confdir), "in");
    stack.install(2);
    assert.equal(await verdict(stack.confdir), "refused");
  } finally {
    setModuleIdleWindow(1000);
  }
});

test(
  "the idle window: kept across calls, and a shorter window set meanwhile takes effect at once",
  {
    skip: skip || noGcc,
  },
  async () => {
    using stack = versionedStack();
    try {
      setModuleIdleWindow(60_000);
      assert.equal(await verdict(stack.confdir), "in");
      stack.install(2);
      // Calls inside the window keep version 1 loaded, one after another.
      for (let i = 0; i < 3; i++) assert.equal(await verdict(stack.confdir), "in");
      // Idle since the last call; the window shrinks to 100 ms: not a minute later.
      setModuleIdleWindow(100);
      await sleep(400);
      assert.equal(await verdict(stack.confdir), "refused", "version 2 once the new window passed");
    } finally {
      setModuleIdleWindow(1000);
    }
  },
);

test("setModuleIdleWindow: a window out of range is a RangeError, a non-number a TypeError", () => {
  assert.throws(() => setModuleIdleWindow(-1), RangeError);
  assert.throws(() => setModuleIdleWindow(NaN), RangeError);
  assert.throws(() => setModuleIdleWindow(2 ** 31), RangeError);
  assert.throws(() => setModuleIdleWindow("1000" as never), TypeError);
});
