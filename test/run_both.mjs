// Runs the one test suite under Deno and then Bun, and prints a closing
// "N passed, N failed, N skipped" line summing both. Plain Node.js, so it works before
// either runtime is on the PATH (both come from .tools/node_modules/.bin).
//
// On a fresh machine it first installs the Debian packages the suite uses, when it can (root and
// apt-get; SEED_PAM_NO_INSTALL=1 turns that off); otherwise the tests that need a missing package
// skip with a note naming it. As root with unshare(1), a last run repeats the suite with
// libpam-wrapper and pamtester hidden (test/fresh_machine.sh): a missing package must never be a
// failure (SEED_PAM_FRESH=0 skips that run, SEED_PAM_FRESH=1 asks for it with a file filter).
// Every run gets a TMPDIR of its own; a seed-pam-* directory left in it is a failure.
import { spawnSync } from "node:child_process";
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => {
  const local = join(root, ".tools", "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const filter = process.argv.slice(2);
const isRoot = process.getuid?.() === 0;

/** Whether `name` is an executable on the PATH. */
function onPath(name) {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// What the tests look for, and the Debian package that brings it (libpam itself is a given).
const wrapperDirs = ["x86_64-linux-gnu", "aarch64-linux-gnu"].map((d) =>
  `/usr/lib/${d}/pam_wrapper`
);
const needs = [
  {
    pkg: "libpam-wrapper",
    present: () => wrapperDirs.some((d) => existsSync(join(d, "pam_matrix.so"))),
  },
  { pkg: "pamtester", present: () => onPath("pamtester") },
  { pkg: "gcc", present: () => onPath("cc") },
  { pkg: "libpam0g-dev", present: () => existsSync("/usr/include/security/pam_modules.h") },
  { pkg: "libc6-dev", present: () => existsSync("/usr/include/stdio.h") },
  { pkg: "python3", present: () => onPath("python3") },
  { pkg: "chromium", present: () => existsSync("/usr/bin/chromium") },
];

/** Installs what is missing when it can; says on stderr what it did or why not. */
function provide() {
  let missing = needs.filter((n) => !n.present()).map((n) => n.pkg);
  if (missing.length === 0) return;
  const why = process.env.SEED_PAM_NO_INSTALL === "1"
    ? "SEED_PAM_NO_INSTALL=1"
    : !isRoot
    ? "not root"
    : !onPath("apt-get")
    ? "no apt-get"
    : undefined;
  if (why === undefined) {
    console.error(`run_both: installing ${missing.join(" ")} with apt-get (the tests use them)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const apt = (args) =>
      spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
    const ok = apt(["update", "-qq"]).status === 0 &&
      apt(["install", "-y", "-qq", "--no-install-recommends", ...missing]).status === 0;
    missing = needs.filter((n) => !n.present()).map((n) => n.pkg);
    if (ok && missing.length === 0) return;
    console.error(
      `run_both: apt-get ${ok ? "left" : "failed; still"} missing: ${missing.join(" ")}`,
    );
  } else {
    console.error(`run_both: not installing (${why}): ${missing.join(" ")}`);
  }
  console.error(
    "run_both: the tests that need those skip, each with a note naming what is missing",
  );
}

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

// The same suite on a machine without libpam-wrapper and pamtester, as root only (a private
// mount namespace hides them; see test/fresh_machine.sh). Its own closing line is parsed.
const freshWanted = process.env.SEED_PAM_FRESH === "1" ||
  (process.env.SEED_PAM_FRESH !== "0" && filter.length === 0);
if (freshWanted && isRoot && onPath("unshare")) {
  runs.push({
    name: "fresh machine (libpam-wrapper and pamtester hidden)",
    cmd: "unshare",
    args: ["--mount", "--propagation", "private", "sh", "test/fresh_machine.sh", ...filter],
    env: { SEED_PAM_NO_INSTALL: "1", SEED_PAM_FRESH: "0" },
    parse: (out) => {
      const m = [...out.matchAll(/^(\d+) passed, (\d+) failed, (\d+) skipped$/gm)].at(-1);
      return m && { passed: +m[1], failed: +m[2], skipped: +m[3] };
    },
  });
} else if (freshWanted) {
  console.error("run_both: no fresh-machine run (needs root and unshare)");
}

provide();
let passed = 0, failed = 0, skipped = 0;
for (const run of runs) {
  console.log(`\n### ${run.name} ${run.args.join(" ")}`);
  const tmp = mkdtempSync(join(tmpdir(), "seed-pam-run-"));
  // Like /tmp: tests run programs as other users (nobody) that load files from their own dirs.
  chmodSync(tmp, 0o1777);
  const r = spawnSync(run.cmd, run.args, {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", TMPDIR: tmp, ...run.env },
    maxBuffer: 256 * 1024 * 1024,
  });
  // The suite removes every temporary directory it makes: what is left is a failure.
  const left = readdirSync(tmp).filter((name) => name.startsWith("seed-pam-"));
  rmSync(tmp, { recursive: true, force: true });
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
  if (left.length > 0) {
    console.log(`${run.name}: left temporary directories behind: ${left.join(" ")}`);
    counts.failed += 1;
  }
  console.log(
    `${run.name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`,
  );
  passed += counts.passed;
  failed += counts.failed;
  skipped += counts.skipped;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 ? 0 : 1);
