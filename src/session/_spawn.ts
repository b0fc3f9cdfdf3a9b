/**
 * Running the user's programs as the user, from the process that holds the
 * session (so they inherit its umask, limits, cgroup and keyring): the
 * passwd entry through `getpwnam_r`, then util-linux's `setsid` (a session of
 * their own) and, when the session process is root, `setpriv --reuid --regid
 * --init-groups` (uid, primary gid and `initgroups(3)`'s supplementary groups).
 * Nothing secret reaches a command line: only the program's own argv. Internal.
 *
 * @module
 */

import { type ChildProcess, spawn, type StdioOptions } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import {
  defaultLibraries,
  native,
  passwdLayout,
  pointerSize,
  sessionProcessSymbols,
} from "../../ffi/mod.ts";
import { checkCString, cString, describe, optionsObject } from "../_validate.ts";
import type { StdioMode } from "./program.ts";
import { splitRootEnv } from "./_root_env.ts";

/** The passwd entry of a user. */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
}

let libc: ReturnType<typeof openProcessLibc> | undefined;
function openProcessLibc() {
  return native.open(defaultLibraries.libc, sessionProcessSymbols);
}

/** libc's process calls, opened on first use. */
export function processLibc(): ReturnType<typeof openProcessLibc> {
  libc ??= openProcessLibc();
  return libc;
}

const ERANGE = 34;

/**
 * Calls a reentrant NSS lookup (`getpwnam_r`, `getgrnam_r`) with a buffer
 * that grows from `first` bytes while it answers ERANGE; true when `result`
 * then points at an entry.
 */
export function nssLookup(
  call: (buffer: Uint8Array, size: number) => number,
  result: Uint8Array,
  first: number,
): boolean {
  for (let size = first; size <= 1 << 22; size *= 4) {
    const status = call(new Uint8Array(size), size);
    if (status === ERANGE) continue;
    return status === 0 && native.readPointerFrom(result, 0) !== null;
  }
  return false;
}

/** The passwd entry of `name`, or `undefined` when there is none. */
export function lookupUser(name: string): PasswdEntry | undefined {
  const lib = processLibc();
  const pwd = new Uint8Array(passwdLayout.size);
  const result = new Uint8Array(pointerSize);
  const cName = cString(name, "the user");
  const found = nssLookup(
    (buf, size) => lib.getpwnam_r(cName, pwd, buf, size, result),
    result,
    16384,
  );
  if (!found) return undefined;
  const view = new DataView(pwd.buffer);
  const text = (offset: number) => {
    const p = native.readPointerFrom(pwd, offset);
    return p ? native.readCString(p) : "";
  };
  return {
    name: text(passwdLayout.name.offset),
    uid: view.getUint32(passwdLayout.uid.offset, true),
    gid: view.getUint32(passwdLayout.gid.offset, true),
    home: text(passwdLayout.dir.offset),
    shell: text(passwdLayout.shell.offset),
  };
}

/** A checked `spawn()` request. */
export interface SpawnPlan {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly stdin: StdioMode;
  readonly stdout: StdioMode;
  readonly stderr: StdioMode;
  readonly endsSession: boolean;
  /** On the session's pseudo-terminal (its three streams "null" here). */
  readonly terminal: boolean;
}

/**
 * A program's argv, checked into a plain copy: a non-empty array of C
 * strings, the first (the program) not empty. `what` names the call.
 */
export function checkArgv(argv: unknown, what: string): string[] {
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new TypeError(`${what} takes a non-empty array of strings, got ${describe(argv)}`);
  }
  const args = [...argv];
  args.forEach((arg, i) => checkCString(arg, `argv[${i}]`));
  if (args[0] === "") throw new TypeError("argv[0] must not be empty: it names the program");
  return args as string[];
}

/**
 * Environment variables, checked into a plain copy: names non-empty,
 * without "=", and they and their values C strings. `what` names the option.
 */
export function checkEnv(env: unknown, what: string): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(optionsObject<Record<string, unknown>>(env, what))) {
    checkCString(name, "an environment variable's name");
    if (name === "" || name.includes("=")) {
      throw new TypeError(
        `${JSON.stringify(name)} is not an environment variable's name: names are non-empty ` +
          'and without "="',
      );
    }
    checkCString(value, `${what}.${name}`);
    copy[name] = value as string;
  }
  return copy;
}

const tools = new Map<string, string>();

/**
 * Where util-linux's `name` (`setsid`, `setpriv`) is installed. Looked up in
 * the system's directories, never on `PATH`: these run as root, and `PATH`
 * may be the user's.
 *
 * @throws {Error} When it is not installed.
 */
export function utilLinux(name: string): string {
  let path = tools.get(name);
  if (path === undefined) {
    const dirs = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];
    path = dirs.map((dir) => `${dir}/${name}`).find((candidate) => existsSync(candidate));
    if (path === undefined) {
      throw new Error(
        `cannot run a program in the session: util-linux "${name}" is not installed ` +
          `(looked in ${dirs.join(", ")})`,
      );
    }
    tools.set(name, path);
  }
  return path;
}

/**
 * setpriv's arguments that make the rest of a command line run as `uid`
 * and `gid` with the groups `initgroups(3)` gives; none when this process
 * already runs as them without root. `self` is this process's uid, for a
 * caller that has read it already.
 *
 * @throws {Error} When this process is neither root nor that user.
 */
export function privilegeDrop(
  uid: number,
  gid: number,
  self: number = processLibc().getuid(),
): string[] {
  const libc = processLibc();
  if (self === 0) {
    return [utilLinux("setpriv"), `--reuid=${uid}`, `--regid=${gid}`, "--init-groups", "--"];
  }
  // Without root, setpriv could not even set the groups: running as oneself needs no change.
  if (uid === self && gid === libc.getgid()) return [];
  throw new Error(
    `only root can run a program as another user (uid ${uid}); this process runs as uid ${self}`,
  );
}

/** login(1)'s default PATHs. */
const userPath = "/usr/local/bin:/usr/bin:/bin:/usr/games";
const rootPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Starts `plan.argv` as `user` with the PAM environment `pamEnv`, its
 * streams connected as `stdio` says (node's form). Throws an
 * `Error` that says why when it cannot (no passwd entry, not root, no
 * util-linux); the program's own failure to start surfaces as its exit.
 */
export function spawnAsUser(
  user: string,
  pamEnv: Readonly<Record<string, string>>,
  plan: SpawnPlan,
  stdio: StdioOptions,
): ChildProcess {
  const { pw, env, cwd, self } = launchAsUser(user, pamEnv, plan);
  const drop = self === 0 ? privilegeDrop(pw.uid, pw.gid, self) : [];
  // setsid and setpriv run as root with this environment: what the user put into the PAM
  // environment (LD_PRELOAD, ...) must only reach the program, past setpriv.
  const { rootEnv, restore } = self === 0 ? splitRootEnv(env) : { rootEnv: env, restore: [] };
  // setsid forks only when its caller leads a process group, which a freshly spawned child
  // does not: so the pid seen here is the program's own, and so is the exit status.
  const [command, ...args] = [utilLinux("setsid"), ...drop, ...restore, ...plan.argv];
  return spawn(command, args, { cwd, env: rootEnv, stdio });
}

/**
 * What a program of `user`'s needs, whichever way it starts: the passwd
 * entry (`known`, when the caller has already looked it up), its environment
 * and working directory, and this process's uid. Throws an `Error` that says
 * why the program cannot run as `user`.
 */
export function launchAsUser(
  user: string,
  pamEnv: Readonly<Record<string, string>>,
  plan: Pick<SpawnPlan, "env" | "cwd">,
  known?: PasswdEntry,
): { pw: PasswdEntry; env: Record<string, string>; cwd: string; self: number } {
  const pw = known ?? lookupUser(user);
  if (!pw) throw new Error(`cannot run a program as "${user}": the user has no passwd entry`);
  const self = processLibc().getuid();
  if (self !== 0 && self !== pw.uid) {
    throw new Error(
      `cannot run a program as "${user}" (uid ${pw.uid}): the session process runs as uid ${self}; ` +
        "only root can start programs as another user",
    );
  }
  // Found before anything starts, so that a missing tool is this clear error.
  utilLinux("setsid");
  if (self === 0) utilLinux("setpriv");
  const env: Record<string, string> = {
    HOME: pw.home,
    USER: pw.name,
    LOGNAME: pw.name,
    SHELL: pw.shell || "/bin/sh",
    PATH: pw.uid === 0 ? rootPath : userPath,
    ...pamEnv,
    ...plan.env,
  };
  const cwd = plan.cwd ?? (isDirectory(pw.home) ? pw.home : "/");
  return { pw, env, cwd, self };
}
