/**
 * The transaction's methods, described once: each name with the checks of
 * its arguments. The async API runs the checks on the main thread before a
 * request leaves it (so bad input is a `TypeError` there, before any
 * thread is taken), the worker dispatches only the names listed here, and
 * `WorkerRequest.method` is typed by them. The synchronous
 * `PamTransaction` checks the same arguments again with the same functions.
 * Adding a method: `PamTransaction`, a row here, and
 * `AsyncPamTransaction`'s declaration (JSR needs its types and JSDoc
 * spelled out); the compiler holds the three together.
 *
 * @module
 */

import { authFlags, chauthtokFlags, credFlag, flagsOf, itemType, silentFlags } from "../_flags.ts";
import type { PamTransaction } from "../transaction.ts";
import type { AsyncPamTransaction } from "./transaction.ts";
import { checkCString, checkEnvEntry, checkXAuthData, optionsObject } from "../_validate.ts";

/** A method of `PamTransaction` the worker calls for `AsyncPamTransaction`. */
export type TransactionMethod = Exclude<
  keyof PamTransaction,
  "end" | "ended" | typeof Symbol.dispose
>;

/** What a call of method `K` takes: `PamTransaction`'s parameters. */
export type MethodArguments<K extends TransactionMethod> = Parameters<PamTransaction[K]>;

/**
 * A flags argument, checked, as the plain snapshot the worker gets: what the
 * caller's object says is read once, here.
 */
function checkedFlags(flags: unknown, what: string, table: Parameters<typeof flagsOf>[2]): unknown {
  if (flags === undefined) return undefined;
  const snapshot = optionsObject<Record<string, unknown>>(flags, what);
  flagsOf(snapshot, what, table);
  return snapshot;
}

/**
 * Each method's argument checks: they throw what `PamTransaction`'s own
 * would, and return the arguments to send, as plain values read once (a
 * getter must not be read again when the request is serialised).
 */
export const transactionMethods: {
  readonly [K in TransactionMethod]: (...args: MethodArguments<K>) => unknown[];
} = {
  authenticate: (flags) => [checkedFlags(flags, "authenticate() flags", authFlags)],
  acctMgmt: (flags) => [checkedFlags(flags, "acctMgmt() flags", authFlags)],
  setCred: (action, flags) => {
    credFlag(action);
    return [action, checkedFlags(flags, "setCred() flags", silentFlags)];
  },
  chauthtok: (flags) => [checkedFlags(flags, "chauthtok() flags", chauthtokFlags)],
  openSession: (flags) => [checkedFlags(flags, "openSession() flags", silentFlags)],
  closeSession: (flags) => [checkedFlags(flags, "closeSession() flags", silentFlags)],
  getItem: (name) => {
    itemType(name);
    return [name];
  },
  setItem: (name, value) => {
    itemType(name);
    checkCString(value, `the value of item "${name}"`);
    return [name, value];
  },
  getXAuthData: () => [],
  setXAuthData: (xauth) => [checkXAuthData(xauth)],
  getEnv: (name) => {
    checkCString(name, "the environment variable name");
    return [name];
  },
  putEnv: (entry) => {
    checkEnvEntry(entry);
    return [entry];
  },
  getEnvList: () => [],
};

/** Whether `name` is one of {@linkcode transactionMethods}' (own, not inherited, keys). */
export function isTransactionMethod(name: unknown): name is TransactionMethod {
  return typeof name === "string" && Object.hasOwn(transactionMethods, name);
}

/** Calls method `name` of `tx` with `args` (from a request the worker received). */
export function callMethod(tx: PamTransaction, name: TransactionMethod, args: unknown[]): unknown {
  return (tx[name] as (...args: unknown[]) => unknown).apply(tx, args);
}

// AsyncPamTransaction has every method, with the same parameters and a Promise of the result.
type AsyncMatches = {
  [K in TransactionMethod]: AsyncPamTransaction[K] extends
    (...args: MethodArguments<K>) => Promise<ReturnType<PamTransaction[K]>> ? true : K;
}[TransactionMethod];
const _asyncMatches: AsyncMatches = true;
