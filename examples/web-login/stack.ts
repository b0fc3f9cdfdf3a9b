/**
 * The demo PAM stack the web login example runs against when no
 * `PAM_CONFDIR` is given: `pam.d/web-login` beside this file, with its
 * placeholders filled in, written to a temporary directory with the demo
 * users' pam_matrix password files. Needs Debian's `libpam-wrapper`; no root.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createTestStack } from "../../src/testing.ts";

/**
 * An account of this machine, so that the page can show a program run as the user: `nobody`
 * when the server runs as root (root may start programs as anyone), else the server's own user.
 */
const systemUser = (() => {
  const id = (arg: string) => spawnSync("id", [arg], { encoding: "utf8" }).stdout?.trim() ?? "";
  return id("-u") === "0" ? "nobody" : id("-un");
})();

/**
 * The demo users and their passwords: alice and bob exist only in pam_matrix's password file
 * (their page says that `id` cannot run as them); the third is an account of this machine.
 */
export const demoUsers: Readonly<Record<string, string>> = {
  alice: "wonderland",
  bob: "builder",
  ...(systemUser ? { [systemUser]: "demo-password" } : {}),
};

/** The one-time code every demo user types after the password. */
export const demoCode = "424242";

/**
 * A written demo stack.
 *
 * @example
 * ```ts
 * import { createDemoStack, type DemoStack } from "./stack.ts";
 * const stack: DemoStack = createDemoStack();
 * console.log(stack.confdir, stack.log);
 * stack.remove();
 * ```
 */
export interface DemoStack {
  /** The PAM service name: `"web-login"`. */
  readonly service: string;
  /** The temporary configuration directory (pass as `confdir`). */
  readonly confdir: string;
  /** The file pam_exec appends `open_session`/`close_session` lines to. */
  readonly log: string;
  /** Removes the temporary directory. */
  remove(): void;
}

/**
 * Writes the demo stack to a fresh temporary directory.
 *
 * @example
 * ```ts
 * import { createDemoStack } from "./stack.ts";
 * const stack = createDemoStack();
 * // PAM_SERVICE=web-login PAM_CONFDIR=${stack.confdir}
 * stack.remove();
 * ```
 */
export function createDemoStack(): DemoStack {
  const service = "web-login";
  const template = readFileSync(
    fileURLToPath(new URL(`./pam.d/${service}`, import.meta.url)),
    "utf8",
  );
  const stack = createTestStack({ services: { [service]: template }, users: { ...demoUsers } });
  try {
    // The second factor: a pam_matrix password file of one-time codes.
    const codes = Object.keys(demoUsers).map((user) => `${user}:${demoCode}:${service}\n`);
    writeFileSync(join(stack.dir, "codes"), codes.join(""), { mode: 0o600 });
  } catch (error) {
    stack.remove();
    throw error;
  }
  return {
    service,
    confdir: stack.confdir,
    log: join(stack.dir, "session.log"),
    remove: () => stack.remove(),
  };
}
