// The web login example's handler in-process (no browser, both runtimes),
// against the shipped demo stack: cookies, CSRF, conversation timeout, the
// browser going away, the fail delay per client, shutdown, and that no answer
// ever reaches a page or the log.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createWebLogin, type WebLogin } from "../examples/web-login/handler.ts";
import { createDemoStack, type DemoStack } from "../examples/web-login/stack.ts";
import { wrapperModule } from "../src/testing.ts";

const skip = wrapperModule("pam_matrix") ? false : "needs Debian's libpam-wrapper (pam_matrix)";
const base = "http://127.0.0.1:8000";

interface Setup {
  web: WebLogin;
  stack: DemoStack;
  logs: string[];
  [Symbol.asyncDispose](): Promise<void>;
}

function setup(options: { conversationTimeoutMs?: number; idleTimeoutMs?: number } = {}): Setup {
  const stack = createDemoStack();
  const logs: string[] = [];
  const web = createWebLogin({
    service: stack.service,
    confdir: stack.confdir,
    log: (line) => logs.push(line),
    ...options,
  });
  return {
    web,
    stack,
    logs,
    async [Symbol.asyncDispose]() {
      await web.close();
      stack.remove();
    },
  };
}

/** A cookie jar and the last page: what a browser keeps between requests. */
class Client {
  cookie = "";
  page = "";
  readonly pages: string[] = [];
  constructor(readonly web: WebLogin, readonly address: string) {}

  async get(): Promise<string> {
    const response = await this.web.handle(
      new Request(`${base}/`, { headers: this.cookie ? { cookie: this.cookie } : {} }),
      this.address,
    );
    const set = response.headers.get("set-cookie");
    if (set) this.cookie = set.split(";")[0];
    this.page = await response.text();
    this.pages.push(this.page);
    return this.page;
  }

  get csrf(): string {
    return this.page.match(/name="csrf" value="([^"]+)"/)?.[1] ?? "";
  }

  async post(path: string, fields: Record<string, string>, headers = {}): Promise<Response> {
    return await this.web.handle(
      new Request(`${base}${path}`, {
        method: "POST",
        headers: {
          cookie: this.cookie,
          origin: base,
          "content-type": "application/x-www-form-urlencoded",
          ...headers,
        },
        body: new URLSearchParams({ csrf: this.csrf, ...fields }),
      }),
      this.address,
    );
  }

  /** Posts the user name, then answers each prompt page in turn; returns the final page. */
  async login(user: string, ...answers: string[][]): Promise<string> {
    await this.get();
    assert.equal((await this.post("/login", { user })).status, 303);
    for (const values of answers) {
      await this.get();
      const names = [...this.page.matchAll(/name="(answer-\d+)"/g)].map((m) => m[1]);
      assert.equal(names.length, values.length, `prompts on the page:\n${this.page}`);
      const step = this.page.match(/name="step" value="(\d+)"/)![1];
      const fields = Object.fromEntries(names.map((name, i) => [name, values[i]]));
      assert.equal((await this.post("/answer", { step, ...fields })).status, 303);
    }
    return await this.get();
  }
}

function result(page: string): string | undefined {
  return page.match(/data-pam-result="(\w+)"/)?.[1];
}

function sessionLog(stack: DemoStack): string[] {
  if (!existsSync(stack.log)) return [];
  return readFileSync(stack.log, "utf8").split("\n").filter((l) => l && !l.startsWith("***"));
}

test(
  "web login handler: the session cookie is random, HttpOnly and SameSite=Strict; pages forbid scripts",
  {
    skip,
  },
  async () => {
    await using s = setup();
    const first = await s.web.handle(new Request(`${base}/`), "127.0.0.1");
    const second = await s.web.handle(new Request(`${base}/`), "127.0.0.1");
    const cookie = first.headers.get("set-cookie")!;
    assert.match(cookie, /^pam_sid=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.notEqual(cookie, second.headers.get("set-cookie"));
    assert.match(first.headers.get("content-security-policy")!, /default-src 'none'/);
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.match(await first.text(), /<input name="user"/);
    assert.equal((await s.web.handle(new Request(`${base}/nope`))).status, 404);
    assert.equal((await s.web.handle(new Request(`${base}/`, { method: "PUT" }))).status, 405);
  },
);

test("web login handler: a login through every prompt; no answer reaches a page or the log", {
  skip,
}, async () => {
  await using s = setup();
  const client = new Client(s.web, "192.0.2.1");
  const page = await client.login("alice", ["wonderland"], ["424242"]);
  assert.equal(result(page), "success");
  assert.match(page, /Logged in as <span data-pam-user>alice<\/span>/);
  assert.match(page, /<th>HOMEDIR<\/th><td>\/home\/alice<\/td>/);
  assert.deepEqual(sessionLog(s.stack), ["open_session", "alice"]);
  for (const p of client.pages) assert.doesNotMatch(p, /wonderland/);
  assert.doesNotMatch(s.logs.join("\n"), /wonderland|424242/);
  assert.match(s.logs.join("\n"), /login succeeded for "alice"/);

  assert.equal((await client.post("/logout", {})).status, 303);
  assert.match(await client.get(), /alice logged out/);
  assert.deepEqual(sessionLog(s.stack), ["open_session", "alice", "close_session", "alice"]);
});

test(
  "web login handler: forged posts start nothing (wrong token, other origin, no cookie, wrong encoding)",
  {
    skip,
  },
  async () => {
    await using s = setup();
    const client = new Client(s.web, "192.0.2.1");
    await client.get();
    const csrf = client.csrf;
    const wrongToken = await client.post("/login", {
      user: "alice",
      csrf: "x".repeat(csrf.length),
    });
    assert.equal(wrongToken.status, 303);
    const otherOrigin = await client.post("/login", { user: "alice" }, {
      origin: "https://evil.example",
    });
    assert.equal(otherOrigin.status, 403);
    const noCookie = await client.post("/login", { user: "alice" }, { cookie: "" });
    assert.equal(noCookie.status, 303);
    const json = await client.post("/login", { user: "alice" }, {
      "content-type": "application/json",
    });
    assert.equal(json.status, 415);
    assert.doesNotMatch(s.logs.join("\n"), /login started/);
    assert.match(await client.get(), /<input name="user"/);
  },
);

test("web login handler: a prompt left unanswered fails the login after conversationTimeoutMs", {
  skip,
}, async () => {
  await using s = setup({ conversationTimeoutMs: 300 });
  const client = new Client(s.web, "192.0.2.1");
  await client.get();
  await client.post("/login", { user: "alice" });
  assert.match(await client.get(), /type="password"/);
  await new Promise((resolve) => setTimeout(resolve, 800));
  const page = await client.get();
  assert.equal(result(page), "failure");
  // pam_matrix reports any conversation failure as PAM_AUTHINFO_UNAVAIL; the page says why.
  assert.match(page, /The prompt was not answered in time\./);
  assert.doesNotMatch(page, /\bat \S+:\d+:\d+/, "no stack trace on the page");
});

test("web login handler: a browser that goes away has its login cancelled and its session closed", {
  skip,
}, async () => {
  await using s = setup({ idleTimeoutMs: 300 });
  const gone = new Client(s.web, "192.0.2.1");
  assert.equal(result(await gone.login("alice", ["wonderland"], ["424242"])), "success");
  const halfway = new Client(s.web, "192.0.2.2");
  await halfway.get();
  await halfway.post("/login", { user: "bob" });
  assert.match(await halfway.get(), /type="password"/);

  // Neither browser comes back; the sweeper notices within the idle timeout.
  const deadline = Date.now() + 5000;
  while (sessionLog(s.stack).length < 4 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(sessionLog(s.stack), ["open_session", "alice", "close_session", "alice"]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const log = s.logs.join("\n");
  assert.match(log, /closing the session of "alice": the browser went away/);
  assert.match(log, /login abandoned for "bob": .*The login was cancelled\./);
  // Coming back later is a fresh start.
  assert.match(await halfway.get(), /<input name="user"/);
});

test("web login handler: a failure's fail delay holds that client's next attempt, not others", {
  skip,
}, async () => {
  await using s = setup();
  const guesser = new Client(s.web, "192.0.2.66");
  const failed = await guesser.login("alice", ["wrong"]);
  const failedAt = Date.now();
  assert.equal(result(failed), "failure");
  assert.match(failed, /Authentication failed/);

  // Another client logs in at once, while the guesser's next attempt waits out the delay.
  const other = new Client(s.web, "192.0.2.7");
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  const retry = (async () => {
    await guesser.post("/login", { user: "alice" });
    return Date.now() - failedAt;
  })();
  const t0 = Date.now();
  assert.equal(
    result(await other.login("bob", ["builder"], ["424242"], ["n3w", "n3w"])),
    "success",
  );
  const otherTook = Date.now() - t0;
  const waited = await retry;
  clearInterval(ticker);
  // pam_faildelay asks for 2 s, which libpam randomises to 1-3 s.
  assert.ok(waited >= 900, `the retry started ${waited} ms after the failure`);
  assert.ok(otherTook < waited, `the other client took ${otherTook} ms, the retry ${waited} ms`);
  assert.ok(ticks >= waited / 10 / 3, `the event loop ran ${ticks} 10 ms ticks in ${waited} ms`);
  assert.match(await guesser.get(), /type="password"/);
});

test(
  "web login handler: a second login opened side by side cannot guess faster than the fail delay",
  {
    skip,
  },
  async () => {
    await using s = setup();
    const first = new Client(s.web, "192.0.2.66");
    const second = new Client(s.web, "192.0.2.66");
    for (const c of [first, second]) {
      await c.get();
      await c.post("/login", { user: "alice" });
      assert.match(await c.get(), /type="password"/);
    }
    assert.equal(result(await first.login("alice", ["wrong"])), "failure");
    const t0 = Date.now();
    await second.post("/answer", { step: "1", "answer-0": "also-wrong" });
    const took = Date.now() - t0;
    assert.ok(took >= 900, `the second guess was checked after ${took} ms`);
    assert.equal(result(await second.get()), "failure");
  },
);

test(
  "web login handler: guesses posted at once from side-by-side logins are checked one delay apart",
  { skip },
  async () => {
    await using s = setup();
    const clients = [0, 1, 2].map(() => new Client(s.web, "192.0.2.67"));
    for (const c of clients) {
      await c.get();
      await c.post("/login", { user: "alice" });
      assert.match(await c.get(), /type="password"/);
    }
    const t0 = Date.now();
    await Promise.all(
      clients.map((c, i) => c.post("/answer", { step: "1", "answer-0": `wrong-${i}` })),
    );
    const took = Date.now() - t0;
    // Three failures, each holding the next guess for the stack's delay (about 1 s).
    assert.ok(took >= 1800, `three guesses were checked within ${took} ms`);
    for (const c of clients) assert.equal(result(await c.get()), "failure");
  },
);

test("web login handler: close() closes the open sessions", { skip }, async () => {
  const s = setup();
  try {
    const client = new Client(s.web, "192.0.2.1");
    assert.equal(result(await client.login("alice", ["wonderland"], ["424242"])), "success");
    await s.web.close();
    assert.deepEqual(sessionLog(s.stack), ["open_session", "alice", "close_session", "alice"]);
  } finally {
    s.stack.remove();
  }
});
