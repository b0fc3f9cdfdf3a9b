/**
 * The environment of the root-run steps before a user's program. A user can
 * put variables into the PAM environment (pam_env's `user_readenv`), and
 * setsid, sh and setpriv run as root with the environment meant for the
 * program: `LD_PRELOAD` there makes them load the user's code as root.
 *
 * @module
 */

// What glibc drops from the environment of a setuid program (<unsecvars.h>), and the dynamic
// loader's whole LD_ family: setsid, sh and setpriv run as root, and these would make them load
// code or read files the user chose.
const unsafeForRoot = new Set([
  "GCONV_PATH",
  "GETCONF_DIR",
  "GLIBC_TUNABLES",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "MALLOC_TRACE",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TMPDIR",
  "TZDIR",
  // A shell runs as root on the way (`sh -c`): what makes a shell run code it was not given.
  "BASH_ENV",
  "BASHOPTS",
  "ENV",
  "IFS",
  "PS4",
  "SHELLOPTS",
]);
const ASIDE = "SEED_PAM_ASIDE_";

/**
 * `env` for the steps that still run as root on the way to a user's program
 * (setsid, sh, setpriv), each variable unsafe there renamed; and `restore`,
 * the command to put between setpriv and the program, which, run as the
 * user, names them back. The values stay in the environment, off every
 * command line.
 *
 * @example
 * ```ts ignore
 * import { splitRootEnv } from "./_root_env.ts";
 * const { rootEnv, restore } = splitRootEnv({ PATH: "/usr/bin", LD_PRELOAD: "/home/u/x.so" });
 * // spawn("/usr/bin/setsid", [...setpriv, ...restore, ...argv], { env: rootEnv })
 * ```
 *
 * @throws {TypeError} for a name this module reserves, or an unsafe one that is no shell name.
 */
export function splitRootEnv(
  env: Readonly<Record<string, string>>,
): { rootEnv: Record<string, string>; restore: string[] } {
  const rootEnv: Record<string, string> = {};
  const names: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(ASIDE)) {
      throw new TypeError(`environment variables named ${ASIDE}* are this module's own: ${name}`);
    }
    if (!unsafeForRoot.has(name) && !name.startsWith("LD_") && !name.startsWith("BASH_FUNC_")) {
      rootEnv[name] = value;
      continue;
    }
    // Written into the restoring script below, so it must be a plain shell name.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new TypeError(`cannot pass "${name}" safely to a program run as another user`);
    }
    rootEnv[ASIDE + name] = value;
    names.push(name);
  }
  if (names.length === 0) return { rootEnv, restore: [] };
  const script = names.map((n) => `${n}=$${ASIDE}${n}; export ${n}; unset ${ASIDE}${n}; `).join("");
  return { rootEnv, restore: ["/bin/sh", "-c", `${script}exec "$@"`, "sh"] };
}
