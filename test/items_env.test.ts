// Items (every name, PAM_XAUTHDATA, the module-side view through
// libpam-wrapper's pam_get_items/pam_set_items) and the PAM environment
// (putEnv/getEnv/getEnvList, pam_env with its own conffile, pam_matrix).
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type ItemName,
  PamError,
  PamTransaction,
  passwordConversation,
  ReturnCode,
} from "../mod.ts";
import { native, type Pointer } from "../ffi/mod.ts";
import { openLibc } from "../src/_library.ts";
import { createTestStack } from "../src/testing.ts";
import { setCEnv, spyPam, thrown, wrapperModule } from "./_helpers.ts";
import { compileModule } from "./_modules.ts";

const noWrapper = wrapperModule("pam_get_items") && wrapperModule("pam_matrix")
  ? false
  : "libpam-wrapper is not installed (apt-get install libpam-wrapper)";

const permit = "auth required pam_permit.so\naccount required pam_permit.so\n" +
  "password required pam_permit.so\nsession required pam_permit.so\n";

const stringItems: [ItemName, string][] = [
  ["service", "other-service"],
  ["user", "bob"],
  ["tty", "/dev/pts/7"],
  ["rhost", "203.0.113.7"],
  ["ruser", "carol"],
  ["userPrompt", "Who goes there? "],
  ["xdisplay", ":1.0"],
  ["authtokType", "UNIX"],
];

test("items: every string item round-trips; unset items read as undefined", () => {
  // Changing the service makes libpam load that service's stack on the next call.
  using stack = createTestStack({ services: { svc: permit, "other-service": permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  assert.equal(tx.getItem("service"), "svc");
  assert.equal(tx.getItem("user"), "alice");
  for (const [name] of stringItems.slice(2)) assert.equal(tx.getItem(name), undefined, name);
  for (const [name, value] of stringItems) {
    tx.setItem(name, value);
    assert.equal(tx.getItem(name), value, name);
  }
  // Empty and non-ASCII values survive too.
  tx.setItem("tty", "");
  assert.equal(tx.getItem("tty"), "");
  tx.setItem("ruser", "zoë-😀");
  assert.equal(tx.getItem("ruser"), "zoë-😀");
  tx.authenticate(); // the changed items do not break the handle
});

test("items: a user set before any call is the one the modules see", () => {
  using stack = createTestStack({
    services: { s: "auth required pam_echo.so user=%u tty=%t rhost=%H ruser=%U\n" },
  });
  const seen: string[] = [];
  using tx = PamTransaction.start({
    service: "s",
    confdir: stack.confdir,
    conversation: (messages) => {
      seen.push(...messages.map((m) => m.text));
      return messages.map(() => null);
    },
  });
  assert.equal(tx.getItem("user"), undefined);
  tx.setItem("user", "dave");
  tx.setItem("tty", "tty9");
  tx.setItem("rhost", "host.example");
  tx.setItem("ruser", "erin");
  tx.authenticate();
  assert.deepEqual(seen, ["user=dave tty=tty9 rhost=host.example ruser=erin"]);
});

test("items: authtok and oldauthtok are refused to applications with PAM_BAD_ITEM", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  for (const name of ["authtok", "oldauthtok"] as const) {
    const get = thrown(() => tx.getItem(name), PamError, name);
    assert.equal(get.code, ReturnCode.BAD_ITEM);
    assert.equal(get.codeName, "PAM_BAD_ITEM");
    assert.equal(get.operation, "pam_get_item");
    const set = thrown(() => tx.setItem(name, "s3cr3t"), PamError, name);
    assert.equal(set.code, ReturnCode.BAD_ITEM);
    assert.equal(set.operation, "pam_set_item");
    assert.doesNotMatch(set.message, /s3cr3t/);
  }
  tx.acctMgmt(); // the refusal does not poison the handle
});

test("items: unknown names, non-string values and NUL bytes are TypeErrors before any C call", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  const spy = spyPam(["pam_get_item", "pam_set_item", "pam_set_item_pointer"]);
  try {
    for (const name of ["conv", "failDelay", "xauthdata", "USER", "", "toString", 2, null]) {
      assert.throws(() => tx.getItem(name as ItemName), TypeError, String(name));
      assert.throws(() => tx.setItem(name as ItemName, "x"), TypeError, String(name));
    }
    assert.throws(() => tx.setItem("tty", 42 as never), TypeError);
    assert.throws(() => tx.setItem("tty", undefined as never), TypeError);
    assert.throws(() => tx.setItem("user", "alice\0root"), TypeError);
    assert.throws(() => tx.setItem("rhost", "\0"), TypeError);
    assert.deepEqual(spy.calls, []);
  } finally {
    spy.restore();
  }
  assert.equal(tx.getItem("user"), "alice");
});

test("items: XAuthData round-trips, binary data included", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  assert.equal(tx.getXAuthData(), undefined);
  const data = new Uint8Array([0, 1, 2, 0, 255, 128, 0, 7, 9, 10, 11, 12, 13, 14, 15, 0]);
  tx.setXAuthData({ name: "MIT-MAGIC-COOKIE-1", data });
  assert.deepEqual(tx.getXAuthData(), { name: "MIT-MAGIC-COOKIE-1", data });
  assert.deepEqual([...data.slice(0, 3)], [0, 1, 2], "the caller's data is not modified");

  const big = crypto.getRandomValues(new Uint8Array(4096));
  tx.setXAuthData({ name: "XDM-AUTHORIZATION-1", data: big });
  assert.deepEqual(tx.getXAuthData(), { name: "XDM-AUTHORIZATION-1", data: big });

  tx.setXAuthData({ name: "", data: new Uint8Array() });
  assert.deepEqual(tx.getXAuthData(), { name: "", data: new Uint8Array() });
});

test("items: bad XAuthData is a TypeError before any C call", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  const spy = spyPam(["pam_set_item_pointer"]);
  try {
    const bad: unknown[] = [
      undefined,
      null,
      "MIT-MAGIC-COOKIE-1",
      { name: "x" },
      { name: "x", data: [1, 2, 3] },
      { name: "x", data: "abc" },
      { name: 1, data: new Uint8Array(1) },
      { name: "MIT\0x", data: new Uint8Array(1) },
    ];
    for (const value of bad) {
      assert.throws(() => tx.setXAuthData(value as never), TypeError, JSON.stringify(value));
    }
    assert.deepEqual(spy.calls, []);
  } finally {
    spy.restore();
  }
});

test(
  "items: modules see the application's items and the application sees modules' (pam_get_items, pam_set_items)",
  {
    skip: noWrapper,
  },
  () => {
    using stack = createTestStack({
      services: {
        s: "auth required {{pam_set_items}}\nauth required {{pam_matrix}} passdb={{passdb}}\n" +
          "auth required {{pam_get_items}}\n",
      },
      users: { alice: "pw" },
    });
    // pam_set_items copies PAM_* variables of the process environment into items.
    setCEnv("PAM_TTY", "tty-set-by-module");
    setCEnv("PAM_RUSER", "ruser-set-by-module");
    try {
      using tx = PamTransaction.start({
        service: "s",
        user: "alice",
        confdir: stack.confdir,
        conversation: passwordConversation("pw"),
      });
      tx.setItem("xdisplay", ":3");
      tx.setItem("userPrompt", "Login: ");
      tx.setItem("authtokType", "TEST");
      tx.setItem("rhost", "rhost.example");
      tx.authenticate();
      // pam_get_items exported every item it saw to the PAM environment.
      const env = tx.getEnvList();
      assert.equal(env.PAM_SERVICE, "s");
      assert.equal(env.PAM_USER, "alice");
      assert.equal(env.PAM_XDISPLAY, ":3");
      assert.equal(env.PAM_USER_PROMPT, "Login: ");
      assert.equal(env.PAM_AUTHTOK_TYPE, "TEST");
      assert.equal(env.PAM_RHOST, "rhost.example");
      assert.equal(env.PAM_TTY, "tty-set-by-module");
      assert.equal(env.PAM_RUSER, "ruser-set-by-module");
      assert.ok("PAM_AUTHTOK" in env, "modules can read PAM_AUTHTOK (pam_matrix set it)");
      // Items set by a module are visible to the application.
      assert.equal(tx.getItem("tty"), "tty-set-by-module");
      assert.equal(tx.getItem("ruser"), "ruser-set-by-module");
    } finally {
      setCEnv("PAM_TTY", "");
      setCEnv("PAM_RUSER", "");
    }
  },
);

test("env: putEnv sets, empties and deletes; getEnv and getEnvList read back", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  assert.deepEqual({ ...tx.getEnvList() }, {});
  assert.equal(tx.getEnv("LANG"), undefined);
  tx.putEnv("LANG=C.UTF-8");
  tx.putEnv("EQUATION=a=b=c");
  tx.putEnv("UNICODE=straße ✓");
  assert.equal(tx.getEnv("LANG"), "C.UTF-8");
  assert.equal(tx.getEnv("EQUATION"), "a=b=c");
  assert.equal(tx.getEnv("UNICODE"), "straße ✓");
  assert.deepEqual({ ...tx.getEnvList() }, {
    LANG: "C.UTF-8",
    EQUATION: "a=b=c",
    UNICODE: "straße ✓",
  });
  tx.putEnv("LANG=");
  assert.equal(tx.getEnv("LANG"), "");
  assert.equal(tx.getEnvList().LANG, "");
  tx.putEnv("LANG=en_GB.UTF-8"); // overwrite
  assert.equal(tx.getEnv("LANG"), "en_GB.UTF-8");
  tx.putEnv("LANG");
  assert.equal(tx.getEnv("LANG"), undefined);
  assert.deepEqual({ ...tx.getEnvList() }, { EQUATION: "a=b=c", UNICODE: "straße ✓" });
  // Deleting what is not there is libpam's PAM_BAD_ITEM.
  const error = thrown(() => tx.putEnv("LANG"), PamError);
  assert.equal(error.code, ReturnCode.BAD_ITEM);
  assert.equal(error.operation, "pam_putenv");
  // Many variables, and the list is a fresh copy every time.
  for (let i = 0; i < 200; i++) tx.putEnv(`V${i}=${"x".repeat(i)}`);
  const list = tx.getEnvList();
  assert.equal(Object.keys(list).length, 202);
  assert.equal(list.V199, "x".repeat(199));
  list.V0 = "changed";
  assert.equal(tx.getEnv("V0"), "");
});

test("env: a throw while getEnvList reads the list still wipes and frees every entry and the list", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  for (let i = 0; i < 5; i++) tx.putEnv(`SECRET${i}=value-${i}`);
  // Spies on the binding's own libc and on the adapter, not on libpam: the real calls run.
  const libc = openLibc() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = { free: libc.free, explicit_bzero: libc.explicit_bzero };
  const readCString = native.readCString;
  const freed: number[] = [];
  const wiped: number[] = [];
  let reads = 0;
  libc.free = (pointer) => {
    freed.push(native.addressOf(pointer as Pointer));
    return original.free(pointer);
  };
  libc.explicit_bzero = (pointer, size) => {
    wiped.push(native.addressOf(pointer as Pointer));
    return original.explicit_bzero(pointer, size);
  };
  // The second entry read throws, as a runtime can at its stack limit.
  (native as { readCString: typeof readCString }).readCString = (base, offset) => {
    if (++reads === 2) throw new RangeError("Maximum call stack size exceeded (simulated)");
    return readCString(base, offset);
  };
  try {
    assert.throws(() => tx.getEnvList(), /simulated/);
  } finally {
    Object.assign(libc, original);
    (native as { readCString: typeof readCString }).readCString = readCString;
  }
  // Five strings wiped and freed, then the array freed: nothing left to leak.
  assert.equal(wiped.length, 5);
  assert.equal(freed.length, 6);
  assert.deepEqual(freed.slice(0, 5), wiped);
  assert.equal(Object.keys(tx.getEnvList()).length, 5);
});

test("env: NUL bytes, missing names and wrong types are TypeErrors before any C call", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  const spy = spyPam(["pam_putenv", "pam_getenv"]);
  try {
    for (const entry of ["", "=value", "A=b\0c", "A\0=b", 42, null, undefined, ["A=b"]]) {
      assert.throws(() => tx.putEnv(entry as never), TypeError, JSON.stringify(entry));
    }
    for (const name of ["A\0B", 1, null, undefined]) {
      assert.throws(() => tx.getEnv(name as never), TypeError, JSON.stringify(name));
    }
    assert.deepEqual(spy.calls, []);
  } finally {
    spy.restore();
  }
  assert.deepEqual({ ...tx.getEnvList() }, {});
});

test("env: pam_env sets variables from its own conffile; pam_matrix sets and unsets its own", {
  skip: wrapperModule("pam_matrix") ? false : "libpam-wrapper is not installed",
}, () => {
  using stack = createTestStack({
    services: {
      s: "auth required {{pam_matrix}} passdb={{passdb}}\n" +
        "auth required pam_env.so readenv=0 user_readenv=0 conffile={{dir}}/pam_env.conf\n" +
        "session required pam_env.so readenv=0 user_readenv=0 conffile={{dir}}/pam_env.conf\n" +
        "session required {{pam_matrix}} passdb={{passdb}}\n",
    },
    users: { alice: "pw" },
  });
  writeFileSync(
    join(stack.dir, "pam_env.conf"),
    [
      "GREETING DEFAULT=hello",
      'SPACED DEFAULT="two words"',
      "REMOTE DEFAULT=${REMOTEHOST} OVERRIDE=@{PAM_RHOST}",
      "DERIVED DEFAULT=${GREETING}-world",
      "",
    ].join("\n"),
  );
  using tx = PamTransaction.start({
    service: "s",
    user: "alice",
    confdir: stack.confdir,
    conversation: passwordConversation("pw"),
  });
  tx.setItem("rhost", "client.example");
  tx.putEnv("REMOTEHOST=unused");
  tx.authenticate();
  tx.setCred("establish"); // pam_env sets its variables here, pam_matrix sets CRED
  assert.equal(tx.getEnv("GREETING"), "hello");
  assert.equal(tx.getEnv("SPACED"), "two words");
  assert.equal(tx.getEnv("REMOTE"), "client.example");
  assert.equal(tx.getEnv("DERIVED"), "hello-world");
  assert.equal(tx.getEnv("CRED"), "/tmp/alice");
  tx.openSession();
  assert.equal(tx.getEnv("HOMEDIR"), "/home/alice");
  const env = tx.getEnvList();
  assert.equal(env.HOMEDIR, "/home/alice");
  assert.equal(env.GREETING, "hello");
  tx.closeSession();
  assert.equal(tx.getEnv("HOMEDIR"), undefined);
  assert.equal("HOMEDIR" in tx.getEnvList(), false);
});

test("env: every name survives getEnvList(), __proto__ and constructor included", () => {
  using stack = createTestStack({ services: { svc: permit } });
  using tx = PamTransaction.start({ service: "svc", user: "alice", confdir: stack.confdir });
  tx.putEnv("__proto__=polluted");
  tx.putEnv("constructor=c");
  tx.putEnv("toString=t");
  const env = tx.getEnvList();
  assert.equal(Object.getPrototypeOf(env), null);
  assert.deepEqual(Object.entries(env), [["__proto__", "polluted"], ["constructor", "c"], [
    "toString",
    "t",
  ]]);
  assert.equal(Object.hasOwn(env, "__proto__"), true);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

// Sets PAM_XAUTHDATA with lengths that lie: mode=long says the 3-byte name is 4000 bytes long,
// mode=huge says the data is 2 MiB (and provides them).
const xauthSource = String.raw`
#include <security/pam_modules.h>
#include <stdlib.h>
#include <string.h>
int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
  int huge = argc > 0 && strcmp(argv[0], "mode=huge") == 0;
  struct pam_xauth_data x;
  x.name = "MIT";
  x.namelen = huge ? 3 : 4000;
  x.datalen = huge ? 2 * 1024 * 1024 : 4;
  x.data = calloc(1, x.datalen);
  if (!x.data) return PAM_BUF_ERR;
  int r = pam_set_item(pamh, PAM_XAUTHDATA, &x);
  free(x.data);
  return r;
}
int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) { return PAM_SUCCESS; }
`;

test("items: XAuthData a module set is read within its NUL and bounded lengths", (t) => {
  const mod = compileModule("xauth", xauthSource);
  if (!mod.path) return t.skip(mod.why);
  const stack = createTestStack({
    services: {
      long: `auth required ${mod.path} mode=long\n`,
      huge: `auth required ${mod.path} mode=huge\n`,
    },
  });
  try {
    {
      using tx = PamTransaction.start({ service: "long", user: "alice", confdir: stack.confdir });
      tx.authenticate();
      assert.deepEqual(tx.getXAuthData(), { name: "MIT", data: new Uint8Array(4) });
    }
    using tx = PamTransaction.start({ service: "huge", user: "alice", confdir: stack.confdir });
    tx.authenticate();
    assert.throws(() => tx.getXAuthData(), RangeError);
  } finally {
    stack.remove();
  }
});
