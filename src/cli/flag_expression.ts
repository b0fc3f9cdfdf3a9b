/**
 * pamtester's flag expressions, the text in parentheses after an operation:
 * `authenticate(PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK)`. Evaluated the way
 * pamtester 0.1.2 does it, quirks included, so that the same command line
 * passes the same flag word to libpam and fails with the same message.
 *
 * - Operands are decimal integers (C `strtol`, wrapped to a 32-bit `int`) or
 *   a case-insensitive *prefix* of one of six flag names (`pam_s` is
 *   `PAM_SILENT`). `PAM_DELETE_CRED` is not among them.
 * - Operators `|`, `^`, `&` (binary) and `~` (negates the next operand);
 *   spaces and tabs separate operands.
 * - Precedence is resolved with one reduction per operator, as pamtester's
 *   parser does, not by the rules of C.
 *
 * @module
 */

import { Flag } from "../constants.ts";

/**
 * The flag names pamtester resolves, in the order it tries them (a prefix
 * matches the first name it begins).
 */
export const flagNames: readonly (readonly [string, number])[] = [
  ["PAM_SILENT", Flag.SILENT],
  ["PAM_DISALLOW_NULL_AUTHTOK", Flag.DISALLOW_NULL_AUTHTOK],
  ["PAM_ESTABLISH_CRED", Flag.ESTABLISH_CRED],
  ["PAM_REINITIALIZE_CRED", Flag.REINITIALIZE_CRED],
  ["PAM_REFRESH_CRED", Flag.REFRESH_CRED],
  ["PAM_CHANGE_EXPIRED_AUTHTOK", Flag.CHANGE_EXPIRED_AUTHTOK],
];

/**
 * A flag expression pamtester would refuse; the message is pamtester's own
 * (`undefined constant "X"`, `unexpected token "X"`). A `SyntaxError`, as
 * for any text that does not parse.
 */
export class FlagExpressionError extends SyntaxError {
  /** Builds the error with pamtester's message. */
  constructor(message: string) {
    super(message);
    this.name = "FlagExpressionError";
  }
}

type Operator = "|" | "^" | "&";
type Token = "start" | "number" | "~" | Operator;

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

/** C's `strtol(text, &end, 10)` when it consumed all of `text`; `undefined` otherwise. */
function wholeDecimal(text: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const value = BigInt(text);
  // strtol reports ERANGE, and pamtester then looks the text up as a name.
  if (value < LONG_MIN || value > LONG_MAX) return undefined;
  // The long is stored in an int.
  return Number(BigInt.asIntN(32, value));
}

function resolveName(text: string): number | undefined {
  const upper = text.replace(/[a-z]/g, (c) => c.toUpperCase());
  for (const [name, value] of flagNames) {
    if (upper.length <= name.length && name.startsWith(upper)) return value;
  }
  return undefined;
}

function apply(op: Operator, a: number, b: number): number {
  return op === "|" ? a | b : op === "^" ? a ^ b : a & b;
}

/**
 * Evaluates a flag expression; `undefined` when it is empty (pamtester then
 * passes 0). Throws {@linkcode FlagExpressionError} with pamtester's message.
 *
 * @example
 * ```ts
 * import { evaluateFlagExpression } from "@seed/pam/cli";
 * console.log(evaluateFlagExpression("PAM_SILENT|PAM_DISALLOW_NULL_AUTHTOK")); // 32769
 * console.log(evaluateFlagExpression("")); // undefined
 * ```
 *
 * @throws {FlagExpressionError} (a `SyntaxError`) for an expression pamtester would refuse.
 */
export function evaluateFlagExpression(expression: string): number | undefined {
  const values: number[] = [];
  const operators: Operator[] = [];
  let last: Token = "start";

  const reduce = () => {
    const op = operators.pop()!;
    const b = values.pop()!;
    values[values.length - 1] = apply(op, values[values.length - 1], b);
  };

  const operand = (text: string) => {
    if (last === "number") throw new FlagExpressionError(`unexpected token "${text}"`);
    let value = wholeDecimal(text) ?? resolveName(text);
    if (value === undefined) throw new FlagExpressionError(`undefined constant "${text}"`);
    if (last === "~") value = ~value;
    values.push(value);
    last = "number";
  };

  const operator = (op: Operator | "~", text: string) => {
    if (op === "~") {
      last = "~";
      return;
    }
    if (last !== "number") throw new FlagExpressionError(`unexpected token "${text}"`);
    // One reduction at most: `|` reduces any pending operator, `^` a pending
    // `^` or `&`, `&` a pending `&`.
    const top = operators.at(-1);
    if (values.length >= 2 && top !== undefined) {
      const binds = op === "|" ? true : op === "^" ? top !== "|" : top === "&";
      if (binds) reduce();
    }
    operators.push(op);
    last = op;
  };

  // pamtester's scanner: an operator's token text runs from the start of the
  // operand before it, which only shows in its error messages.
  let start = 0;
  let p = 0;
  let inWord = false;
  const isBlank = (c: string) => c === " " || c === "\t";
  while (p < expression.length) {
    const c = expression[p];
    if (!inWord) {
      if (isBlank(c)) {
        p++;
      } else {
        start = p;
        inWord = true;
      }
      continue;
    }
    if (c === "|" || c === "&" || c === "^" || c === "~") {
      if (p > start) operand(expression.slice(start, p));
      operator(c, expression.slice(start, p + 1));
      inWord = false;
      p++;
    } else if (isBlank(c)) {
      if (p > start) operand(expression.slice(start, p));
      inWord = false;
      p++;
    } else {
      p++;
    }
  }
  if (inWord && p > start) operand(expression.slice(start, p));

  while (values.length >= 2 && operators.length > 0) reduce();
  if (last === "start") return undefined;
  // pamtester reads an unset slot for an expression without operands ("~"); 0 here.
  return values[0] ?? 0;
}
