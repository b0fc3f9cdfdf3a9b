/**
 * The conversation as applications see it: the messages PAM modules send,
 * the answers an application gives, and {@linkcode passwordConversation}.
 * The trampoline that carries them across the FFI boundary is
 * `src/_trampoline.ts`.
 *
 * @module
 */

import { MessageStyle, type MessageStyleValue } from "./constants.ts";
import { checkAnswerSize } from "./_answers.ts";
import { NewPasswordNeeded } from "./_new_password.ts";
import { checkKnownKeys, describe, optionsObject } from "./_validate.ts";

/**
 * One message from a PAM module.
 *
 * @example
 * ```ts
 * import { MessageStyle, type PamMessage } from "@seed/pam";
 * const m: PamMessage = { style: MessageStyle.PROMPT_ECHO_OFF, text: "Password: " };
 * ```
 */
export interface PamMessage {
  /** How to present it: a {@linkcode MessageStyle} value. */
  readonly style: MessageStyleValue;
  /** The text; `""` for binary prompts. */
  readonly text: string;
  /** For {@linkcode MessageStyle.BINARY_PROMPT}: the whole libpamc packet (length, control byte, data). */
  readonly data?: Uint8Array;
}

/**
 * An answer to one message: a string or bytes for prompts (bytes are zeroed
 * once copied), `null`/`undefined` for messages that need none.
 *
 * @example
 * ```ts
 * import type { PamAnswer } from "@seed/pam";
 * const answers: PamAnswer[] = ["secret", null];
 * ```
 */
export type PamAnswer = string | Uint8Array | null | undefined;

/**
 * Answers one batch of messages, one answer per message, synchronously.
 * Throwing, returning the wrong number or type of answers, an answer longer
 * than {@linkcode MAX_ANSWER_BYTES}, or returning a Promise fails the PAM
 * call with `PAM_CONV_ERR`; it never authenticates. The messages are frozen,
 * and each element of the returned array is read exactly once.
 *
 * @example
 * ```ts
 * import { MessageStyle, type Conversation } from "@seed/pam";
 * const conversation: Conversation = (messages) =>
 *   messages.map((m) => m.style === MessageStyle.PROMPT_ECHO_OFF ? "secret" : null);
 * ```
 */
export type Conversation = (messages: readonly PamMessage[]) => PamAnswer[];

/**
 * A conversation that answers every echo-off prompt with `password` and lets
 * info and error messages through (to `onMessage`, when given). Echo-on and
 * binary prompts fail the call: this conversation cannot answer them. Nor
 * can it answer a prompt for a new password (`pam_chauthtok`'s "New
 * password:", "Retype new password:", recognised by the word "new" in
 * English prompts): giving the old password there would fail the change
 * (three tries) or keep the password that just expired, so that prompt
 * fails the call too.
 *
 * @example
 * ```ts
 * import { PamTransaction, passwordConversation } from "@seed/pam";
 * using tx = PamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 * });
 * ```
 *
 * @throws {TypeError} for a password that is not a string or `Uint8Array`, or bad options.
 * @throws {RangeError} for a password past `MAX_ANSWER_BYTES`.
 */
export function passwordConversation(
  password: string | Uint8Array,
  options: { onMessage?: ((message: PamMessage) => void) | undefined } = {},
): Conversation {
  if (typeof password !== "string" && !(password instanceof Uint8Array)) {
    throw new TypeError("passwordConversation() takes the password as a string or Uint8Array");
  }
  const what = "passwordConversation() options";
  const o = optionsObject<{ onMessage?: unknown }>(options, what);
  checkKnownKeys(o, ["onMessage"], what);
  checkAnswerSize(password, "the password");
  const onMessage = o.onMessage as ((message: PamMessage) => void) | undefined;
  if (onMessage !== undefined && typeof onMessage !== "function") {
    throw new TypeError(`onMessage must be a function, got ${describe(onMessage)}`);
  }
  return (messages) =>
    messages.map((message) => {
      switch (message.style) {
        case MessageStyle.PROMPT_ECHO_OFF:
          if (asksForNewPassword(message.text)) throw new NewPasswordNeeded(message.text);
          // A copy each time: the trampoline zeroes byte answers, and a stack may ask twice.
          return typeof password === "string" ? password : password.slice();
        case MessageStyle.ERROR_MSG:
        case MessageStyle.TEXT_INFO:
          onMessage?.(message);
          return null;
        default:
          throw new TypeError(
            `passwordConversation() cannot answer a prompt of style ${message.style} ("${message.text}")`,
          );
      }
    });
}

// pam_unix "New password: ", "Retype new password: "; pam_matrix "New Password :", "Verify New
// Password :"; pam_pwquality "New password: ". Old-password prompts ("Current password: ",
// "Old Password: ", "(current) UNIX password: ") do not match.
const newPasswordPrompt = /\bnew\b/i;

// The last prompt tested and its verdict: a stack asks the same prompt on every login.
let lastPrompt: string | undefined;
let lastAsksForNew = false;

function asksForNewPassword(text: string): boolean {
  if (text !== lastPrompt) {
    lastAsksForNew = newPasswordPrompt.test(text);
    lastPrompt = text;
  }
  return lastAsksForNew;
}
