// PamTransaction's calls: every call's success and failure codes (pam_debug
// returns the code we pick), PamError's fields, the status pam_end receives,
// flags reaching modules, bad arguments, start-up errors, use after end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Flag, PamError, PamTransaction, ReturnCode, returnCodeName } from "../mod.ts";
import { createTestStack } from "../src/testing.ts";
import { spyPam, spyPamEnd, strerror, thrown, wrapperModule } from "./_helpers.ts";
import { openPam } from "../src/_library.ts";
import { liveSlots } from "../src/_trampoline.ts";

const noMatrix = wrapperModule("pam_matrix") ? false : "libpam-wrapper is not installed";

type Call = {
  /** pam_debug's option for the stage this call runs. */
  option: string;
  operation: string;
  run: (tx: PamTransaction) => void;
};

const calls: Call[] = [
  { option: "auth", operation: "pam_authenticate", run: (tx) => tx.authenticate() },
  { option: "acct", operation: "pam_acct_mgmt", run: (tx) => tx.acctMgmt() },
  { option: "cred", operation: "pam_setcred", run: (tx) => tx.setCred("establish") },
  { option: "cred", operation: "pam_setcred", run: (tx) => tx.setCred("delete") },
  { option: "cred", operation: "pam_setcred", run: (tx) => tx.setCred("reinitialize") },
  { option: "cred", operation: "pam_setcred", run: (tx) => tx.setCred("refresh") },
  { option: "prechauthtok", operation: "pam_chauthtok", run: (tx) => tx.chauthtok() },
  { option: "chauthtok", operation: "pam_chauthtok", run: (tx) => tx.chauthtok() },
  { option: "open_session", operation: "pam_open_session", run: (tx) => tx.openSession() },
  { option: "close_session", operation: "pam_close_session", run: (tx) => tx.closeSession() },
];

// pam_debug's names for the codes (see `man pam_debug`) and the code each becomes.
const debugCodes: [string, number][] = [
  ["open_err", ReturnCode.OPEN_ERR],
  ["symbol_err", ReturnCode.SYMBOL_ERR],
  ["service_err", ReturnCode.SERVICE_ERR],
  ["system_err", ReturnCode.SYSTEM_ERR],
  ["buf_err", ReturnCode.BUF_ERR],
  ["perm_denied", ReturnCode.PERM_DENIED],
  ["auth_err", ReturnCode.AUTH_ERR],
  ["cred_insufficient", ReturnCode.CRED_INSUFFICIENT],
  ["authinfo_unavail", ReturnCode.AUTHINFO_UNAVAIL],
  ["user_unknown", ReturnCode.USER_UNKNOWN],
  ["maxtries", ReturnCode.MAXTRIES],
  ["new_authtok_reqd", ReturnCode.NEW_AUTHTOK_REQD],
  ["acct_expired", ReturnCode.ACCT_EXPIRED],
  ["session_err", ReturnCode.SESSION_ERR],
  ["cred_unavail", ReturnCode.CRED_UNAVAIL],
  ["cred_expired", ReturnCode.CRED_EXPIRED],
  ["cred_err", ReturnCode.CRED_ERR],
  ["no_module_data", ReturnCode.NO_MODULE_DATA],
  ["conv_err", ReturnCode.CONV_ERR],
  ["authtok_err", ReturnCode.AUTHTOK_ERR],
  ["authtok_recover_err", ReturnCode.AUTHTOK_RECOVERY_ERR],
  ["authtok_lock_busy", ReturnCode.AUTHTOK_LOCK_BUSY],
  ["authtok_disable_aging", ReturnCode.AUTHTOK_DISABLE_AGING],
  ["try_again", ReturnCode.TRY_AGAIN],
  ["abort", ReturnCode.ABORT],
  ["authtok_expired", ReturnCode.AUTHTOK_EXPIRED],
  ["module_unknown", ReturnCode.MODULE_UNKNOWN],
  ["bad_item", ReturnCode.BAD_ITEM],
  ["conv_again", ReturnCode.CONV_AGAIN],
  ["incomplete", ReturnCode.INCOMPLETE],
  // A stack where every module is ignored has decided nothing: libpam denies.
  ["ignore", ReturnCode.PERM_DENIED],
];

const allTypes = (args: string) =>
  ["auth", "account", "password", "session"].map((t) => `${t} required pam_debug.so ${args}\n`)
    .join("");

const quiet = () => [] as never[];

test("every call succeeds against a permissive stack and pam_end gets PAM_SUCCESS", () => {
  using stack = createTestStack({ services: { ok: allTypes("") } });
  const spy = spyPamEnd();
  try {
    const tx = PamTransaction.start({ service: "ok", user: "alice", confdir: stack.confdir });
    for (const call of calls) call.run(tx);
    tx.chauthtok({ changeExpiredAuthtok: true });
    assert.equal(tx.ended, false);
    tx.end();
    assert.equal(tx.ended, true);
    assert.deepEqual(spy.statuses, [ReturnCode.SUCCESS]);
  } finally {
    spy.restore();
  }
});

test("every call throws PamError with the module's code, and pam_end gets it", {
  timeout: 120_000,
}, () => {
  const services: Record<string, string> = {};
  for (const option of new Set(calls.map((c) => c.option))) {
    for (const [name] of debugCodes) services[`${option}-${name}`] = allTypes(`${option}=${name}`);
  }
  using stack = createTestStack({ services });
  const spy = spyPamEnd();
  try {
    for (const call of calls) {
      for (const [name, code] of debugCodes) {
        const label = `${call.operation} (${call.option}=${name})`;
        const tx = PamTransaction.start({
          service: `${call.option}-${name}`,
          user: "alice",
          confdir: stack.confdir,
          // pam_debug reports what it does as text info: collect it.
          conversation: (messages) => messages.map(() => null),
        });
        const error = thrown(() => call.run(tx), PamError, label);
        assert.ok(error instanceof Error);
        assert.equal(error.name, "PamError");
        assert.equal(error.code, code, label);
        assert.equal(error.codeName, returnCodeName(code), label);
        assert.equal(
          error.codeName,
          `PAM_${Object.entries(ReturnCode).find(([, v]) => v === code)![0]}`,
        );
        assert.equal(error.operation, call.operation, label);
        assert.equal(
          error.message,
          `${call.operation} failed: ${strerror(code)} (${error.codeName})`,
          label,
        );
        assert.equal(error.cause, undefined);
        assert.equal(error.failDelayMs, undefined);
        assert.ok(Object.isFrozen(error.messages));
        spy.statuses.length = 0;
        tx.end();
        assert.deepEqual(spy.statuses, [code], `${label}: pam_end status`);
      }
    }
  } finally {
    spy.restore();
  }
});

test("PamError.messages holds the module's info text of that call only", () => {
  using stack = createTestStack({
    services: { s: "auth required pam_echo.so first\nauth required pam_debug.so auth=auth_err\n" },
  });
  using tx = PamTransaction.start({
    service: "s",
    user: "alice",
    confdir: stack.confdir,
    conversation: (m) => m.map(() => null),
  });
  for (let i = 0; i < 2; i++) {
    const error = thrown(() => tx.authenticate(), PamError);
    assert.deepEqual(error.messages.map((m) => m.text), ["first", "auth=auth_err"]);
  }
});

test("end() passes the status of the last call, whichever it was, and silent adds PAM_DATA_SILENT", () => {
  using stack = createTestStack({
    services: {
      s: "auth required pam_debug.so auth=auth_err\naccount required pam_permit.so\n" +
        "session required pam_debug.so open_session=session_err\n",
    },
  });
  const spy = spyPamEnd();
  try {
    const start = () =>
      PamTransaction.start({
        service: "s",
        user: "alice",
        confdir: stack.confdir,
        conversation: quiet,
      });

    let tx = start();
    assert.throws(() => tx.authenticate(), PamError);
    tx.acctMgmt(); // a later success replaces the failure
    tx.end();

    tx = start();
    tx.acctMgmt();
    assert.throws(() => tx.openSession(), PamError);
    tx.end({ silent: true });
    tx.end({ silent: true }); // idempotent: pam_end runs once

    tx = start();
    tx.end({ silent: false });
    assert.deepEqual(spy.statuses, [
      ReturnCode.SUCCESS,
      ReturnCode.SESSION_ERR | Flag.DATA_SILENT,
      ReturnCode.SUCCESS,
    ]);
  } finally {
    spy.restore();
  }
});

// pam_setcred and pam_close_session are left out: pam_echo ignores them and pam_debug ignores
// PAM_SILENT. The next test checks the flag bits of every call at the binding instead.
test("PAM_SILENT reaches the modules of every call (pam_echo stays quiet)", () => {
  using stack = createTestStack({
    services: {
      echo: ["auth", "account", "password", "session"]
        .map((t) => `${t} required pam_echo.so ${t}-says-%u\n${t} required pam_permit.so\n`)
        .join(""),
    },
  });
  const seen: string[] = [];
  using tx = PamTransaction.start({
    service: "echo",
    user: "alice",
    confdir: stack.confdir,
    conversation: (messages) => {
      seen.push(...messages.map((m) => m.text));
      return messages.map(() => null);
    },
  });
  const run: [string, (silent: boolean) => void][] = [
    ["auth", (silent) => tx.authenticate({ silent })],
    ["account", (silent) => tx.acctMgmt({ silent })],
    ["password", (silent) => tx.chauthtok({ silent })],
    ["session", (silent) => tx.openSession({ silent })],
  ];
  for (const [type, call] of run) {
    seen.length = 0;
    call(true);
    assert.deepEqual(seen, [], `${type}: silent call sent ${JSON.stringify(seen)}`);
    call(false);
    assert.ok(seen.length >= 1, `${type}: no message without silent`);
    assert.ok(seen.every((t) => t === `${type}-says-alice`), JSON.stringify(seen));
  }
});

test("each option and setCred action becomes its Linux-PAM flag bit", () => {
  using stack = createTestStack({ services: { ok: allTypes("") } });
  const names = [
    "pam_authenticate",
    "pam_acct_mgmt",
    "pam_setcred",
    "pam_chauthtok",
    "pam_open_session",
    "pam_close_session",
  ];
  const spy = spyPam(names);
  try {
    using tx = PamTransaction.start({ service: "ok", user: "alice", confdir: stack.confdir });
    tx.authenticate();
    tx.authenticate({ silent: true, disallowNullAuthtok: true });
    tx.acctMgmt({ disallowNullAuthtok: true });
    tx.setCred("establish");
    tx.setCred("delete", { silent: true });
    tx.setCred("reinitialize");
    tx.setCred("refresh");
    tx.chauthtok({ changeExpiredAuthtok: true });
    tx.chauthtok({ silent: true, changeExpiredAuthtok: false });
    tx.openSession({ silent: true });
    tx.closeSession({ silent: false });
    assert.deepEqual(spy.calls, [
      ["pam_authenticate", 0],
      ["pam_authenticate", Flag.SILENT | Flag.DISALLOW_NULL_AUTHTOK],
      ["pam_acct_mgmt", Flag.DISALLOW_NULL_AUTHTOK],
      ["pam_setcred", Flag.ESTABLISH_CRED],
      ["pam_setcred", Flag.DELETE_CRED | Flag.SILENT],
      ["pam_setcred", Flag.REINITIALIZE_CRED],
      ["pam_setcred", Flag.REFRESH_CRED],
      ["pam_chauthtok", Flag.CHANGE_EXPIRED_AUTHTOK],
      ["pam_chauthtok", Flag.SILENT],
      ["pam_open_session", Flag.SILENT],
      ["pam_close_session", 0],
    ]);
    assert.deepEqual(
      [Flag.SILENT, Flag.DISALLOW_NULL_AUTHTOK, Flag.ESTABLISH_CRED, Flag.DELETE_CRED],
      [0x8000, 0x0001, 0x0002, 0x0004],
    );
    assert.deepEqual(
      [Flag.REINITIALIZE_CRED, Flag.REFRESH_CRED, Flag.CHANGE_EXPIRED_AUTHTOK, Flag.DATA_SILENT],
      [0x0008, 0x0010, 0x0020, 0x40000000],
    );
  } finally {
    spy.restore();
  }
});

test("PAM_DISALLOW_NULL_AUTHTOK reaches the module (pam_stress refuses an empty answer)", () => {
  using stack = createTestStack({ services: { stress: "auth required pam_stress.so\n" } });
  const start = () =>
    PamTransaction.start({
      service: "stress",
      user: "alice",
      confdir: stack.confdir,
      conversation: (messages) => messages.map(() => null),
    });
  {
    using tx = start();
    tx.authenticate();
    tx.authenticate({ disallowNullAuthtok: false });
  }
  {
    using tx = start();
    const error = thrown(() => tx.authenticate({ disallowNullAuthtok: true }), PamError);
    assert.equal(error.code, ReturnCode.AUTH_ERR);
  }
});

test("bad flags and bad setCred actions are TypeErrors before any C call", () => {
  using stack = createTestStack({ services: { ok: allTypes("") } });
  const spy = spyPamEnd();
  try {
    using tx = PamTransaction.start({ service: "ok", user: "alice", confdir: stack.confdir });
    const bad: [string, () => void][] = [
      ["unknown option", () => tx.authenticate({ quiet: true } as never)],
      [
        "chauthtok flag on authenticate",
        () => tx.authenticate({ changeExpiredAuthtok: true } as never),
      ],
      [
        "disallowNullAuthtok on openSession",
        () => tx.openSession({ disallowNullAuthtok: true } as never),
      ],
      ["number flag value", () => tx.acctMgmt({ silent: 1 } as never)],
      ["string flag value", () => tx.chauthtok({ changeExpiredAuthtok: "yes" } as never)],
      ["flags as number", () => tx.authenticate(0x8000 as never)],
      ["flags as string", () => tx.closeSession("silent" as never)],
      ["flags as array", () => tx.openSession([] as never)],
      ["flags as null", () => tx.acctMgmt(null as never)],
      ["setCred without action", () => (tx.setCred as (a?: unknown) => void)()],
      ["setCred unknown action", () => tx.setCred("create" as never)],
      ["setCred numeric action", () => tx.setCred(Flag.ESTABLISH_CRED as never)],
      ["setCred inherited key", () => tx.setCred("toString" as never)],
      ["setCred bad flags", () => tx.setCred("establish", { disallowNullAuthtok: true } as never)],
      ["end bad options", () => tx.end({ force: true } as never)],
    ];
    for (const [label, call] of bad) assert.throws(call, TypeError, label);
    assert.equal(tx.ended, false, "a bad end() must not end the transaction");
    tx.authenticate({ silent: undefined }); // undefined values are allowed
    assert.deepEqual(spy.statuses, []);
  } finally {
    spy.restore();
  }
});

test("start(): NUL bytes and wrong types are TypeErrors before any C call", () => {
  using stack = createTestStack({ services: { ok: allTypes("") } });
  const confdir = stack.confdir;
  const bad: [string, unknown][] = [
    ["no options", undefined],
    ["options as string", "ok"],
    ["missing service", { user: "alice", confdir }],
    ["numeric service", { service: 42, user: "alice", confdir }],
    ["object service", { service: { toString: () => "ok" }, confdir }],
    ["NUL in service", { service: "ok\0evil", user: "alice", confdir }],
    ["NUL in user", { service: "ok", user: "alice\0root", confdir }],
    ["numeric user", { service: "ok", user: 0, confdir }],
    ["NUL in confdir", { service: "ok", user: "alice", confdir: `${confdir}\0/etc/pam.d` }],
    ["NUL in library", { service: "ok", confdir, library: "libpam.so.0\0x" }],
    ["conversation not a function", { service: "ok", confdir, conversation: ["pw"] }],
    ["failDelay unknown", { service: "ok", confdir, failDelay: "sleep" }],
  ];
  const spy = spyPam(["pam_start", "pam_start_confdir"]);
  try {
    for (const [label, options] of bad) {
      assert.throws(() => PamTransaction.start(options as never), TypeError, label);
    }
    assert.deepEqual(spy.calls, [], "libpam was called despite bad input");
  } finally {
    spy.restore();
  }
});

test("start(): a missing library is a clear Error; a missing service is a PamError", () => {
  assert.throws(
    () => PamTransaction.start({ service: "ok", library: "/nonexistent/libpam.so.0" }),
    (error: unknown) =>
      error instanceof Error && !(error instanceof TypeError) &&
      /cannot load the PAM library "\/nonexistent\/libpam.so.0"/.test(error.message),
  );
  using stack = createTestStack({ services: { present: allTypes("") } });
  const error = thrown(
    () => PamTransaction.start({ service: "absent", user: "alice", confdir: stack.confdir }),
    PamError,
  );
  // libpam finds neither the service nor "other" in confdir and refuses to start.
  assert.equal(error.operation, "pam_start_confdir");
  assert.equal(error.code, ReturnCode.ABORT);
  assert.match(error.message, /"absent"/);
});

test("use after end: every method throws a clear Error; end() and dispose are idempotent", () => {
  using stack = createTestStack({ services: { ok: allTypes("") } });
  const tx = PamTransaction.start({ service: "ok", user: "alice", confdir: stack.confdir });
  assert.equal(tx.ended, false);
  tx.end();
  assert.equal(tx.ended, true);
  tx.end();
  tx[Symbol.dispose]();
  assert.equal(tx.ended, true);
  const after: [string, () => unknown][] = [
    ["authenticate", () => tx.authenticate()],
    ["acctMgmt", () => tx.acctMgmt()],
    ["setCred", () => tx.setCred("establish")],
    ["chauthtok", () => tx.chauthtok()],
    ["openSession", () => tx.openSession()],
    ["closeSession", () => tx.closeSession()],
    ["getItem", () => tx.getItem("user")],
    ["setItem", () => tx.setItem("tty", "tty1")],
    ["getXAuthData", () => tx.getXAuthData()],
    ["setXAuthData", () => tx.setXAuthData({ name: "x", data: new Uint8Array(1) })],
    ["getEnv", () => tx.getEnv("PATH")],
    ["putEnv", () => tx.putEnv("A=b")],
    ["getEnvList", () => tx.getEnvList()],
  ];
  for (const [name, call] of after) {
    assert.throws(
      call,
      (e: unknown) => e instanceof Error && !(e instanceof PamError) && /has ended/.test(e.message),
      name,
    );
  }
});

test("`using` ends the transaction at the end of the block, also when it throws", () => {
  using stack = createTestStack({
    services: { ok: allTypes(""), deny: "auth required pam_deny.so\n" },
  });
  const spy = spyPamEnd();
  try {
    let kept: PamTransaction | undefined;
    {
      using tx = PamTransaction.start({ service: "ok", user: "alice", confdir: stack.confdir });
      kept = tx;
      tx.authenticate();
      assert.equal(tx.ended, false);
    }
    assert.equal(kept.ended, true);

    assert.throws(() => {
      using tx = PamTransaction.start({ service: "deny", user: "alice", confdir: stack.confdir });
      kept = tx;
      tx.authenticate();
    }, PamError);
    assert.equal(kept.ended, true);
    assert.deepEqual(spy.statuses, [ReturnCode.SUCCESS, ReturnCode.AUTH_ERR]);
  } finally {
    spy.restore();
  }
});

test("pam_deny and pam_permit give AUTH_ERR and success on each stage", () => {
  using stack = createTestStack({
    services: {
      deny: ["auth", "account", "password", "session"]
        .map((t) => `${t} required pam_deny.so\n`).join(""),
    },
  });
  using tx = PamTransaction.start({ service: "deny", user: "alice", confdir: stack.confdir });
  const expect: [string, () => void, number][] = [
    ["pam_authenticate", () => tx.authenticate(), ReturnCode.AUTH_ERR],
    ["pam_acct_mgmt", () => tx.acctMgmt(), ReturnCode.AUTH_ERR],
    ["pam_setcred", () => tx.setCred("establish"), ReturnCode.CRED_ERR],
    ["pam_chauthtok", () => tx.chauthtok(), ReturnCode.AUTHTOK_ERR],
    ["pam_open_session", () => tx.openSession(), ReturnCode.SESSION_ERR],
    ["pam_close_session", () => tx.closeSession(), ReturnCode.SESSION_ERR],
  ];
  for (const [operation, call, code] of expect) {
    const error = thrown(call, PamError);
    assert.equal(error.operation, operation);
    assert.equal(error.codeName, returnCodeName(code), operation);
  }
});

test("inside a conversation: items can be read, but end() and nested calls throw a clear Error", () => {
  using stack = createTestStack({
    services: { s: "auth required pam_echo.so before\nauth required pam_stress.so\n" },
  });
  const spy = spyPamEnd();
  try {
    let action: () => unknown = () => {};
    let seenUser: string | undefined;
    const tx: PamTransaction = PamTransaction.start({
      service: "s",
      user: "alice",
      confdir: stack.confdir,
      conversation: (messages) => {
        if (messages.some((m) => m.style === 1)) {
          seenUser = tx.getItem("user"); // reading items mid-call is fine
          action();
        }
        return messages.map(() => "pw");
      },
    });
    tx.authenticate();
    assert.equal(seenUser, "alice");

    const nested: [string, () => unknown][] = [
      ["end", () => tx.end()],
      ["dispose", () => tx[Symbol.dispose]()],
      ["authenticate", () => tx.authenticate()],
      ["acctMgmt", () => tx.acctMgmt()],
      ["setCred", () => tx.setCred("establish")],
      ["openSession", () => tx.openSession()],
    ];
    for (const [name, call] of nested) {
      action = call;
      const error = thrown(() => tx.authenticate(), PamError, name);
      assert.equal(error.code, ReturnCode.CONV_ERR, name);
      assert.ok(error.cause instanceof Error && !(error.cause instanceof PamError), name);
      assert.match(error.cause.message, /inside the conversation of pam_authenticate/, name);
      // The outer call's messages survive the refused nested call.
      assert.deepEqual(error.messages.map((m) => m.text), ["before"], name);
      assert.equal(tx.ended, false, name);
    }
    assert.deepEqual(spy.statuses, [], "pam_end must not have run yet");
    action = () => {};
    tx.authenticate();
    tx.end();
    assert.equal(tx.ended, true);
    assert.deepEqual(spy.statuses, [ReturnCode.SUCCESS]);
  } finally {
    spy.restore();
  }
});

test(
  "inside a conversation: every method that changes the handle throws at once; the tokens are refused",
  {
    skip: noMatrix,
  },
  () => {
    using stack = createTestStack({
      services: { web: "auth required {{pam_matrix}} passdb={{passdb}}\n" },
      users: { alice: "secret" },
    });
    let action: (tx: PamTransaction) => unknown = () => {};
    let refusal: unknown;
    const start = () => {
      const tx: PamTransaction = PamTransaction.start({
        service: "web",
        user: "alice",
        confdir: stack.confdir,
        conversation: (messages) => {
          try {
            action(tx);
          } catch (error) {
            refusal = error;
          }
          return messages.map(() => "secret");
        },
      });
      return tx;
    };
    const changing: [string, (tx: PamTransaction) => unknown][] = [
      ["setItem", (tx) => tx.setItem("user", "mallory")],
      ["setItem tty", (tx) => tx.setItem("tty", "/dev/pts/9")],
      ["putEnv", (tx) => tx.putEnv("INSIDE=1")],
      ["setXAuthData", (tx) => tx.setXAuthData({ name: "x", data: new Uint8Array([1]) })],
    ];
    for (const [name, call] of changing) {
      using tx = start();
      action = call;
      refusal = undefined;
      tx.authenticate(); // the handler caught the refusal and answered
      assert.ok(refusal instanceof Error && !(refusal instanceof PamError), name);
      assert.match(refusal.message, /inside the conversation of pam_authenticate/, name);
      assert.equal(tx.getItem("user"), "alice", name);
      assert.equal(tx.getItem("tty"), undefined, name);
      assert.equal(tx.getEnv("INSIDE"), undefined, name);
    }
    // The tokens: refused inside (where libpam itself would allow them) as outside.
    for (const item of ["authtok", "oldauthtok"] as const) {
      for (
        const call of [
          (tx: PamTransaction) => tx.getItem(item),
          (tx: PamTransaction) => tx.setItem(item, "x"),
        ]
      ) {
        using tx = start();
        action = call;
        refusal = undefined;
        tx.authenticate();
        assert.ok(refusal instanceof PamError, `${item}: ${refusal}`);
        assert.equal(refusal.code, ReturnCode.BAD_ITEM, item);
      }
    }
    // Reads work inside.
    using tx = start();
    let read: unknown[] = [];
    action = (
      t,
    ) => (read = [
      t.getItem("user"),
      t.getEnv("NONE"),
      Object.keys(t.getEnvList()),
      t.getXAuthData(),
    ]);
    tx.authenticate();
    assert.deepEqual(read, ["alice", undefined, [], undefined]);
  },
);

test("start: a throw around pam_start (as at the stack limit) leaves no conversation slot behind", () => {
  using stack = createTestStack({ services: { ok: "auth required pam_permit.so\n" } });
  const pam = openPam() as unknown as Record<string, unknown>;
  const original = pam.pam_start_confdir;
  const before = liveSlots();
  pam.pam_start_confdir = () => {
    throw new RangeError("Maximum call stack size exceeded");
  };
  try {
    assert.throws(
      () => PamTransaction.start({ service: "ok", confdir: stack.confdir }),
      RangeError,
    );
  } finally {
    pam.pam_start_confdir = original;
  }
  assert.equal(liveSlots(), before);
});
