/**
 * Linux-PAM's numeric constants (from `<security/_pam_types.h>`). These are
 * Linux values: Solaris and OpenPAM number several codes differently
 * (Solaris' `PAM_CONV_ERR` is 6, Linux-PAM's is 19).
 *
 * @module
 */

/**
 * Every Linux-PAM return code.
 *
 * @example
 * ```ts
 * import { ReturnCode } from "@seed/pam";
 * console.log(ReturnCode.CONV_ERR); // 19
 * ```
 */
export const ReturnCode = {
  SUCCESS: 0,
  OPEN_ERR: 1,
  SYMBOL_ERR: 2,
  SERVICE_ERR: 3,
  SYSTEM_ERR: 4,
  BUF_ERR: 5,
  PERM_DENIED: 6,
  AUTH_ERR: 7,
  CRED_INSUFFICIENT: 8,
  AUTHINFO_UNAVAIL: 9,
  USER_UNKNOWN: 10,
  MAXTRIES: 11,
  NEW_AUTHTOK_REQD: 12,
  ACCT_EXPIRED: 13,
  SESSION_ERR: 14,
  CRED_UNAVAIL: 15,
  CRED_EXPIRED: 16,
  CRED_ERR: 17,
  NO_MODULE_DATA: 18,
  CONV_ERR: 19,
  AUTHTOK_ERR: 20,
  AUTHTOK_RECOVERY_ERR: 21,
  AUTHTOK_LOCK_BUSY: 22,
  AUTHTOK_DISABLE_AGING: 23,
  TRY_AGAIN: 24,
  IGNORE: 25,
  ABORT: 26,
  AUTHTOK_EXPIRED: 27,
  MODULE_UNKNOWN: 28,
  BAD_ITEM: 29,
  CONV_AGAIN: 30,
  INCOMPLETE: 31,
} as const;

/**
 * A Linux-PAM return code value.
 *
 * @example
 * ```ts
 * import { ReturnCode, type ReturnCodeValue } from "@seed/pam";
 * const code: ReturnCodeValue = ReturnCode.AUTH_ERR;
 * ```
 */
export type ReturnCodeValue = typeof ReturnCode[keyof typeof ReturnCode];

/**
 * The C name of a return code, as {@linkcode returnCodeName} gives it:
 * `"PAM_AUTH_ERR"`, or `"PAM_UNKNOWN(n)"` for a number Linux-PAM does not
 * define.
 *
 * @example
 * ```ts
 * import type { ReturnCodeName } from "@seed/pam";
 * const name: ReturnCodeName = "PAM_CONV_ERR";
 * ```
 */
export type ReturnCodeName = `PAM_${keyof typeof ReturnCode}` | `PAM_UNKNOWN(${number})`;

const codeNames = Object.entries(ReturnCode)
  .sort(([, a], [, b]) => a - b)
  .map(([name]) => `PAM_${name}` as ReturnCodeName);

/**
 * The C name of a return code (`7` → `"PAM_AUTH_ERR"`), or `"PAM_UNKNOWN(n)"`.
 *
 * @example
 * ```ts
 * import { returnCodeName } from "@seed/pam";
 * console.log(returnCodeName(19)); // "PAM_CONV_ERR"
 * ```
 */
export function returnCodeName(code: number): ReturnCodeName {
  return codeNames[code] ?? `PAM_UNKNOWN(${code})`;
}

/**
 * Conversation message styles (`struct pam_message.msg_style`).
 *
 * @example
 * ```ts
 * import { MessageStyle } from "@seed/pam";
 * const isPrompt = (style: number) =>
 *   style === MessageStyle.PROMPT_ECHO_OFF || style === MessageStyle.PROMPT_ECHO_ON;
 * ```
 */
export const MessageStyle = {
  PROMPT_ECHO_OFF: 1,
  PROMPT_ECHO_ON: 2,
  ERROR_MSG: 3,
  TEXT_INFO: 4,
  /** Linux-PAM extension: a yes/no style question. */
  RADIO_TYPE: 5,
  /** Linux-PAM extension: a libpamc binary packet (4-byte big-endian length, control byte, data). */
  BINARY_PROMPT: 7,
} as const;

/**
 * A message style value.
 *
 * @example
 * ```ts
 * import { MessageStyle, type MessageStyleValue } from "@seed/pam";
 * const style: MessageStyleValue = MessageStyle.TEXT_INFO;
 * ```
 */
export type MessageStyleValue = typeof MessageStyle[keyof typeof MessageStyle];

/**
 * The C name of a message style, as {@linkcode messageStyleName} gives it.
 *
 * @example
 * ```ts
 * import type { MessageStyleName } from "@seed/pam";
 * const name: MessageStyleName = "PAM_TEXT_INFO";
 * ```
 */
export type MessageStyleName = `PAM_${keyof typeof MessageStyle}` | `PAM_UNKNOWN(${number})`;

const styleNames = new Map<number, MessageStyleName>(
  Object.entries(MessageStyle).map(([name, value]) => [value, `PAM_${name}` as MessageStyleName]),
);

/**
 * The C name of a message style (`4` → `"PAM_TEXT_INFO"`), or
 * `"PAM_UNKNOWN(n)"`: the name the CLI's `--json` output gives beside the
 * number (`{ "style": 4, "styleName": "PAM_TEXT_INFO" }`), as `PamError`
 * gives `codeName` beside `code`.
 *
 * @example
 * ```ts
 * import { MessageStyle, messageStyleName } from "@seed/pam";
 * console.log(messageStyleName(MessageStyle.ERROR_MSG)); // "PAM_ERROR_MSG"
 * ```
 */
export function messageStyleName(style: number): MessageStyleName {
  return styleNames.get(style) ?? `PAM_UNKNOWN(${style})`;
}

/**
 * Flags passed to the PAM calls.
 *
 * @example
 * ```ts
 * import { Flag } from "@seed/pam";
 * const flags = Flag.SILENT | Flag.DISALLOW_NULL_AUTHTOK;
 * ```
 */
export const Flag = {
  SILENT: 0x8000,
  DISALLOW_NULL_AUTHTOK: 0x0001,
  ESTABLISH_CRED: 0x0002,
  DELETE_CRED: 0x0004,
  REINITIALIZE_CRED: 0x0008,
  REFRESH_CRED: 0x0010,
  CHANGE_EXPIRED_AUTHTOK: 0x0020,
  /** For `pam_end` only: modules' cleanup functions should not log. */
  DATA_SILENT: 0x40000000,
} as const;

/**
 * PAM item types (`pam_set_item`/`pam_get_item`).
 *
 * @example
 * ```ts
 * import { ItemType } from "@seed/pam";
 * console.log(ItemType.TTY); // 3
 * ```
 */
export const ItemType = {
  SERVICE: 1,
  USER: 2,
  TTY: 3,
  RHOST: 4,
  CONV: 5,
  AUTHTOK: 6,
  OLDAUTHTOK: 7,
  RUSER: 8,
  USER_PROMPT: 9,
  FAIL_DELAY: 10,
  XDISPLAY: 11,
  XAUTHDATA: 12,
  AUTHTOK_TYPE: 13,
} as const;

/**
 * The string items a transaction reads and writes by name.
 *
 * @example
 * ```ts
 * import type { ItemName } from "@seed/pam";
 * const name: ItemName = "rhost";
 * ```
 */
export type ItemName =
  | "service"
  | "user"
  | "tty"
  | "rhost"
  | "ruser"
  | "userPrompt"
  | "xdisplay"
  | "authtokType"
  | "authtok"
  | "oldauthtok";

/**
 * Item names mapped to their `PAM_*` item type.
 *
 * @example
 * ```ts
 * import { itemTypes } from "@seed/pam";
 * console.log(itemTypes.userPrompt); // 9
 * ```
 */
export const itemTypes: Readonly<Record<ItemName, number>> = {
  service: ItemType.SERVICE,
  user: ItemType.USER,
  tty: ItemType.TTY,
  rhost: ItemType.RHOST,
  ruser: ItemType.RUSER,
  userPrompt: ItemType.USER_PROMPT,
  xdisplay: ItemType.XDISPLAY,
  authtokType: ItemType.AUTHTOK_TYPE,
  authtok: ItemType.AUTHTOK,
  oldauthtok: ItemType.OLDAUTHTOK,
};

/**
 * Linux-PAM's limit on messages in one conversation call (`PAM_MAX_NUM_MSG`).
 *
 * @example
 * ```ts
 * import { MAX_NUM_MSG } from "@seed/pam";
 * console.log(MAX_NUM_MSG); // 32
 * ```
 */
export const MAX_NUM_MSG = 32;

/**
 * The most bytes one conversation answer may have (UTF-8 for strings, not
 * counting the NUL C adds), in the synchronous and the async API alike. A
 * longer answer fails the PAM call (`PamError` whose `cause` is a
 * `RangeError`) before any of it reaches C memory; a password given up front
 * (`authenticate()`, `passwordConversation()`) that is longer is a
 * `RangeError` at once. Linux-PAM's own modules read at most 512
 * (`PAM_MAX_RESP_SIZE`).
 *
 * @example
 * ```ts
 * import { MAX_ANSWER_BYTES } from "@seed/pam";
 * console.log(MAX_ANSWER_BYTES); // 4096
 * ```
 */
export const MAX_ANSWER_BYTES = 4096;

/**
 * The longest binary prompt (`PAM_BINARY_PROMPT`) the conversation reads:
 * libpamc's advisory `PAM_BP_MAX_LENGTH`. A packet's 4-byte big-endian
 * length header (which counts itself and the control byte) is the only size
 * C gives; one below 5 or above this fails the conversation (`PAM_CONV_ERR`,
 * `cause` a `RangeError`) without a byte past the header being read.
 *
 * @example
 * ```ts
 * import { MAX_BINARY_PROMPT_BYTES } from "@seed/pam";
 * console.log(MAX_BINARY_PROMPT_BYTES); // 65536
 * ```
 */
export const MAX_BINARY_PROMPT_BYTES = 0x10000;
