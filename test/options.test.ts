// Silent mistakes made loud: unknown option keys on every public options object, an empty
// service, a missing confdir or service file, and passwordConversation at a new-password prompt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  AsyncPamTransaction,
  authenticate,
  keepModulesLoaded,
  PamError,
  type PamMessage,
  PamTransaction,
  passwordConversation,
  ReturnCode,
} from "../mod.ts";
import { terminalConversation } from "../src/cli/mod.ts";
import { isNewPasswordNeeded, NewPasswordNeeded } from "../src/_new_password.ts";
import { createTestStack } from "../src/testing.ts";
import { SECRET, thrown } from "./_helpers.ts";

const permit = "auth required pam_permit.so\naccount required pam_permit.so\n" +
  "password required pam_permit.so\nsession required pam_permit.so\n";

/** Asserts `error` is the unknown-key TypeError for `key`, listing `known`. */
function assertUnknownKey(error: unknown, key: string, known: string[]): void {
  assert.ok(error instanceof TypeError, `expected a TypeError, got ${error}`);
  assert.match(error.message, new RegExp(`has no option "${key}"`));
  for (const name of known) assert.match(error.message, new RegExp(`\\b${name}\\b`));
}

test("unknown keys: PamTransaction.start names the key and lists the known ones", () => {
  using stack = createTestStack({ services: { ok: permit } });
  const error = thrown(
    () =>
      PamTransaction.start(
        { service: "ok", confdir: stack.confdir, password: SECRET } as never,
      ),
    TypeError,
  );
  assertUnknownKey(error, "password", ["service", "user", "conversation", "confdir", "library"]);
  assert.doesNotMatch(error.message, new RegExp(SECRET), "the value never shows");
  // `undefined` values are fine (exactOptionalPropertyTypes callers pass them).
  using tx = PamTransaction.start({
    service: "ok",
    confdir: stack.confdir,
    user: "alice",
    conversation: undefined,
    library: undefined,
    failDelay: undefined,
  });
  tx.authenticate({ silent: undefined });
});

test("unknown keys: an own __proto__ key (from JSON) is an unknown key, not a prototype", () => {
  using stack = createTestStack({ services: { ok: permit } });
  const options = JSON.parse(
    `{"service":"ok","confdir":${JSON.stringify(stack.confdir)},` +
      `"__proto__":{"user":"root"}}`,
  );
  const error = thrown(() => PamTransaction.start(options), TypeError);
  assert.match(error.message, /__proto__/);
});

test("unknown keys: the async start, authenticate(), keepModulesLoaded and the flags objects", async () => {
  using stack = createTestStack({ services: { ok: permit } });
  const confdir = stack.confdir;
  await assert.rejects(
    AsyncPamTransaction.start({ service: "ok", confdir, timeout: 5 } as never),
    (e) => (assertUnknownKey(e, "timeout", ["signal", "conversationTimeoutMs"]), true),
  );
  await assert.rejects(
    authenticate({ service: "ok", confdir, user: "a", password: "p", conversation: 1 } as never),
    (e) => (assertUnknownKey(e, "conversation", ["password", "onMessage", "rhost"]), true),
  );
  assertUnknownKey(
    thrown(() => keepModulesLoaded({ service: "ok", confdir, user: "a" } as never), TypeError),
    "user",
    ["service", "confdir", "library"],
  );
  using tx = PamTransaction.start({ service: "ok", confdir });
  assertUnknownKey(
    thrown(() => tx.authenticate({ quiet: true } as never), TypeError),
    "quiet",
    ["silent", "disallowNullAuthtok"],
  );
  await using atx = await AsyncPamTransaction.start({ service: "ok", confdir, user: "a" });
  await assert.rejects(
    atx.chauthtok({ changeExpired: true } as never),
    (e) => (assertUnknownKey(e, "changeExpired", ["silent", "changeExpiredAuthtok"]), true),
  );
  await assert.rejects(atx.end({ force: true } as never), TypeError);
});

test("unknown keys: passwordConversation, terminalConversation and createTestStack", () => {
  assertUnknownKey(
    thrown(() => passwordConversation("pw", { onmessage: () => {} } as never), TypeError),
    "onmessage",
    ["onMessage"],
  );
  assertUnknownKey(
    thrown(() => terminalConversation({ output: 1 } as never), TypeError),
    "output",
    ["input", "infoOutput", "errorOutput", "onMessage"],
  );
  assertUnknownKey(
    thrown(() => createTestStack({ services: {}, user: {} } as never), TypeError),
    "user",
    ["services", "users"],
  );
  assertUnknownKey(
    thrown(
      () =>
        createTestStack({ services: {}, users: { a: { password: "p", services: "x" } } } as never),
      TypeError,
    ),
    "services",
    ["password", "service"],
  );
});

test("an empty service is a TypeError before pam_start, on both APIs", async () => {
  for (const start of [() => PamTransaction.start({ service: "" })]) {
    assert.match(thrown(start, TypeError).message, /service must not be empty/);
  }
  await assert.rejects(AsyncPamTransaction.start({ service: "" }), /service must not be empty/);
  await assert.rejects(
    authenticate({ service: "", user: "a", password: "p" }),
    /service must not be empty/,
  );
  assert.throws(() => keepModulesLoaded({ service: "" }), /service must not be empty/);
});

test("a missing confdir or service file: the PamError keeps libpam's code and names the path", async () => {
  using stack = createTestStack({ services: { ok: permit } });
  const gone = join(stack.dir, "no-such-dir");
  const noDir = thrown(() => PamTransaction.start({ service: "ok", confdir: gone }), PamError);
  assert.equal(noDir.code, ReturnCode.ABORT);
  assert.equal(noDir.codeName, "PAM_ABORT");
  assert.ok(noDir.message.includes(`confdir: ${gone} does not exist`), noDir.message);

  const noFile = thrown(
    () => PamTransaction.start({ service: "nope", confdir: stack.confdir }),
    PamError,
  );
  assert.equal(noFile.code, ReturnCode.ABORT);
  assert.ok(
    noFile.message.includes(`service file: ${join(stack.confdir, "nope")} does not exist`),
    noFile.message,
  );
  // The worker rebuilds the same error on the main thread.
  await assert.rejects(
    AsyncPamTransaction.start({ service: "nope", confdir: stack.confdir }),
    (e) => e instanceof PamError && e.message.includes(join(stack.confdir, "nope")),
  );
  // With an "other" file libpam falls back to it, as in /etc/pam.d: no error at all.
  using withOther = createTestStack({ services: { other: permit } });
  using tx = PamTransaction.start({ service: "nope", user: "a", confdir: withOther.confdir });
  tx.authenticate();
});

// pam_stress asks for the current password, then a new one twice, as pam_unix does.
const stress = "auth required pam_stress.so\naccount required pam_stress.so\n" +
  "password required pam_stress.so\n";

test("passwordConversation fails a new-password prompt instead of answering the old password", () => {
  using stack = createTestStack({ services: { stress } });
  const seen: PamMessage[] = [];
  const inner = passwordConversation(SECRET);
  using tx = PamTransaction.start({
    service: "stress",
    user: "alice",
    confdir: stack.confdir,
    conversation: (messages) => (seen.push(...messages), inner(messages)),
  });
  const error = thrown(() => tx.chauthtok(), PamError);
  assert.notEqual(error.code, ReturnCode.SUCCESS);
  assert.ok(error.cause instanceof NewPasswordNeeded, `cause: ${error.cause}`);
  assert.ok(isNewPasswordNeeded(error.cause));
  assert.ok(!isNewPasswordNeeded(new Error("other")));
  assert.match((error.cause as Error).message, /password has expired/);
  assert.match((error.cause as Error).message, /conversation that can ask for a new one/);
  assert.doesNotMatch(String(error.cause) + error.message, new RegExp(SECRET));
  assert.ok(seen.some((m) => /new/i.test(m.text)), JSON.stringify(seen));
  // The old-password prompts it may answer still get the password: authentication works.
  tx.authenticate();
});

test("passwordConversation's new-password refusal reaches an async handler's PamError as the very object", async () => {
  using stack = createTestStack({ services: { stress } });
  await using tx = await AsyncPamTransaction.start({
    service: "stress",
    user: "alice",
    confdir: stack.confdir,
    conversation: passwordConversation(SECRET),
  });
  await assert.rejects(
    tx.chauthtok(),
    (e) => e instanceof PamError && isNewPasswordNeeded(e.cause),
  );
});
