// AsyncPamTransaction and authenticate(): libpam on pooled worker threads,
// conversations answered on the main thread, the event loop never blocked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AsyncConversation,
  AsyncPamTransaction,
  authenticate,
  MAX_ANSWER_BYTES,
  MessageStyle,
  type PamAnswer,
  PamError,
  type PamMessage,
  PamTransaction,
  passwordConversation,
  ReturnCode,
  setWorkerPoolSize,
  workerPoolStats,
} from "../mod.ts";
import { transactionMethods } from "../src/async/_methods.ts";
import { acquireWorker, releaseWorker, terminateAllWorkers } from "../src/async/_pool.ts";
import { createTestStack } from "../src/testing.ts";
import { hostileModule } from "./_hostile_module.ts";
import {
  assertOneShotGetsThrough,
  matrix,
  noMatrix,
  rejection,
  until,
  within,
} from "./_helpers.ts";

const isDeno = "Deno" in globalThis;

function matrixStack(extra: Record<string, string> = {}) {
  return createTestStack({
    services: { web: matrix, ...extra },
    users: { alice: "secret", bob: { password: "hunter2", service: "web" } },
  });
}

const permitAll = "auth required pam_permit.so\naccount required pam_permit.so\n";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `body`; if it fails, terminates the worker threads before rethrowing, so that a
 * worker that missed its wake-up cannot hang the test's cleanup (`end()` would wait for it).
 */
async function failingCleanly(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    terminateAllWorkers();
    throw error;
  }
}

test("authenticate() resolves { user } for the right password", { skip: noMatrix }, async () => {
  await using stack = matrixStack();
  const result = await authenticate({
    service: "web",
    user: "alice",
    password: "secret",
    confdir: stack.confdir,
    rhost: "203.0.113.7",
    tty: "web",
  });
  assert.deepEqual(result, { user: "alice" });
});

test("authenticate() rejects with PamError for a wrong password, never leaking it", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const error = await rejection(
    authenticate({ service: "web", user: "alice", password: "wrong-pw-x", confdir: stack.confdir }),
  );
  assert.ok(error instanceof PamError);
  assert.equal(error.code, ReturnCode.AUTH_ERR);
  assert.equal(error.codeName, "PAM_AUTH_ERR");
  assert.equal(error.operation, "pam_authenticate");
  assert.match(error.message, /pam_authenticate failed: .*\(PAM_AUTH_ERR\)/);
  assert.doesNotMatch(JSON.stringify(error) + error.message + error.stack, /wrong-pw-x/);
});

test("authenticate() runs account management too", async () => {
  await using stack = createTestStack({
    services: {
      acct: "auth required pam_permit.so\naccount required pam_debug.so acct=acct_expired\n",
    },
  });
  const error = await rejection(
    authenticate({ service: "acct", user: "carol", password: "x", confdir: stack.confdir }),
  );
  assert.ok(error instanceof PamError);
  assert.equal(error.codeName, "PAM_ACCT_EXPIRED");
  assert.equal(error.operation, "pam_acct_mgmt");
});

test("bad input is a TypeError or RangeError before any thread is involved", async () => {
  const before = workerPoolStats().started;
  const bad: unknown[] = [
    undefined,
    { service: "web", user: "a\0b", password: "x" },
    { service: 5, user: "alice", password: "x" },
    { service: "web", user: "alice", password: 5 },
    { service: "web", user: "alice", password: "a\0" },
    { service: "web", user: "alice", password: "x", rhost: "h\0" },
    { service: "web", user: "alice", password: "x", failDelay: "sometimes" },
    { service: "web", user: "alice", password: "x", signal: "no" },
  ];
  for (const options of bad) {
    const error = await rejection(authenticate(options as never));
    assert.ok(error instanceof TypeError, `${JSON.stringify(options)}: ${error}`);
  }
  for (const ms of [-1, 0, NaN, 2 ** 31]) {
    const options = { service: "web", user: "alice", password: "x", conversationTimeoutMs: ms };
    const error = await rejection(authenticate(options));
    assert.ok(error instanceof RangeError, `${ms}: ${error}`);
  }
  for (
    const options of [
      { service: "a\0" },
      { service: "web", conversation: "no" },
      { service: "web", conversationTimeoutMs: "5" },
    ]
  ) {
    const error = await rejection(AsyncPamTransaction.start(options as never));
    assert.ok(error instanceof TypeError);
  }
  assert.equal(workerPoolStats().started, before);
});

test("method arguments are checked on the main thread", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  await using tx = await AsyncPamTransaction.start({
    service: "ok",
    user: "u",
    confdir: stack.confdir,
  });
  await assert.rejects(tx.authenticate({ quiet: true } as never), TypeError);
  await assert.rejects(tx.setCred("grant" as never), TypeError);
  await assert.rejects(tx.getItem("nope" as never), TypeError);
  await assert.rejects(tx.setItem("rhost", "a\0b"), TypeError);
  await assert.rejects(tx.putEnv("=x"), TypeError);
  await assert.rejects(tx.setXAuthData({ name: "x", data: "no" } as never), TypeError);
  await tx.authenticate(); // still usable
});

test("every method works through the worker", async () => {
  await using stack = createTestStack({
    services: {
      all: [
        "auth required pam_permit.so",
        "account required pam_permit.so",
        "session required pam_permit.so",
        "password required pam_permit.so",
        "",
      ].join("\n"),
    },
  });
  const tx = await AsyncPamTransaction.start({
    service: "all",
    user: "dave",
    confdir: stack.confdir,
  });
  await tx.authenticate({ silent: true });
  await tx.acctMgmt({ disallowNullAuthtok: true });
  await tx.setCred("establish");
  await tx.chauthtok({ changeExpiredAuthtok: false });
  await tx.openSession();
  await tx.setItem("rhost", "198.51.100.1");
  assert.equal(await tx.getItem("rhost"), "198.51.100.1");
  assert.equal(await tx.getItem("user"), "dave");
  assert.equal(await tx.getItem("service"), "all");
  assert.equal(await tx.getItem("tty"), undefined);
  const data = new Uint8Array([1, 2, 3, 0, 4]);
  await tx.setXAuthData({ name: "MIT-MAGIC-COOKIE-1", data });
  assert.deepEqual(data, new Uint8Array([1, 2, 3, 0, 4]), "the caller's copy is the caller's");
  const xauth = await tx.getXAuthData();
  assert.equal(xauth?.name, "MIT-MAGIC-COOKIE-1");
  assert.deepEqual(xauth?.data, new Uint8Array([1, 2, 3, 0, 4]));
  await tx.putEnv("LANG=C.UTF-8");
  await tx.putEnv("EMPTY=");
  assert.equal(await tx.getEnv("LANG"), "C.UTF-8");
  assert.equal(await tx.getEnv("NOPE"), undefined);
  assert.deepEqual({ ...(await tx.getEnvList()) }, { LANG: "C.UTF-8", EMPTY: "" });
  await tx.closeSession();
  await tx.setCred("delete");
  assert.equal(tx.ended, false);
  await tx.end();
  assert.equal(tx.ended, true);
  await tx.end(); // idempotent
  await tx[Symbol.asyncDispose]();
  await assert.rejects(tx.authenticate(), /has ended/);
});

test("calls issued together run in order on the one thread", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  await using tx = await AsyncPamTransaction.start({
    service: "ok",
    user: "u",
    confdir: stack.confdir,
  });
  const results = await Promise.all([
    tx.putEnv("A=1"),
    tx.getEnv("A"),
    tx.putEnv("A=2"),
    tx.getEnv("A"),
    tx.putEnv("A"),
    tx.getEnv("A"),
  ]);
  assert.deepEqual(results, [undefined, "1", undefined, "2", undefined, undefined]);
});

test("requests and replies travel through the shared buffer whatever their size", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  await using tx = await AsyncPamTransaction.start({
    service: "ok",
    user: "u",
    confdir: stack.confdir,
  });
  // Past the 64 KiB answer area, and text that looks like the buffer's own JSON tags.
  const big = "x".repeat(300_000);
  const tricky = '\\u0000bytes {"\\u0000undefined":1} é';
  await tx.putEnv(`BIG=${big}`);
  await tx.putEnv(`TRICKY=${tricky}`);
  assert.equal(await tx.getEnv("BIG"), big);
  assert.deepEqual({ ...(await tx.getEnvList()) }, { BIG: big, TRICKY: tricky });
  // A request that does not fit fails alone, before reaching the thread...
  await assert.rejects(tx.putEnv(`HUGE=${"y".repeat(2_000_000)}`), RangeError);
  // ...and so does a reply that does not fit; the transaction goes on.
  await tx.putEnv(`BIG2=${big}`);
  await tx.putEnv(`BIG3=${big}`);
  await tx.putEnv(`BIG4=${big}`);
  await assert.rejects(tx.getEnvList(), RangeError);
  await tx.putEnv("BIG2");
  await tx.putEnv("BIG3");
  await tx.putEnv("BIG4");
  assert.deepEqual(Object.keys(await tx.getEnvList()), ["BIG", "TRICKY"]);
});

test("an async handler that answers after a timer", { skip: noMatrix }, async () => {
  await using stack = matrixStack();
  let asked: readonly PamMessage[] = [];
  const conversation: AsyncConversation = async (messages) => {
    asked = messages;
    await sleep(50);
    return messages.map((m) => (m.style === MessageStyle.PROMPT_ECHO_OFF ? "secret" : null));
  };
  await using tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation,
  });
  const started = performance.now();
  await tx.authenticate();
  assert.ok(performance.now() - started >= 45);
  await tx.acctMgmt();
  assert.equal(asked.length, 1);
  assert.equal(asked[0].style, MessageStyle.PROMPT_ECHO_OFF);

  // A wrong late answer is still just wrong.
  await using tx2 = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: async (messages) => {
      await sleep(20);
      return messages.map(() => "nope");
    },
  });
  const error = await rejection(tx2.authenticate());
  assert.ok(error instanceof PamError);
  assert.equal(error.code, ReturnCode.AUTH_ERR);
});

test("a handler that never answers: abort fails the call, the transaction still ends", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const controller = new AbortController();
  const tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => new Promise<PamAnswer[]>(() => {}),
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(), 100);
  const started = performance.now();
  const error = await rejection(tx.authenticate());
  assert.ok(performance.now() - started < 5000);
  assert.ok(error instanceof PamError, String(error));
  assert.notEqual(error.code, ReturnCode.SUCCESS);
  assert.equal(error.cause, controller.signal.reason, "cause is the abort reason itself");
  // Aborted: later calls refuse, but end() still works and frees the thread.
  assert.equal(await rejection(tx.getItem("user")), controller.signal.reason);
  await tx.end();
  assert.equal(tx.ended, true);
});

test("an aborted signal rejects start() and queued one-shots without a thread", async () => {
  const before = workerPoolStats().started;
  const reason = new Error("gone");
  const error = await rejection(
    AsyncPamTransaction.start({ service: "x", signal: AbortSignal.abort(reason) }),
  );
  assert.equal(error, reason);
  const error2 = await rejection(
    authenticate({ service: "x", user: "u", password: "p", signal: AbortSignal.abort(reason) }),
  );
  assert.equal(error2, reason);
  assert.equal(workerPoolStats().started, before);
});

test("a handler that never answers: conversationTimeoutMs fails the call", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  await using tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => new Promise<PamAnswer[]>(() => {}),
    conversationTimeoutMs: 100,
  });
  const started = performance.now();
  const error = await rejection(tx.authenticate());
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 90 && elapsed < 5000, `took ${elapsed} ms`);
  assert.ok(error instanceof PamError);
  assert.ok(error.cause instanceof Error);
  assert.equal(error.cause.name, "TimeoutError");
  assert.match(error.cause.message, /100 ms/);
  // The transaction is still usable (and endable) after a timed-out prompt.
  assert.equal(await tx.getItem("user"), "alice");
});

test("a handler that rejects or throws: PamError with that very object as cause", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const boom = new RangeError("handler failed");
  const handlers: AsyncConversation[] = [
    () => Promise.reject(boom),
    async () => {
      await sleep(10);
      throw boom;
    },
    () => {
      throw boom;
    },
  ];
  for (const conversation of handlers) {
    await using tx = await AsyncPamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation,
    });
    const error = await rejection(tx.authenticate());
    assert.ok(error instanceof PamError);
    assert.notEqual(error.code, ReturnCode.SUCCESS);
    assert.equal(error.cause, boom);
  }
});

test("wrong answers (count, type, NUL) fail the call with a TypeError cause", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const wrong: AsyncConversation[] = [
    () => [],
    (m) => Promise.resolve([...m.map(() => "secret"), "extra"]),
    () => [42 as never],
    () => Promise.resolve(["sec\0ret"]),
    () => "secret" as never,
  ];
  for (const conversation of wrong) {
    await using tx = await AsyncPamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation,
    });
    const error = await rejection(tx.authenticate());
    assert.ok(error instanceof PamError, String(error));
    assert.ok(error.cause instanceof TypeError, String(error.cause));
  }
});

test("no conversation: a prompt fails the call in the worker, info messages pass", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack({
    echo: "auth optional pam_echo.so hello from echo\nauth required pam_permit.so\n",
  });
  await using quiet = await AsyncPamTransaction.start({
    service: "echo",
    user: "u",
    confdir: stack.confdir,
  });
  await quiet.authenticate();
  await using prompted = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
  });
  const error = await rejection(prompted.authenticate());
  assert.ok(error instanceof PamError);
  assert.ok(error.cause instanceof TypeError);
  assert.match(error.cause.message, /no conversation/);
  // With a handler, info messages reach it (and the PamError's messages on failure).
  const seen: PamMessage[] = [];
  await using told = await AsyncPamTransaction.start({
    service: "echo",
    user: "u",
    confdir: stack.confdir,
    conversation: (messages) => {
      seen.push(...messages);
      return messages.map(() => null);
    },
  });
  await told.authenticate();
  assert.deepEqual(seen, [{ style: MessageStyle.TEXT_INFO, text: "hello from echo" }]);
});

test("hundreds of concurrent one-shots, half with wrong passwords, every result right", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const n = 200;
  const outcomes = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const user = i % 4 < 2 ? "alice" : "bob";
      const good = i % 2 === 0;
      const password = good ? (user === "alice" ? "secret" : "hunter2") : `wrong${i}`;
      return authenticate({ service: "web", user, password, confdir: stack.confdir }).then(
        (r) => ({ i, ok: true, user: r.user }),
        (e) => ({ i, ok: false, code: e instanceof PamError ? e.codeName : String(e) }),
      );
    }),
  );
  for (const o of outcomes) {
    if (o.i % 2 === 0) {
      assert.deepEqual(o, { i: o.i, ok: true, user: o.i % 4 < 2 ? "alice" : "bob" });
    } else {
      assert.deepEqual(o, { i: o.i, ok: false, code: "PAM_AUTH_ERR" });
    }
  }
  const stats = workerPoolStats();
  // One-shots that never wait for the main thread need no more threads than run at once,
  // plus the one spare the pool starts ahead of need once all of those are held.
  assert.ok(stats.workers <= stats.size + 1, `the pool stays within its bound: ${stats.workers}`);
  assert.equal(stats.queued, 0);
  assert.equal(stats.busy, 0);
});

test("threads are reused across transactions", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  await authenticate({ service: "ok", user: "u", password: "p", confdir: stack.confdir });
  const before = workerPoolStats().started;
  for (let i = 0; i < 20; i++) {
    await authenticate({ service: "ok", user: "u", password: "p", confdir: stack.confdir });
  }
  assert.equal(workerPoolStats().started, before);
});

test("a transaction outlives its thread's event loop turns, idle and busy", {
  skip: noMatrix,
}, async () => {
  // The worker lets its event loop run every few dozen requests (so the runtime can
  // collect its garbage); the handle and its state must come through every such turn.
  // (Which kind of turn, idle or busy, depends on how fast this thread sends the next call.)
  await using stack = matrixStack();
  const tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: async (messages) => {
      await sleep(1);
      return messages.map(() => "secret");
    },
  });
  await failingCleanly(async () => {
    const started = workerPoolStats().started;
    for (let i = 0; i < 100; i++) { // one at a time: the idle turns
      await within(tx.putEnv(`N${i}=${i}`), 10_000, `putEnv #${i}`);
      if (i % 10 === 0) await sleep(1);
    }
    // Issued together: each is sent the moment the one before it is answered.
    const values = await within(
      Promise.all(
        Array.from(
          { length: 600 },
          (_, i) => i % 2 ? tx.getEnv(`N${i % 100}`) : tx.getItem("user"),
        ),
      ),
      30_000,
      "600 calls issued together",
    );
    values.forEach((value, i) => assert.equal(value, i % 2 ? String(i % 100) : "alice"));
    await tx.authenticate();
    await tx.acctMgmt();
    assert.equal(Object.keys(await tx.getEnvList()).length, 100);
    assert.equal(workerPoolStats().started, started, "no new thread took over the handle");
  });
  await tx.end();
});

test("a request sent just as the worker goes to sleep still wakes it", async () => {
  // The worker polls ~200 µs for its next request, then sleeps; the main thread wakes it
  // only when it says it sleeps. Requests sent at every moment around that edge must all
  // arrive.
  await using stack = createTestStack({ services: { ok: permitAll } });
  const tx = await AsyncPamTransaction.start({
    service: "ok",
    user: "u",
    confdir: stack.confdir,
  });
  await failingCleanly(async () => {
    for (let i = 0; i < 1500; i++) {
      const until = performance.now() + (i % 50) * 0.01; // 0 to 490 µs, spun: timers are too coarse
      while (performance.now() < until) { /* spin */ }
      assert.equal(await within(tx.getItem("user"), 10_000, `request #${i}`), "u");
    }
  });
  await tx.end();
});

test("sync and async APIs give identical results on the same stacks", {
  skip: noMatrix,
}, async () => {
  await using stack = createTestStack({
    services: {
      web: matrix,
      permit: "auth required pam_permit.so\naccount required pam_permit.so\n",
      deny: "auth required pam_deny.so\naccount required pam_deny.so\n",
      perm:
        "auth required pam_debug.so auth=perm_denied\naccount required pam_debug.so acct=new_authtok_reqd\n",
      unknown: "auth required pam_debug.so auth=user_unknown\naccount required pam_permit.so\n",
      echo: [
        "auth optional pam_echo.so first message",
        "auth required {{pam_matrix}} passdb={{passdb}}",
        "account required pam_echo.so account message",
        "account required pam_permit.so",
        "",
      ].join("\n"),
    },
    users: { alice: "secret" },
  });
  const cases: [string, string, string][] = [];
  for (const service of ["web", "permit", "deny", "perm", "unknown", "echo"]) {
    for (const [user, password] of [["alice", "secret"], ["alice", "bad"], ["nobody", "x"]]) {
      cases.push([service, user, password]);
    }
  }
  const describeError = (e: unknown) =>
    e instanceof PamError
      ? {
        code: e.code,
        codeName: e.codeName,
        operation: e.operation,
        message: e.message,
        messages: e.messages.map((m) => ({ ...m })),
      }
      : { other: String(e) };
  for (const [service, user, password] of cases) {
    const sync: unknown[] = [];
    const syncMessages: PamMessage[] = [];
    {
      using tx = PamTransaction.start({
        service,
        user,
        confdir: stack.confdir,
        conversation: passwordConversation(password, { onMessage: (m) => syncMessages.push(m) }),
      });
      for (const step of [() => tx.authenticate(), () => tx.acctMgmt()]) {
        try {
          step();
          sync.push("ok");
        } catch (e) {
          sync.push(describeError(e));
        }
      }
      sync.push(tx.getItem("user"));
    }
    const async: unknown[] = [];
    const asyncMessages: PamMessage[] = [];
    {
      const conversation = passwordConversation(password, {
        onMessage: (m) => asyncMessages.push(m),
      });
      await using tx = await AsyncPamTransaction.start({
        service,
        user,
        confdir: stack.confdir,
        conversation: async (messages) => {
          await sleep(1);
          return conversation(messages);
        },
      });
      for (const step of [() => tx.authenticate(), () => tx.acctMgmt()]) {
        try {
          await step();
          async.push("ok");
        } catch (e) {
          async.push(describeError(e));
        }
      }
      async.push(await tx.getItem("user"));
    }
    assert.deepEqual(async, sync, `${service} ${user}`);
    assert.deepEqual(asyncMessages, syncMessages, `${service} ${user} messages`);
  }
});

test('failDelay: "report" fails at once and reports the delay', async () => {
  await using stack = createTestStack({
    services: {
      slow: "auth optional pam_faildelay.so delay=2000000\nauth required pam_deny.so\n" +
        "account required pam_permit.so\n",
    },
  });
  const started = performance.now();
  const error = await rejection(
    authenticate({
      service: "slow",
      user: "u",
      password: "p",
      confdir: stack.confdir,
      failDelay: "report",
    }),
  );
  assert.ok(performance.now() - started < 1500, "no two-second sleep");
  assert.ok(error instanceof PamError);
  assert.equal(error.codeName, "PAM_AUTH_ERR");
  // libpam randomises the delay it reports around what the modules asked for.
  assert.ok(error.failDelayMs! >= 1000 && error.failDelayMs! <= 3000, `${error.failDelayMs}`);

  await using tx = await AsyncPamTransaction.start({
    service: "slow",
    user: "u",
    confdir: stack.confdir,
    failDelay: "report",
  });
  const error2 = await rejection(tx.authenticate());
  assert.ok(error2 instanceof PamError);
  assert.ok(error2.failDelayMs! >= 1000 && error2.failDelayMs! <= 3000);
});

test('failDelay: "native": the event loop stays live while ten threads each sleep out 1 s', async () => {
  await using stack = createTestStack({
    services: {
      slow: "auth optional pam_faildelay.so delay=1000000\nauth required pam_deny.so\n" +
        "account required pam_permit.so\n",
      ok: permitAll,
    },
  });
  setWorkerPoolSize(10);
  try {
    // Warm the pool first: thread start-up is a one-time cost, not what this measures.
    await Promise.all(
      Array.from(
        { length: 10 },
        () => authenticate({ service: "ok", user: "u", password: "p", confdir: stack.confdir }),
      ),
    );
    let last = performance.now();
    let maxLag = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
      ticks++;
    }, 10);
    const started = performance.now();
    const results = await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          rejection(
            authenticate({
              service: "slow",
              user: "u",
              password: "p",
              confdir: stack.confdir,
              failDelay: "native",
            }),
          ),
      ),
    );
    const elapsed = performance.now() - started;
    clearInterval(timer);
    for (const error of results) {
      assert.ok(error instanceof PamError);
      assert.equal(error.codeName, "PAM_AUTH_ERR");
      assert.equal(error.failDelayMs, undefined, "native mode sleeps; nothing to report");
    }
    // libpam randomises the delay by up to ±50% (at least 500 ms each), and ten of them
    // ran side by side rather than one after another (≥ 5 s).
    assert.ok(elapsed >= 450 && elapsed < 4000, `ten 1 s delays took ${elapsed} ms`);
    // Live, not fast: how late a timer may be is the bench's to measure (row S), not a unit
    // test's on a shared machine, so the ticks are counted and the worst lag only reported.
    assert.ok(
      ticks >= elapsed / 10 / 3,
      `only ${ticks} ticks in ${elapsed} ms (worst lag ${maxLag} ms)`,
    );
  } finally {
    setWorkerPoolSize(4);
  }
});

const faildelayStack = (usec: number) =>
  createTestStack({
    services: {
      slow: `auth optional pam_faildelay.so delay=${usec}\nauth required pam_deny.so\n` +
        "account required pam_permit.so\n",
      ok: permitAll,
    },
  });

test('failDelay "async" (the default): the failure waits out its delay, no thread does', async () => {
  await using stack = faildelayStack(2_000_000);
  // One thread in all: a thread sleeping out the delay would keep the right password out.
  setWorkerPoolSize(1, { maxThreads: 1 });
  try {
    const check = (service: string) =>
      authenticate({ service, user: "u", password: "p", confdir: stack.confdir });
    await check("ok");
    let settled = false;
    const started = performance.now();
    const failing = rejection(check("slow")).finally(() => (settled = true));
    // The worker replies at once (libpam reports the delay instead of sleeping it).
    await until(() => workerPoolStats().held === 0, "the thread goes back to the pool");
    assert.equal(workerPoolStats().busy, 0);
    assert.deepEqual(await check("ok"), { user: "u" }, "the one thread serves another check");
    assert.equal(settled, false, "the failure is still waiting out its delay");
    const error = await failing;
    const elapsed = performance.now() - started;
    assert.ok(error instanceof PamError);
    assert.equal(error.codeName, "PAM_AUTH_ERR");
    assert.equal(error.failDelayMs, undefined, "waited out, as native mode: nothing to report");
    // libpam randomises a 2 s delay within 1-3 s.
    assert.ok(elapsed >= 1000, `the failure came after ${elapsed} ms`);
    assert.equal(workerPoolStats().started >= 1, true);
  } finally {
    setWorkerPoolSize(4);
  }
});

test('failDelay "async": the next call of a transaction waits for the delay too', async () => {
  await using stack = faildelayStack(1_000_000);
  await using tx = await AsyncPamTransaction.start({
    service: "slow",
    user: "u",
    confdir: stack.confdir,
  });
  const order: string[] = [];
  const failed = tx.authenticate().then(
    () => order.push("authenticate resolved"),
    (error) => order.push(`authenticate ${(error as PamError).codeName}`),
  );
  // Issued at once, run in order: as with a native delay, after the sleep.
  const user = tx.getItem("user").then((value) => order.push(`getItem ${value}`));
  // The worker replied within milliseconds; libpam's delay is at least 500 ms.
  await sleep(200);
  assert.deepEqual(order, [], "neither call has settled during the delay");
  assert.equal(workerPoolStats().busy, 0, "and no thread sleeps it (native mode: 1)");
  await Promise.all([failed, user]);
  assert.deepEqual(order, ["authenticate PAM_AUTH_ERR", "getItem u"]);
  // The synchronous API keeps "native" and knows no "async".
  assert.throws(
    () =>
      PamTransaction.start({ service: "ok", confdir: stack.confdir, failDelay: "async" as never }),
    TypeError,
  );
});

test("conversations waiting for their handler take a thread each, not a turn", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  setWorkerPoolSize(2);
  const waiting: AsyncPamTransaction[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const tx = await AsyncPamTransaction.start({
        service: "web",
        user: "alice",
        confdir: stack.confdir,
        conversation: () => new Promise<PamAnswer[]>(() => {}), // a person who never answers
      });
      waiting.push(tx);
      pending.push(rejection(tx.authenticate()));
    }
    await until(
      () => workerPoolStats().held === 6 && workerPoolStats().busy === 0,
      "six prompts waiting, none counted as work",
    );
    const stats = workerPoolStats();
    assert.ok(stats.workers >= 6, `the pool grew past its run bound: ${stats.workers}`);
    assert.equal(stats.maxThreads, 64);
    // A one-shot (and a transaction) get through beside them.
    await assertOneShotGetsThrough(stack.confdir, "a one-shot beside six waiting prompts");
  } finally {
    for (const tx of waiting) await tx.end();
    for (const error of await Promise.all(pending)) assert.ok(error instanceof PamError);
    setWorkerPoolSize(4);
  }
  assert.equal(workerPoolStats().held, 0);
});

test("setWorkerPoolSize: bad bounds are RangeErrors, wrong types TypeErrors", () => {
  assert.throws(() => setWorkerPoolSize(0), RangeError);
  assert.throws(() => setWorkerPoolSize(1025), RangeError);
  assert.throws(() => setWorkerPoolSize(4, { maxThreads: 2 }), RangeError);
  assert.throws(() => setWorkerPoolSize(4, { maxThreads: 1.5 }), RangeError);
  assert.throws(() => setWorkerPoolSize("4" as never), TypeError);
  assert.throws(() => setWorkerPoolSize(4, { maxThreads: "8" } as never), TypeError);
  assert.throws(() => setWorkerPoolSize(4, { max: 8 } as never), TypeError);
  assert.equal(workerPoolStats().size, 4);
  assert.equal(workerPoolStats().maxThreads, 64);
});

test("the pool queues beyond its bound on threads", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  // Transactions may hold maxThreads - size threads: two here.
  setWorkerPoolSize(1, { maxThreads: 3 });
  try {
    const held = await Promise.all([
      AsyncPamTransaction.start({ service: "ok", user: "u", confdir: stack.confdir }),
      AsyncPamTransaction.start({ service: "ok", user: "u", confdir: stack.confdir }),
    ]);
    let third: AsyncPamTransaction | undefined;
    const pending = AsyncPamTransaction.start({ service: "ok", user: "u", confdir: stack.confdir })
      .then(
        (tx) => (third = tx),
      );
    await sleep(50);
    assert.equal(third, undefined, "the third waits for a thread");
    assert.equal(workerPoolStats().queued, 1);
    await held[0].end();
    const got = await pending;
    assert.equal(third, got);
    await got.authenticate();
    await got.end();
    await held[1].end();
    assert.ok(workerPoolStats().workers <= 3);
  } finally {
    setWorkerPoolSize(4);
  }
});

test("a worker thread that dies rejects its calls; the pool replaces it", async () => {
  await using stack = createTestStack({
    services: { ok: permitAll, echo: "auth required pam_echo.so hi\n" },
  });
  const tx = await AsyncPamTransaction.start({
    service: "echo",
    confdir: stack.confdir,
    conversation: () => {
      terminateAllWorkers();
      return new Promise<PamAnswer[]>(() => {});
    },
  });
  const error = await rejection(tx.authenticate());
  assert.ok(error instanceof Error);
  assert.match(error.message, /worker thread died/);
  await tx.end(); // nothing left to end, and no hang
  assert.equal(tx.ended, true);
  const result = await authenticate({
    service: "ok",
    user: "u",
    password: "p",
    confdir: stack.confdir,
  });
  assert.deepEqual(result, { user: "u" });
});

/**
 * Runs `script` in a child process of this runtime with the exact permissions docs/async.md
 * tells Deno users to grant, from `cwd` (the worker's URL must not depend on the working
 * directory); SIGKILLs it after 15 s. Resolves its exit code and output.
 */
async function runScript(
  script: string,
  cwd: string,
): Promise<{ code: number | null; out: string }> {
  const args = isDeno ? ["run", "--allow-ffi", "--allow-read", script] : [script];
  const child = spawn(process.execPath, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => {
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("exit", (c) => {
      clearTimeout(killer);
      resolve(c);
    });
  });
  return { code, out };
}

test("a script that calls authenticate() once exits by itself", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  const script = join(stack.dir, "once.ts");
  const mod = new URL("../mod.ts", import.meta.url).href;
  writeFileSync(
    script,
    `import { authenticate } from ${JSON.stringify(mod)};\n` +
      `const r = await authenticate({ service: "ok", user: "eve", password: "p", confdir: ${
        JSON.stringify(stack.confdir)
      } });\n` +
      `console.log("user=" + r.user);\n`,
  );
  const started = performance.now();
  const { code, out } = await runScript(script, stack.dir);
  const elapsed = performance.now() - started;
  assert.equal(code, 0, out);
  assert.match(out, /user=eve/);
  assert.ok(elapsed < 10_000, `took ${elapsed} ms to exit`);
});

test("pam_exec forks and reaps its child from a worker thread", async () => {
  await using stack = createTestStack({ services: { placeholder: permitAll } });
  const script = join(stack.dir, "check.sh");
  writeFileSync(
    script,
    '#!/bin/sh\nIFS= read -r password || true\n[ "$PAM_USER" = frank ] && [ "$password" = "s3cret pass" ]\n',
    { mode: 0o755 },
  );
  writeFileSync(
    join(stack.confdir, "exec"),
    `auth [success=1 default=ignore] pam_exec.so quiet expose_authtok ${script}\n` +
      "auth requisite pam_deny.so\nauth required pam_permit.so\naccount required pam_permit.so\n",
  );
  const check = (user: string, password: string) =>
    authenticate({ service: "exec", user, password, confdir: stack.confdir }).then(
      (r) => r.user,
      (e) => (e instanceof PamError ? e.codeName : String(e)),
    );
  assert.deepEqual(
    await Promise.all([
      check("frank", "s3cret pass"),
      check("frank", "wrong"),
      check("grace", "s3cret pass"),
      check("frank", "s3cret pass"),
    ]),
    ["frank", "PAM_AUTH_ERR", "PAM_AUTH_ERR", "frank"],
  );
});

test("authenticate() with onMessage: info messages arrive, a Uint8Array password works", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack({
    told: "auth optional pam_echo.so welcome %u\n" + matrix,
  });
  const seen: PamMessage[] = [];
  const password = new TextEncoder().encode("secret");
  const result = await authenticate({
    service: "told",
    user: "alice",
    password,
    confdir: stack.confdir,
    onMessage: (m) => seen.push(m),
  });
  assert.deepEqual(result, { user: "alice" });
  assert.deepEqual(seen, [{ style: MessageStyle.TEXT_INFO, text: "welcome alice" }]);
  assert.deepEqual(password, new TextEncoder().encode("secret"), "the caller's bytes are theirs");
  // Without onMessage (the password preloaded into the worker), bytes work as well.
  assert.deepEqual(
    await authenticate({ service: "web", user: "alice", password, confdir: stack.confdir }),
    { user: "alice" },
  );
  await assert.rejects(
    authenticate({
      service: "web",
      user: "alice",
      password: new Uint8Array([115, 0, 1]),
      confdir: stack.confdir,
    }),
    TypeError,
  );
});

test("failing conversations never succeed, also after thousands of warm calls on one thread", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  setWorkerPoolSize(1);
  try {
    const broken: AsyncConversation[] = [
      () => [],
      () => Promise.reject(new Error("no")),
      () => [7 as never],
    ];
    let succeeded = 0;
    let failed = 0;
    const lane = async (offset: number) => {
      for (let i = offset; i < 1500; i += 10) {
        await using tx = await AsyncPamTransaction.start({
          service: "web",
          user: "alice",
          confdir: stack.confdir,
          conversation: broken[i % broken.length],
        });
        try {
          await tx.authenticate();
          succeeded++;
        } catch (error) {
          assert.ok(error instanceof PamError);
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 10 }, (_, i) => lane(i)));
    assert.equal(succeeded, 0);
    assert.equal(failed, 1500);
    // And the thread still authenticates the right password afterwards.
    assert.deepEqual(
      await authenticate({
        service: "web",
        user: "alice",
        password: "secret",
        confdir: stack.confdir,
      }),
      { user: "alice" },
    );
  } finally {
    setWorkerPoolSize(4);
  }
});

test("end() while a prompt waits fails that call and ends without hanging", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  let asked!: () => void;
  const prompted = new Promise<void>((resolve) => (asked = resolve));
  const tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => {
      asked();
      return new Promise<PamAnswer[]>(() => {});
    },
  });
  const pending = rejection(tx.authenticate());
  await prompted;
  await tx.end();
  const error = await pending;
  assert.ok(error instanceof PamError);
  assert.match(String((error.cause as Error).message), /end\(\) was called/);
  assert.equal(tx.ended, true);
});

test("the worker gives up by itself when the main thread cannot answer in time", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  let calls = 0;
  await using tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversationTimeoutMs: 100,
    conversation: (messages) => {
      // The first time, block the event loop itself, so the main side's timer cannot fire.
      if (calls++ === 0) { for (const end = performance.now() + 1600; performance.now() < end;); }
      return messages.map(() => "secret");
    },
  });
  const error = await rejection(tx.authenticate());
  assert.ok(error instanceof PamError);
  assert.match(String((error.cause as Error).message), /did not answer .* within 100 ms/);
  // The late answer was dropped, not delivered to the next prompt; the next one works.
  await tx.authenticate();
  assert.equal(calls, 2);
});

/** An async transaction on the matrix stack whose handler returns what `answer` makes. */
async function answering(
  stack: ReturnType<typeof matrixStack>,
  answer: (messages: readonly PamMessage[]) => unknown,
) {
  return await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: answer as AsyncConversation,
  });
}

test("hostile handler results reject with PamError (cause set), never crash or hang", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const boom = new Error("hostile");
  const revocable = Proxy.revocable(["secret"], {});
  revocable.revoke();
  const throwingThen = () =>
    Object.defineProperty(["secret"], "then", {
      get: () => {
        throw boom;
      },
    });
  const cases: [string, () => unknown, (cause: unknown) => boolean][] = [
    ["then getter throws", throwingThen, (c) => c === boom],
    ["thenable whose then throws", () => ({
      then: () => {
        throw boom;
      },
    }), (c) => c === boom],
    ["Proxy whose traps throw", () =>
      new Proxy(["secret"], {
        get: () => {
          throw boom;
        },
      }), (c) => c === boom],
    ["revoked Proxy", () => revocable.proxy, (c) => c instanceof TypeError],
    [
      "Promise of a revoked Proxy",
      () => Promise.resolve(revocable.proxy),
      (c) => c instanceof TypeError,
    ],
    [
      "Promise of an array whose element getter throws",
      () =>
        Promise.resolve(Object.defineProperty([], 0, {
          get: () => {
            throw boom;
          },
        })),
      (c) => c === boom,
    ],
    [
      "Promise of an array whose then getter throws",
      () => Promise.resolve(1).then(throwingThen),
      (c) => c === boom,
    ],
  ];
  for (const [name, result, isCause] of cases) {
    await using tx = await answering(stack, result);
    const error = await within(rejection(tx.authenticate()), 5000, name);
    assert.ok(error instanceof PamError, `${name}: ${error}`);
    assert.ok(isCause(error.cause), `${name}: cause ${error.cause}`);
  }
  // An array whose Symbol.iterator throws is never iterated: its answers are read by index.
  const iterated = ["secret"];
  Object.defineProperty(iterated, Symbol.iterator, {
    value: () => {
      throw boom;
    },
  });
  await using tx = await answering(stack, () => iterated);
  await within(tx.authenticate(), 5000, "throwing Symbol.iterator");
});

test("async answers are read once: the check and the copy see one snapshot", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const bytes = () => new TextEncoder().encode("secret");
  for (const values of [["secret", "secret\0tail"], [bytes(), { byteLength: 0 }], ["secret", 42]]) {
    let reads = 0;
    await using tx = await answering(stack, () =>
      Promise.resolve(Object.defineProperty([], 0, {
        enumerable: true,
        get: () => values[Math.min(reads++, 1)],
      })));
    await within(tx.authenticate(), 5000, String(values[1]));
    assert.equal(reads, 1);
  }
  // The handler's messages are frozen; emptying them cannot change the count checked.
  await using tx = await answering(stack, (messages) => {
    assert.ok(Object.isFrozen(messages) && Object.isFrozen(messages[0]));
    try {
      (messages as PamMessage[]).length = 0;
    } catch { /* frozen */ }
    return [];
  });
  const error = await rejection(tx.authenticate());
  assert.ok(error instanceof PamError && error.cause instanceof TypeError);
});

test("inside its own conversation every method refuses at once; outside calls still queue", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  const refused: unknown[] = [];
  const tx: AsyncPamTransaction = await answering(stack, async (messages) => {
    for (
      const call of [
        () => tx.getItem("user"),
        () => tx.setItem("user", "mallory"),
        () => tx.putEnv("A=1"),
        () => tx.getEnvList(),
        () => tx.authenticate(),
        () => tx.end(),
      ]
    ) {
      try {
        await call();
      } catch (error) {
        refused.push(error);
      }
    }
    return messages.map(() => "secret");
  });
  try {
    await within(tx.authenticate(), 5000, "a handler awaiting its own transaction");
    assert.equal(refused.length, 6);
    for (const error of refused) {
      assert.ok(error instanceof Error);
      assert.match(error.message, /own conversation/);
    }
    assert.equal(tx.ended, false);
    assert.equal(await tx.getItem("user"), "alice");
  } finally {
    await tx.end();
  }
  // Calls made elsewhere while a prompt waits are not refused: they run after the call.
  let answer!: (answers: PamAnswer[]) => void;
  let asked!: () => void;
  const prompted = new Promise<void>((resolve) => (asked = resolve));
  await using waiting = await answering(stack, () => {
    asked();
    return new Promise<PamAnswer[]>((resolve) => (answer = resolve));
  });
  const auth = waiting.authenticate();
  await prompted;
  const user = waiting.getItem("user");
  answer(["secret"]);
  await auth;
  assert.equal(await user, "alice");
});

test("one answer limit for async answers and the one-shot password: MAX_ANSWER_BYTES", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  await using tx = await answering(stack, () => ["a".repeat(MAX_ANSWER_BYTES + 1)]);
  const error = await rejection(tx.authenticate());
  assert.ok(error instanceof PamError && error.cause instanceof RangeError, String(error));
  for (const onMessage of [undefined, () => {}]) {
    await assert.rejects(
      authenticate({
        service: "web",
        user: "alice",
        password: "a".repeat(MAX_ANSWER_BYTES + 1),
        confdir: stack.confdir,
        onMessage,
      }),
      RangeError,
    );
  }
});

test(
  "a module that ends its worker thread (pthread_exit): the call rejects, the process can exit",
  {
    skip: hostileModule().why ?? false,
  },
  async () => {
    await using stack = createTestStack({
      services: { exit: `auth required ${hostileModule().path} mode=exit\n` },
    });
    const tx = await AsyncPamTransaction.start({
      service: "exit",
      user: "u",
      confdir: stack.confdir,
    });
    const error = await within(rejection(tx.authenticate()), 10_000, "pthread_exit");
    assert.ok(error instanceof Error);
    assert.match(error.message, /worker thread died .*OS thread ended/);
    await within(tx.end(), 10_000, "end() after pthread_exit");
    // And a script whose only check meets it exits by itself.
    const script = join(stack.dir, "exit.ts");
    const mod = new URL("../mod.ts", import.meta.url).href;
    writeFileSync(
      script,
      `import { authenticate } from ${JSON.stringify(mod)};\n` +
        `await authenticate({ service: "exit", user: "u", password: "p", confdir: ${
          JSON.stringify(stack.confdir)
        } }).catch((e) => console.log("rejected: " + e.message));\n`,
    );
    const { code, out } = await runScript(script, stack.dir);
    assert.equal(code, 0, out);
    assert.match(out, /rejected: the PAM worker thread died/);
  },
);

test("getEnvList() keeps every name through the worker, __proto__ included", async () => {
  await using stack = createTestStack({ services: { ok: permitAll } });
  await using tx = await AsyncPamTransaction.start({
    service: "ok",
    user: "u",
    confdir: stack.confdir,
  });
  await tx.putEnv("__proto__=polluted");
  await tx.putEnv("constructor=c");
  const env = await tx.getEnvList();
  assert.equal(Object.getPrototypeOf(env), null);
  assert.deepEqual(Object.entries(env), [["__proto__", "polluted"], ["constructor", "c"]]);
});

test("the worker calls only the methods of the table; the table is PamTransaction's methods", async () => {
  // Every method but end() and the accessors, and nothing else.
  const own = Object.getOwnPropertyNames(PamTransaction.prototype)
    .filter((name) => name !== "constructor" && name !== "end" && name !== "ended");
  assert.deepEqual(Object.keys(transactionMethods).sort(), own.sort());
  using stack = createTestStack({ services: { svc: "auth required pam_permit.so\n" } });
  const worker = await acquireWorker();
  try {
    const start = await worker.request({
      op: "start",
      options: { service: "svc", user: "alice", confdir: stack.confdir },
      conversation: false,
    });
    assert.equal(start.ok, true);
    // A request typed past the table (as a hostile or stale main side could send it).
    for (const method of ["end", "constructor", "__proto__", "toString", "hasOwnProperty"]) {
      const outcome = await worker.request({ op: "call", method: method as never, args: [] });
      assert.equal(outcome.ok, false, method);
      assert.ok(!outcome.ok && outcome.error.message === `unknown method ${method}`, method);
    }
    // The transaction is still there and its handle still live: end() never ran.
    const user = await worker.request({ op: "call", method: "getItem", args: ["user"] });
    assert.deepEqual(user, { ok: true, value: "alice" });
    assert.deepEqual(await worker.request({ op: "end" }), { ok: true, value: undefined });
  } finally {
    releaseWorker(worker, worker.lease);
  }
});

test(
  "a handler whose result has a throwing `then` getter fails the call; its byte answers are zeroed",
  {
    skip: noMatrix,
  },
  async () => {
    await using stack = matrixStack();
    const secret = new TextEncoder().encode("secret");
    await using tx = await AsyncPamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation: () => {
        const answers: PamAnswer[] = [secret];
        Object.defineProperty(answers, "then", {
          get() {
            throw new Error("then getter");
          },
        });
        return answers;
      },
    });
    const error = await rejection(tx.authenticate());
    assert.ok(error instanceof PamError);
    assert.equal((error.cause as Error).message, "then getter");
    assert.deepEqual([...secret], new Array(secret.length).fill(0));
  },
);

test("method arguments are read once on the main thread: the worker gets what was checked", {
  skip: noMatrix,
}, async () => {
  await using stack = matrixStack();
  await using tx = await AsyncPamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: () => ["secret"],
  });
  let reads = 0;
  await tx.authenticate({
    get silent() {
      reads++;
      return (reads === 1 ? true : "not a boolean") as boolean;
    },
  });
  assert.equal(reads, 1);
  const xauth = {
    get name() {
      reads++;
      return reads === 2 ? "MIT-MAGIC-COOKIE-1" : "changed";
    },
    data: new Uint8Array([1, 2, 3]),
  };
  await tx.setXAuthData(xauth);
  assert.equal(reads, 2);
  assert.equal((await tx.getXAuthData())?.name, "MIT-MAGIC-COOKIE-1");
});
