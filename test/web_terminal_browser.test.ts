// End-to-end tests of examples/web-terminal in headless Chromium (Debian's `chromium`, driven
// by playwright-core), against the server on Deno and on Bun: the PAM conversation typed into
// xterm.js, the login shell as the user on the session's pty, and the session's end when the
// tab closes or the shell exits (pam_close_session, the utmp entry dead, a wtmp logout).
// The README's screenshot is taken here. Under Deno this file needs --allow-all
// (playwright-core), so test/run_both.mjs runs it in a Deno run of its own.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
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

const example = join(root, "examples", "web-terminal");
const timeout = 60_000;
const WAIT_MS = 20_000;

const skip = browserSkip;

interface Server extends ExampleServer {
  user: string;
  dir: string;
}

let browser: Promise<Browser> | undefined;

async function startServer(runtime: "deno" | "bun"): Promise<Server> {
  const [command, args] = runtime === "deno"
    ? [bin("deno"), denoTaskArgs("web-terminal")]
    : [bin("bun"), ["run", join(example, "main.ts")]];
  const server = await startExample(command, args, {});
  const user = server.output().match(/^User: (\S+)/m)![1];
  const dir = server.output().match(/^Demo PAM stack in (\S+)\/pam\.d/m)![1];
  return { ...server, user, dir };
}

const servers = serversByRuntime(startServer);
const serverOn = servers.on;

after(async () => {
  await (await browser?.catch(() => undefined))?.close();
  for (const started of servers.all()) {
    const s = await started;
    if (s) await stopExample(s);
  }
});

/** What the terminal shows, row by row. */
function screen(page: Page): Promise<string> {
  return page.locator(".xterm-rows").innerText();
}

async function until(
  what: string | (() => string),
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Gave up waiting for ${typeof what === "string" ? what : what()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForScreen(page: Page, wanted: RegExp): Promise<string> {
  let text = "";
  const what = () => `${wanted} on a screen of ${JSON.stringify(text)}`;
  await until(what, async () => wanted.test(text = await screen(page)));
  return text;
}

function sessionLog(server: Server): string[] {
  const log = join(server.dir, "session.log");
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8").split("\n").filter((l) => l && !l.startsWith("***"));
}

function who(server: Server): string {
  return spawnSync("who", [join(server.dir, "utmp")], { encoding: "utf8" }).stdout;
}

function last(server: Server): string {
  return spawnSync("last", ["-f", join(server.dir, "wtmp")], { encoding: "utf8" }).stdout;
}

/** Opens the page and answers its two prompts by typing into the terminal. */
async function typeLogin(page: Page, server: Server, password: string): Promise<void> {
  await page.goto(server.base);
  await waitForScreen(page, /login:\s*$/m);
  await page.keyboard.type(server.user);
  await page.keyboard.press("Enter");
  await waitForScreen(page, /Password:\s*$/m);
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
}

/** Logs in through the page's terminal; resolves once the shell is attached, with its tty. */
async function logIn(page: Page, server: Server): Promise<string> {
  await typeLogin(page, server, "demo-password");
  const text = await waitForScreen(page, /Logged in as \S+ on (\/dev\/pts\/\d+)/);
  await until(
    `the shell, on a screen of ${JSON.stringify(await screen(page))}; server: ${server.output()}`,
    async () => (await page.locator("body").getAttribute("data-state")) === "shell",
  );
  // Keys typed before the shell reads its terminal could be flushed by its setup: its prompt first.
  await waitForScreen(page, /[$#]\s*$/m);
  return text.match(/on (\/dev\/pts\/\d+)/)![1];
}

for (const runtime of ["deno", "bun"] as const) {
  test(`web terminal (${runtime} server): log in, id -un, close the tab: the session ends`, {
    skip,
    timeout,
  }, async () => {
    const server = await serverOn(runtime);
    const context = await (await (browser ??= launchChromium())).newContext({
      viewport: { width: 900, height: 520 },
    });
    const page = await context.newPage();
    // A failure must not leave the session open for the next test: the tab closes either way.
    await using _ = { [Symbol.asyncDispose]: () => context.close() };
    const before = sessionLog(server).length;
    const tty = await logIn(page, server);
    const line = tty.slice("/dev/".length);
    await page.keyboard.type("id -un; tty");
    await page.keyboard.press("Enter");
    const text = await waitForScreen(page, new RegExp(`^${server.user}\\s*\\n${tty}\\s*$`, "m"));
    // Nothing the person typed as a password is on the screen.
    assert.doesNotMatch(text, /demo-password/);
    assert.match(who(server), new RegExp(`^${server.user}\\s+${line}\\s`, "m"));
    assert.deepEqual(sessionLog(server).slice(before), ["open_session", server.user, tty]);
    if (runtime === "deno") {
      mkdirSync(join(example, "screenshots"), { recursive: true });
      await page.screenshot({ path: join(example, "screenshots", "web-terminal.png") });
    }

    await context.close();
    await until("close_session", () => sessionLog(server).length === before + 6);
    assert.deepEqual(sessionLog(server).slice(before + 3), ["close_session", server.user, tty]);
    assert.equal(who(server), "");
    // The wtmp logout record: `last` shows a duration, not "still logged in".
    assert.match(
      last(server),
      new RegExp(`^${server.user}\\s+${line}\\s.*(\\(\\d\\d:\\d\\d\\)|still running)`, "m"),
    );
    assert.doesNotMatch(
      last(server),
      new RegExp(`^${server.user}\\s+${line}\\s.*still logged in`, "m"),
    );
  });

  test(`web terminal (${runtime} server): the shell's exit ends the session and the page says so`, {
    skip,
    timeout,
  }, async () => {
    const server = await serverOn(runtime);
    const context = await (await (browser ??= launchChromium())).newContext();
    try {
      const page = await context.newPage();
      const before = sessionLog(server).length;
      const tty = await logIn(page, server);
      await page.keyboard.type("exit");
      await page.keyboard.press("Enter");
      await until(
        "the closed page",
        async () => (await page.locator("body").getAttribute("data-state")) === "closed",
      );
      await waitForScreen(page, /\[session closed\]/);
      await until("close_session", () => sessionLog(server).length === before + 6);
      assert.deepEqual(sessionLog(server).slice(before + 3), ["close_session", server.user, tty]);
      assert.equal(who(server), "");
    } finally {
      await context.close();
    }
  });

  test(`web terminal (${runtime} server): a wrong password is refused in the terminal`, {
    skip,
    timeout,
  }, async () => {
    const server = await serverOn(runtime);
    const context = await (await (browser ??= launchChromium())).newContext();
    try {
      const page = await context.newPage();
      await typeLogin(page, server, "not-the-password");
      // The failure, then the offer to retry once the server has closed the login's socket.
      const text = await waitForScreen(page, /Login incorrect[\s\S]*Press Enter to try again/);
      assert.doesNotMatch(text, /not-the-password/);
    } finally {
      await context.close();
    }
  });
}
