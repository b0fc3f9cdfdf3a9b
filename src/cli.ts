#!/usr/bin/env -S deno run --allow-ffi
/**
 * A `pamtester(1)`-compatible command line, with nothing to compile:
 *
 * ```sh
 * deno run --allow-ffi jsr:@seed/pam/cli [-v] [-I item=value]... [-E var=value]... service user operation...
 * bun src/cli.ts login alice authenticate acct_mgmt
 * ```
 *
 * Same arguments, output lines, streams and exit status as pamtester 0.1.2,
 * plus `--confdir DIR`, `--json`, `--help` and `--version`. See `docs/cli.md`.
 *
 * @module
 */

import { basename } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import denoConfig from "../deno.json" with { type: "json" };
import {
  type ItemName,
  type MessageStyleName,
  messageStyleName,
  ReturnCode,
  returnCodeName,
} from "./constants.ts";
import type { PamMessage } from "./conversation.ts";
import { PamError } from "./errors.ts";
import { evaluateFlagExpression, FlagExpressionError } from "./flag_expression.ts";
import { openPam, strerrorText } from "./library.ts";
import { type FlaggedCall, rawAccess } from "./raw_access.ts";
import { terminalConversation, write } from "./terminal.ts";
import { PamTransaction } from "./transaction.ts";
import { envNameMissing } from "./validate.ts";

export { evaluateFlagExpression, FlagExpressionError, flagNames } from "./flag_expression.ts";
export {
  type TerminalConversation,
  terminalConversation,
  type TerminalConversationOptions,
  TerminalInterrupt,
} from "./terminal.ts";

/**
 * The exit statuses, pamtester's plus one.
 *
 * @example
 * ```ts
 * import { ExitCode } from "@seed/pam/cli";
 * console.log(ExitCode.USAGE); // 255, pamtester's exit(-1)
 * ```
 */
export const ExitCode = {
  /** Every operation succeeded (also `--help`, `--version`). */
  OK: 0,
  /** A PAM call failed, or an operation, item or flag was unknown. */
  FAILURE: 1,
  /** Ctrl-C at a password prompt (128 + SIGINT, as a shell reports it). */
  INTERRUPTED: 130,
  /** The command line was wrong. */
  USAGE: 255,
} as const;

/** The operations, by their pamtester name. */
const operations: Readonly<Record<string, { call: FlaggedCall; done: string }>> = {
  authenticate: { call: "pam_authenticate", done: "successfully authenticated" },
  setcred: { call: "pam_setcred", done: "credential info has successfully been set." },
  acct_mgmt: { call: "pam_acct_mgmt", done: "account management done." },
  // Debian's pamtester spells it right ("sucessfully" upstream).
  open_session: { call: "pam_open_session", done: "successfully opened a session" },
  close_session: { call: "pam_close_session", done: "session has successfully been closed." },
  chauthtok: { call: "pam_chauthtok", done: "authentication token altered successfully." },
};

/** pamtester's item names. */
const items: Readonly<Record<string, ItemName>> = {
  service: "service",
  user: "user",
  prompt: "userPrompt",
  tty: "tty",
  ruser: "ruser",
  rhost: "rhost",
};

/** One `operation(flags)` argument, split as pamtester splits it. */
interface OperationSpec {
  name: string;
  flags: string | undefined;
}

/** What the command line asks for. */
interface Request {
  verbose: boolean;
  items: { name: string; value: string | null }[];
  env: string[];
  confdir: string | undefined;
  json: boolean;
  service: string;
  user: string;
  operations: OperationSpec[];
}

class UsageError extends Error {}

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
function programName(): string {
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
function parseCommandLine(args: readonly string[]): Request | "help" | "version" {
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

function helpText(name: string): string {
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

/** Why an operation that succeeded on a NULL answer is reported as a failure. */
const END_OF_INPUT = "No answer at a prompt (end of input)";

function strerror(code: number): string {
  return strerrorText(openPam(), code) ?? `PAM error ${code}`;
}

/** A JSON result line. */
interface JsonResult {
  operation: string;
  ok: boolean;
  flags?: number;
  item?: string;
  code?: number;
  codeName?: string;
  error?: string;
  interrupted?: boolean;
  endOfInput?: boolean;
  messages?: { style: number; styleName: MessageStyleName; text: string }[];
}

/**
 * Runs the CLI with `args` (the arguments after the program name), writing
 * to the process' stdout and stderr and reading answers from stdin, and
 * returns the exit status.
 *
 * @example
 * ```ts
 * import { main } from "@seed/pam/cli";
 * const status = main(["--confdir", "/tmp/pam.d", "login", "alice", "authenticate"]);
 * console.log(status); // 0 when alice authenticated
 * ```
 *
 * @tags allow-ffi
 */
export function main(args: readonly string[]): number {
  const name = programName();
  const out = (text: string) => write(1, text);
  const err = (text: string) => write(2, text);

  if (args.length === 0) {
    err(`usage: ${name} [-Eenv=value] [-Iparam=value] service user op_name ...\n`);
    return ExitCode.USAGE;
  }
  let request: Request | "help" | "version";
  try {
    request = parseCommandLine(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`${name}: ${error.message}\n`);
    return ExitCode.USAGE;
  }
  if (request === "help") {
    out(helpText(name));
    return ExitCode.OK;
  }
  if (request === "version") {
    out(`${name} ${denoConfig.version} (${denoConfig.name}, pamtester 0.1.2 compatible)\n`);
    return ExitCode.OK;
  }
  return run(request, name, out, err);
}

function run(
  request: Request,
  name: string,
  out: (text: string) => void,
  err: (text: string) => void,
): number {
  const { json } = request;
  let messages: PamMessage[] = [];
  const conversation = terminalConversation({
    // Keeps stdout for the JSON lines.
    infoOutput: json ? 2 : 1,
    onMessage: (message) => messages.push(message),
  });
  const report = (result: JsonResult) => {
    if (!json) return;
    const shown = messages.map((m) => ({
      style: m.style,
      styleName: messageStyleName(m.style),
      text: m.text,
    }));
    out(JSON.stringify({ ...result, ...(shown.length ? { messages: shown } : {}) }) + "\n");
  };
  const fail = (message: string, result: JsonResult): number => {
    err(`${name}: ${message}\n`);
    report({ ...result, ok: false, error: message });
    return ExitCode.FAILURE;
  };
  const pamFailure = (error: unknown, result: JsonResult): number => {
    if (error instanceof PamError) {
      return fail(strerror(error.code), { ...result, code: error.code, codeName: error.codeName });
    }
    if (error instanceof TypeError) return fail(error.message, result);
    throw error;
  };

  if (request.verbose) {
    err(`${name}: invoking pam_start(${request.service}, ${request.user}, ...)\n`);
  }
  let tx: PamTransaction;
  try {
    tx = PamTransaction.start({
      service: request.service,
      user: request.user,
      confdir: request.confdir,
      conversation,
    });
  } catch (error) {
    const result: JsonResult = { operation: "start", ok: false };
    if (error instanceof PamError) {
      return fail("Initialization failure", {
        ...result,
        code: error.code,
        codeName: error.codeName,
      });
    }
    return fail(error instanceof Error ? error.message : String(error), result);
  }

  try {
    for (const item of request.items) {
      const result: JsonResult = { operation: "set_item", item: item.name, ok: false };
      const key = item.name.toLowerCase();
      if (!Object.hasOwn(items, key)) return fail(`Unknown item type "${item.name}"`, result);
      try {
        rawAccess.setItem(tx, items[key], item.value);
      } catch (error) {
        return pamFailure(error, result);
      }
    }
    for (const entry of request.env) {
      const result: JsonResult = { operation: "putenv", ok: false };
      // libpam refuses these itself; the typed putEnv() stops them earlier.
      if (envNameMissing(entry)) {
        const code = ReturnCode.BAD_ITEM;
        return fail(strerror(code), { ...result, code, codeName: returnCodeName(code) });
      }
      try {
        tx.putEnv(entry);
      } catch (error) {
        return pamFailure(error, result);
      }
    }
    for (const spec of request.operations) {
      if (request.verbose) err(`${name}: performing operation - ${spec.name}\n`);
      messages = [];
      const key = spec.name.toLowerCase();
      const operation = Object.hasOwn(operations, key) ? operations[key] : undefined;
      const result: JsonResult = { operation: operation ? key : spec.name, ok: false };
      if (!operation) return fail(`Unsupported operation "${spec.name}"`, result);
      let flags = 0;
      if (spec.flags !== undefined) {
        try {
          flags = evaluateFlagExpression(spec.flags) ?? 0;
        } catch (error) {
          if (error instanceof FlagExpressionError) return fail(error.message, result);
          throw error;
        }
      }
      result.flags = flags;
      let failure: unknown;
      try {
        rawAccess.call(tx, operation.call, flags);
      } catch (error) {
        failure = error;
      }
      if (conversation.interrupted) {
        report({ ...result, interrupted: true, error: "Interrupted" });
        return ExitCode.INTERRUPTED;
      }
      if (failure !== undefined) return pamFailure(failure, result);
      // An operation can only succeed on answers that were given: a module that takes
      // misc_conv's NULL (end of input) for the empty password authenticates no one here.
      if (conversation.endOfInput) {
        return fail(END_OF_INPUT, { ...result, endOfInput: true });
      }
      if (json) {
        report({ ...result, ok: true, code: 0, codeName: "PAM_SUCCESS" });
      } else {
        out(`${name}: ${operation.done}\n`);
      }
    }
    return ExitCode.OK;
  } finally {
    tx.end();
  }
}

if (import.meta.main) {
  process.exit(main(process.argv.slice(2)));
}
