/**
 * The web login example's HTML: every page the server renders, as plain
 * strings. Everything that comes from PAM or from the user goes through
 * {@linkcode escapeHtml}; the pages carry no script, so the server can send a
 * Content-Security-Policy that forbids all of it.
 *
 * The page contract (see README.md): the user name is `input[name=user]`;
 * each prompt is answered in an `input` of a `form` submitted with Enter; the
 * final page has an element with `data-pam-result="success"` or `"failure"`
 * whose text holds the modules' messages.
 *
 * @module
 */

import { MessageStyle, type PamMessage } from "../../mod.ts";

/**
 * Escapes text for HTML element content and double-quoted attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./pages.ts";
 * escapeHtml(`<b title="x">`); // "&#60;b title=&#34;x&#34;&#62;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `true` for the messages that need an answer typed by the person. */
export function isPrompt(message: PamMessage): boolean {
  return message.style === MessageStyle.PROMPT_ECHO_OFF ||
    message.style === MessageStyle.PROMPT_ECHO_ON || message.style === MessageStyle.RADIO_TYPE;
}

const style = `
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 34rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.45; }
  h1 { font-size: 1.4rem; }
  form { display: grid; gap: .6rem; margin: 1rem 0; }
  label { display: grid; gap: .2rem; font-weight: 600; }
  input { font: inherit; padding: .4rem .5rem; }
  button { font: inherit; padding: .4rem 1rem; justify-self: start; }
  .messages { list-style: none; padding: 0; }
  .messages li { padding: .4rem .6rem; margin: .3rem 0; border-left: 4px solid #6a8fd8; }
  .messages li.error { border-color: #d33; font-weight: 600; }
  .detail { color: #777; font-size: .9rem; }
  table { border-collapse: collapse; }
  td, th { text-align: left; padding: .2rem .8rem .2rem 0; font-family: ui-monospace, monospace; }
  footer { margin-top: 2rem; color: #777; font-size: .85rem; }
`;

function layout(title: string, body: string, options: { refresh?: number } = {}): string {
  const refresh = options.refresh ? `<meta http-equiv="refresh" content="${options.refresh}">` : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
${body}
<footer>@seed/pam web login example: every prompt on this page comes from a PAM module.</footer>
</body>
</html>
`;
}

function messageList(messages: readonly PamMessage[]): string {
  const shown = messages.filter((m) => !isPrompt(m) && m.text !== "");
  if (shown.length === 0) return "";
  const items = shown.map((m) => {
    const kind = m.style === MessageStyle.ERROR_MSG ? "error" : "info";
    return `<li class="${kind}">${escapeHtml(m.text)}</li>`;
  });
  return `<ul class="messages">\n${items.join("\n")}\n</ul>`;
}

function csrfField(csrf: string): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
}

function userForm(csrf: string, user = ""): string {
  return `<form method="post" action="/login">
${csrfField(csrf)}
<label>User name <input name="user" value="${
    escapeHtml(user)
  }" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus></label>
<button>Next</button>
</form>`;
}

/**
 * The first page: a form asking for the user name.
 *
 * @example
 * ```ts
 * import { loginPage } from "./pages.ts";
 * const html = loginPage({ csrf: "token" });
 * ```
 */
export function loginPage(options: { csrf: string; notice?: string }): string {
  const notice = options.notice ? `<p class="detail">${escapeHtml(options.notice)}</p>` : "";
  return layout("Log in", `<h1>Log in</h1>\n${notice}\n${userForm(options.csrf)}`);
}

/**
 * One batch of PAM messages as a form: info and error messages as text, an
 * echo-off prompt as a password field, an echo-on prompt as a text field, in
 * the modules' order. `notices` are the info and error messages of earlier
 * batches that needed no answer.
 *
 * @example
 * ```ts
 * import { MessageStyle } from "../../mod.ts";
 * import { promptPage } from "./pages.ts";
 * const html = promptPage({
 *   csrf: "token",
 *   user: "alice",
 *   step: 1,
 *   notices: [],
 *   messages: [{ style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " }],
 * });
 * ```
 */
export function promptPage(options: {
  csrf: string;
  user: string;
  step: number;
  notices: readonly PamMessage[];
  messages: readonly PamMessage[];
}): string {
  const { csrf, user, step, notices, messages } = options;
  let first = true;
  const parts = messages.map((m, i) => {
    if (!isPrompt(m)) return messageList([m]);
    const secret = m.style === MessageStyle.PROMPT_ECHO_OFF;
    const label = m.text.trim().replace(/:$/, "") || (secret ? "Password" : "Answer");
    // A second secret in one batch is almost always "new password" and its retype.
    const autocomplete = secret
      ? (messages.filter((p) => p.style === MessageStyle.PROMPT_ECHO_OFF).length > 1
        ? "new-password"
        : "current-password")
      : "off";
    const focus = first ? " autofocus" : "";
    first = false;
    return `<label>${escapeHtml(label)} <input type="${
      secret ? "password" : "text"
    }" name="answer-${i}"` +
      ` autocomplete="${autocomplete}" autocapitalize="none" spellcheck="false"${focus}></label>`;
  });
  const body = `<h1>Log in as ${escapeHtml(user)}</h1>
${messageList(notices)}
<form method="post" action="/answer">
${csrfField(csrf)}
<input type="hidden" name="step" value="${step}">
${parts.join("\n")}
<button>Continue</button>
</form>
<form method="post" action="/cancel">${csrfField(csrf)}<button>Cancel</button></form>`;
  return layout(`Log in as ${user}`, body);
}

/**
 * Shown while PAM works between two prompts (a slow module, a queued
 * worker): reloads itself.
 *
 * @example
 * ```ts
 * import { workingPage } from "./pages.ts";
 * const html = workingPage({ user: "alice" });
 * ```
 */
export function workingPage(options: { user: string }): string {
  return layout(
    "Checking…",
    `<h1>Checking ${escapeHtml(options.user)}…</h1>\n<p>Waiting for the PAM modules.</p>`,
    { refresh: 1 },
  );
}

/**
 * The page after a successful login: the user PAM settled on, the session's
 * PAM environment, and a logout form.
 *
 * @example
 * ```ts
 * import { successPage } from "./pages.ts";
 * const html = successPage({
 *   csrf: "token",
 *   user: "alice",
 *   env: { HOME: "/home/alice" },
 *   messages: [],
 *   id: "uid=1000(alice) gid=1000(alice) groups=1000(alice)",
 * });
 * ```
 */
export function successPage(options: {
  csrf: string;
  user: string;
  env: Readonly<Record<string, string>>;
  messages: readonly PamMessage[];
  id: string;
}): string {
  const { csrf, user, env, messages, id } = options;
  const rows = Object.entries(env).map(([k, v]) =>
    `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`
  );
  const table = rows.length
    ? `<table data-pam-env>\n${rows.join("\n")}\n</table>`
    : `<p class="detail">The modules set no environment.</p>`;
  const body = `<section data-pam-result="success">
<h1>Logged in as <span data-pam-user>${escapeHtml(user)}</span></h1>
${messageList(messages)}
</section>
<h2>Run as you, in your session</h2>
<pre data-pam-id>$ id
${escapeHtml(id)}</pre>
<h2>Session environment</h2>
${table}
<form method="post" action="/logout">${csrfField(csrf)}<button>Log out</button></form>`;
  return layout(`Logged in as ${user}`, body);
}

/**
 * The page after a failed login: the modules' messages and libpam's
 * description of the failure (never a stack), then the user form again.
 *
 * @example
 * ```ts
 * import { MessageStyle } from "../../mod.ts";
 * import { failurePage } from "./pages.ts";
 * const html = failurePage({
 *   csrf: "token",
 *   user: "alice",
 *   messages: [{ style: MessageStyle.ERROR_MSG, text: "Authentication failed" }],
 *   description: "pam_authenticate failed: Authentication failure (PAM_AUTH_ERR)",
 * });
 * ```
 */
export function failurePage(options: {
  csrf: string;
  user: string;
  messages: readonly PamMessage[];
  description: string;
}): string {
  const { csrf, user, messages, description } = options;
  const body = `<section data-pam-result="failure">
<h1>Login failed</h1>
${messageList(messages)}
<p class="detail">${escapeHtml(description)}</p>
</section>
${userForm(csrf, user)}`;
  return layout("Login failed", body);
}

/**
 * A short page for errors of the request itself (bad CSRF token, unknown
 * path), with a link back.
 *
 * @example
 * ```ts
 * import { errorPage } from "./pages.ts";
 * const html = errorPage("Not found");
 * ```
 */
export function errorPage(text: string): string {
  return layout(
    text,
    `<h1>${escapeHtml(text)}</h1>\n<p><a href="/">Back to the login page</a></p>`,
  );
}
