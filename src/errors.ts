/**
 * The error every failed PAM call throws.
 *
 * @module
 */

import { type ReturnCodeName, returnCodeName, type ReturnCodeValue } from "./constants.ts";
import type { PamMessage } from "./conversation.ts";

/**
 * Options for {@linkcode PamError}.
 *
 * @example
 * ```ts
 * import { PamError, type PamErrorOptions } from "@seed/pam";
 * const options: PamErrorOptions = { description: "Authentication failure" };
 * throw new PamError(7, "pam_authenticate", options);
 * ```
 */
export interface PamErrorOptions {
  /** libpam's own text for the code (`pam_strerror`). */
  description?: string | undefined;
  /** Info and error messages the modules sent during the call. */
  messages?: readonly PamMessage[] | undefined;
  /** The exception the conversation handler threw, when it did. */
  cause?: unknown;
  /** The fail delay the modules asked for, in milliseconds (`failDelay: "report"`). */
  failDelayMs?: number | undefined;
}

/**
 * A PAM call that did not return `PAM_SUCCESS`. Carries the Linux-PAM code,
 * its name, the call, and the messages the modules sent, never an answer.
 *
 * @example
 * ```ts
 * import { PamError, PamTransaction, ReturnCode } from "@seed/pam";
 * try {
 *   using tx = PamTransaction.start({ service: "login", user: "alice" });
 *   tx.authenticate();
 * } catch (error) {
 *   if (error instanceof PamError && error.code === ReturnCode.AUTH_ERR) {
 *     console.log("wrong password");
 *   }
 * }
 * ```
 */
export class PamError extends Error {
  /**
   * The Linux-PAM return code (see `ReturnCode`). Typed as the codes
   * Linux-PAM defines; a module may still return a number outside them, and
   * then `codeName` is `"PAM_UNKNOWN(n)"`.
   */
  readonly code: ReturnCodeValue;
  /** The code's C name, such as `"PAM_AUTH_ERR"`. */
  readonly codeName: ReturnCodeName;
  /** The libpam function that failed, such as `"pam_authenticate"`. */
  readonly operation: string;
  /** Info and error messages the modules sent during the failed call. */
  readonly messages: readonly PamMessage[];
  /** The fail delay the modules asked for, in milliseconds, when it was reported rather than slept. */
  readonly failDelayMs: number | undefined;

  /** Builds the error for `code` returned by `operation`. */
  constructor(code: number, operation: string, options: PamErrorOptions = {}) {
    const codeName = returnCodeName(code);
    const description = options.description ? `${options.description} ` : "";
    super(
      `${operation} failed: ${description}(${codeName})`,
      "cause" in options && options.cause !== undefined ? { cause: options.cause } : undefined,
    );
    this.name = "PamError";
    this.code = code as ReturnCodeValue;
    this.codeName = codeName;
    this.operation = operation;
    this.messages = Object.freeze([...(options.messages ?? [])]);
    this.failDelayMs = options.failDelayMs;
  }
}
