// End-to-end tests of examples/web-login in headless Chromium (Debian's
// `chromium`, driven by playwright-core), against the server on Deno
// (Deno.serve) and on Bun (Bun.serve), each a child process with its own copy
// of the shipped demo stack. Each step's screenshot goes to
// examples/web-login/screenshots/.
//
// Under Deno this file needs --allow-all (playwright-core reads /proc/sys at
// load time, which Deno grants only to --allow-all), so test/run_both.mjs runs
// it in a Deno run of its own; the servers themselves get `deno task web`'s
// exact flags.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { createDemoStack, type DemoStack } from "../examples/web-login/stack.ts";
import {
  bin,
  browserSkip,
  denoTaskArgs,
  type ExampleServer,
  launchChromium,
  root,
  serversByRuntime,
  startExample,
  stopExample,
} from "./_browser.ts";

const example = join(root, "examples", "web-login");
const screenshots = join(example, "screenshots");
const timeout = 60_000;

const skip = browserSkip;

interface Server extends ExampleServer {
  stack: DemoStack;
}

let browser: Promise<Browser> | undefined;

async function startServer(runtime: "deno" | "bun"): Promise<Server> {
  const stack = createDemoStack();
  const [command, args] = runtime === "deno"
    ? [bin("deno"), denoTaskArgs("web")]
    : [bin("bun"), ["run", join(example, "main.ts")]];
  try {
    const server = await startExample(command, args, {
      PAM_SERVICE: stack.service,
      PAM_CONFDIR: stack.confdir,
    });
    return { ...server, stack };
  } catch (error) {
    stack.remove();
    throw error;
  }
}

const servers = serversByRuntime(startServer);
const serverOn = servers.on;

after(async () => {
  await (await browser?.catch(() => undefined))?.close();
  await Promise.all(
    servers.all().map(async (started) => {
      const s = await started;
      if (!s) return;
      await stopExample(s);
      s.stack.remove();
    }),
  );
});

async function newPage(): Promise<{ page: Page; close: () => Promise<void> }> {
  browser ??= launchChromium();
  const context = await (await browser).newContext({ viewport: { width: 760, height: 620 } });
  const page = await context.newPage();
  return { page, close: () => context.close() };
}

async function shot(page: Page, runtime: string, name: string): Promise<void> {
  // One set of screenshots: the pages are the same on both runtimes.
  if (runtime !== "deno") return;
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

/** Fills the page's prompts in order and submits the form with Enter. */
async function answer(page: Page, ...values: string[]): Promise<void> {
  const inputs = page.locator("form input[name^=answer-]");
  assert.equal(await inputs.count(), values.length, "one input per prompt");
  for (const [i, value] of values.entries()) await inputs.nth(i).fill(value);
  await Promise.all([page.waitForURL(/./), inputs.nth(values.length - 1).press("Enter")]);
  await page.waitForLoadState();
}

async function enterUser(page: Page, user: string): Promise<void> {
  await page.locator("input[name=user]").fill(user);
  await page.locator("input[name=user]").press("Enter");
  await page.waitForLoadState();
}

async function result(page: Page): Promise<{ kind: string | null; text: string }> {
  const element = page.locator("[data-pam-result]");
  await element.waitFor();
  return { kind: await element.getAttribute("data-pam-result"), text: await element.innerText() };
}

function logLines(log: string): string[] {
  if (!existsSync(log)) return [];
  // pam_exec's log: a "*** date" header, then printenv's PAM_TYPE and PAM_USER lines.
  return readFileSync(log, "utf8").split("\n").filter((l) => l && !l.startsWith("***"));
}

/** Serves `body` as an HTML page on a free port of 127.0.0.1 until disposed. */
async function servePage(body: string): Promise<{ url: string } & AsyncDisposable> {
  const server = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One test against a fresh server on `runtime`, with a page already at its start page. */
function browserTest(
  runtime: "deno" | "bun",
  name: string,
  body: (page: Page, server: Server) => Promise<void>,
): void {
  test(`web login (${runtime} server): ${name}`, { skip, timeout }, async () => {
    const { page, close } = await newPage();
    try {
      const server = await serverOn(runtime);
      await page.goto(server.base);
      await body(page, server);
    } finally {
      await close();
    }
  });
}

for (const runtime of ["deno", "bun"] as const) {
  browserTest(
    runtime,
    `info, password and one-time code prompts, then the session`,
    async (page, server) => {
      await shot(page, runtime, "01-user-name");
      await enterUser(page, "alice");

      const password = page.locator("input[type=password]");
      await password.waitFor();
      assert.match(
        await page.locator("body").innerText(),
        /Welcome to the @seed\/pam web login demo, alice\./,
      );
      await shot(page, runtime, "02-password");
      await answer(page, "wonderland");

      // pam_matrix's "echo" option: an echo-on prompt, so a text field.
      const code = page.locator("input[type=text][name^=answer-]");
      await code.waitFor();
      const text = await page.locator("body").innerText();
      assert.match(text, /Authentication succeeded/);
      assert.match(text, /one-time code is 424242/);
      await shot(page, runtime, "03-one-time-code");
      await answer(page, "424242");

      const { kind, text: resultText } = await result(page);
      assert.equal(kind, "success");
      assert.match(resultText, /Logged in as alice/);
      const env = await page.locator("[data-pam-env]").innerText();
      assert.match(env, /HOMEDIR\s+\/home\/alice/);
      assert.match(env, /CRED\s+\/tmp\/alice/);
      await shot(page, runtime, "04-logged-in");
      // Nothing the person typed comes back in the page or the server's log.
      assert.doesNotMatch(await page.content(), /wonderland|424242"/);
      assert.doesNotMatch(server.output(), /wonderland/);
    },
  );

  browserTest(
    runtime,
    `a wrong password shows the module's message; the retry waits out the fail delay`,
    async (page, server) => {
      await enterUser(page, "alice");
      await answer(page, "not-the-password");
      const { kind, text } = await result(page);
      const failedAt = Date.now();
      assert.equal(kind, "failure");
      assert.match(text, /Authentication failed/); // pam_matrix's PAM_ERROR_MSG
      assert.match(text, /PAM_AUTH_ERR/);
      assert.doesNotMatch(text, /\bat \S+:\d+/, "no stack trace");
      await shot(page, runtime, "05-wrong-password");

      // The failure page has the user form again, filled in: retry at once.
      assert.equal(await page.locator("input[name=user]").inputValue(), "alice");
      const retry = enterUser(page, "alice");
      // While this client waits, the server answers others at once.
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      const other = await fetch(server.base);
      assert.equal(other.status, 200);
      await other.text();
      assert.ok(Date.now() - t0 < 500, `another request took ${Date.now() - t0} ms`);
      await retry;
      await page.locator("input[type=password]").waitFor();
      const waited = Date.now() - failedAt;
      // pam_faildelay delay=2000000 asks for 2 s, which libpam randomises to 1-3 s.
      assert.ok(waited >= 900, `the retry came after ${waited} ms, before the fail delay`);
    },
  );

  browserTest(runtime, `an expired password is changed through the page`, async (page) => {
    await enterUser(page, "bob");
    await answer(page, "builder");
    await answer(page, "424242");

    // pam_stress: acct_mgmt says NEW_AUTHTOK_REQD, chauthtok asks in one batch.
    await page.locator("input[type=password]").first().waitFor();
    const changing = await page.locator("body").innerText();
    assert.match(changing, /Your password has expired/);
    assert.match(changing, /Changing STRESS password for bob\./);
    assert.equal(await page.locator("input[type=password]").count(), 2);
    await shot(page, runtime, "06-expired-password");
    await answer(page, "new-secret", "new-secret");

    const { kind, text } = await result(page);
    assert.equal(kind, "success");
    assert.match(text, /Logged in as bob/);
    await shot(page, runtime, "07-password-changed");
  });

  browserTest(runtime, `logout closes the PAM session`, async (page, server) => {
    const before = logLines(server.stack.log).length;
    await enterUser(page, "alice");
    await answer(page, "wonderland");
    await answer(page, "424242");
    assert.equal((await result(page)).kind, "success");
    assert.deepEqual(logLines(server.stack.log).slice(before), [
      "open_session",
      "alice",
    ]);

    await page.locator("form[action='/logout'] button").click();
    await page.locator("input[name=user]").waitFor();
    assert.match(
      await page.locator("body").innerText(),
      /alice logged out: the PAM session is closed/,
    );
    assert.deepEqual(logLines(server.stack.log).slice(before), [
      "open_session",
      "alice",
      "close_session",
      "alice",
    ]);
    await shot(page, runtime, "08-logged-out");
  });

  browserTest(
    runtime,
    `a session id planted from another port of 127.0.0.1 never logs the attacker in`,
    async (page, server) => {
      // The attacker starts a login for alice with a plain HTTP client and keeps its id.
      const jar = new Map<string, string>();
      const keep = (response: Response) => {
        for (const line of response.headers.getSetCookie()) {
          const [name, value] = line.split(";")[0].split("=");
          jar.set(name, value);
        }
      };
      const cookieHeader = () => [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
      const visit = await fetch(server.base);
      keep(visit);
      const csrf = (await visit.text()).match(/name="csrf" value="([^"]+)"/)![1];
      const posted = await fetch(`${server.base}login`, {
        method: "POST",
        redirect: "manual",
        headers: {
          cookie: cookieHeader(),
          origin: new URL(server.base).origin,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ csrf, user: "alice" }),
      });
      keep(posted);
      await posted.body?.cancel();
      const planted = `pam_sid=${jar.get("pam_sid")}`;
      assert.match(planted, /^pam_sid=[\w-]{43}$/);

      // A page of the attacker's on another port of the same address sets it in a browser that
      // holds no session cookie yet (a script cannot replace an HttpOnly one).
      await page.context().clearCookies();
      await using evil = await servePage(
        `<!doctype html><script>document.cookie = ${
          JSON.stringify(`${planted}; path=/`)
        };</script>`,
      );
      await page.goto(evil.url);
      await page.goto(server.base);
      // The planted id reached the server: the page is the attacker's login, at its prompt.
      await page.locator("input[type=password]").waitFor();
      await answer(page, "wonderland");
      await answer(page, "424242");
      assert.equal((await result(page)).kind, "success");
      const sid = (await page.context().cookies(server.base)).find((c) => c.name === "pam_sid");
      assert.ok(sid && `pam_sid=${sid.value}` !== planted, "the browser holds a fresh id");

      // The attacker's id leads nowhere.
      const after = await fetch(server.base, { headers: { cookie: planted } });
      const text = await after.text();
      assert.doesNotMatch(text, /Logged in as|data-pam-result="success"/);
      assert.match(text, /<input name="user"/);
      // Log out, so that the server holds no more for the tests after this one than before.
      await page.locator("form[action='/logout'] button").click();
      await page.locator("input[name=user]").waitFor();
    },
  );

  browserTest(runtime, `what PAM says is escaped, never markup`, async (page) => {
    // pam_echo's %u puts the user name into a PAM message.
    await enterUser(page, `<img src=x id=injected>`);
    await page.locator("input[type=password]").waitFor();
    assert.equal(await page.locator("#injected").count(), 0);
    assert.match(await page.locator("body").innerText(), /demo, <img src=x id=injected>\./);
  });
}
