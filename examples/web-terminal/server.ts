/**
 * The web terminal example's server, as one function that both `Deno.serve`
 * and `Bun.serve` call (see main.ts): the page and xterm.js (from
 * node_modules, never a CDN), and two WebSockets.
 *
 * 1. `/login` runs `login({ terminal })`: the PAM conversation goes over the
 *    socket and the page asks in the terminal itself (echo off for
 *    passwords). The page holds an HttpOnly `wt_form` cookie (a nonce) and a
 *    token that is its HMAC; the upgrade needs both, the allowed `Origin`
 *    (every browser sends it on a WebSocket) and an allowed `Host`.
 * 2. Once the session is open the socket hands the page a one-time ticket;
 *    `POST /session` trades it (with the same `wt_form` cookie) for a fresh
 *    HttpOnly session id, `wt_sid`, made only now that PAM said yes.
 * 3. `/terminal`, with that cookie, runs the user's login shell on the
 *    session's pseudo-terminal (`spawn(..., { terminal: true, endsSession: true })`)
 *    and relays it: bytes both ways, resizes from the page.
 *
 * The session ends when the page goes (its socket closes: `close()` hangs
 * the shell up, writes the exit entries and closes the PAM session) or when
 * the shell exits (the socket is closed). Logins and sessions together are
 * bounded, in all and per address.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  login,
  type LoginSession,
  MessageStyle,
  type PamMessage,
  type SessionProgram,
  type UtmpOptions,
} from "../../mod.ts";
import { randomId } from "../web-login/clients.ts";
import { defaultAllowedHosts, HostCheck } from "../web-login/hosts.ts";

/**
 * One WebSocket, as main.ts adapts `Deno.upgradeWebSocket`'s and `Bun.serve`'s.
 *
 * @example
 * ```ts
 * import type { Peer } from "./server.ts";
 * const quiet: Peer = { send() {}, close() {}, bufferedAmount: () => 0 };
 * ```
 */
export interface Peer {
  /** Sends a text or binary message; nothing once closed. */
  send(data: string | Uint8Array): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Bytes queued and not yet sent. */
  bufferedAmount(): number;
  /** Set by the server: the socket is open. */
  onOpen?: () => void;
  /** Set by the server: a message came. */
  onMessage?: (data: string | Uint8Array) => void;
  /** Set by the server: the socket closed. */
  onClose?: () => void;
}

/**
 * Upgrades `request` to a WebSocket: the peer, and the response to return
 * (`undefined` where the runtime answers the upgrade itself, as Bun does).
 *
 * @example
 * ```ts ignore
 * import type { Upgrade } from "./server.ts";
 * const upgrade: Upgrade = (request) => {
 *   const { socket, response } = Deno.upgradeWebSocket(request);
 *   return { peer: adapt(socket), response };
 * };
 * ```
 */
export type Upgrade = (request: Request) => { peer: Peer; response: Response | undefined };

/**
 * How {@linkcode createWebTerminal} sets up the server.
 *
 * @example
 * ```ts
 * import type { WebTerminalOptions } from "./server.ts";
 * const options: WebTerminalOptions = { service: "web-terminal", confdir: "/tmp/pam.d" };
 * ```
 */
export interface WebTerminalOptions {
  /** The PAM service. */
  service: string;
  /** The directory holding the service file (default `/etc/pam.d`). */
  confdir?: string;
  /** The utmp/wtmp files (default: the system's, root only), or `false` for none. */
  utmp?: false | Pick<UtmpOptions, "utmpFile" | "wtmpFile">;
  /** The host names the server answers to (default `localhost`, `127.0.0.1`). */
  allowedHosts?: readonly string[];
  /** Logins and sessions at once, in all (default 32). */
  maxSessions?: number;
  /** Logins and sessions at once from one address (default 4). */
  maxPerAddress?: number;
  /** A prompt left unanswered this long fails the login (default 2 minutes). */
  conversationTimeoutMs?: number;
  /** A line the page shows above the terminal (the demo's user and password). */
  hint?: string;
  /** Where events go; never an answer. Default `console.log`. */
  log?: (line: string) => void;
}

/**
 * The server.
 *
 * @example
 * ```ts
 * import { createWebTerminal } from "./server.ts";
 * const web = createWebTerminal({ service: "web-terminal" });
 * const page = await web.handle(new Request("http://127.0.0.1:8000/"), "127.0.0.1", () => {
 *   throw new Error("no upgrade here");
 * });
 * await web.close();
 * ```
 */
export interface WebTerminal {
  /** Answers one request; `undefined` when the runtime answers the upgrade itself. */
  handle(
    request: Request,
    address: string | undefined,
    upgrade: Upgrade,
  ): Promise<Response | undefined>;
  /** Closes every session and cancels every login. */
  close(): Promise<void>;
}

const FORM_COOKIE = "wt_form";
const SESSION_COOKIE = "wt_sid";
const NONCE = /^[\w-]{43}$/;
// PAM_MAX_RESP_SIZE: no module reads more.
const MAX_ANSWER = 512;
const MAX_USER = 256;
// A page that was handed a ticket and does not come back for its terminal within this long
// is gone: its session is closed.
const CLAIM_MS = 15_000;
// Output waits while the socket has this much unsent: a `yes` in the shell must not fill memory.
const HIGH_WATER = 1 << 20;
const MAX_EARLY_KEYS = 64 * 1024;

const modules = new URL("../../node_modules/", import.meta.url);
const assets: Record<string, { file: URL; type: string }> = {
  "/app.js": { file: new URL("./public/app.js", import.meta.url), type: "text/javascript" },
  "/xterm.js": { file: new URL("@xterm/xterm/lib/xterm.js", modules), type: "text/javascript" },
  "/xterm.css": { file: new URL("@xterm/xterm/css/xterm.css", modules), type: "text/css" },
  "/addon-fit.js": {
    file: new URL("@xterm/addon-fit/lib/addon-fit.js", modules),
    type: "text/javascript",
  },
};

const securityHeaders: Record<string, string> = {
  "cache-control": "no-store",
  // xterm.js sets inline style attributes; every script and socket is this server's own.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "referrer-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

function respond(
  body: BodyInit | null,
  status: number,
  type: string,
  more: [string, string][] = [],
) {
  return new Response(body, {
    status,
    headers: [...Object.entries(securityHeaders), ["content-type", type], ...more],
  });
}

function text(body: string, status: number): Response {
  return respond(body, status, "text/plain; charset=utf-8");
}

function escape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function isPrompt(m: PamMessage): boolean {
  return m.style === MessageStyle.PROMPT_ECHO_OFF || m.style === MessageStyle.PROMPT_ECHO_ON;
}

function dimension(value: string | null): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : undefined;
}

/** An open session, between its ticket and the end of its terminal. */
interface Entry {
  readonly session: LoginSession;
  readonly address: string | undefined;
  /** The page's form nonce: only that browser can claim the ticket. */
  readonly nonce: string;
  ticket: string | undefined;
  /** The session id of the `wt_sid` cookie, once the ticket was claimed. */
  id: string | undefined;
  attached: boolean;
}

/**
 * Builds the server.
 *
 * @example
 * ```ts
 * import { createWebTerminal } from "./server.ts";
 * const web = createWebTerminal({ service: "web-terminal", confdir: "/tmp/pam.d" });
 * // Deno.serve((request, info) => web.handle(request, info.remoteAddr.hostname, upgrade));
 * await web.close();
 * ```
 */
export function createWebTerminal(options: WebTerminalOptions): WebTerminal {
  const log = options.log ?? ((line: string) => console.log(line));
  const hosts = new HostCheck(options.allowedHosts ?? defaultAllowedHosts);
  const maxSessions = options.maxSessions ?? 32;
  const maxPerAddress = options.maxPerAddress ?? 4;
  const formKey = crypto.getRandomValues(new Uint8Array(32));
  const formToken = (nonce: string) =>
    createHmac("sha256", formKey).update(`web-terminal:${nonce}`).digest("base64url");
  /** Logins in progress and open sessions, per address (`""` for none): the bound. */
  const live = new Map<string, number>();
  const entries = new Set<Entry>();
  const logins = new Set<AbortController>();
  const closing = new Set<Promise<void>>();
  const notBefore = new Map<string, number>();

  const count = () => [...live.values()].reduce((a, b) => a + b, 0);
  const hold = (address: string | undefined): () => void => {
    const key = address ?? "";
    live.set(key, (live.get(key) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (live.get(key) ?? 1) - 1;
      if (left > 0) live.set(key, left);
      else live.delete(key);
    };
  };

  const end = (entry: Entry, why: string): Promise<void> => {
    if (!entries.delete(entry)) return Promise.resolve();
    log(`closing the session of ${JSON.stringify(entry.session.user)}: ${why}`);
    const done = entry.session.close()
      .catch((error) => log(`closing a session failed: ${describe(error)}`))
      .finally(() => closing.delete(done));
    closing.add(done);
    return done;
  };

  const secure = (url: URL) => url.protocol === "https:" ? "; Secure" : "";
  const page = (request: Request, url: URL): Response => {
    const more: [string, string][] = [];
    let nonce = cookieValue(request, FORM_COOKIE);
    if (!nonce || !NONCE.test(nonce)) {
      nonce = randomId();
      more.push([
        "set-cookie",
        `${FORM_COOKIE}=${nonce}; Path=/; HttpOnly; SameSite=Strict${secure(url)}`,
      ]);
    }
    const hint = options.hint ? `<span>${escape(options.hint)}</span>` : "";
    const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@seed/pam web terminal</title>
<link rel="stylesheet" href="/xterm.css">
<style>
body { margin: 0; background: #1b1d23; color: #d7dae0; font: 14px system-ui, sans-serif; }
header { height: 36px; display: flex; gap: 16px; align-items: center; padding: 0 12px; }
header b { color: #fff; }
#terminal { position: absolute; top: 36px; left: 8px; right: 8px; bottom: 8px; }
</style>
</head>
<body data-token="${formToken(nonce)}" data-state="loading">
<header><b>@seed/pam web terminal</b>${hint}</header>
<div id="terminal"></div>
<script src="/xterm.js"></script>
<script src="/addon-fit.js"></script>
<script src="/app.js"></script>
</body>
</html>
`;
    return respond(body, 200, "text/html; charset=utf-8", more);
  };

  /** `/login`: the PAM conversation over the socket, then a ticket for the open session. */
  const startLogin = (peer: Peer, address: string | undefined, nonce: string, size: {
    cols: number;
    rows: number;
  }, release: () => void) => {
    const abort = new AbortController();
    logins.add(abort);
    let answer: ((value: string) => void) | undefined;
    let closed = false;
    const json = (value: object) => peer.send(JSON.stringify(value));
    peer.onMessage = (data) => {
      if (typeof data !== "string" || data.length > 4 * MAX_ANSWER) return peer.close(1009);
      let m: { type?: unknown; value?: unknown };
      try {
        m = JSON.parse(data);
      } catch {
        return peer.close(1003);
      }
      if (m.type !== "answer" || typeof m.value !== "string" || m.value.length > MAX_ANSWER) {
        return peer.close(1003);
      }
      const reply = answer;
      answer = undefined;
      reply?.(m.value);
    };
    peer.onClose = () => {
      closed = true;
      abort.abort(new Error("the page went away"));
    };
    const ask = (text: string, echo: boolean) => {
      json({ type: "prompt", text, echo });
      return new Promise<string>((resolve) => answer = resolve);
    };
    const conversation = async (messages: readonly PamMessage[]) => {
      const answers: (string | null)[] = [];
      for (const m of messages) {
        if (!isPrompt(m)) {
          json({ type: m.style === MessageStyle.ERROR_MSG ? "error" : "info", text: m.text });
          answers.push(null);
          continue;
        }
        answers.push(await ask(m.text, m.style === MessageStyle.PROMPT_ECHO_ON));
      }
      return answers;
    };
    const key = address ?? "";
    void (async () => {
      const wait = (notBefore.get(key) ?? 0) - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      let session: LoginSession;
      try {
        // As login(1) does, the user name first: PAM_USER is set before pam_start's modules run.
        const user = (await Promise.race([
          ask("login: ", true),
          new Promise<never>((_, reject) => abort.signal.addEventListener("abort", reject)),
        ])).trim();
        if (!user || user.length > MAX_USER || /\p{Cc}/u.test(user)) {
          throw new TypeError("not a user name");
        }
        session = await login({
          service: options.service,
          user,
          ...(options.confdir ? { confdir: options.confdir } : {}),
          conversation,
          conversationTimeoutMs: options.conversationTimeoutMs ?? 120_000,
          signal: abort.signal,
          ...(address ? { rhost: address } : {}),
          terminal: size,
          utmp: options.utmp ?? {},
        });
      } catch (error) {
        const delay = (error as { failDelayMs?: number }).failDelayMs;
        if (delay) notBefore.set(key, Math.max(notBefore.get(key) ?? 0, Date.now() + delay));
        log(`login failed${address ? ` from ${address}` : ""}: ${describe(error)}`);
        if (!closed) {
          json({ type: "failed", text: `Login incorrect (${(error as Error).name})` });
          peer.close(1000);
        }
        release();
        return;
      } finally {
        logins.delete(abort);
      }
      const entry: Entry = {
        session,
        address,
        nonce,
        ticket: randomId(),
        id: undefined,
        attached: false,
      };
      entries.add(entry);
      void session.closed.catch(() => {}).finally(() => {
        entries.delete(entry);
        release();
      });
      log(`login succeeded for ${JSON.stringify(session.user)} on ${session.record.items.tty}`);
      // A page that never comes for its terminal leaves no session behind.
      setTimeout(() => {
        if (!entry.attached) void end(entry, "its page never attached the terminal");
      }, CLAIM_MS);
      if (closed) return void end(entry, "the page went away during the login");
      json({
        type: "opened",
        user: session.user,
        tty: session.record.items.tty,
        ticket: entry.ticket,
      });
    })();
  };

  /** `/terminal`: the user's login shell on the session's pty, relayed over the socket. */
  const attach = (peer: Peer, entry: Entry) => {
    entry.attached = true;
    let shell: SessionProgram | undefined;
    let keys: WritableStreamDefaultWriter<Uint8Array> | undefined;
    let size: { cols: number; rows: number } | undefined;
    let gone = false;
    const typedEarly: Uint8Array[] = [];
    let early = 0;
    peer.onClose = () => {
      gone = true;
      void end(entry, "the page went away");
    };
    peer.onMessage = (data) => {
      if (typeof data !== "string") {
        // One writer: keys reach the terminal in the order they came. Keys typed while the
        // shell starts wait for it (a bounded amount: a page has no reason to send more).
        if (keys) keys.write(data).catch(() => {});
        else if ((early += data.length) <= MAX_EARLY_KEYS) typedEarly.push(data);
        return;
      }
      try {
        const m = JSON.parse(data);
        if (m.type === "resize" && dimension(String(m.cols)) && dimension(String(m.rows))) {
          size = { cols: m.cols, rows: m.rows };
          shell?.terminal?.resize(m.cols, m.rows);
        }
      } catch {
        // Not a message of the page's: ignored.
      }
    };
    peer.onOpen = async () => {
      try {
        // The user's own login shell, from the passwd entry the session process read.
        shell = await entry.session.spawn(["/bin/sh", "-c", 'exec "$SHELL" -l'], {
          terminal: true,
          endsSession: true,
        });
      } catch (error) {
        log(`cannot start the shell: ${describe(error)}`);
        peer.close(1011, "cannot start the shell");
        return void end(entry, "its shell could not start");
      }
      keys = shell.terminal!.writable.getWriter();
      for (const chunk of typedEarly.splice(0)) keys.write(chunk).catch(() => {});
      if (size) shell.terminal!.resize(size.cols, size.rows);
      void entry.session.closed.catch(() => {}).finally(() => {
        if (!gone) peer.close(1000, "session closed");
      });
      for await (const chunk of shell.terminal!.readable) {
        while (!gone && peer.bufferedAmount() > HIGH_WATER) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        if (gone) break;
        peer.send(chunk);
      }
    };
  };

  const handle = async (
    request: Request,
    address: string | undefined,
    upgrade: Upgrade,
  ): Promise<Response | undefined> => {
    if (!hosts.allows(request)) return text("Unknown host name", 421);
    const url = new URL(request.url);
    const origin = request.headers.get("origin");
    if (request.method === "POST" && url.pathname === "/session") {
      // Browsers always send Origin on a fetch POST; one from another site is refused.
      if (origin === null || !hosts.allowsOrigin(origin, url)) return text("Cross-site", 403);
      const ticket = (await request.text()).slice(0, 64);
      const nonce = cookieValue(request, FORM_COOKIE) ?? "";
      const entry = [...entries].find((e) =>
        e.ticket !== undefined && sameText(e.ticket, ticket) && sameText(e.nonce, nonce)
      );
      if (!entry) return text("No such login", 404);
      entry.ticket = undefined;
      // A fresh id, made now that PAM has said yes: nothing before the login can know it.
      entry.id = randomId();
      return respond(null, 204, "text/plain", [[
        "set-cookie",
        `${SESSION_COOKIE}=${entry.id}; Path=/terminal; HttpOnly; SameSite=Strict${secure(url)}`,
      ]]);
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text("Method not allowed", 405);
    }
    if (url.pathname === "/") return page(request, url);
    const asset = assets[url.pathname];
    if (asset) return respond(readFileSync(fileURLToPath(asset.file)), 200, asset.type);
    if (url.pathname !== "/login" && url.pathname !== "/terminal") return text("Not found", 404);
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return text("WebSocket only", 426);
    }
    // A WebSocket is not bound by the same-origin policy: a page of any site could open one
    // with this browser's cookies. Browsers always send Origin on it; it must be ours.
    if (origin === null || !hosts.allowsOrigin(origin, url)) return text("Cross-site", 403);
    if (url.pathname === "/terminal") {
      const id = cookieValue(request, SESSION_COOKIE) ?? "";
      const entry = [...entries].find((e) =>
        e.id !== undefined && !e.attached && sameText(e.id, id)
      );
      if (!entry) return text("No such session", 404);
      const { peer, response } = upgrade(request);
      attach(peer, entry);
      return response;
    }
    const nonce = cookieValue(request, FORM_COOKIE);
    const token = url.searchParams.get("token") ?? "";
    if (!nonce || !NONCE.test(nonce) || !sameText(token, formToken(nonce))) {
      return text("Reload the page", 403);
    }
    const cols = dimension(url.searchParams.get("cols"));
    const rows = dimension(url.searchParams.get("rows"));
    if (!cols || !rows) return text("cols and rows: 1 to 1000", 400);
    if (count() >= maxSessions || (live.get(address ?? "") ?? 0) >= maxPerAddress) {
      log(`login refused${address ? ` from ${address}` : ""}: too many sessions`);
      return text("Too many sessions; try again later", 503);
    }
    const release = hold(address);
    const { peer, response } = upgrade(request);
    peer.onOpen = () => startLogin(peer, address, nonce, { cols, rows }, release);
    peer.onClose = release;
    return response;
  };

  return {
    async handle(request, address, upgrade) {
      try {
        return await handle(request, address, upgrade);
      } catch (error) {
        log(`request failed: ${describe(error)}`);
        return text("Internal error", 500);
      }
    },
    async close() {
      for (const abort of logins) abort.abort(new Error("the server is shutting down"));
      await Promise.all([...entries].map((entry) => end(entry, "the server is shutting down")));
      await Promise.all(closing);
    },
  };
}
