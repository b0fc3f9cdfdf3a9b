// Conversations with real modules: pam_matrix (prompt, echo-on prompt,
// verbose info through a NULL resp), pam_stress (multi-message chauthtok,
// expired tokens), pam_echo, pam_exec (expose_authtok and a forked script),
// passwordConversation, byte answers, handler errors of every kind through
// libpam, transactions without a conversation, and the reported fail delay.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import {
  MAX_ANSWER_BYTES,
  MessageStyle,
  PamError,
  type PamMessage,
  PamTransaction,
  passwordConversation,
  ReturnCode,
} from "../mod.ts";
import { createTestStack } from "../src/testing.ts";
import { hostileModule } from "./_hostile_module.ts";
import { SECRET, spyPamEnd, thrown, wrapperModule } from "./_helpers.ts";

const noMatrix = wrapperModule("pam_matrix") ? false : "libpam-wrapper is not installed";

function recorder(answer: (m: PamMessage) => unknown = () => null) {
  const seen: PamMessage[][] = [];
  return {
    seen,
    conversation: (messages: readonly PamMessage[]) => {
      seen.push([...messages]);
      return messages.map(answer) as never;
    },
  };
}

function matrixStack(options = "") {
  return createTestStack({
    services: {
      web: `auth required {{pam_matrix}} passdb={{passdb}} ${options}\n` +
        "account required {{pam_matrix}} passdb={{passdb}}\n",
    },
    users: { alice: SECRET },
  });
}

function assertNoSecret(error: unknown): void {
  assert.ok(error instanceof Error);
  const all = [error.message, String(error.stack), JSON.stringify((error as PamError).messages)];
  if (error.cause instanceof Error) all.push(error.cause.message, String(error.cause.stack));
  for (const text of all) assert.ok(!text.includes(SECRET), `secret leaked: ${text}`);
}

test("pam_matrix: password prompt, then verbose info delivered with a NULL resp", {
  skip: noMatrix,
}, () => {
  using stack = matrixStack("verbose");
  const r = recorder((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? SECRET : null);
  using tx = PamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: r.conversation,
  });
  tx.authenticate();
  tx.acctMgmt();
  assert.deepEqual(r.seen, [
    [{ style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " }],
    [{ style: MessageStyle.TEXT_INFO, text: "Authentication succeeded" }],
  ]);
});

test(
  "pam_matrix: a wrong password is AUTH_ERR with the module's error message",
  { skip: noMatrix },
  () => {
    using stack = matrixStack("verbose");
    using tx = PamTransaction.start({
      service: "web",
      user: "alice",
      confdir: stack.confdir,
      conversation: passwordConversation("wrong"),
    });
    const error = thrown(() => tx.authenticate(), PamError);
    assert.equal(error.code, ReturnCode.AUTH_ERR);
    assert.deepEqual(error.messages, [{
      style: MessageStyle.ERROR_MSG,
      text: "Authentication failed",
    }]);
    assert.doesNotMatch(error.message + JSON.stringify(error.messages), /wrong/);
    // The same transaction can try again.
    const again = thrown(() => tx.authenticate(), PamError);
    assert.equal(again.messages.length, 1, "messages are per call, not accumulated");
  },
);

test("pam_matrix echo: an echo-on prompt is answered like any other", { skip: noMatrix }, () => {
  using stack = matrixStack("echo");
  const r = recorder((m) => m.style === MessageStyle.PROMPT_ECHO_ON ? SECRET : null);
  using tx = PamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: r.conversation,
  });
  tx.authenticate();
  assert.deepEqual(r.seen, [[{ style: MessageStyle.PROMPT_ECHO_ON, text: "Password: " }]]);
  // passwordConversation only answers echo-off prompts: an echo-on one fails the call.
  using tx2 = PamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: passwordConversation(SECRET),
  });
  const error = thrown(() => tx2.authenticate(), PamError);
  assert.notEqual(error.code, ReturnCode.SUCCESS);
  assert.ok(error.cause instanceof TypeError);
  assert.match(error.cause.message, /cannot answer a prompt of style 2/);
  assertNoSecret(error);
});

test("Uint8Array answers are copied to C and then zeroed", { skip: noMatrix }, () => {
  using stack = matrixStack();
  const answers: Uint8Array[] = [];
  using tx = PamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: (messages) =>
      messages.map(() => {
        const bytes = new TextEncoder().encode(SECRET);
        answers.push(bytes);
        return bytes;
      }),
  });
  tx.authenticate();
  assert.equal(answers.length, 1);
  assert.equal(answers[0].length, SECRET.length);
  assert.ok(answers[0].every((b) => b === 0), "the answer was not zeroed");
});

test("passwordConversation: strings and bytes, info/error messages to onMessage", {
  skip: noMatrix,
}, () => {
  using stack = createTestStack({
    services: {
      web: "auth required pam_echo.so Welcome %u\n" +
        "auth required {{pam_matrix}} passdb={{passdb}} verbose\n",
    },
    users: { alice: SECRET },
  });
  const start = (conversation: ReturnType<typeof passwordConversation>) =>
    PamTransaction.start({ service: "web", user: "alice", confdir: stack.confdir, conversation });
  const seen: PamMessage[] = [];
  {
    using tx = start(passwordConversation(SECRET, { onMessage: (m) => seen.push(m) }));
    tx.authenticate();
  }
  assert.deepEqual(seen.slice(), [
    { style: MessageStyle.TEXT_INFO, text: "Welcome alice" },
    { style: MessageStyle.TEXT_INFO, text: "Authentication succeeded" },
  ]);
  const bytes = new TextEncoder().encode(SECRET);
  {
    using tx = start(passwordConversation(bytes));
    tx.authenticate();
    tx.authenticate(); // a byte password can be used again: each answer is a fresh copy
  }
  assert.equal(new TextDecoder().decode(bytes), SECRET, "the caller's bytes are its own");
  {
    using tx = start(passwordConversation("not it", { onMessage: (m) => seen.push(m) }));
    const error = thrown(() => tx.authenticate(), PamError);
    assert.equal(error.code, ReturnCode.AUTH_ERR);
    assert.deepEqual(error.messages.map((m) => m.text), [
      "Welcome alice",
      "Authentication failed",
    ]);
  }
  for (const bad of [undefined, 42, null, ["pw"]]) {
    assert.throws(() => passwordConversation(bad as never), TypeError);
  }
});

test("pam_stress: expired token — acctMgmt wants a new one; chauthtok asks in one multi-message call", () => {
  using stack = createTestStack({
    services: {
      expired: "account required pam_stress.so expired\npassword required pam_stress.so expired\n",
    },
  });
  const r = recorder((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? "n3w-pass" : null);
  using tx = PamTransaction.start({
    service: "expired",
    user: "alice",
    confdir: stack.confdir,
    conversation: r.conversation,
  });
  const error = thrown(() => tx.acctMgmt(), PamError);
  assert.equal(error.code, ReturnCode.NEW_AUTHTOK_REQD);
  assert.equal(error.codeName, "PAM_NEW_AUTHTOK_REQD");
  tx.chauthtok({ changeExpiredAuthtok: true });
  assert.deepEqual(r.seen, [[
    { style: MessageStyle.TEXT_INFO, text: "Changing STRESS password for alice." },
    { style: MessageStyle.PROMPT_ECHO_OFF, text: "Enter new STRESS password: " },
    { style: MessageStyle.PROMPT_ECHO_OFF, text: "Retype new STRESS password: " },
  ]]);
});

test("an empty password is delivered as an empty string (pam_stress accepts it unless disallowed)", () => {
  using stack = createTestStack({ services: { s: "auth required pam_stress.so\n" } });
  for (const empty of ["", new Uint8Array(0)]) {
    using tx = PamTransaction.start({
      service: "s",
      user: "alice",
      confdir: stack.confdir,
      conversation: (messages) => messages.map(() => empty),
    });
    tx.authenticate();
    // pam_stress refuses only a NULL answer under PAM_DISALLOW_NULL_AUTHTOK; "" is not NULL.
    tx.authenticate({ disallowNullAuthtok: true });
  }
});

test("pam_stress: mismatched new passwords fail chauthtok, never succeed", () => {
  using stack = createTestStack({ services: { pw: "password required pam_stress.so\n" } });
  let n = 0;
  using tx = PamTransaction.start({
    service: "pw",
    user: "alice",
    confdir: stack.confdir,
    conversation: (messages) =>
      messages.map((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? `pass-${n++}` : null),
  });
  const error = thrown(() => tx.chauthtok(), PamError);
  assert.equal(error.operation, "pam_chauthtok");
  assert.notEqual(error.code, ReturnCode.SUCCESS);
});

test("pam_exec expose_authtok: a forked script checks the password (the runtime must not reap it)", () => {
  using stack = createTestStack({
    services: {
      exec: "auth required pam_exec.so expose_authtok quiet {{dir}}/check.sh\n",
    },
  });
  const script = join(stack.dir, "check.sh");
  writeFileSync(
    script,
    `#!/bin/sh\nread -r pw\n[ "$PAM_TYPE" = auth ] && [ "$PAM_USER" = alice ] && [ "$pw" = '${SECRET}' ]\n`,
  );
  chmodSync(script, 0o755);
  const start = (password: string) =>
    PamTransaction.start({
      service: "exec",
      user: "alice",
      confdir: stack.confdir,
      conversation: passwordConversation(password),
    });
  for (let i = 0; i < 5; i++) {
    // If the runtime reaped the child, waitpid would fail and this would be PAM_SYSTEM_ERR.
    using tx = start(SECRET);
    tx.authenticate();
  }
  using tx = start("wrong");
  const error = thrown(() => tx.authenticate(), PamError);
  assert.notEqual(error.code, ReturnCode.SUCCESS);
  assertNoSecret(error);
});

test("pam_echo: several info messages across a stack reach the handler in order", () => {
  using stack = createTestStack({
    services: {
      s: "auth optional pam_echo.so one %s\nauth optional pam_echo.so two %u\n" +
        "auth required pam_permit.so\n",
    },
  });
  const r = recorder();
  using tx = PamTransaction.start({
    service: "s",
    user: "alice",
    confdir: stack.confdir,
    conversation: r.conversation,
  });
  tx.authenticate();
  assert.deepEqual(r.seen.flat().map((m) => [m.style, m.text]), [
    [MessageStyle.TEXT_INFO, "one s"],
    [MessageStyle.TEXT_INFO, "two alice"],
  ]);
});

// Each kind of handler error through real modules: pam_stress and pam_exec return
// PAM_CONV_ERR, pam_matrix turns it into PAM_AUTHINFO_UNAVAIL. Never success.
const badHandlers: [string, () => unknown, (cause: unknown) => boolean][] = [
  ["thrown error", () => {
    throw new Error("handler exploded");
  }, (c) => c instanceof Error && c.message === "handler exploded"],
  ["wrong count", () => [SECRET, SECRET], (c) => c instanceof TypeError],
  ["no answers", () => [], (c) => c instanceof TypeError],
  ["number answer", () => [1234], (c) => c instanceof TypeError],
  ["object answer", () => [{ password: SECRET }], (c) => c instanceof TypeError],
  ["string with NUL", () => [`${SECRET}\0`], (c) => c instanceof TypeError],
  ["Uint8Array with NUL", () => [new Uint8Array([1, 0, 2])], (c) => c instanceof TypeError],
  ["resolved Promise", () => Promise.resolve([SECRET]), (c) => c instanceof TypeError],
  ["rejected Promise", () => Promise.reject(new Error(SECRET)), (c) => c instanceof TypeError],
  ["non-array", () => SECRET, (c) => c instanceof TypeError],
  ["undefined", () => undefined, (c) => c instanceof TypeError],
];

test("handler errors of every kind fail the call with PamError.cause set, through real modules", async () => {
  using stack = createTestStack({
    services: {
      stress: "auth required pam_stress.so\n",
      exec: "auth required pam_exec.so expose_authtok /bin/true\n",
      ...(noMatrix ? {} : { matrix: "auth required {{pam_matrix}} passdb={{passdb}}\n" }),
    },
    users: { alice: SECRET },
  });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    const expected: Record<string, number> = {
      stress: ReturnCode.CONV_ERR,
      exec: ReturnCode.CONV_ERR,
      matrix: ReturnCode.AUTHINFO_UNAVAIL,
    };
    for (const service of noMatrix ? ["stress", "exec"] : ["stress", "exec", "matrix"]) {
      for (const [name, handler, isCause] of badHandlers) {
        using tx = PamTransaction.start({
          service,
          user: "alice",
          confdir: stack.confdir,
          conversation: handler as never,
        });
        const error = thrown(() => tx.authenticate(), PamError, `${service}/${name}`);
        assert.equal(error.code, expected[service], `${service}/${name}: ${error.codeName}`);
        assert.ok(isCause(error.cause), `${service}/${name}: cause ${error.cause}`);
        assertNoSecret(error);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled, [], "a rejected Promise surfaced as unhandled");
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("no conversation: prompts fail the call, info messages are still collected", {
  skip: noMatrix,
}, () => {
  using stack = createTestStack({
    services: {
      matrix:
        "auth required pam_echo.so hello %u\nauth required {{pam_matrix}} passdb={{passdb}}\n",
      stress: "auth required pam_echo.so hello %u\nauth required pam_stress.so\n",
      info: "auth required pam_echo.so only info\nauth required pam_permit.so\n",
    },
    users: { alice: SECRET },
  });
  for (
    const [service, code] of [["matrix", ReturnCode.AUTHINFO_UNAVAIL], [
      "stress",
      ReturnCode.CONV_ERR,
    ]] as const
  ) {
    using tx = PamTransaction.start({ service, user: "alice", confdir: stack.confdir });
    const error = thrown(() => tx.authenticate(), PamError);
    assert.equal(error.code, code, service);
    assert.deepEqual(error.messages, [{ style: MessageStyle.TEXT_INFO, text: "hello alice" }]);
    assert.match(String((error.cause as Error)?.message), /no conversation/);
  }
  // Info-only stacks succeed without a conversation.
  using tx = PamTransaction.start({ service: "info", user: "alice", confdir: stack.confdir });
  tx.authenticate();
});

test('failDelay "report": pam_faildelay\'s delay is reported, not slept', () => {
  const delayUsec = 2_000_000;
  using stack = createTestStack({
    services: {
      slow: `auth optional pam_faildelay.so delay=${delayUsec}\nauth required pam_deny.so\n`,
      fine: `auth optional pam_faildelay.so delay=${delayUsec}\nauth required pam_permit.so\n`,
    },
  });
  for (let i = 0; i < 3; i++) {
    using tx = PamTransaction.start({
      service: "slow",
      user: "alice",
      confdir: stack.confdir,
      failDelay: "report",
    });
    const started = performance.now();
    const error = thrown(() => tx.authenticate(), PamError);
    const elapsed = performance.now() - started;
    assert.equal(error.code, ReturnCode.AUTH_ERR);
    // libpam randomises the delay by up to 50% (man pam_fail_delay).
    assert.ok(
      error.failDelayMs !== undefined && error.failDelayMs >= 1000 && error.failDelayMs <= 3000,
      `failDelayMs ${error.failDelayMs}`,
    );
    assert.ok(elapsed < 1000, `the call slept (${elapsed} ms)`);
  }
  // A success has nothing to report (and does not throw).
  using ok = PamTransaction.start({
    service: "fine",
    user: "alice",
    confdir: stack.confdir,
    failDelay: "report",
  });
  ok.authenticate();
});

test('failDelay "native" (default): libpam sleeps the delay and reports nothing', () => {
  using stack = createTestStack({
    services: { slow: "auth optional pam_faildelay.so delay=300000\nauth required pam_deny.so\n" },
  });
  using tx = PamTransaction.start({ service: "slow", user: "alice", confdir: stack.confdir });
  const started = performance.now();
  const error = thrown(() => tx.authenticate(), PamError);
  const elapsed = performance.now() - started;
  assert.equal(error.code, ReturnCode.AUTH_ERR);
  assert.equal(error.failDelayMs, undefined);
  // A lower bound only: 300 ms minus libpam's 50% randomisation, with slack.
  assert.ok(elapsed >= 120, `libpam did not sleep (${elapsed} ms)`);
});

const hostile = hostileModule();

/**
 * Calls `attempt` at each of the `count` stack depths just below the JavaScript stack
 * limit, deepest first: every frame of the recursion catches the overflow of the one below
 * it, runs `attempt`, and passes the overflow up.
 */
function nearStackLimit(count: number, attempt: (i: number) => void): void {
  let i = 0;
  const descend = (): void => {
    try {
      descend();
    } catch {
      if (i >= count) return;
      attempt(i++);
      throw new RangeError("up");
    }
  };
  descend();
}

test(
  "near the stack limit a throwing handler never becomes success; a broken call fails the transaction",
  {
    skip: hostile.why ?? false,
  },
  () => {
    using stack = createTestStack({ services: { s: "" } });
    const log = join(stack.dir, "conv.log");
    writeFileSync(
      join(stack.confdir, "s"),
      `auth required ${hostile.path} mode=prompt log=${log}\naccount required pam_permit.so\n`,
    );
    const count = 1000;
    const spy = spyPamEnd();
    try {
      // At the limit the runtime may hand the module 0 before any code of the binding runs;
      // whether a sweep meets such a depth depends on the JIT, so sweep until one did.
      let broken = 0;
      for (let round = 0; round < 8 && broken === 0; round++) {
        writeFileSync(log, "");
        spy.statuses.length = 0;
        const txs = Array.from({ length: count }, (_, i) =>
          PamTransaction.start({
            service: "s",
            user: `u${i}`,
            confdir: stack.confdir,
            conversation: () => {
              throw new Error("no answer");
            },
          }));
        const outcomes: string[] = [];
        nearStackLimit(count, (i) => {
          try {
            txs[i].authenticate();
            outcomes[i] = "success";
          } catch (error) {
            outcomes[i] = (error as Error).name;
          }
        });
        const seen = new Map(
          readFileSync(log, "utf8").split("\n").filter(Boolean).map((line) =>
            line.split(" ") as [string, string]
          ),
        );
        const fooled = (i: number) => seen.get(`u${i}`)?.startsWith("0") ?? false;
        for (let i = 0; i < count; i++) {
          assert.notEqual(outcomes[i], "success", `round ${round}, attempt ${i}`);
          if (!fooled(i)) continue;
          // The module took the failed conversation for success: the transaction is failed.
          broken++;
          assert.throws(() => txs[i].acctMgmt(), /could not complete/, `attempt ${i}`);
        }
        for (const tx of txs) tx.end();
        for (let i = 0; i < count; i++) {
          if (fooled(i)) assert.equal(spy.statuses[i], ReturnCode.CONV_ERR, `pam_end of ${i}`);
        }
      }
      assert.ok(broken > 0, "the sweep never reached a conversation broken at the stack limit");
    } finally {
      spy.restore();
    }
  },
);

test("a binary prompt whose length header lies fails the conversation unread (a module in C)", {
  skip: hostile.why ?? false,
}, () => {
  using stack = createTestStack({ services: { s: "" } });
  const seen: PamMessage[] = [];
  const start = (claim: number) => {
    writeFileSync(
      join(stack.confdir, "s"),
      `auth required ${hostile.path} mode=binary claim=${claim}\n`,
    );
    return PamTransaction.start({
      service: "s",
      user: "alice",
      confdir: stack.confdir,
      conversation: (messages) => {
        seen.push(...messages);
        return [new Uint8Array([0, 0, 0, 5, 2])];
      },
    });
  };
  for (const claim of [100_000, 0x7fffffff, 3]) {
    using tx = start(claim);
    const error = thrown(() => tx.authenticate(), PamError, `claim ${claim}`);
    assert.equal(error.code, ReturnCode.CONV_ERR);
    assert.ok(error.cause instanceof RangeError, `claim ${claim}: ${error.cause}`);
  }
  assert.equal(seen.length, 0, "the handler was handed a packet past its length");
  using tx = start(9);
  tx.authenticate();
  assert.deepEqual(seen.map((m) => [...(m.data ?? [])]), [[0, 0, 0, 9, 1, 97, 98, 99, 100]]);
});

test("one answer limit: MAX_ANSWER_BYTES fails the call (RangeError cause); a password over it throws at once", () => {
  using stack = createTestStack({ services: { s: "auth required pam_stress.so\n" } });
  for (const answer of ["a".repeat(MAX_ANSWER_BYTES + 1), new Uint8Array(MAX_ANSWER_BYTES + 1)]) {
    using tx = PamTransaction.start({
      service: "s",
      user: "alice",
      confdir: stack.confdir,
      conversation: (messages) => messages.map(() => answer),
    });
    const error = thrown(() => tx.authenticate(), PamError);
    assert.equal(error.code, ReturnCode.CONV_ERR);
    assert.ok(error.cause instanceof RangeError);
  }
  assert.throws(() => passwordConversation("a".repeat(MAX_ANSWER_BYTES + 1)), RangeError);
  assert.throws(() => passwordConversation(new Uint8Array(MAX_ANSWER_BYTES + 1)), RangeError);
  using tx = PamTransaction.start({
    service: "s",
    user: "alice",
    confdir: stack.confdir,
    conversation: passwordConversation("a".repeat(MAX_ANSWER_BYTES)),
  });
  tx.authenticate();
});

test("the handler is called as a plain function: it never gets the transaction's slot as this", {
  skip: noMatrix,
}, () => {
  using stack = matrixStack();
  let self: unknown = "not called";
  using tx = PamTransaction.start({
    service: "web",
    user: "alice",
    confdir: stack.confdir,
    conversation: function (this: unknown, messages) {
      self = this;
      return messages.map(() => SECRET);
    },
  });
  tx.authenticate();
  assert.equal(self, undefined);
});
