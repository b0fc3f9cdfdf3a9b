// What the browser tests share: Debian's Chromium through playwright-core, and an example
// server started as a child process that prints "Listening on http://...".
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { wrapperModule } from "../src/testing.ts";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const chromiumPath = "/usr/bin/chromium";

/** Why the browser tests cannot run here (their demo stacks use pam_matrix), or `false`. */
export const browserSkip: string | false = !existsSync(chromiumPath)
  ? "needs Debian's chromium (/usr/bin/chromium)"
  : !wrapperModule("pam_matrix")
  ? "needs Debian's libpam-wrapper (pam_matrix)"
  : false;

/** A runtime from .tools when it is there, else from PATH. */
export function bin(name: string): string {
  const local = join(root, ".tools", "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
}

/** A running example server. */
export interface ExampleServer {
  base: string;
  child: ChildProcess;
  output: () => string;
}

/** Starts `command args` in the repository with `env` added; resolves once it listens. */
export function startExample(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<ExampleServer> {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, PORT: "0", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = output.match(/Listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ base: m[1], child, output: () => output });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} server exited with ${code}:\n${output}`));
    });
  });
}

/**
 * SIGTERM (the example's own shutdown, which closes the sessions and removes what it made),
 * SIGKILL only after the 10 s the example gives itself.
 */
export async function stopExample(server: ExampleServer): Promise<void> {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  const killer = setTimeout(() => server.child.kill("SIGKILL"), 12_000);
  await exited;
  clearTimeout(killer);
}

/** Headless Chromium; playwright gives every launch a fresh temporary user-data-dir. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** `deno task NAME`'s arguments after `deno`, so a test proves the task's permissions are enough. */
export function denoTaskArgs(task: string): string[] {
  const line: string = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks[task];
  const args = line.split(/\s+/);
  if (args[0] !== "deno") throw new Error(`deno task ${task} does not run deno: ${line}`);
  return args.slice(1);
}

/** One server per runtime, started on first use by `start`; `all()` for the teardown. */
export function serversByRuntime<S>(start: (runtime: "deno" | "bun") => Promise<S>): {
  on(runtime: "deno" | "bun"): Promise<S>;
  all(): Promise<S | undefined>[];
} {
  const servers = new Map<string, Promise<S>>();
  return {
    on(runtime) {
      let started = servers.get(runtime);
      if (!started) servers.set(runtime, started = start(runtime));
      return started;
    },
    all: () => [...servers.values()].map((started) => started.catch(() => undefined)),
  };
}
