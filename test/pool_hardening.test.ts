// The async pool under the failures a reviewer found: threads that never start, a thread that
// cannot be created, answered conversations and the run bound, transactions that hold every
// thread, a conversation nobody answers, a lease released twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  AsyncPamTransaction,
  authenticate,
  type PamAnswer,
  PamError,
  setWorkerPoolSize,
  workerPoolStats,
} from "../mod.ts";
import {
  _setWorkerEntryForTests,
  acquireWorker,
  releaseWorker,
  terminateAllWorkers,
} from "../src/async/_pool.ts";
import { checkStartOptions, workerStart } from "../src/async/_start.ts";
import type { PamWorker } from "../src/async/_worker_client.ts";
import { createTestStack } from "../src/testing.ts";
import {
  assertOneShotGetsThrough,
  matrix,
  noMatrix,
  rejection,
  SECRET,
  until,
  within,
} from "./_helpers.ts";

const permitAll = "auth required pam_permit.so\naccount required pam_permit.so\n";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const never = () => new Promise<PamAnswer[]>(() => {});

/** Every message and stack along an error's cause chain, to look for a secret in. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 10; depth++) {
    parts.push(String(e), e instanceof Error ? String(e.stack) : "");
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join("\n");
}

/** Points the pool at `entry` with no thread left to serve from; always restores the real one. */
async function withEntry(entry: URL | string, body: () => Promise<void>): Promise<void> {
  terminateAllWorkers();
  _setWorkerEntryForTests(entry);
  try {
    await body();
  } finally {
    _setWorkerEntryForTests(undefined);
  }
}

/** The error of a one-shot (given SECRET) on the permit stack that must fail, or hangs. */
function failingCheck(confdir: string, what: string): Promise<unknown> {
  return within(
    rejection(authenticate({ service: "ok", user: "u", password: SECRET, confdir })),
    30_000,
    what,
  );
}

/** A one-shot on the permit stack succeeds (the real entry is back). */
async function servedAgain(confdir: string): Promise<void> {
  assert.deepEqual(
    await within(
      authenticate({ service: "ok", user: "u", password: "p", confdir }),
      10_000,
      "a one-shot once the entry is back",
    ),
    { user: "u" },
  );
}

test("threads that die before they run: three in a row fail the callers, then no respawn", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  const dir = mkdtempSync(join(tmpdir(), "seed-pam-entry-"));
  try {
    const entry = join(dir, "throws_at_import.mjs");
    writeFileSync(entry, 'throw new Error("this worker entry cannot start");\n');
    await withEntry(pathToFileURL(entry), async () => {
      const before = workerPoolStats().started;
      const error = await failingCheck(stack.confdir, "a one-shot while threads die at import");
      assert.ok(error instanceof Error, String(error));
      assert.match(error.message, /PAM worker threads die before they start/);
      assert.ok(error.cause instanceof Error, "the last death is the cause");
      assert.match(error.cause.message, /worker thread died/);
      assert.match(error.cause.message, /this worker entry cannot start/);
      assert.ok(!errorText(error).includes(SECRET), "no secret in the error");
      assert.equal(workerPoolStats().started - before, 3);
      // Nobody asks now: no thread is started again.
      await sleep(300);
      const stats = workerPoolStats();
      assert.equal(stats.started - before, 3, "no respawn without a caller");
      assert.equal(stats.workers, 0);
      assert.equal(stats.queued, 0);
      assert.equal(stats.busy, 0);
      // A new caller tries again, with one thread, and fails the same way.
      const again = await within(
        rejection(AsyncPamTransaction.start({ service: "ok", confdir: stack.confdir })),
        30_000,
        "a transaction after the first failure",
      );
      assert.ok(again instanceof Error);
      assert.match(again.message, /die before they start/);
      assert.equal(workerPoolStats().started - before, 4);
    });
    // The real entry: the pool serves again.
    await servedAgain(stack.confdir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a thread that cannot be created fails the call waiting for it and strands nothing", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  // Both runtimes' Worker constructors throw for a string that is not a path.
  await withEntry("not-a-path", async () => {
    const error = await failingCheck(stack.confdir, "a one-shot whose thread cannot be created");
    assert.ok(error instanceof Error, String(error));
    assert.match(error.message, /absolute path/);
    assert.ok(!errorText(error).includes(SECRET), "no secret in the error");
    const stats = workerPoolStats();
    assert.equal(stats.queued, 0, "the caller is not left in the queue");
    assert.equal(stats.busy, 0, "no run slot is left taken");
    assert.equal(stats.held, 0);
  });
  await servedAgain(stack.confdir);
  const stats = workerPoolStats();
  assert.equal(stats.busy, 0);
  assert.equal(stats.held, 0, "no thread was lent to a caller that had given up");
});

test("an answered conversation waits for a run slot: busy never exceeds size", {
  skip: noMatrix,
}, async () => {
  await using stack = createTestStack({
    services: {
      web: matrix,
      slow: "auth required pam_exec.so {{dir}}/wait.sh\naccount required pam_permit.so\n",
    },
    users: { alice: "secret" },
  });
  // A one-shot that stays at libpam work (pam_exec's child) until the test lets it go.
  const go = join(stack.dir, "go");
  writeFileSync(
    join(stack.dir, "wait.sh"),
    // Also gives up once the stack is gone or after 30 s: a test process that dies must not
    // leave it looping.
    `#!/bin/sh\ni=0\nwhile [ ! -e '${go}' ] && [ -d '${stack.dir}' ] && [ $i -lt 1500 ]; do ` +
      `sleep 0.02; i=$((i + 1)); done\n`,
  );
  chmodSync(join(stack.dir, "wait.sh"), 0o755);
  setWorkerPoolSize(1, { maxThreads: 4 });
  let most = 0;
  const sample = setInterval(() => (most = Math.max(most, workerPoolStats().busy)), 1);
  try {
    let answer!: (answers: PamAnswer[]) => void;
    let asked!: () => void;
    const prompted = new Promise<void>((resolve) => (asked = resolve));
    await using tx = await AsyncPamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation: () => {
        asked();
        return new Promise<PamAnswer[]>((resolve) => (answer = resolve));
      },
    });
    let authenticated = false;
    const auth = tx.authenticate().then(() => (authenticated = true));
    await prompted;
    await until(() => workerPoolStats().busy === 0, "the prompt gave its slot back");
    const slow = authenticate({
      service: "slow",
      user: "u",
      password: "p",
      confdir: stack.confdir,
    });
    await until(() => workerPoolStats().busy === 1, "the slow one-shot at work");
    answer(["secret"]);
    assert.ok(workerPoolStats().busy <= 1, `busy ${workerPoolStats().busy} right after the answer`);
    await sleep(100);
    assert.ok(workerPoolStats().busy <= 1, `busy ${workerPoolStats().busy} with size 1`);
    assert.equal(authenticated, false, "the answered call waits for the slot");
    writeFileSync(go, "");
    assert.deepEqual(await within(slow, 10_000, "the slow one-shot"), { user: "u" });
    await within(auth, 10_000, "the answered call, once the slot is free");
    assert.equal(authenticated, true);
  } finally {
    clearInterval(sample);
    writeFileSync(go, "");
    setWorkerPoolSize(4);
  }
  assert.ok(most <= 1, `busy reached ${most} with size 1`);
});

test("a pool whose maxThreads is its size reserves half: transactions still run side by side", {
  skip: noMatrix,
}, async () => {
  await using stack = createTestStack({ services: { web: matrix }, users: { alice: "secret" } });
  // As setWorkerPoolSize(64) leaves it: maxThreads defaults to the size.
  setWorkerPoolSize(4, { maxThreads: 4 });
  const held: AsyncPamTransaction[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      held.push(
        await within(
          AsyncPamTransaction.start({ service: "web", user: "alice", confdir: stack.confdir }),
          10_000,
          `transaction ${i + 1} of 2 open together`,
        ),
      );
    }
    await assertOneShotGetsThrough(stack.confdir, "a one-shot beside them");
  } finally {
    await Promise.all(held.map((tx) => tx.end()));
    setWorkerPoolSize(4);
  }
});

test("transactions leave size threads to one-shots; a start past their share waits", {
  skip: noMatrix,
}, async () => {
  await using stack = createTestStack({ services: { web: matrix }, users: { alice: "secret" } });
  setWorkerPoolSize(2, { maxThreads: 6 });
  const start = (signal?: AbortSignal) =>
    AsyncPamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation: never, // a person who never answers
      ...(signal ? { signal } : {}),
    });
  const held: AsyncPamTransaction[] = [];
  const prompts: Promise<unknown>[] = [];
  const later: Promise<AsyncPamTransaction>[] = [];
  try {
    // The share: maxThreads - size = 4 transactions, each waiting at a prompt (the reserve,
    // size 2, is at most half of maxThreads).
    for (let i = 0; i < 4; i++) {
      const tx = await within(start(), 10_000, `transaction ${i + 1} of the share`);
      held.push(tx);
      prompts.push(rejection(tx.authenticate()));
    }
    await until(
      () => workerPoolStats().held === 4 && workerPoolStats().busy === 0,
      "four prompts waiting",
    );
    // A fifth and sixth wait for the share, not for a thread (before the fix they took two more
    // threads and left one-shots none).
    let fifthStarted = false;
    const fifth = start().then((tx) => ((fifthStarted = true), tx));
    const abort = new AbortController();
    const sixth = rejection(start(abort.signal));
    later.push(fifth);
    await until(() => workerPoolStats().queued === 2, "two transactions past their share queued");
    // One-shots pass them by, on the threads kept for them.
    const checks = await within(
      Promise.all(
        Array.from(
          { length: 4 },
          () =>
            authenticate({
              service: "web",
              user: "alice",
              password: "secret",
              confdir: stack.confdir,
            }),
        ),
      ),
      20_000,
      "one-shots beside a full share of waiting transactions",
    );
    assert.deepEqual(checks, Array(4).fill({ user: "alice" }));
    assert.equal(fifthStarted, false, "the fifth transaction still waits");
    assert.equal(workerPoolStats().queued, 2);
    assert.ok(workerPoolStats().workers <= 6);
    // Its signal aborts the wait.
    abort.abort(new Error("gave up waiting"));
    const aborted = await sixth;
    assert.ok(aborted instanceof Error && aborted.message === "gave up waiting");
    assert.equal(workerPoolStats().queued, 1);
    // One held transaction ends: the fifth gets its thread.
    await held.shift()!.end();
    const tx = await within(fifth, 10_000, "the fifth transaction once one ended");
    held.push(tx);
    assert.equal(await tx.getItem("user"), "alice");
  } finally {
    for (const tx of held) await tx.end();
    for (const error of await Promise.all(prompts)) assert.ok(error instanceof PamError);
    setWorkerPoolSize(4);
  }
  assert.equal(workerPoolStats().held, 0);
});

test("conversationTimeoutMs: 5 minutes unless told, Infinity for none", {
  skip: noMatrix,
}, async () => {
  // What the worker receives as its deadline.
  const worker = (o: Record<string, unknown>) =>
    workerStart(checkStartOptions({ service: "web", ...o } as never, "options"))
      .conversationTimeoutMs;
  assert.equal(worker({}), 300_000);
  assert.equal(worker({ conversationTimeoutMs: undefined }), 300_000);
  assert.equal(worker({ conversationTimeoutMs: 1500 }), 1500);
  assert.equal(worker({ conversationTimeoutMs: Infinity }), undefined);
  for (const bad of [0, -1, NaN, -Infinity, 2 ** 31]) {
    assert.throws(() => worker({ conversationTimeoutMs: bad }), RangeError, String(bad));
  }
  assert.throws(() => worker({ conversationTimeoutMs: "5" }), TypeError);

  await using stack = createTestStack({ services: { web: matrix }, users: { alice: "secret" } });
  // The main thread's timer for a prompt of a transaction started without the option.
  const delays: unknown[] = [];
  const realSetTimeout = globalThis.setTimeout;
  let asked!: () => void;
  const prompted = new Promise<void>((resolve) => (asked = resolve));
  const tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => (asked(), never()),
  });
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms);
    return realSetTimeout(fn, ms);
  }) as typeof setTimeout;
  let prompt: Promise<unknown>;
  try {
    prompt = rejection(tx.authenticate());
    await prompted;
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  assert.ok(delays.includes(300_000), `timers set: ${delays.join(", ")}`);
  await tx.end();
  assert.ok((await prompt) instanceof PamError);

  // Infinity is taken (it used to be a RangeError) and sets no deadline.
  const forever = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => ["secret"],
    conversationTimeoutMs: Infinity,
  });
  await forever.authenticate();
  await forever.end();
  assert.deepEqual(
    await authenticate({
      service: "web",
      user: "alice",
      password: "secret",
      confdir: stack.confdir,
      conversationTimeoutMs: Infinity,
    }),
    { user: "alice" },
  );
});

/** Sends a request that needs no transaction: it gives back the run slot its lease came with. */
async function useSlot(worker: PamWorker): Promise<void> {
  const outcome = await worker.request({ op: "call", method: "getItem", args: ["user"] });
  assert.equal(outcome.ok, false);
}

test("a lease is released once: a second release, or a stale one, is a no-op", async () => {
  const first = await acquireWorker();
  await useSlot(first);
  const lease = first.lease;
  releaseWorker(first, lease);
  releaseWorker(first, lease); // a one-shot's last reply, then its finally
  assert.equal(workerPoolStats().held, 0, "the thread is idle once");
  const a = await acquireWorker();
  await useSlot(a);
  const b = await acquireWorker();
  await useSlot(b);
  try {
    assert.notEqual(a, b, "one idle thread is lent to one holder");
    assert.equal(workerPoolStats().held, 2);
    // The first holder's lease is over: it cannot give back its thread's next holder's.
    releaseWorker(first, lease);
    assert.equal(workerPoolStats().held, 2);
  } finally {
    releaseWorker(a, a.lease);
    releaseWorker(b, b.lease);
  }
  assert.equal(workerPoolStats().held, 0);
});

test("end() sends the flags it checked: a getter that changes its answer cannot break the thread", {
  skip: noMatrix,
}, async () => {
  await using stack = createTestStack({ services: { web: matrix }, users: { alice: "secret" } });
  setWorkerPoolSize(1, { maxThreads: 2 });
  try {
    const open = () =>
      within(
        AsyncPamTransaction.start({ service: "web", user: "alice", confdir: stack.confdir }),
        10_000,
        "a start on the pool's thread",
      );
    const tx = await open();
    let reads = 0;
    await tx.end({
      get silent() {
        reads++;
        return (reads === 1 ? true : "not a boolean") as boolean;
      },
    });
    assert.equal(reads, 1, "the option is read once");
    assert.equal(workerPoolStats().held, 0);
    // Every thread the pool has can start a transaction again.
    for (let i = 0; i < 3; i++) await (await open()).end();
  } finally {
    setWorkerPoolSize(4);
  }
});
