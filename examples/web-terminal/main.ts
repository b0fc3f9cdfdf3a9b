/**
 * Starts the web terminal example on Deno (`Deno.serve`,
 * `Deno.upgradeWebSocket`) or Bun (`Bun.serve` and its `websocket`
 * handlers): the one place that knows the runtime. Everything else is
 * server.ts.
 *
 * ```sh
 * deno task web-terminal                 # or:
 * bun run examples/web-terminal/main.ts
 * PORT=9000 DEMO_USER=alice deno task web-terminal
 * PAM_SERVICE=login PAM_CONFDIR=/etc/pam.d UTMP=system deno task web-terminal   # as root
 * ```
 *
 * @module
 */

import process from "node:process";
import { join } from "node:path";
import { listenConfig, runServer, type Served } from "../web-login/run_server.ts";
import { createWebTerminal, type Peer } from "./server.ts";
import { createDemoStack, demoPassword } from "./stack.ts";

const { port, hostname, allowedHosts } = listenConfig();

let service = process.env.PAM_SERVICE;
let confdir = process.env.PAM_CONFDIR;
let demo: ReturnType<typeof createDemoStack> | undefined;
let hint: string | undefined;
if (!service) {
  if (confdir) throw new TypeError("PAM_CONFDIR needs PAM_SERVICE: the service file to use in it");
  demo = createDemoStack();
  service = demo.service;
  confdir = demo.confdir;
  const who = demo.createdUser
    ? "created with useradd for this demo, removed at exit"
    : process.env.DEMO_USER
    ? "DEMO_USER"
    : "the account this server runs as";
  console.log(`Demo PAM stack in ${confdir} (session log: ${demo.log})`);
  console.log(`User: ${demo.user} (${who}), password ${demoPassword} (the demo stack's own)`);
  hint = `log in as ${demo.user}, password ${demoPassword}`;
}
// The demo's utmp/wtmp live beside its stack (who/last read them); UTMP=system means the
// system's files (root only).
const utmp = process.env.UTMP === "system" ? {} : {
  utmpFile: process.env.UTMP_FILE ?? join(demo?.dir ?? "/tmp", "utmp"),
  wtmpFile: process.env.WTMP_FILE ?? join(demo?.dir ?? "/tmp", "wtmp"),
};
if (utmp.utmpFile) console.log(`utmp: ${utmp.utmpFile}, wtmp: ${utmp.wtmpFile}`);

const web = createWebTerminal({ service, confdir, allowedHosts, utmp, hint });

/** A Bun ServerWebSocket's peer, reached through the socket's data. */
interface BunSocket {
  data: { peer: Peer & { attach(socket: BunSocket): void } };
  send(data: string | Uint8Array): number;
  close(code?: number, reason?: string): void;
  getBufferedAmount(): number;
}

function serve(onListen: (port: number) => void): Served {
  const g = globalThis as unknown as Record<string, unknown>;
  if ("Deno" in g) {
    interface DenoSocket {
      binaryType: string;
      readyState: number;
      bufferedAmount: number;
      send(data: string | Uint8Array): void;
      close(code?: number, reason?: string): void;
      onopen: (() => void) | null;
      onmessage: ((event: { data: string | ArrayBuffer }) => void) | null;
      onclose: (() => void) | null;
    }
    const deno = g.Deno as {
      serve(
        options: { port: number; hostname: string; onListen(addr: { port: number }): void },
        handler: (
          request: Request,
          info: { remoteAddr: { hostname: string } },
        ) => Promise<Response>,
      ): { shutdown(): Promise<void> };
      upgradeWebSocket(request: Request): { socket: DenoSocket; response: Response };
    };
    const upgrade = (request: Request) => {
      const { socket, response } = deno.upgradeWebSocket(request);
      socket.binaryType = "arraybuffer";
      const peer: Peer = {
        send: (data) => socket.readyState === 1 && socket.send(data),
        close: (code, reason) => socket.close(code, reason),
        bufferedAmount: () => socket.bufferedAmount,
      };
      socket.onopen = () => peer.onOpen?.();
      socket.onmessage = (event) =>
        peer.onMessage?.(
          typeof event.data === "string" ? event.data : new Uint8Array(event.data),
        );
      socket.onclose = () => peer.onClose?.();
      return { peer, response };
    };
    const server = deno.serve(
      { port, hostname, onListen: (addr) => onListen(addr.port) },
      async (request, info) =>
        (await web.handle(request, info.remoteAddr.hostname, upgrade)) ??
          new Response(null, { status: 500 }),
    );
    return { stop: () => server.shutdown() };
  }
  if ("Bun" in g) {
    interface BunServer {
      port: number;
      requestIP(request: Request): { address: string } | null;
      upgrade(request: Request, options: { data: BunSocket["data"] }): boolean;
      stop(closeActive?: boolean): Promise<void>;
    }
    const bun = g.Bun as {
      serve(options: {
        port: number;
        hostname: string;
        fetch(request: Request, server: BunServer): Promise<Response | undefined>;
        websocket: {
          open(socket: BunSocket): void;
          message(socket: BunSocket, data: string | Uint8Array): void;
          close(socket: BunSocket): void;
        };
      }): BunServer;
    };
    const server = bun.serve({
      port,
      hostname,
      fetch: (request, srv) =>
        web.handle(request, srv.requestIP(request)?.address, (request) => {
          let socket: BunSocket | undefined;
          const peer = {
            send: (data: string | Uint8Array) => void socket?.send(data),
            close: (code?: number, reason?: string) => socket?.close(code, reason),
            bufferedAmount: () => socket?.getBufferedAmount() ?? 0,
            attach: (s: BunSocket) => socket = s,
          } as BunSocket["data"]["peer"];
          if (!srv.upgrade(request, { data: { peer } })) {
            throw new Error("the WebSocket upgrade failed");
          }
          return { peer, response: undefined };
        }),
      websocket: {
        open: (socket) => {
          socket.data.peer.attach(socket);
          // Bun may open the socket inside upgrade(), before the server has set its handlers.
          queueMicrotask(() => socket.data.peer.onOpen?.());
        },
        message: (socket, data) => socket.data.peer.onMessage?.(data),
        close: (socket) => socket.data.peer.onClose?.(),
      },
    });
    onListen(server.port);
    return { stop: () => server.stop(true) };
  }
  throw new Error("The web terminal example runs on Deno or Bun");
}

runServer({ hostname, serve, close: () => web.close(), cleanup: () => demo?.remove() });
