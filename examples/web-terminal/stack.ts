/**
 * The web terminal example's demo: a PAM stack of its own (`pam.d/web-terminal`
 * beside this file, written to a temporary directory with a pam_matrix
 * password file) and a user with a real login shell to log in.
 *
 * Which user: `DEMO_USER` when set (an existing account); as root, the
 * account `pam-demo`, created with `useradd` (a home directory, `/bin/bash`)
 * when it does not exist and removed again with `userdel -r` by
 * {@linkcode DemoStack.remove}; without root, the server's own user (nobody
 * else's programs could be started). `nobody` will not do: its shell is
 * nologin. The password is the stack's, `demo-password`, never the system's.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createTestStack } from "../../src/testing.ts";

/** The demo user's password (pam_matrix's file, not the system's). */
export const demoPassword = "demo-password";

/** The account created as root when `DEMO_USER` is not set. */
export const rootDemoUser = "pam-demo";

/**
 * A written demo stack and the user it logs in.
 *
 * @example
 * ```ts
 * import { createDemoStack, type DemoStack } from "./stack.ts";
 * const stack: DemoStack = createDemoStack();
 * console.log(stack.user, stack.confdir);
 * stack.remove();
 * ```
 */
export interface DemoStack {
  /** The PAM service name: `"web-terminal"`. */
  readonly service: string;
  /** The temporary configuration directory (pass as `confdir`). */
  readonly confdir: string;
  /** The temporary directory: also holds the demo's utmp and wtmp files. */
  readonly dir: string;
  /** The file pam_exec appends `open_session`/`close_session` lines to. */
  readonly log: string;
  /** The user to log in. */
  readonly user: string;
  /** Whether this stack created the user (and {@linkcode DemoStack.remove} deletes it). */
  readonly createdUser: boolean;
  /** Removes the temporary directory, and the user when this stack created it. */
  remove(): void;
}

function run(command: string, args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync(command, args, { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout?.trim() ?? "" };
}

/**
 * Writes the demo stack to a fresh temporary directory, creating the demo
 * user first when running as root without `DEMO_USER`.
 *
 * @example
 * ```ts
 * import { createDemoStack } from "./stack.ts";
 * const stack = createDemoStack();
 * // PAM_SERVICE=web-terminal PAM_CONFDIR=${stack.confdir}
 * stack.remove();
 * ```
 *
 * @throws {Error} When `useradd` fails, or `DEMO_USER` names no account.
 */
export function createDemoStack(): DemoStack {
  const service = "web-terminal";
  let user = process.env.DEMO_USER;
  let createdUser = false;
  if (user) {
    if (run("id", ["-u", user]).status !== 0) throw new Error(`DEMO_USER ${user} does not exist`);
  } else if (run("id", ["-u"]).stdout === "0") {
    user = rootDemoUser;
    if (run("id", ["-u", user]).status !== 0) {
      const made = spawnSync("useradd", ["--create-home", "--shell", "/bin/bash", user], {
        encoding: "utf8",
      });
      if (made.status !== 0) throw new Error(`useradd ${user} failed: ${made.stderr}`);
      createdUser = true;
    }
  } else {
    user = run("id", ["-un"]).stdout;
  }
  const template = readFileSync(
    fileURLToPath(new URL(`./pam.d/${service}`, import.meta.url)),
    "utf8",
  );
  const removeUser = () => {
    if (createdUser) spawnSync("userdel", ["--remove", user!], { stdio: "ignore" });
  };
  let stack: ReturnType<typeof createTestStack>;
  try {
    stack = createTestStack({ services: { [service]: template }, users: { [user]: demoPassword } });
  } catch (error) {
    removeUser();
    throw error;
  }
  return {
    service,
    confdir: stack.confdir,
    dir: stack.dir,
    log: join(stack.dir, "session.log"),
    user,
    createdUser,
    remove: () => {
      stack.remove();
      removeUser();
    },
  };
}
