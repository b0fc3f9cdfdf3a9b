/**
 * The CLI's command line, read as pamtester reads it: options, items, the
 * environment, and `operation(flags)` arguments.
 *
 * @module
 */

import { basename } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import type { ItemName } from "../constants.ts";
import type { FlaggedCall } from "../_raw_access.ts";

/** The operations, by their pamtester name. */
export const operations: Readonly<Record<string, { call: FlaggedCall; done: string }>> = {
  authenticate: { call: "pam_authenticate", done: "successfully authenticated" },
  setcred: { call: "pam_setcred", done: "credential info has successfully been set." },
  acct_mgmt: { call: "pam_acct_mgmt", done: "account management done." },
  // Debian's pamtester spells it right ("sucessfully" upstream).
  open_session: { call: "pam_open_session", done: "successfully opened a session" },
  close_session: { call: "pam_close_session", done: "session has successfully been closed." },
  chauthtok: { call: "pam_chauthtok", done: "authentication token altered successfully." },
};

/** pamtester's item names. */
export const items: Readonly<Record<string, ItemName>> = {
  service: "service",
  user: "user",
  prompt: "userPrompt",
  tty: "tty",
  ruser: "ruser",
  rhost: "rhost",
};

/** One `operation(flags)` argument, split as pamtester splits it. */
export interface OperationSpec {
  name: string;
  flags: string | undefined;
}

/** What the command line asks for. */
export interface Request {
  verbose: boolean;
  items: { name: string; value: string | null }[];
  env: string[];
  confdir: string | undefined;
  json: boolean;
  service: string;
  user: string;
  operations: OperationSpec[];
}

export class UsageError extends Error {}

const optionSpec = {
  item: { type: "string", short: "I", multiple: true },
  env: { type: "string", short: "E", multiple: true },
  verbose: { type: "boolean", short: "v", multiple: true },
  // "-v2" (a level glued to -v) arrives here, see parseCommandLine.
  "verbose-level": { type: "string", multiple: true },
  confdir: { type: "string", multiple: true },
  json: { type: "boolean", multiple: true },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/** The program name in messages: a compiled binary's own name, otherwise `seed-pam`. */
export function programName(): string {
  let executable = "";
  try {
    executable = basename(process.execPath).replace(/\.exe$/, "");
  } catch {
    // No name to be had: use the default.
  }
  return ["deno", "bun", "node", ""].includes(executable) ? "seed-pam" : executable;
}

/** C's `strtoul(text, NULL, 10)` stored in an `int`, as pamtester reads `-vN`. */
function verboseLevel(text: string): number {
  const match = /^[\s]*([+-]?)([0-9]*)/.exec(text)!;
  let value = match[2] ? BigInt(match[2]) : 0n;
  if (value >= 2n ** 64n) value = 2n ** 64n - 1n;
  else if (match[1] === "-") value = BigInt.asUintN(64, -value);
  return Number(BigInt.asIntN(32, value));
}

function splitOperation(spec: string): OperationSpec {
  const open = spec.indexOf("(");
  if (open === -1) return { name: spec, flags: undefined };
  if (open === 0 || !spec.endsWith(")")) {
    throw new UsageError(`incorrect op_name spec "${spec}".`);
  }
  // evaluateFlagExpression skips blanks around the expression itself.
  return { name: spec.slice(0, open).replace(/[ \t]+$/, ""), flags: spec.slice(open + 1, -1) };
}

/** Parses the arguments; `help`/`version` when those were asked for. */
export function parseCommandLine(args: readonly string[]): Request | "help" | "version" {
  // pamtester takes "-vN" as verbose level N; parseArgs would split it into
  // short options, so it is renamed first, one argument for one.
  const renamed = args.map((arg) => /^-v./.test(arg) ? `--verbose-level=${arg.slice(2)}` : arg);
  const { tokens } = parseArgs({
    args: renamed,
    options: optionSpec,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const request: Request = {
    verbose: false,
    items: [],
    env: [],
    confdir: undefined,
    json: false,
    service: "",
    user: "",
    operations: [],
  };
  let verboseSeen = false;
  let help = false;
  let version = false;
  // Options end at the first operand, as in pamtester: "svc user -v" has an operation "-v".
  let operandsAt = args.length;
  for (const token of tokens) {
    if (token.kind === "positional") {
      operandsAt = token.index;
      break;
    }
    if (token.kind === "option-terminator") {
      operandsAt = token.index + 1;
      break;
    }
    const { name, value } = token;
    const raw = args[token.index];
    // hasOwn: "--toString" must not pass as an option Object.prototype happens to have.
    if (
      !Object.hasOwn(optionSpec, name) || (name === "verbose-level" && !raw.startsWith("-v"))
    ) {
      throw new UsageError(`Unknown option "${raw}"`);
    }
    const takesValue = optionSpec[name as keyof typeof optionSpec].type === "string";
    if (!takesValue && value !== undefined) {
      throw new UsageError(`Option "${token.rawName}" takes no value`);
    }
    // A value option at the very end has no value; pamtester then asks for the service.
    if (takesValue && value === undefined) continue;
    switch (name) {
      case "item": {
        const eq = value!.indexOf("=");
        request.items.push(
          eq === -1
            ? { name: value!, value: null }
            : { name: value!.slice(0, eq), value: value!.slice(eq + 1) },
        );
        break;
      }
      case "env":
        request.env.push(value!);
        break;
      case "verbose":
      case "verbose-level": {
        if (verboseSeen) {
          const shown = name === "verbose-level" ? raw : token.rawName.replace(/^-+/, "");
          throw new UsageError(`Option "${shown}" may not be specified twice or more`);
        }
        verboseSeen = true;
        request.verbose = name === "verbose" ? true : verboseLevel(value!) > 0;
        break;
      }
      case "confdir":
        if (request.confdir !== undefined) {
          throw new UsageError(`Option "confdir" may not be specified twice or more`);
        }
        request.confdir = value!;
        break;
      case "json":
        request.json = true;
        break;
      case "help":
        help = true;
        break;
      case "version":
        version = true;
        break;
    }
  }
  if (help) return "help";
  if (version) return "version";

  const operands = args.slice(operandsAt);
  if (operands.length < 1) throw new UsageError("please specify service name.");
  if (operands.length < 2) throw new UsageError("please specify user name.");
  if (operands.length < 3) throw new UsageError("specify one or more operations.");
  request.service = operands[0];
  request.user = operands[1];
  request.operations = operands.slice(2).map(splitOperation);
  return request;
}

export function helpText(name: string): string {
  return `Usage: ${name} [options] service user operation[(flags)]...

Runs PAM operations, in order, on one PAM transaction for service and user,
like pamtester(1), and stops at the first failure.

Operations:  authenticate acct_mgmt setcred open_session close_session chauthtok
Flags:       PAM_SILENT PAM_DISALLOW_NULL_AUTHTOK PAM_ESTABLISH_CRED
             PAM_REINITIALIZE_CRED PAM_REFRESH_CRED PAM_CHANGE_EXPIRED_AUTHTOK
             or numbers, combined with | & ^ ~: "authenticate(PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK)"

Options:
  -v, --verbose          tell on stderr what is being called
  -I, --item NAME=VALUE  set an item first: service, user, prompt, tty, ruser, rhost
                         (NAME alone unsets it)
  -E, --env NAME=VALUE   set a PAM environment variable (NAME alone deletes it)
      --confdir DIR      read the service files from DIR instead of /etc/pam.d
      --json             one JSON object per operation on stdout, instead of the text
  -h, --help             show this help
      --version          show the version

Prompts go to stderr; passwords are read with echo off on a terminal, and
one line per prompt from stdin otherwise: printf 'secret\\n' | ${name} login alice authenticate

Exit status: 0 success, 1 a PAM call or an operation failed, 130 Ctrl-C at a
password prompt, 255 usage error.
`;
}
