// @seed/pam/testing: stacks stay inside their confdir (@include, include and substack of the
// stack's own services), {{confdir}} and {{passdb}} per service, and cleanup.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { PamError, PamTransaction, passwordConversation } from "../mod.ts";
import { createTestStack, wrapperModule } from "../src/testing.ts";
import { thrown } from "./_helpers.ts";

const isDeno = "Deno" in globalThis;

test("createTestStack: @include, include and substack of its own services become absolute paths", () => {
  using stack = createTestStack({
    services: {
      // Names that also exist in /etc/pam.d on Debian: without the rewrite, libpam reads those.
      "common-auth": "auth required pam_deny.so\n",
      "common-account": "account required pam_deny.so\n",
      "common-session": "session required pam_deny.so\n",
      web: [
        "@include common-auth",
        "account   include   common-account # a comment",
        "-session [success=ok default=bad] substack common-session",
        "password  include  login", // not one of ours: left as written
        "auth required {{confdir}}/../no-module.so",
      ].join("\n") + "\n",
    },
  });
  const text = readFileSync(join(stack.confdir, "web"), "utf8").split("\n");
  assert.equal(text[0], `@include ${join(stack.confdir, "common-auth")}`);
  assert.equal(text[1], `account   include   ${join(stack.confdir, "common-account")} # a comment`);
  // A bracketed control with include is not PAM syntax; substack's own line is rewritten.
  assert.equal(text[3], "password  include  login");
  assert.equal(text[4], `auth required ${stack.confdir}/../no-module.so`);
});

test("createTestStack: the included files are the stack's, not /etc/pam.d's", () => {
  using stack = createTestStack({
    services: {
      "common-auth": "auth required pam_deny.so\n",
      "common-account": "account required pam_debug.so acct=acct_expired\n",
      "common-session": "session required pam_debug.so open_session=session_err\n",
      web: "@include common-auth\naccount include common-account\n" +
        "session substack common-session\n",
    },
  });
  // Debian's /etc/pam.d/common-auth would use pam_unix: not pam_deny's PAM_AUTH_ERR here.
  using tx = PamTransaction.start({ service: "web", user: "nobody", confdir: stack.confdir });
  assert.equal(thrown(() => tx.authenticate(), PamError).codeName, "PAM_AUTH_ERR");
  assert.equal(thrown(() => tx.acctMgmt(), PamError).codeName, "PAM_ACCT_EXPIRED");
  assert.equal(thrown(() => tx.openSession(), PamError).codeName, "PAM_SESSION_ERR");
});

test("createTestStack: {{passdb}} is the password file of the service it appears in", {
  skip: wrapperModule("pam_matrix") ? false : "libpam-wrapper is not installed (pam_matrix)",
}, () => {
  const matrix = "auth required {{pam_matrix}} passdb={{passdb}}\n";
  using stack = createTestStack({
    services: { a: matrix, b: matrix },
    users: { alice: "pa", bob: { password: "pb", service: "b" } },
  });
  assert.ok(readFileSync(join(stack.confdir, "a"), "utf8").includes(stack.passdb("a")));
  assert.ok(readFileSync(join(stack.confdir, "b"), "utf8").includes(stack.passdb("b")));
  assert.equal(readFileSync(stack.passdb("a"), "utf8"), "alice:pa:a\n");
  assert.equal(readFileSync(stack.passdb("b"), "utf8"), "alice:pa:b\nbob:pb:b\n");
  const check = (service: string, user: string, password: string) => {
    using tx = PamTransaction.start({
      service,
      user,
      confdir: stack.confdir,
      conversation: passwordConversation(password),
    });
    tx.authenticate();
  };
  check("b", "bob", "pb");
  check("a", "alice", "pa");
  assert.throws(() => check("a", "bob", "pb"), PamError, "bob is only in b's file");
});

test("createTestStack works in Deno without --allow-env (TMPDIR unread: /tmp)", {
  skip: isDeno ? false : "a Deno permission test",
}, () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const script = `
    import { createTestStack } from "${join(root, "src", "testing.ts")}";
    const stack = createTestStack({ services: { ok: "auth required pam_permit.so\\n" } });
    console.log(stack.dir);
    stack.remove();
  `;
  // `deno eval` grants everything; a script on stdin gets exactly the flags given.
  const r = spawnSync(
    process.execPath,
    ["run", "--no-prompt", "--allow-read", "--allow-write", "-"],
    { encoding: "utf8", input: script },
  );
  assert.equal(r.status, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.match(dir, /^\/tmp\/seed-pam-/);
  assert.ok(!existsSync(dir), "removed");
});
