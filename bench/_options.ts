/**
 * The command line of `deno task bench` (see main.ts); `--sessions` hands over to
 * sessions.ts here.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const benchDir = join(root, "bench");

export const argv = Deno.args;
export const flag = (name: string) => argv.includes(`--${name}`);
export const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
export const known = [
  "json",
  "quick",
  "soak",
  "sessions",
  "reps",
  "iterations",
  "only",
  "rows",
  "soak-iterations",
  "warmup",
];
for (const a of argv) {
  const name = a.replace(/^--/, "").split("=")[0];
  if (!a.startsWith("--") || !known.includes(name)) {
    console.error(`unknown option ${a}; options: ${known.map((k) => `--${k}`).join(" ")}`);
    Deno.exit(2);
  }
}
export const json = flag("json");
export const quick = flag("quick");
if (flag("sessions")) {
  const { benchSessions, printSessions } = await import("./sessions.ts");
  const figures = benchSessions(quick);
  if (json) console.log(JSON.stringify(figures, null, 2));
  else printSessions(figures);
  Deno.exit(0);
}
export const soak = flag("soak");
export const reps = Number(value("reps") ?? (quick ? 3 : 5));
export const baseIterations = Number(value("iterations") ?? (quick ? 500 : 2000));
export const soakIterations = Number(value("soak-iterations") ?? 100_000);
// Every row's warm-up, for finding how long a JIT takes to settle (see docs/bench.md).
const warmupValue = value("warmup");
export const warmupOverride = warmupValue === undefined ? undefined : Number(warmupValue);
export const only = value("only")?.split(",");
export const onlyRows = value("rows")?.split(",");
export const log = (line: string) => console.error(line);
