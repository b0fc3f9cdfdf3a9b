/**
 * What the web examples' main.ts files share once they have a server: the
 * "Listening on" line tests read, and a shutdown on SIGINT/SIGTERM that
 * closes every PAM session before the process goes, without hanging.
 *
 * @module
 */

import process from "node:process";
import { defaultAllowedHosts } from "./hosts.ts";

/**
 * Where to listen and which host names to answer to, from the environment: `PORT` (default
 * 8000), `HOST` (default 127.0.0.1), and `ALLOWED_HOSTS` (comma-separated), which replaces the
 * default allow-list of the listening address and the loopback names (DNS rebinding).
 *
 * @example
 * ```ts
 * import { listenConfig } from "./run_server.ts";
 * const { port, hostname, allowedHosts } = listenConfig();
 * console.log(port, hostname, allowedHosts);
 * ```
 *
 * @throws {TypeError} When `PORT` is not a port number.
 */
export function listenConfig(): { port: number; hostname: string; allowedHosts: string[] } {
  const port = Number(process.env.PORT ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  }
  const hostname = process.env.HOST ?? "127.0.0.1";
  const allowedHosts = process.env.ALLOWED_HOSTS
    ? process.env.ALLOWED_HOSTS.split(",").map((name) => name.trim()).filter(Boolean)
    : [hostname, ...defaultAllowedHosts];
  return { port, hostname, allowedHosts };
}

/**
 * A started server, as `Deno.serve` and `Bun.serve` give one.
 *
 * @example
 * ```ts
 * import type { Served } from "./run_server.ts";
 * const served: Served = { stop: () => undefined };
 * ```
 */
export interface Served {
  /** Stops listening (and closes open connections). */
  stop(): unknown;
}

/**
 * How {@linkcode runServer} runs an example.
 *
 * @example
 * ```ts ignore
 * import type { RunServerOptions } from "./run_server.ts";
 * const options: RunServerOptions = { hostname: "127.0.0.1", serve, close: () => web.close() };
 * ```
 */
export interface RunServerOptions {
  /** The address, for the "Listening on" line. */
  hostname: string;
  /** Starts the server; calls `onListen` with the port once it listens. */
  serve(onListen: (port: number) => void): Served;
  /** Closes the PAM sessions and logins (the web handler's `close`). */
  close(): Promise<void>;
  /** Removes what the example made (its demo stack), at exit and when it cannot listen. */
  cleanup?: () => void;
}

/**
 * Starts the server and arranges its shutdown.
 *
 * @example
 * ```ts ignore
 * import { runServer } from "./run_server.ts";
 * runServer({ hostname, serve, close: () => web.close(), cleanup: () => demo?.remove() });
 * ```
 *
 * @throws {Error} What `serve` throws (a port in use, say), after `cleanup`.
 */
export function runServer(options: RunServerOptions): void {
  const cleanup = options.cleanup ?? (() => {});
  let server: Served;
  try {
    server = options.serve((listening) => {
      // Tests read this line for the port when PORT=0.
      console.log(`Listening on http://${options.hostname}:${listening}/`);
    });
  } catch (error) {
    // A port in use, say: the demo's temporary files must not stay behind.
    cleanup();
    throw error;
  }

  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Close the users' PAM sessions (pam_close_session) before the process goes,
    // but never hang on the way out.
    const giveUp = setTimeout(() => {
      console.error("Shutdown took over 10 s; exiting without waiting further");
      cleanup();
      process.exit(1);
    }, 10_000);
    await options.close();
    // Open keep-alive connections must not hold the exit up for long.
    await Promise.race([server.stop(), new Promise((resolve) => setTimeout(resolve, 2000))]);
    cleanup();
    clearTimeout(giveUp);
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}
