// A tiny PAM module, compiled for the tests with `cc`, that appends one line per call it gets —
// including pam_sm_setcred, which no stock module makes observable (pam_exec and pam_echo ignore
// it) — so the session tests can assert the exact order and flags libpam passed, with real libpam.
import { readFileSync } from "node:fs";
import { compileModule } from "./_modules.ts";

const source = String.raw`
#include <security/pam_modules.h>
#include <stdio.h>
#include <string.h>

static const char *item(pam_handle_t *pamh, int type) {
  const void *value = NULL;
  return pam_get_item(pamh, type, &value) == PAM_SUCCESS && value ? value : "";
}

static int step(pam_handle_t *pamh, const char *name, int flags, int argc, const char **argv) {
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "log=", 4) != 0) continue;
    FILE *f = fopen(argv[i] + 4, "a");
    if (!f) return PAM_SYSTEM_ERR;
    fprintf(f, "%s flags=%d user=%s tty=%s rhost=%s ruser=%s\n", name, flags,
            item(pamh, PAM_USER), item(pamh, PAM_TTY), item(pamh, PAM_RHOST),
            item(pamh, PAM_RUSER));
    fclose(f);
  }
  return PAM_SUCCESS;
}

#define STEP(fn) int pam_sm_##fn(pam_handle_t *h, int f, int c, const char **v) { return step(h, #fn, f, c, v); }
STEP(authenticate)
STEP(setcred)
STEP(acct_mgmt)
STEP(open_session)
STEP(close_session)
STEP(chauthtok)
`;

/** The path of the compiled module, or why there is none (no `cc`, no PAM headers). */
export function stepLogModule(): { path?: string; why?: string } {
  return compileModule("steplog", source);
}

/** One line of the step log. */
export interface Step {
  name: string;
  flags: number;
  user: string;
  tty: string;
  rhost: string;
  ruser: string;
}

/** Reads the step log (an absent file is no steps). */
export function readSteps(file: string): Step[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter(Boolean).map((line) => {
    const m = /^(\w+) flags=(-?\d+) user=(.*) tty=(.*) rhost=(.*) ruser=(.*)$/.exec(line);
    if (!m) throw new Error(`unexpected step log line: ${line}`);
    return { name: m[1], flags: +m[2], user: m[3], tty: m[4], rhost: m[5], ruser: m[6] };
  });
}

/** Step names, with setcred spelled out by its action flag. */
export function stepNames(steps: Step[]): string[] {
  return steps.map((s) => {
    if (s.name !== "setcred") return s.name;
    if (s.flags & 0x2) return "setcred(establish)";
    if (s.flags & 0x4) return "setcred(delete)";
    return `setcred(${s.flags})`;
  });
}
