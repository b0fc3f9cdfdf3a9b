// The web terminal's page: xterm.js, the PAM conversation typed into the terminal itself
// (echo off for passwords), then the login shell on the session's pseudo-terminal.
// document.body.dataset.state says where it is: "login", "shell" or "closed".
// xterm.js and its fit addon come first, as classic scripts (their UMD builds set globals).
const XTerm = globalThis.Terminal;
const Fit = globalThis.FitAddon.FitAddon;

const token = document.body.dataset.token;
const term = new XTerm({ cursorBlink: true, fontSize: 15, scrollback: 5000 });
const fit = new Fit();
term.loadAddon(fit);
term.open(document.getElementById("terminal"));
fit.fit();
term.focus();
globalThis.addEventListener("resize", () => fit.fit());
const encoder = new TextEncoder();

function socketUrl(path, params) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}?${new URLSearchParams(params)}`;
}

function setState(state) {
  document.body.dataset.state = state;
}

/** Waits for Enter, then starts over with a fresh page (a fresh form nonce and token). */
function offerRetry(text) {
  term.write(`\r\n${text}\r\n`);
  const again = term.onData((data) => {
    if (!data.includes("\r")) return;
    again.dispose();
    location.reload();
  });
}

function startLogin() {
  setState("login");
  const ws = new WebSocket(socketUrl("/login", { token, cols: term.cols, rows: term.rows }));
  /** The prompt being answered: what was typed, and whether to show it. */
  let prompt = null;
  let opened = false;
  const keys = term.onData((data) => {
    if (!prompt) return;
    for (const ch of data) {
      if (ch === "\r") {
        ws.send(JSON.stringify({ type: "answer", value: prompt.value }));
        prompt = null;
        term.write("\r\n");
        return;
      }
      if (ch === "\x7f") {
        if (prompt.value) {
          prompt.value = prompt.value.slice(0, -1);
          if (prompt.echo) term.write("\b \b");
        }
      } else if (ch === "\x03") {
        ws.close();
        return;
      } else if (ch >= " ") {
        prompt.value += ch;
        if (prompt.echo) term.write(ch);
      }
    }
  });
  ws.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "prompt") {
      term.write(m.text.endsWith(" ") ? m.text : `${m.text} `);
      prompt = { echo: m.echo, value: "" };
    } else if (m.type === "info") {
      term.write(`${m.text}\r\n`);
    } else if (m.type === "error" || m.type === "failed") {
      term.write(`\x1b[31m${m.text}\x1b[0m\r\n`);
    } else if (m.type === "opened") {
      opened = true;
      keys.dispose();
      ws.close();
      term.write(`\x1b[32mLogged in as ${m.user} on ${m.tty}\x1b[0m\r\n`);
      attach(m.ticket);
    }
  };
  ws.onclose = () => {
    keys.dispose();
    if (!opened) offerRetry("Press Enter to try again.");
  };
}

async function attach(ticket) {
  // The ticket buys a fresh HttpOnly session id, which the terminal's socket then carries.
  const claimed = await fetch("/session", { method: "POST", body: ticket });
  if (!claimed.ok) return offerRetry("The session could not be attached. Press Enter.");
  const ws = new WebSocket(socketUrl("/terminal", {}));
  ws.binaryType = "arraybuffer";
  const send = (data) => ws.readyState === WebSocket.OPEN && ws.send(data);
  const resize = ({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows }));
  const keys = term.onData((data) => send(encoder.encode(data)));
  const sizes = term.onResize(resize);
  ws.onopen = () => {
    setState("shell");
    resize(term);
  };
  ws.onmessage = (event) => term.write(new Uint8Array(event.data));
  ws.onclose = () => {
    keys.dispose();
    sizes.dispose();
    setState("closed");
    offerRetry("\x1b[1m[session closed]\x1b[0m Press Enter to log in again.");
  };
}

startLogin();
