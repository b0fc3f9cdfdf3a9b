/**
 * Starts the web login example on Deno (`Deno.serve`) or Bun (`Bun.serve`):
 * the one place that knows the runtime. Everything else is handler.ts.
 *
 * ```sh
 * deno task web                         # or:
 * bun run examples/web-login/main.ts
 * PORT=9000 PAM_SERVICE=login PAM_CONFDIR=/etc/pam.d deno task web
 * HOST=0.0.0.0 ALLOWED_HOSTS=login.example.org deno task web
 * ```
 *
 * @module
 */

import process from "node:process";
import { createWebLogin } from "./handler.ts";
import { listenConfig, runServer, type Served } from "./run_server.ts";
import { createDemoStack, demoCode, demoUsers } from "./stack.ts";

const { port, hostname, allowedHosts } = listenConfig();

let service = process.env.PAM_SERVICE;
let confdir = process.env.PAM_CONFDIR;
let demo: ReturnType<typeof createDemoStack> | undefined;
if (!service) {
  if (confdir) throw new TypeError("PAM_CONFDIR needs PAM_SERVICE: the service file to use in it");
  demo = createDemoStack();
  service = demo.service;
  confdir = demo.confdir;
  console.log(`Demo PAM stack in ${confdir} (session log: ${demo.log})`);
  console.log(
    `Users: ${
      Object.entries(demoUsers).map(([u, p]) => `${u} / ${p}`).join(", ")
    }; one-time code ${demoCode}`,
  );
}

const web = createWebLogin({ service, confdir, allowedHosts });

function serve(onListen: (port: number) => void): Served {
  const g = globalThis as unknown as Record<string, unknown>;
  if ("Deno" in g) {
    const deno = g.Deno as {
      serve(
        options: { port: number; hostname: string; onListen(addr: { port: number }): void },
        handler: (
          request: Request,
          info: { remoteAddr: { hostname: string } },
        ) => Promise<Response>,
      ): { addr: { port: number }; shutdown(): Promise<void> };
    };
    const server = deno.serve(
      { port, hostname, onListen: (addr) => onListen(addr.port) },
      (request, info) => web.handle(request, info.remoteAddr.hostname),
    );
    return { stop: () => server.shutdown() };
  }
  if ("Bun" in g) {
    const bun = g.Bun as {
      serve(options: {
        port: number;
        hostname: string;
        fetch(
          request: Request,
          server: { requestIP(request: Request): { address: string } | null },
        ): Promise<Response>;
      }): { port: number; stop(closeActive?: boolean): Promise<void> };
    };
    const server = bun.serve({
      port,
      hostname,
      fetch: (request, srv) => web.handle(request, srv.requestIP(request)?.address),
    });
    onListen(server.port);
    return { stop: () => server.stop(true) };
  }
  throw new Error("The web login example runs on Deno or Bun");
}

runServer({ hostname, serve, close: () => web.close(), cleanup: () => demo?.remove() });
