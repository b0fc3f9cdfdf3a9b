/**
 * Bit-exact access to a {@linkcode PamTransaction} for the pamtester-compatible
 * CLI, which must pass whatever flag word the user wrote (pamtester hands
 * `authenticate(~PAM_SILENT)` to libpam unchecked) and must unset items
 * (`-I tty` sets `PAM_TTY` to NULL). Not part of the public API: `mod.ts` does
 * not re-export this module, and `PamTransaction` fills it in from a static
 * block, because only the class body can reach the handle.
 *
 * @module
 */

import type { ItemName } from "./constants.ts";
import type { PamTransaction } from "./transaction.ts";

/** The libpam calls that take a flag word. */
export type FlaggedCall =
  | "pam_authenticate"
  | "pam_setcred"
  | "pam_acct_mgmt"
  | "pam_open_session"
  | "pam_close_session"
  | "pam_chauthtok";

/** What `PamTransaction` exposes to this package's own tools. */
export interface RawAccess {
  /** Calls `operation` with `flags` as given; throws `PamError` like the typed methods. */
  call(tx: PamTransaction, operation: FlaggedCall, flags: number): void;
  /** `pam_set_item`, where `null` passes NULL (unsets the item); `service` refuses `null`. */
  setItem(tx: PamTransaction, name: ItemName, value: string | null): void;
}

/** Filled in when `transaction.ts` loads (its static block runs before any caller can). */
export const rawAccess: RawAccess = {} as RawAccess;
