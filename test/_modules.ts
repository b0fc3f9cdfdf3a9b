// Tiny PAM modules compiled for a test with `cc`, for the cases no stock module reaches (a
// module that crashes, ...). Each compiles once per test process, into a directory removed at exit.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const cache = new Map<string, { path?: string; why?: string }>();
let dir: string | undefined;

/** Compiles `source` into `pam_<name>.so`; returns its path, or why it could not (no cc/headers). */
export function compileModule(name: string, source: string): { path?: string; why?: string } {
  const known = cache.get(name);
  if (known) return known;
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), "seed-pam-modules-"));
    // Readable by everyone: a library preloaded into a program run as nobody must be loadable.
    chmodSync(dir, 0o755);
    const made = dir;
    const remove = () => rmSync(made, { recursive: true, force: true });
    // Bun's test runner emits "exit"; Deno's does not, but fires "unload" when the run ends.
    process.on("exit", remove);
    globalThis.addEventListener?.("unload", remove);
  }
  const c = join(dir, `pam_${name}.c`);
  const path = join(dir, `pam_${name}.so`);
  writeFileSync(c, source);
  const cc = spawnSync("cc", ["-shared", "-fPIC", "-o", path, c, "-lpam"], { encoding: "utf8" });
  const result = cc.status === 0 ? { path } : {
    why: `cannot compile a test module (needs cc and libpam0g-dev): ${
      cc.error?.message ?? cc.stderr
    }`,
  };
  cache.set(name, result);
  return result;
}
