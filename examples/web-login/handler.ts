/**
 * The web login example's server, as one `(Request) => Response` function
 * that both `Deno.serve` and `Bun.serve` call (see main.ts). No framework:
 * a few routes, server-rendered pages, plain form posts.
 *
 * State is kept only for browsers that posted the login form: visiting the
 * page creates nothing on the server (its form's token is an HMAC of a
 * nonce in a cookie the server does not store). A login post creates an
 * entry in a bounded {@linkcode ClientTable} and the browser's session id,
 * in an HttpOnly, SameSite=Strict cookie; the id is replaced at every login,
 * answer and logout, so an id planted in a browser never becomes a
 * logged-in session. A login in progress (a {@linkcode LoginFlow}) belongs
 * to that entry: its pending conversation waits for that browser's next
 * form post, fails after `conversationTimeoutMs`, and is cancelled when the
 * browser goes away (no request for `idleTimeoutMs`), logs in again or is
 * evicted to make room. Requests for a host name not on the allow-list are
 * refused (DNS rebinding).
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { setInterval } from "node:timers";
import type { LoginSession } from "../../mod.ts";
import { type Client, ClientTable, randomId } from "./clients.ts";
import { type FailureStep, LoginFlow, type SuccessStep } from "./flow.ts";
import { defaultAllowedHosts, HostCheck } from "./hosts.ts";
import {
  errorPage,
  failurePage,
  isPrompt,
  loginPage,
  promptPage,
  successPage,
  workingPage,
} from "./pages.ts";

/**
 * How {@linkcode createWebLogin} sets up the server.
 *
 * @example
 * ```ts
 * import type { WebLoginOptions } from "./handler.ts";
 * const options: WebLoginOptions = { service: "web-login", confdir: "/tmp/pam.d" };
 * ```
 */
export interface WebLoginOptions {
  /** The PAM service. */
  service: string;
  /** The directory holding the service file (default `/etc/pam.d`). */
  confdir?: string;
  /** A prompt the browser leaves unanswered this long fails the login (default 2 minutes). */
  conversationTimeoutMs?: number;
  /** A browser silent this long is forgotten: its login is cancelled, its session closed (default 30 minutes). */
  idleTimeoutMs?: number;
  /** How many browsers the server keeps state for at most (default 10 000). */
  maxClients?: number;
  /** How many of them, without an open session, one address may hold (default 16). */
  maxClientsPerAddress?: number;
  /**
   * The host names the server answers to (default `localhost` and `127.0.0.1`; main.ts adds
   * the address it listens on). A request with any other `Host` is refused.
   */
  allowedHosts?: readonly string[];
  /** Where events go (logins, failures, logouts); never an answer. Default `console.log`. */
  log?: (line: string) => void;
}

/**
 * The server: `handle` answers every request; `close` cancels the logins in
 * progress and closes the open sessions (call it on shutdown).
 *
 * @example
 * ```ts
 * import { createWebLogin } from "./handler.ts";
 * const web = createWebLogin({ service: "web-login" });
 * const response = await web.handle(new Request("http://localhost:8000/"), "127.0.0.1");
 * await web.close();
 * ```
 */
export interface WebLogin {
  /** Answers one request; `clientAddress` keys the fail delay (default: the session cookie). */
  handle(request: Request, clientAddress?: string): Promise<Response>;
  /** Cancels every login in progress and closes every open session. */
  close(): Promise<void>;
}

const COOKIE = "pam_sid";
// The nonce that binds an anonymous login form's token to its browser; never stored.
const FORM_COOKIE = "pam_form";
const NONCE = /^[\w-]{43}$/;
const MAX_BODY = 16 * 1024;
// PAM_MAX_RESP_SIZE in Linux-PAM's headers: no module reads more.
const MAX_ANSWER = 512;
const MAX_USER = 256;

const securityHeaders: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on its own form posts.
  "referrer-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

function sameText(a: string, b: string): boolean {
  // Compares every character, so the time taken says nothing about a guessed prefix.
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Response headers: pairs, as `set-cookie` may come more than once. */
type HeaderList = [string, string][];

function html(body: string, status = 200, headers: HeaderList = []): Response {
  return new Response(body, { status, headers: [...Object.entries(securityHeaders), ...headers] });
}

function redirect(headers: HeaderList = []): Response {
  // 303: the browser follows a POST with a GET, so reloading never re-posts answers.
  return new Response(null, {
    status: 303,
    headers: [["location", "/"], ["cache-control", "no-store"], ...headers],
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const BAD_USER = "Enter a user name (printable characters, at most 256).";

/** The user name a login form asks for, or `undefined` when it is not one. */
function loginUser(form: URLSearchParams): string | undefined {
  const user = (form.get("user") ?? "").trim();
  return !user || user.length > MAX_USER || /\p{Cc}/u.test(user) ? undefined : user;
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/**
 * Builds the server for `options.service`.
 *
 * @example
 * ```ts
 * import { createWebLogin } from "./handler.ts";
 * const web = createWebLogin({ service: "web-login", confdir: "/tmp/pam.d" });
 * // Deno.serve((request, info) => web.handle(request, info.remoteAddr.hostname));
 * ```
 */
export function createWebLogin(options: WebLoginOptions): WebLogin {
  const conversationTimeoutMs = options.conversationTimeoutMs ?? 120_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 30 * 60_000;
  const log = options.log ?? ((line: string) => console.log(line));
  const hosts = new HostCheck(options.allowedHosts ?? defaultAllowedHosts);
  const clients = new ClientTable({
    maxClients: options.maxClients ?? 10_000,
    maxPerAddress: options.maxClientsPerAddress ?? 16,
    onEvict: (client) => {
      const from = client.address === undefined ? "" : ` of ${client.address}`;
      log(`a browser${from} was evicted to make room`);
      forget(client, "its browser was evicted to make room");
    },
  });
  // Signs anonymous login forms' tokens; lives as long as the server.
  const formKey = crypto.getRandomValues(new Uint8Array(32));
  // Client key → when its next login may start (the fail delay the modules asked for).
  const notBefore = new Map<string, number>();

  // Session closes in flight, so close() can wait for them.
  const closing = new Set<Promise<void>>();
  const closeQuietly = (session: LoginSession, why: string): Promise<void> => {
    log(`closing the session of ${JSON.stringify(session.user)}: ${why}`);
    const done = session.close()
      .catch((error) => log(`closing a session failed: ${describe(error)}`))
      .finally(() => closing.delete(done));
    closing.add(done);
    return done;
  };

  const forget = (client: Client, why: string): Promise<void> => {
    clients.delete(client);
    const flow = client.flow;
    client.flow = undefined;
    flow?.cancel();
    const session = client.session;
    client.session = undefined;
    // A cancelled flow settles soon; settle() closes a session it opens anyway.
    return Promise.all([flow?.settled, session && closeQuietly(session, why)]).then(() => {});
  };

  const sweep = (): void => {
    const now = Date.now();
    for (const client of clients.values()) {
      // A browser waiting for an answer (a login post while PAM works) is not idle.
      if (client.busy === 0 && now - client.seen > idleTimeoutMs) {
        forget(client, "the browser went away");
      }
    }
    for (const [key, until] of notBefore) if (until <= now) notBefore.delete(key);
  };
  const sweeper = setInterval(sweep, Math.min(idleTimeoutMs, 60_000));
  // A sweeper alone must not keep a process alive (tests, a server that closed).
  sweeper.unref();

  const secure = (url: URL) => url.protocol === "https:" ? "; Secure" : "";
  const sessionCookie = (client: Client, url: URL): [string, string] => [
    "set-cookie",
    `${COOKIE}=${client.id}; Path=/; HttpOnly; SameSite=Strict${secure(url)}`,
  ];
  const dropSessionCookie = (url: URL): [string, string] => [
    "set-cookie",
    `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure(url)}`,
  ];
  // The token of an anonymous login form: bound to the browser's form nonce, kept nowhere.
  const formToken = (nonce: string): string =>
    createHmac("sha256", formKey).update(`login-form:${nonce}`).digest("base64url");
  const formNonce = (request: Request): string | undefined => {
    const nonce = cookieValue(request, FORM_COOKIE);
    return nonce !== undefined && NONCE.test(nonce) ? nonce : undefined;
  };

  // The page of a browser the server keeps nothing for: the login form, and the cookies
  // it needs (the form nonce; an unknown session id is dropped). No state is created.
  const anonymousPage = (request: Request, url: URL, notice?: string, status = 200): Response => {
    const headers: HeaderList = [];
    if (cookieValue(request, COOKIE) !== undefined) headers.push(dropSessionCookie(url));
    let nonce = formNonce(request);
    if (!nonce) {
      nonce = randomId();
      headers.push([
        "set-cookie",
        `${FORM_COOKIE}=${nonce}; Path=/; HttpOnly; SameSite=Strict${secure(url)}`,
      ]);
    }
    return html(loginPage({ csrf: formToken(nonce), notice }), status, headers);
  };

  // Flows whose outcome has been moved onto their client (by render() or when settled).
  const applied = new WeakSet<LoginFlow>();

  // Moves a settled flow's outcome onto its client, once.
  const settle = (
    client: Client,
    flow: LoginFlow,
    step: SuccessStep | FailureStep,
    key: string,
  ): Promise<void> | void => {
    if (applied.has(flow)) return;
    applied.add(flow);
    // Before anything else: a failure holds the next attempt from this client even when the
    // login it belonged to was replaced or cancelled meanwhile.
    if (step.kind === "failure" && step.failDelayMs) {
      notBefore.set(key, Math.max(notBefore.get(key) ?? 0, Date.now() + step.failDelayMs));
    }
    if (client.flow !== flow || !clients.has(client)) {
      // Replaced or forgotten meanwhile: nobody will log out of this session.
      if (step.kind === "success") return closeQuietly(step.session, "its login was abandoned");
      log(`login abandoned for ${JSON.stringify(flow.user)}: ${step.description}`);
      return;
    }
    client.flow = undefined;
    if (step.kind === "success") {
      client.session = step.session;
      client.sessionNotices = step.notices;
      client.sessionId = step.id;
      log(`login succeeded for ${JSON.stringify(step.session.user)}`);
      return;
    }
    client.failure = { user: flow.user, messages: step.messages, description: step.description };
    log(`login failed for ${JSON.stringify(flow.user)}: ${step.description}`);
  };

  const render = (client: Client, key: string): string => {
    const { csrf } = client;
    const flow = client.flow;
    const step = flow?.current;
    if (flow && step && step.kind !== "prompt") settle(client, flow, step, key);
    if (client.session) {
      return successPage({
        csrf,
        user: client.session.user,
        env: client.session.env,
        messages: client.sessionNotices ?? [],
        id: client.sessionId ?? "",
      });
    }
    if (client.flow) {
      if (step?.kind === "prompt") {
        return promptPage({
          csrf,
          user: client.flow.user,
          step: step.step,
          notices: step.notices,
          messages: step.messages,
        });
      }
      return workingPage({ user: client.flow.user });
    }
    if (client.failure) return failurePage({ csrf, ...client.failure });
    const notice = client.notice;
    client.notice = undefined;
    return loginPage({ csrf, notice });
  };

  // pam_fail_delay(3) for an event-driven server: after a failure, this client's
  // next attempt waits out the delay the modules asked for; nobody else does.
  const failDelay = async (key: string): Promise<void> => {
    const wait = (notBefore.get(key) ?? 0) - Date.now();
    if (wait > 0) await sleep(wait);
  };

  // Answers from one client are checked one at a time: guesses posted together would
  // otherwise all pass failDelay() before the first failure had set the next delay.
  const turns = new Map<string, Promise<void>>();
  const inTurn = async (key: string, work: () => Promise<void>): Promise<void> => {
    const mine = (turns.get(key) ?? Promise.resolve()).then(work);
    const tail = mine.catch(() => {});
    turns.set(key, tail);
    try {
      await mine;
    } finally {
      if (turns.get(key) === tail) turns.delete(key);
    }
  };

  // Reads at most MAX_BODY bytes, whatever content-length says (or does not say).
  const readBody = async (request: Request): Promise<Uint8Array | undefined> => {
    const reader = request.body?.getReader();
    if (!reader) return new Uint8Array();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_BODY) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return body;
  };

  const readForm = async (request: Request): Promise<URLSearchParams | Response> => {
    const type = request.headers.get("content-type") ?? "";
    if (!type.startsWith("application/x-www-form-urlencoded")) {
      return html(errorPage("Unsupported form encoding"), 415);
    }
    const length = Number(request.headers.get("content-length") ?? 0);
    if (length > MAX_BODY) return html(errorPage("Form too large"), 413);
    const body = await readBody(request);
    if (!body) return html(errorPage("Form too large"), 413);
    return new URLSearchParams(new TextDecoder().decode(body));
  };

  // Runs a post of `client`'s; the sweeper leaves the client alone until it is answered.
  const whileBusy = async (client: Client, work: () => Promise<Response>): Promise<Response> => {
    client.busy++;
    try {
      return await work();
    } finally {
      client.busy--;
      client.seen = Date.now();
    }
  };

  // The response to a post that changed what the session can do: the cookie names the entry
  // as it is when the response leaves (renewed meanwhile perhaps), or is dropped if it was
  // evicted.
  const renewed = (client: Client, url: URL): Response =>
    redirect(clients.has(client) ? [sessionCookie(client, url)] : [dropSessionCookie(url)]);

  const startLogin = async (
    client: Client,
    user: string,
    url: URL,
    clientAddress: string | undefined,
  ): Promise<Response> => {
    const key = clientAddress ?? client.key;
    // A new login gets a new id: one planted in this browser is dead from here on.
    clients.renew(client);
    client.flow?.cancel();
    client.flow = undefined;
    client.failure = undefined;
    client.notice = undefined;
    await failDelay(key);
    // Evicted while it waited: there is nothing to start a login for.
    if (!clients.has(client)) return renewed(client, url);
    // Another post may have started a login while this one waited (TypeScript
    // narrowed client.flow to undefined before the await; it can change meanwhile).
    (client.flow as LoginFlow | undefined)?.cancel();
    const flow = LoginFlow.start({
      service: options.service,
      confdir: options.confdir,
      user,
      rhost: clientAddress,
      conversationTimeoutMs,
      onInternalError: (error) => log(`login error: ${describe(error)}`),
    });
    client.flow = flow;
    log(
      `login started for ${JSON.stringify(user)}${clientAddress ? ` from ${clientAddress}` : ""}`,
    );
    // The outcome lands on the client even if no request is waiting for it.
    flow.settled.then((step) => settle(client, flow, step, key));
    await flow.next();
    return renewed(client, url);
  };

  const handle = async (request: Request, clientAddress?: string): Promise<Response> => {
    // Before anything is read or created: a rebound DNS name must not reach a page or a form.
    if (!hosts.allows(request)) return html(errorPage("Unknown host name"), 421);
    const url = new URL(request.url);
    if (request.method === "GET" || request.method === "HEAD") {
      if (url.pathname !== "/") return html(errorPage("Not found"), 404);
      const client = clients.get(cookieValue(request, COOKIE));
      if (!client) return anonymousPage(request, url);
      return html(render(client, clientAddress ?? client.key));
    }
    if (request.method !== "POST") {
      return html(errorPage("Method not allowed"), 405, [["allow", "GET, HEAD, POST"]]);
    }
    if (!["/login", "/answer", "/cancel", "/logout"].includes(url.pathname)) {
      return html(errorPage("Not found"), 404);
    }
    // Cross-site form posts: the SameSite=Strict cookies are not sent, and the Origin
    // header (every current browser sends it on POST) and the token must match.
    if (!hosts.allowsOrigin(request.headers.get("origin"), url)) {
      return html(errorPage("Cross-site request refused"), 403);
    }
    const known = clients.get(cookieValue(request, COOKIE));
    const form = await readForm(request);
    if (form instanceof Response) return form;
    const token = form.get("csrf") ?? "";
    if (!known) {
      // Only the login form can come from a browser the server keeps nothing for; its token
      // must be the one for that browser's form nonce.
      const nonce = formNonce(request);
      if (url.pathname !== "/login" || !nonce || !sameText(token, formToken(nonce))) {
        return redirect();
      }
      const user = loginUser(form);
      if (user === undefined) return anonymousPage(request, url, BAD_USER, 400);
      // The first state this browser gets.
      const client = clients.create(clientAddress);
      if (!client) {
        log("login refused: every entry of the client table holds an open session");
        return html(errorPage("Too many sessions are open; try again later"), 503);
      }
      return await whileBusy(client, () => startLogin(client, user, url, clientAddress));
    }
    // An expired, replaced or forged session: start over with a fresh page.
    if (!sameText(token, known.csrf)) return redirect();
    const client = known;

    return await whileBusy(client, async (): Promise<Response> => {
      switch (url.pathname) {
        case "/login": {
          const user = loginUser(form);
          if (user === undefined) {
            return html(loginPage({ csrf: client.csrf, notice: BAD_USER }), 400);
          }
          if (client.session) return redirect();
          return await startLogin(client, user, url, clientAddress);
        }
        case "/answer": {
          const flow = client.flow;
          const step = flow?.current;
          if (!flow || step?.kind !== "prompt" || String(step.step) !== form.get("step")) {
            return redirect();
          }
          const values: string[] = [];
          for (const [i, message] of step.messages.entries()) {
            if (!isPrompt(message)) continue;
            const value = form.get(`answer-${i}`) ?? "";
            if (value.length > MAX_ANSWER) {
              flow.cancel();
              return redirect();
            }
            values.push(value);
          }
          // This answer may be the one that logs the browser in: a new id first, so that an id
          // planted in the browser (or one that leaked) never becomes a logged-in session.
          clients.renew(client);
          const key = clientAddress ?? client.key;
          // Answers wait out the fail delay too, one at a time per client, so logins opened
          // side by side cannot have their guesses checked faster than one per delay.
          await inTurn(key, async () => {
            await failDelay(key);
            flow.answer(step.step, values);
            const outcome = await flow.next();
            // Set the delay a failure asks for before the next answer's turn begins.
            if (outcome && outcome.kind !== "prompt") settle(client, flow, outcome, key);
          });
          return renewed(client, url);
        }
        case "/cancel": {
          const flow = client.flow;
          if (flow) {
            flow.cancel();
            client.flow = undefined;
            client.notice = "Login cancelled.";
            log(`login cancelled for ${JSON.stringify(flow.user)}`);
          }
          return redirect();
        }
        default: { // "/logout"
          // Whatever the old id could do ends here.
          clients.renew(client);
          const session = client.session;
          client.session = undefined;
          client.sessionNotices = undefined;
          client.sessionId = undefined;
          if (session) {
            try {
              await session.close();
              client.notice = `${session.user} logged out: the PAM session is closed.`;
              log(`logout of ${JSON.stringify(session.user)}`);
            } catch (error) {
              client.notice = `Logged out, but closing the PAM session failed: ${
                error instanceof Error ? error.message : "unknown error"
              }`;
              log(
                `closing the session of ${JSON.stringify(session.user)} failed: ${describe(error)}`,
              );
            }
          }
          return renewed(client, url);
        }
      }
    });
  };

  return {
    async handle(request, clientAddress) {
      try {
        return await handle(request, clientAddress);
      } catch (error) {
        // A bug, not PAM's answer: the log gets the details, the page does not.
        log(`request failed: ${describe(error)}`);
        return html(errorPage("Internal error"), 500);
      }
    },
    async close() {
      clearInterval(sweeper);
      await Promise.all(
        [...clients.values()].map((client) => forget(client, "the server is shutting down")),
      );
      await Promise.all(closing);
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
