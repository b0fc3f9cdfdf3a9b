/**
 * The option objects of the PAM calls, turned into flag words and checked
 * the same way by the synchronous and the async API (the async one checks on
 * the main thread, before anything reaches a worker).
 *
 * @module
 */

import { Flag, type ItemName, itemTypes } from "./constants.ts";
import type { PamTransactionOptions } from "./transaction.ts";
import { describe, describeChoice, optionsObject, unknownKey } from "./_validate.ts";

/**
 * The keys of `PamTransactionOptions`: any other is a `TypeError`. A record,
 * so that the compiler says when the interface gains an option this list
 * lacks.
 */
export const startOptionKeys: readonly string[] = Object.keys(
  {
    service: true,
    user: true,
    conversation: true,
    confdir: true,
    library: true,
    failDelay: true,
  } satisfies Record<keyof PamTransactionOptions, true>,
);

/** Option name → flag bit, for one kind of call. */
export type FlagTable = Readonly<Record<string, number>>;

/** `{ silent }`: session calls and `setCred`. */
export const silentFlags: FlagTable = { silent: Flag.SILENT };
/** `{ silent, disallowNullAuthtok }`: `authenticate` and `acctMgmt`. */
export const authFlags: FlagTable = {
  silent: Flag.SILENT,
  disallowNullAuthtok: Flag.DISALLOW_NULL_AUTHTOK,
};
/** `{ silent, changeExpiredAuthtok }`: `chauthtok`. */
export const chauthtokFlags: FlagTable = {
  silent: Flag.SILENT,
  changeExpiredAuthtok: Flag.CHANGE_EXPIRED_AUTHTOK,
};
/** `{ silent }` for `end()`, where it means `PAM_DATA_SILENT`. */
export const endFlags: FlagTable = { silent: Flag.DATA_SILENT };

const credFlags: FlagTable = {
  establish: Flag.ESTABLISH_CRED,
  delete: Flag.DELETE_CRED,
  reinitialize: Flag.REINITIALIZE_CRED,
  refresh: Flag.REFRESH_CRED,
};

/** The flag word for `options`; a `TypeError` for unknown keys or non-boolean values. */
export function flagsOf(options: unknown, what: string, table: FlagTable): number {
  // The common call passes no flags: no object, no entries array, on every PAM call.
  if (options === undefined) return 0;
  const given = optionsObject<Record<string, unknown>>(options, what);
  let flags = 0;
  for (const [key, value] of Object.entries(given)) {
    if (!Object.hasOwn(table, key)) {
      throw unknownKey(key, Object.keys(table), what);
    }
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(`${what}.${key} must be a boolean, got ${describe(value)}`);
    }
    if (value) flags |= table[key];
  }
  return flags;
}

/** The `PAM_*_CRED` bit of a `setCred` action; a `TypeError` for anything else. */
export function credFlag(action: unknown): number {
  if (typeof action !== "string" || !Object.hasOwn(credFlags, action)) {
    throw new TypeError(
      `setCred() takes "establish", "delete", "reinitialize" or "refresh", got ${
        describeChoice(action)
      }`,
    );
  }
  return credFlags[action];
}

/** The `PAM_*` item type of a name; a `TypeError` for unknown names. */
export function itemType(name: unknown): number {
  if (typeof name !== "string" || !Object.hasOwn(itemTypes, name)) {
    throw new TypeError(
      `unknown PAM item ${describeChoice(name)}; known items: ${Object.keys(itemTypes).join(", ")}`,
    );
  }
  return itemTypes[name as ItemName];
}
