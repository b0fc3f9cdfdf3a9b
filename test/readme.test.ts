// The README's promises to a newcomer that a file can check: every `deno task` it names runs
// after `npm install` as an npm script of the same name, and Bun users are shown an install and
// a bare import, never a `jsr:` import to run with `bun`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const readme = readFileSync(join(root, "README.md"), "utf8");
const scripts: Record<string, string> =
  JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts;
const tasks: Record<string, string> =
  JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks;

test("every deno task the README and docs name is an npm script with .tools on the PATH", () => {
  const docs = readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md"))
    .map((name) => readFileSync(join(root, "docs", name), "utf8"));
  const named = new Set(
    [readme, ...docs].flatMap((text) => [...text.matchAll(/deno task (\w+)/g)].map((m) => m[1])),
  );
  assert.ok(named.has("web") && named.has("bench"), [...named].join(" "));
  for (const name of named) {
    assert.ok(Object.hasOwn(tasks, name), `deno.json has no task "${name}"`);
    assert.equal(
      scripts[name],
      `PATH="$PWD/.tools/node_modules/.bin:$PATH" deno task ${name}`,
      `npm run ${name}`,
    );
  }
});

test("the README shows Bun users a JSR install and bare imports, never a jsr: import", () => {
  assert.match(readme, /bunx jsr add @seed\/pam/);
  assert.doesNotMatch(readme, /from "jsr:/);
  assert.match(readme, /from "@seed\/pam"/);
});
