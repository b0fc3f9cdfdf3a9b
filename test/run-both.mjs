// Runs the one test suite under Deno and then Bun, and prints a closing
// "N passed, N failed" line summing both. Plain Node.js, so it works before
// either runtime is on the PATH (both come from .tools/node_modules/.bin).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => {
  const local = join(root, ".tools", "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const filter = process.argv.slice(2);

// playwright-core needs Deno's --allow-all (it reads /proc/sys); every other file runs with the
// permissions a user of the library grants, so the browser file gets a Deno run of its own.
const browserTests = ["test/web_login_browser.test.ts", "test/web_terminal_browser.test.ts"];
const denoPermissions = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-net",
];
const denoParse = (out) => {
  // "ok | 41 passed | 0 failed | 2 ignored (3s)"
  const m = out.match(/\|\s*(\d+) passed.*?\|\s*(\d+) failed(?:.*?\|\s*(\d+) ignored)?/);
  return m && { passed: +m[1], failed: +m[2], skipped: +(m[3] ?? 0) };
};
const wanted = (file) =>
  filter.length === 0 || filter.some((f) => file.endsWith(f.replace(/^\.\//, "")));
const isBrowserTest = (f) => browserTests.some((b) => f.endsWith(b));
const denoFiles = filter.length ? filter.filter((f) => !isBrowserTest(f)) : ["test/"];
const denoBrowserFiles = browserTests.filter(wanted);

const runs = [
  ...(denoFiles.length
    ? [{
      name: "deno",
      cmd: bin("deno"),
      args: ["test", ...denoPermissions, `--ignore=${browserTests.join(",")}`, ...denoFiles],
      parse: denoParse,
    }]
    : []),
  ...(denoBrowserFiles.length
    ? [{
      name: "deno (browser tests)",
      cmd: bin("deno"),
      args: ["test", "--allow-all", ...denoBrowserFiles],
      parse: denoParse,
    }]
    : []),
  {
    name: "bun",
    cmd: bin("bun"),
    // Bun 1.4.5 ignores bunfig.toml's timeout; the PAM soaks and browser tests need more than 5 s.
    args: ["test", "--timeout=120000", ...(filter.length ? filter.map((f) => "./" + f) : [])],
    parse: (out) => {
      const p = out.match(/^\s*(\d+) pass$/m);
      const f = out.match(/^\s*(\d+) fail$/m);
      const s = out.match(/^\s*(\d+) skip$/m);
      return p && { passed: +p[1], failed: f ? +f[1] : 0, skipped: s ? +s[1] : 0 };
    },
  },
];

let passed = 0, failed = 0, skipped = 0;
for (const run of runs) {
  console.log(`\n### ${run.name} ${run.args.join(" ")}`);
  const r = spawnSync(run.cmd, run.args, {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    maxBuffer: 256 * 1024 * 1024,
  });
  const out = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(out);
  const counts = run.parse(out);
  if (!counts) {
    console.log(
      `${run.name}: could not read a test summary (exit ${r.status}); counting one failure`,
    );
    failed += 1;
    continue;
  }
  if (r.status !== 0 && counts.failed === 0) counts.failed = 1;
  console.log(
    `${run.name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
  );
  passed += counts.passed;
  failed += counts.failed;
  skipped += counts.skipped;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
