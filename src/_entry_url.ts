/**
 * Where a module that runs as an entry of its own (the PAM worker thread)
 * lives, from source, from JSR's npm build, and inside a program compiled
 * with `bun build --compile`.
 *
 * @module
 */

import { readdirSync, readFileSync } from "node:fs";

const bunfsRoot = "/$bunfs/root";

/**
 * The entry module at `path` under `src/`, without its extension
 * (`"async/_worker"`), to hand to `new Worker()`: a URL, or in a compiled Bun
 * program the path under which Bun stored it. `marker` is a string only that
 * module's code contains, to tell it from an application's file of the same
 * name there. Throws, saying what to do, when a compiled program lacks it.
 */
export function entryUrl(path: string, marker: string): URL | string {
  const base = import.meta.url;
  if (base.startsWith(`file://${bunfsRoot}/`)) return compiledEntry(path, marker);
  // JSR's npm build (how Bun and Node users install from JSR) transpiles .ts files to .js
  // but cannot rewrite a URL string, so follow this module's own extension.
  return new URL(`./${path}${base.endsWith(".js") ? ".js" : ".ts"}`, base);
}

/**
 * `bun build --compile` bundles every imported module into the program's own
 * entry (so `import.meta.url` is the executable's), and stores each further
 * entrypoint given on its command line as `.js` at its path relative to the
 * first entrypoint's folder (`../lib/async/_worker.js`), which this code cannot
 * know: look for it. Bun finds it only under that very string, `..` and all
 * (neither a URL nor a normalised path), so the path is returned as it is.
 */
function compiledEntry(path: string, marker: string): string {
  const file = `${path.slice(path.lastIndexOf("/") + 1)}.js`;
  let entries: string[] = [];
  try {
    entries = readdirSync(bunfsRoot, { recursive: true, encoding: "utf8" });
  } catch {
    // Nothing embedded to list: the error below says what to add.
  }
  for (const entry of entries) {
    if (entry !== file && !entry.endsWith(`/${file}`)) continue;
    const embedded = `${bunfsRoot}/${entry}`;
    if (readFileSync(embedded, "utf8").includes(marker)) return embedded;
  }
  throw new Error(
    `this program was compiled with \`bun build --compile\` without @seed/pam's src/${path} ` +
      `entry, which runs on a thread of its own: name it as a further entrypoint, as Bun ` +
      `documents for workers: \`bun build --compile app.ts ` +
      `./node_modules/@seed/pam/src/${path}.js\` (src/${path}.ts in a checkout)`,
  );
}
