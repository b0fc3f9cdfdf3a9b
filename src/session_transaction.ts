/**
 * The promise-returning transaction `login()` and `closeSession()` drive.
 *
 * TEMPORARY: an adapter over the synchronous {@linkcode PamTransaction},
 * standing in for `AsyncPamTransaction` (issue 3) until that branch is
 * merged. It exposes exactly the methods the session code calls, with the
 * same names and Promise results, so switching is a one-line change here.
 *
 * @module
 */

import type { ItemName } from "./constants.ts";
import type { Conversation } from "./conversation.ts";
import {
  type AuthFlags,
  type ChauthtokFlags,
  type CredAction,
  PamTransaction,
  type SilentFlag,
} from "./transaction.ts";

/** What the session code needs from a transaction. */
export interface SessionTransaction {
  authenticate(flags?: AuthFlags): Promise<void>;
  acctMgmt(flags?: AuthFlags): Promise<void>;
  chauthtok(flags?: ChauthtokFlags): Promise<void>;
  setCred(action: CredAction, flags?: SilentFlag): Promise<void>;
  openSession(flags?: SilentFlag): Promise<void>;
  closeSession(flags?: SilentFlag): Promise<void>;
  getItem(name: ItemName): Promise<string | undefined>;
  setItem(name: ItemName, value: string): Promise<void>;
  getEnvList(): Promise<Record<string, string>>;
  end(flags?: SilentFlag): Promise<void>;
}

/** How the session code starts a transaction. */
export interface SessionTransactionOptions {
  service: string;
  user?: string;
  conversation?: Conversation;
  confdir?: string;
  library?: string;
}

/** Starts a transaction for `login()` or `closeSession()`. */
export function startSessionTransaction(
  options: SessionTransactionOptions,
): Promise<SessionTransaction> {
  return Promise.resolve().then(() => {
    const tx = PamTransaction.start(options);
    const run = <T>(fn: () => T): Promise<T> => Promise.resolve().then(fn);
    return {
      authenticate: (flags) => run(() => tx.authenticate(flags)),
      acctMgmt: (flags) => run(() => tx.acctMgmt(flags)),
      chauthtok: (flags) => run(() => tx.chauthtok(flags)),
      setCred: (action, flags) => run(() => tx.setCred(action, flags)),
      openSession: (flags) => run(() => tx.openSession(flags)),
      closeSession: (flags) => run(() => tx.closeSession(flags)),
      getItem: (name) => run(() => tx.getItem(name)),
      setItem: (name, value) => run(() => tx.setItem(name, value)),
      getEnvList: () => run(() => tx.getEnvList()),
      end: (flags) => run(() => tx.end(flags)),
    };
  });
}
