/**
 * Hermetic PAM stacks for tests: service files in a temporary directory, for
 * `confdir`, and (with Debian's `libpam-wrapper`) a `pam_matrix` password
 * file. No root, nothing under `/etc/pam.d`.
 *
 * @module
 */

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkKnownKeys } from "./_validate.ts";

const wrapperDirs = [
  "/usr/lib/x86_64-linux-gnu/pam_wrapper",
  "/usr/lib/aarch64-linux-gnu/pam_wrapper",
  "/usr/lib64/pam_wrapper",
  "/usr/lib/pam_wrapper",
];

/**
 * The absolute path of a `libpam-wrapper` test module (`"pam_matrix"`,
 * `"pam_get_items"`, `"pam_set_items"`, `"pam_chatty"`), or `undefined` when
 * the package is not installed.
 *
 * @example
 * ```ts
 * import { wrapperModule } from "@seed/pam/testing";
 * const matrix = wrapperModule("pam_matrix");
 * if (!matrix) console.log("apt-get install libpam-wrapper");
 * ```
 */
export function wrapperModule(name: string): string | undefined {
  for (const dir of wrapperDirs) {
    const path = join(dir, `${name}.so`);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/**
 * A user of a test stack: the password, or the password and the one service
 * whose `pam_matrix` password file lists the user. Without `service` the
 * user is in every service's file; with it, `pam_matrix` in the other
 * services does not know the user, so authenticating there fails.
 *
 * @example
 * ```ts
 * import type { TestUser } from "@seed/pam/testing";
 * const alice: TestUser = { password: "secret", service: "web" };
 * ```
 */
export type TestUser = string | { password: string; service?: string | undefined };

/**
 * What {@linkcode createTestStack} writes.
 *
 * In service texts, `{{pam_matrix}}` (and `{{pam_get_items}}`,
 * `{{pam_set_items}}`, `{{pam_chatty}}`) become the module's absolute path,
 * `{{passdb}}` the pam_matrix password file of the service whose text it is
 * in (each service has its own: `passdb(service)`), `{{confdir}}` the
 * configuration directory and `{{dir}}` the stack's directory.
 *
 * `@include NAME`, `include NAME` and `substack NAME` lines that name
 * another service of the same stack are rewritten to that service's absolute
 * path: libpam (1.5.2) resolves them against `/etc/pam.d` even with a
 * `confdir`, which would silently pull the real system's files into a test.
 * Names that are not services of the stack are left as written (and so do
 * reach `/etc/pam.d`); write `{{confdir}}/NAME` or an absolute path to be
 * explicit.
 *
 * @example
 * ```ts
 * import type { TestStackOptions } from "@seed/pam/testing";
 * const options: TestStackOptions = {
 *   services: { web: "auth required {{pam_matrix}} passdb={{passdb}}\n" },
 *   users: { alice: "secret" },
 * };
 * ```
 */
export interface TestStackOptions {
  /** Service name → the service file's text. */
  services: Record<string, string>;
  /** User name → password, for `pam_matrix`. */
  users?: Record<string, TestUser> | undefined;
}

/**
 * A temporary PAM configuration directory; removed on dispose.
 *
 * @example
 * ```ts
 * import { createTestStack, type TestStack } from "@seed/pam/testing";
 * await using stack: TestStack = createTestStack({ services: { ok: "auth required pam_permit.so\n" } });
 * console.log(stack.confdir);
 * ```
 */
export interface TestStack {
  /** Pass this as `confdir`. */
  readonly confdir: string;
  /** The temporary directory (holds the password files; a place for logs). */
  readonly dir: string;
  /** The pam_matrix password file of `service`. */
  passdb(service: string): string;
  /** Removes the directory. */
  remove(): void;
  /** Removes the directory, for `using`. */
  [Symbol.dispose](): void;
  /** Removes the directory, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Writes `services` into a fresh temporary directory to pass as `confdir`,
 * and a pam_matrix password file per service for `users`. Throws a clear
 * error when a service uses a `libpam-wrapper` module that is not installed.
 *
 * @example
 * ```ts
 * import { PamTransaction, passwordConversation } from "@seed/pam";
 * import { createTestStack } from "@seed/pam/testing";
 *
 * await using stack = createTestStack({
 *   services: { web: "auth required {{pam_matrix}} passdb={{passdb}}\naccount required pam_permit.so\n" },
 *   users: { alice: "secret" },
 * });
 * using tx = PamTransaction.start({
 *   service: "web",
 *   user: "alice",
 *   confdir: stack.confdir,
 *   conversation: passwordConversation("secret"),
 * });
 * tx.authenticate();
 * ```
 *
 * @throws {TypeError} for options of the wrong type, an unknown key, or a user or service
 *   name a passdb or a file name cannot hold.
 * @throws {Error} when a service uses a libpam-wrapper module that is not installed.
 * @tags allow-read, allow-write
 */
export function createTestStack(options: TestStackOptions): TestStack {
  if (!options || typeof options !== "object" || !options.services) {
    throw new TypeError("createTestStack() needs { services: { name: text } }");
  }
  checkKnownKeys(options, ["services", "users"], "createTestStack() options");
  for (const [name, user] of Object.entries(options.users ?? {})) {
    if (name === "") throw new TypeError("a user name must not be empty");
    checkPassdbField(name, `User name ${JSON.stringify(name)}`);
    if (user !== null && typeof user === "object") {
      checkKnownKeys(user, ["password", "service"], `The user ${JSON.stringify(name)}`);
    }
    const password = typeof user === "string" ? user : user?.password;
    // Never the password itself in the message.
    checkPassdbField(password, `The password of ${JSON.stringify(name)}`);
  }
  const dir = mkdtempSync(join(temporaryRoot(), "seed-pam-"));
  const confdir = join(dir, "pam.d");
  const passdb = (service: string) => join(dir, `passdb.${service}`);
  try {
    mkdirSync(confdir);
    const users = Object.entries(options.users ?? {});
    for (const [service, text] of Object.entries(options.services)) {
      if (!/^[A-Za-z0-9._-]+$/.test(service)) {
        throw new TypeError(`service name ${JSON.stringify(service)} is not a plain file name`);
      }
      const lines = users
        .filter(([, u]) => typeof u === "string" || !u.service || u.service === service)
        .map(([name, u]) => `${name}:${typeof u === "string" ? u : u.password}:${service}\n`);
      writeFileSync(passdb(service), lines.join(""), { mode: 0o600 });
      const expanded = expand(text, service, { dir, confdir, passdb: passdb(service) });
      writeFileSync(join(confdir, service), absoluteIncludes(expanded, confdir, options.services));
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const remove = () => rmSync(dir, { recursive: true, force: true });
  return {
    confdir,
    dir,
    passdb,
    remove,
    [Symbol.dispose]: remove,
    [Symbol.asyncDispose]: () => Promise.resolve(remove()),
  };
}

// `@include NAME` (a line of its own) and `TYPE include|substack NAME` (the control word in
// place of the module path; `-TYPE` too).
const includeLine = /^(\s*(?:@include|-?[A-Za-z]+\s+(?:include|substack))\s+)([^\s#]+)/gm;

/** Points include lines that name a service of this stack at its file in `confdir`. */
function absoluteIncludes(text: string, confdir: string, services: Record<string, string>): string {
  return text.replace(
    includeLine,
    (line, head: string, name: string) =>
      Object.hasOwn(services, name) ? head + join(confdir, name) : line,
  );
}

/** pam_matrix's passdb is `name:password:service` lines: a field must not break one. */
function checkPassdbField(value: unknown, what: string): void {
  if (typeof value !== "string" || /[:\n\0]/.test(value)) {
    throw new TypeError(`${what} must be a string without ":", newlines or NUL`);
  }
}

/**
 * Where the stack goes: `TMPDIR` (through `tmpdir()`) when the process may
 * read it, else `/tmp`, which is what `tmpdir()` gives without `TMPDIR`:
 * Deno without `--allow-env` refuses the lookup itself.
 */
function temporaryRoot(): string {
  try {
    return tmpdir();
  } catch {
    return "/tmp";
  }
}

function expand(
  text: string,
  service: string,
  paths: { dir: string; confdir: string; passdb: string },
): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (key === "passdb") return paths.passdb;
    if (key === "dir") return paths.dir;
    if (key === "confdir") return paths.confdir;
    const module = wrapperModule(key);
    if (module) return module;
    if (key.startsWith("pam_")) {
      throw new Error(
        `service "${service}" uses ${key}, which is not installed: install Debian's libpam-wrapper`,
      );
    }
    throw new TypeError(`unknown placeholder {{${key}}} in service "${service}"`);
  });
}
