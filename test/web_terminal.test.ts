// The web terminal example's server without a browser: what is refused before any socket
// opens (unknown Host, a foreign or missing Origin, a page token that is not the cookie's,
// too many logins from one address) and what the page gets (HttpOnly cookie, a CSP, xterm.js
// from node_modules).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createWebTerminal, type Peer, type Upgrade } from "../examples/web-terminal/server.ts";

const base = "http://127.0.0.1:8000";

/** An upgrade that opens nothing: counts the sockets the server asked for. */
function fakeUpgrade(): Upgrade & { peers: Peer[] } {
  const peers: Peer[] = [];
  const upgrade: Upgrade = () => {
    const peer: Peer = { send() {}, close() {}, bufferedAmount: () => 0 };
    peers.push(peer);
    return { peer, response: new Response(null, { status: 200 }) };
  };
  return Object.assign(upgrade, { peers });
}

async function pageOf(web: ReturnType<typeof createWebTerminal>) {
  const page = (await web.handle(new Request(`${base}/`), "127.0.0.1", fakeUpgrade()))!;
  const cookie = page.headers.get("set-cookie")!;
  const token = (await page.text()).match(/data-token="([^"]+)"/)![1];
  return { page, cookie: cookie.split(";")[0], setCookie: cookie, token };
}

function socketRequest(path: string, headers: Record<string, string>): Request {
  return new Request(`${base}${path}`, {
    headers: { upgrade: "websocket", origin: base, ...headers },
  });
}

test("web terminal: the page sets an HttpOnly SameSite=Strict cookie and a strict CSP; assets are local", async () => {
  const web = createWebTerminal({ service: "none", log: () => {} });
  const { page, setCookie } = await pageOf(web);
  assert.match(setCookie, /^wt_form=[\w-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
  assert.match(page.headers.get("content-security-policy")!, /script-src 'self';/);
  for (const asset of ["/xterm.js", "/addon-fit.js", "/xterm.css", "/app.js"]) {
    const r = (await web.handle(new Request(`${base}${asset}`), "127.0.0.1", fakeUpgrade()))!;
    assert.equal(r.status, 200, asset);
    assert.ok((await r.text()).length > 100, asset);
  }
  await web.close();
});

test("web terminal: sockets need an allowed Host, our Origin and the page's token", async () => {
  const web = createWebTerminal({ service: "none", log: () => {} });
  const upgrade = fakeUpgrade();
  const { cookie, token } = await pageOf(web);
  const login = `/login?token=${token}&cols=80&rows=24`;
  const status = async (request: Request) =>
    (await web.handle(request, "127.0.0.1", upgrade))!.status;
  // DNS rebinding: a name not on the allow-list.
  assert.equal(
    await status(new Request("http://evil.example:8000/", { headers: { host: "evil.example" } })),
    421,
  );
  // Cross-site WebSocket hijacking: another site's page, or no Origin at all.
  assert.equal(await status(socketRequest(login, { cookie, origin: "http://evil.example" })), 403);
  assert.equal(
    await status(new Request(`${base}${login}`, { headers: { upgrade: "websocket", cookie } })),
    403,
  );
  // A token that is not this browser's cookie's, or no cookie.
  assert.equal(
    await status(socketRequest(`/login?token=x${token.slice(1)}&cols=80&rows=24`, { cookie })),
    403,
  );
  assert.equal(await status(socketRequest(login, {})), 403);
  // A terminal socket without a session id from a login.
  assert.equal(await status(socketRequest("/terminal", { cookie: "wt_sid=guessed" })), 404);
  // A ticket that no login handed out.
  const claim = await web.handle(
    new Request(`${base}/session`, {
      method: "POST",
      body: "guessed",
      headers: { origin: base, cookie },
    }),
    "127.0.0.1",
    upgrade,
  );
  assert.equal(claim!.status, 404);
  assert.equal(upgrade.peers.length, 0, "no socket was opened");
  // The right one is upgraded.
  assert.equal(await status(socketRequest(login, { cookie })), 200);
  assert.equal(upgrade.peers.length, 1);
  upgrade.peers[0].onClose?.();
  await web.close();
});

test("web terminal: logins are bounded per address and in all", async () => {
  const web = createWebTerminal({
    service: "none",
    maxSessions: 3,
    maxPerAddress: 2,
    log: () => {},
  });
  const upgrade = fakeUpgrade();
  const { cookie, token } = await pageOf(web);
  const open = async (address: string) =>
    (await web.handle(
      socketRequest(`/login?token=${token}&cols=80&rows=24`, { cookie }),
      address,
      upgrade,
    ))!.status;
  assert.deepEqual(
    [await open("192.0.2.1"), await open("192.0.2.1"), await open("192.0.2.1")],
    [200, 200, 503],
  );
  assert.deepEqual([await open("192.0.2.2"), await open("192.0.2.3")], [200, 503]);
  // A socket that closes gives its place back.
  upgrade.peers[0].onClose?.();
  assert.equal(await open("192.0.2.1"), 200);
  for (const peer of upgrade.peers) peer.onClose?.();
  await web.close();
});
