/**
 * Child processes of the bench, and the cleanup that kills them and removes
 * temporary files on every exit.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { join } from "node:path";
import { log, root } from "./_options.ts";

export const cleanups: (() => void)[] = [];
export let child: Deno.ChildProcess | undefined;
export function cleanup(): void {
  try {
    child?.kill("SIGKILL");
  } catch {
    // already gone
  }
  while (cleanups.length) {
    try {
      cleanups.pop()!();
    } catch (error) {
      log(`cleanup: ${error}`);
    }
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(signal, () => {
    log(`\n${signal}: cleaning up`);
    cleanup();
    Deno.exit(130);
  });
}
globalThis.addEventListener("unload", cleanup);

export async function run(
  cmd: string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let command: Deno.Command;
  try {
    command = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: options.cwd ?? root,
      env: options.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
    child = command.spawn();
  } catch (error) {
    return { code: 127, stdout: "", stderr: String(error) };
  }
  const proc = child;
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 600_000);
  const out = await proc.output();
  clearTimeout(timer);
  child = undefined;
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

export async function which(name: string): Promise<string | undefined> {
  // Deno and Bun install into .tools/ (npm ci); then PATH.
  for (const dir of [".tools/node_modules/.bin", "node_modules/.bin"]) {
    const local = join(root, dir, name);
    if (existsSync(local)) return local;
  }
  const { code, stdout } = await run(["sh", "-c", `command -v ${name}`]);
  return code === 0 ? stdout.trim() : undefined;
}

export async function versionOf(cmd: string[]): Promise<string | undefined> {
  const { code, stdout } = await run(cmd);
  return code === 0 ? stdout.trim().split("\n")[0] : undefined;
}

// One median for the driver and the runners alike (it lives with the runners' helpers).
export { median } from "./js/common.ts";
import { median } from "./js/common.ts";

/** The median of a series' defined values. */
export const medianOfDefined = (xs: (number | undefined)[]): number =>
  median(xs.filter((v): v is number => v !== undefined));

/** For {@linkcode paired}: the ratio and the difference of a pair. */
export const ratio = (x: number, y: number): number => x / y;
export const difference = (x: number, y: number): number => x - y;

/** Per-repetition pairs of two series, for ratios measured in the same repetition. */
export function paired(
  a: (number | undefined)[],
  b: (number | undefined)[],
  f: (x: number, y: number) => number,
) {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== undefined && b[i] !== undefined) out.push(f(a[i]!, b[i]!));
  }
  return median(out);
}
