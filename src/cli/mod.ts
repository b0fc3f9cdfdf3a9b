#!/usr/bin/env -S deno run --allow-ffi
/**
 * A `pamtester(1)`-compatible command line, with nothing to compile:
 *
 * ```sh
 * deno run --allow-ffi jsr:@seed/pam/cli [-v] [-I item=value]... [-E var=value]... service user operation...
 * bun src/cli/mod.ts login alice authenticate acct_mgmt
 * ```
 *
 * Same arguments, output lines, streams and exit status as pamtester 0.1.2,
 * plus `--confdir DIR`, `--json`, `--help` and `--version`. See `docs/cli.md`.
 *
 * @module
 */

import process from "node:process";
import denoConfig from "../../deno.json" with { type: "json" };
import {
  type MessageStyleName,
  messageStyleName,
  ReturnCode,
  returnCodeName,
} from "../constants.ts";
import type { PamMessage } from "../conversation.ts";
import { PamError } from "../errors.ts";
import { evaluateFlagExpression, FlagExpressionError } from "./flag_expression.ts";
import { openPam, strerrorText } from "../_library.ts";
import { rawAccess } from "../_raw_access.ts";
import { write } from "./_fd_io.ts";
import {
  helpText,
  items,
  operations,
  parseCommandLine,
  programName,
  type Request,
  UsageError,
} from "./_parse.ts";
import { terminalConversation } from "./terminal.ts";
import { PamTransaction } from "../transaction.ts";
import { envNameMissing } from "../_validate.ts";

export * from "./flag_expression.ts";
export * from "./terminal.ts";

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
