/**
 * Login sessions, as `pam_open_session(3)` describes them: authenticate,
 * check the account, establish credentials, open the session, then write the
 * utmp/wtmp login entries; at the end, the exit entries first, then close the
 * session, delete the credentials and end the transaction — possibly in
 * another process, linked to the login through a {@linkcode SessionRecord}.
 *
 * @module
 */

import process from "node:process";
import { ReturnCode } from "./constants.ts";
import {
  type AsyncConversation,
  AsyncPamTransaction,
  type AsyncPamTransactionOptions,
  checkStartOptions,
  detachSignal,
} from "./async.ts";
import { PamError } from "./errors.ts";
import {
  addressOfHost,
  appendWtmpx,
  checkFilePath,
  checkPlatform,
  clearUtmpx,
  ensureWritable,
  idOfLine,
  lineOfTty,
  putUtmpx,
  systemUtmpFile,
  systemWtmpFile,
  UtmpType,
  type UtmpxEntry,
} from "./utmp.ts";
import {
  checkConversation,
  checkCString,
  describe,
  optionalBoolean,
  optionsObject,
} from "./validate.ts";

/**
 * Where and how {@linkcode login} writes the utmp and wtmp entries.
 *
 * @example
 * ```ts
 * import type { UtmpOptions } from "@seed/pam";
 * const utmp: UtmpOptions = { utmpFile: "/tmp/demo/utmp", wtmpFile: "/tmp/demo/wtmp" };
 * ```
 */
export interface UtmpOptions {
  /** The utmp file (default `/var/run/utmp`, writable by root only); created when missing. */
  utmpFile?: string;
  /** The wtmp file (default `/var/log/wtmp`, writable by root only); created when missing. */
  wtmpFile?: string;
  /** `ut_line`, at most 32 bytes (default: `tty` without `/dev/`). */
  line?: string;
  /** `ut_id`, at most 4 bytes (default: the last 4 bytes of the line, as login(1) does). */
  id?: string;
  /** `ut_host` (default: `rhost`, or empty). */
  host?: string;
  /** `ut_pid`, the session's process (default: this process). `who` hides entries of dead processes. */
  pid?: number;
}

/**
 * What {@linkcode login} needs: how to start the {@linkcode AsyncPamTransaction}
 * (service, user, conversation, confdir, library, signal,
 * conversationTimeoutMs, failDelay), plus the items, flags and utmp entries.
 * The signal bounds the login only: once `login()` has resolved, the session
 * closes whatever became of it.
 *
 * @example
 * ```ts
 * import { type LoginOptions, passwordConversation } from "@seed/pam";
 * const options: LoginOptions = {
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 *   rhost: "203.0.113.7",
 * };
 * ```
 */
export interface LoginOptions extends AsyncPamTransactionOptions {
  /** `PAM_TTY`, set before authentication; also the default utmp line. */
  tty?: string;
  /** `PAM_RHOST`, set before authentication; also the default utmp host. */
  rhost?: string;
  /** `PAM_RUSER`, set before authentication. */
  ruser?: string;
  /** `PAM_SILENT` on every call: modules should not send messages. */
  silent?: boolean;
  /**
   * When account management answers `PAM_NEW_AUTHTOK_REQD`, change the
   * expired token (`pam_chauthtok` with `PAM_CHANGE_EXPIRED_AUTHTOK`) through
   * the conversation instead of failing (default `true`).
   */
  changeExpiredAuthtok?: boolean;
  /**
   * The utmp/wtmp entries: options, or `false` for none. By default they go
   * to the system files, which only root may write.
   */
  utmp?: false | UtmpOptions;
}

/**
 * Everything another process needs to close a session: plain JSON.
 *
 * @example
 * ```ts
 * import { closeSession, type SessionRecord } from "@seed/pam";
 * const record: SessionRecord = JSON.parse(Deno.readTextFileSync("/run/my-app/session.json"));
 * await closeSession(record);
 * ```
 */
export interface SessionRecord {
  /** The PAM service the session was opened with. */
  service: string;
  /** `PAM_USER` as the modules left it. */
  user: string;
  /** The items set before authentication. */
  items: { tty?: string; rhost?: string; ruser?: string };
  /** The configuration directory, when not `/etc/pam.d`. */
  confdir?: string;
  /** The session's process: `ut_pid` of the utmp entries. */
  pid: number;
  /** When the session opened (ISO 8601). */
  loginTime: string;
  /** `ut_line`, when utmp/wtmp entries were written. */
  line?: string;
  /** `ut_id`, when utmp/wtmp entries were written. */
  id?: string;
  /** The utmp file holding the login entry. */
  utmpFile?: string;
  /** The wtmp file holding the login record. */
  wtmpFile?: string;
}

/**
 * Options for {@linkcode closeSession}.
 *
 * @example
 * ```ts
 * import type { CloseSessionOptions } from "@seed/pam";
 * const options: CloseSessionOptions = { silent: true };
 * ```
 */
export interface CloseSessionOptions {
  /** Answers the modules' prompts while closing. */
  conversation?: AsyncConversation;
  /** `PAM_SILENT` on every call. */
  silent?: boolean;
  /** Overrides the record's configuration directory. */
  confdir?: string;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string;
}

interface UtmpPlan {
  utmpFile: string;
  wtmpFile: string;
  line: string;
  id: string;
  host: string;
  pid: number;
}

const encoder = new TextEncoder();

function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  checkCString(value, what);
  return value as string;
}

function checkPid(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0 || value > 0x7fffffff) {
    throw new TypeError(`${what} must be a positive integer process id, got ${describe(value)}`);
  }
  return value;
}

function checkField(value: string, size: number, what: string): string {
  const length = encoder.encode(value).length;
  if (length === 0 || length > size) {
    throw new TypeError(
      `${what} must be 1 to ${size} bytes (utmp's field size), got ${length} bytes`,
    );
  }
  return value;
}

/** Validates the utmp options before any C call; `undefined` when utmp is off. */
function planUtmp(o: LoginOptions): UtmpPlan | undefined {
  if (o.utmp === false) return undefined;
  const u = optionsObject<UtmpOptions>(o.utmp, "utmp options");
  const known = ["utmpFile", "wtmpFile", "line", "id", "host", "pid"];
  for (const key of Object.keys(u)) {
    if (!known.includes(key)) {
      throw new TypeError(`utmp options have no "${key}" (known: ${known.join(", ")})`);
    }
  }
  const utmpFile = optionalString(u.utmpFile, "utmp.utmpFile");
  const wtmpFile = optionalString(u.wtmpFile, "utmp.wtmpFile");
  const lineGiven = optionalString(u.line, "utmp.line");
  const line = lineGiven ?? (o.tty !== undefined ? lineOfTty(o.tty) : undefined);
  if (line === undefined) {
    throw new TypeError(
      "utmp entries need a line: pass tty (or utmp.line), or utmp: false to write none",
    );
  }
  checkField(line, 32, "the utmp line");
  const id = optionalString(u.id, "utmp.id") ?? idOfLine(line);
  checkField(id, 4, "utmp.id");
  checkPlatform();
  return {
    utmpFile: utmpFile ?? systemUtmpFile,
    wtmpFile: wtmpFile ?? systemWtmpFile,
    line,
    id,
    host: optionalString(u.host, "utmp.host") ?? o.rhost ?? "",
    pid: u.pid === undefined ? process.pid : checkPid(u.pid, "utmp.pid"),
  };
}

/** The items login() sets before authentication, and a record carries. */
const loginItems = ["tty", "rhost", "ruser"] as const;

/** Sets the items given (`undefined` ones are left unset). */
async function setItems(tx: AsyncPamTransaction, items: SessionRecord["items"]): Promise<void> {
  for (const name of loginItems) {
    const value = items[name];
    if (value !== undefined) await tx.setItem(name, value);
  }
}

/**
 * Closing a session, in order; the same for the process that opened it and
 * for another one holding its record: the exit entries (a logout record in
 * wtmp, then the utmp entry marked dead) when it had any, then
 * `pam_close_session`, `pam_setcred(PAM_DELETE_CRED)` and `pam_end`.
 */
function closeSteps(
  tx: AsyncPamTransaction,
  r: SessionRecord,
  flags: { silent: boolean },
): Array<() => unknown> {
  return [
    () => writeExitEntries(r),
    () => tx.closeSession(flags),
    () => tx.setCred("delete", flags),
    () => tx.end(),
  ];
}

function writeExitEntries(r: SessionRecord): void {
  if (!r.utmpFile || !r.wtmpFile || !r.line || !r.id) return;
  const files = { utmpFile: r.utmpFile, wtmpFile: r.wtmpFile };
  const entry: UtmpxEntry = {
    type: UtmpType.DEAD_PROCESS,
    pid: r.pid,
    line: r.line,
    id: r.id,
    user: "",
    host: "",
    timeMs: Date.now(),
  };
  let first: unknown;
  try {
    appendWtmpx(files.wtmpFile, entry);
  } catch (error) {
    first = error;
  }
  try {
    clearUtmpx(files.utmpFile, entry);
  } catch (error) {
    first ??= error;
  }
  if (first !== undefined) throw first;
}

/** Runs every step, in order, even after one fails; rethrows the first failure. */
async function allSteps(steps: ReadonlyArray<() => unknown>): Promise<void> {
  let first: { error: unknown } | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      first ??= { error };
    }
  }
  if (first) throw first.error;
}

let createSession: (
  tx: AsyncPamTransaction,
  user: string,
  env: Record<string, string>,
  record: SessionRecord,
  silent: boolean,
) => LoginSession;

/**
 * An open login session, from {@linkcode login}. Close it exactly once with
 * {@linkcode LoginSession.close} (or `await using`), or serialise
 * {@linkcode LoginSession.record} and close it from another process with
 * {@linkcode closeSession}.
 *
 * @example
 * ```ts
 * import { login, passwordConversation } from "@seed/pam";
 * await using session = await login({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 * });
 * console.log(session.user, session.env);
 * ```
 */
export class LoginSession {
  /** `PAM_USER` as the modules left it (they may map the name that was typed). */
  readonly user: string;
  /** The PAM environment (`pam_getenvlist` after the session opened), for the user's processes. */
  readonly env: Readonly<Record<string, string>>;
  /** A JSON-serialisable description of the session, for {@linkcode closeSession}. */
  readonly record: SessionRecord;
  readonly #tx: AsyncPamTransaction;
  readonly #silent: boolean;
  #closing: Promise<void> | undefined;
  #detached = false;

  private constructor(
    tx: AsyncPamTransaction,
    user: string,
    env: Record<string, string>,
    record: SessionRecord,
    silent: boolean,
  ) {
    this.#tx = tx;
    this.user = user;
    this.env = Object.freeze({ ...env });
    this.record = record;
    this.#silent = silent;
  }

  static {
    createSession = (tx, user, env, record, silent) =>
      new LoginSession(tx, user, env, record, silent);
  }

  /** `true` once {@linkcode LoginSession.close} (or {@linkcode LoginSession.detach}) was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Hands the session over to another process: ends this process's PAM
   * handle with `PAM_DATA_SILENT` (modules' cleanup must not tear the session
   * down) and leaves the session open and the utmp entry in place, for
   * {@linkcode closeSession} with {@linkcode LoginSession.record} elsewhere.
   * `close()` afterwards rejects; `await using` does nothing more.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * const session = await login({ service: "login", user: "alice", tty: "/dev/tty1" });
   * Deno.writeTextFileSync("/run/my-app/session.json", JSON.stringify(session.record));
   * await session.detach();
   * ```
   */
  detach(): Promise<void> {
    if (this.#closing) {
      return Promise.reject(
        new Error(`This session was already ${this.#detached ? "detached" : "closed"}`),
      );
    }
    this.#detached = true;
    this.#closing = this.#tx.end({ silent: true });
    return this.#closing;
  }

  /**
   * Ends the session in the reverse order of {@linkcode login}: the wtmp
   * logout record and the utmp entry cleared, then `pam_close_session`,
   * `pam_setcred(PAM_DELETE_CRED)` and `pam_end`. Every step runs even if
   * one fails; the promise rejects with the first failure. Calling it again
   * returns the same promise: the steps run exactly once.
   *
   * @example
   * ```ts
   * import { login, passwordConversation } from "@seed/pam";
   * const session = await login({ service: "login", user: "alice", conversation: passwordConversation("pw"), utmp: false });
   * try {
   *   // ... the user's activity ...
   * } finally {
   *   await session.close();
   * }
   * ```
   */
  close(): Promise<void> {
    if (this.#detached) {
      return Promise.reject(
        new Error("This session was detached: close it with closeSession(session.record)"),
      );
    }
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * Closes the session, for `await using`.
   *
   * @example
   * ```ts
   * import { login } from "@seed/pam";
   * {
   *   await using session = await login({ service: "login", user: "alice", utmp: false });
   * } // closed here
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#detached ? this.#closing! : this.close();
  }

  #close(): Promise<void> {
    return allSteps(closeSteps(this.#tx, this.record, { silent: this.#silent }));
  }
}

/**
 * Logs a user in, in the order `pam_open_session(3)` asks for: `pam_start`,
 * the items (`tty`, `rhost`, `ruser`), `pam_authenticate`, `pam_acct_mgmt`
 * (and `pam_chauthtok` when the password expired), `pam_setcred(ESTABLISH)`,
 * `pam_open_session`, and only then the utmp and wtmp login entries.
 *
 * If any step fails, what was done is undone in reverse (entries cleared,
 * session closed, credentials deleted, transaction ended) and the promise
 * rejects with the first error: a {@linkcode PamError} for PAM failures
 * (`ReturnCode.SESSION_ERR` when a session module could not set up).
 * Bad options throw `TypeError` before any C call, and unwritable utmp/wtmp
 * files an `Error` before any PAM call.
 *
 * @example
 * ```ts
 * import { login, passwordConversation } from "@seed/pam";
 *
 * await using session = await login({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   tty: "/dev/pts/3",
 *   utmp: { utmpFile: "/tmp/demo/utmp", wtmpFile: "/tmp/demo/wtmp" },
 * });
 * console.log(`welcome, ${session.user}`);
 * ```
 */
export async function login(options: LoginOptions): Promise<LoginSession> {
  if (options === undefined) {
    throw new TypeError("login() needs options: { service, user?, conversation?, tty?, ... }");
  }
  const o = optionsObject<LoginOptions>(options, "login() options");
  const start = checkStartOptions(o, "login() options");
  // checkStartOptions takes a null user (as pam_start does); login() records a string.
  optionalString(o.user, "user");
  const items = {
    tty: optionalString(o.tty, "tty"),
    rhost: optionalString(o.rhost, "rhost"),
    ruser: optionalString(o.ruser, "ruser"),
  };
  checkConversation(o.conversation);
  const silent = optionalBoolean(o.silent, "silent") ?? false;
  const changeExpired = optionalBoolean(o.changeExpiredAuthtok, "changeExpiredAuthtok") ?? true;
  const plan = planUtmp(o);
  if (plan) {
    // Fail before PAM runs, not after the session opened: root-only files, typos.
    // Files the caller named are created; the system ones are the system's to create.
    ensureWritable(plan.utmpFile, "utmp file", plan.utmpFile !== systemUtmpFile);
    ensureWritable(plan.wtmpFile, "wtmp file", plan.wtmpFile !== systemWtmpFile);
  }

  const flags = { silent };
  const undo: Array<() => unknown> = [];
  const tx = await AsyncPamTransaction.start({
    ...start.options,
    conversation: o.conversation,
    signal: o.signal,
    conversationTimeoutMs: start.conversationTimeoutMs,
  });
  undo.push(() => tx.end());
  try {
    await setItems(tx, items);
    await tx.authenticate(flags);
    try {
      await tx.acctMgmt(flags);
    } catch (error) {
      if (
        !(changeExpired && error instanceof PamError && error.code === ReturnCode.NEW_AUTHTOK_REQD)
      ) {
        throw error;
      }
      await tx.chauthtok({ ...flags, changeExpiredAuthtok: true });
    }
    await tx.setCred("establish", flags);
    undo.push(() => tx.setCred("delete", flags));
    await tx.openSession(flags);
    undo.push(() => tx.closeSession(flags));
    const user = (await tx.getItem("user")) ?? o.user ?? "";
    const env = await tx.getEnvList();
    const loginTimeMs = Date.now();
    const record: SessionRecord = {
      service: o.service,
      user,
      items: Object.fromEntries(Object.entries(items).filter(([, v]) => v !== undefined)),
      ...(o.confdir !== undefined ? { confdir: o.confdir } : {}),
      pid: plan?.pid ?? process.pid,
      loginTime: new Date(loginTimeMs).toISOString(),
    };
    if (plan) {
      const entry: UtmpxEntry = {
        type: UtmpType.USER_PROCESS,
        pid: plan.pid,
        line: plan.line,
        id: plan.id,
        user,
        host: plan.host,
        timeMs: loginTimeMs,
        address: addressOfHost(plan.host),
      };
      putUtmpx(plan.utmpFile, entry);
      undo.push(() => clearUtmpx(plan.utmpFile, entry));
      // The last step that can fail: nothing after it needs undoing in wtmp.
      appendWtmpx(plan.wtmpFile, entry);
      Object.assign(record, {
        line: plan.line,
        id: plan.id,
        utmpFile: plan.utmpFile,
        wtmpFile: plan.wtmpFile,
      });
    }
    // From here the session is the caller's to close, whatever becomes of the signal.
    detachSignal(tx);
    return createSession(tx, user, env, record, silent);
  } catch (error) {
    // Undo in reverse, even after an abort; the login's own failure is what the caller
    // needs to see, not an undo step's.
    detachSignal(tx);
    await allSteps(undo.reverse()).catch(() => {});
    throw error;
  }
}

/**
 * Closes a session {@linkcode login} opened, from any process, given its
 * {@linkcode SessionRecord}: starts a new transaction with the record's
 * service, user, configuration directory and items, writes the exit entries
 * (wtmp logout record, utmp entry cleared), then calls `pam_close_session`,
 * `pam_setcred(PAM_DELETE_CRED)` and `pam_end`. Every step after
 * `pam_start` runs even if one fails; the promise rejects with the first
 * failure.
 *
 * This is the situation `pam_open_session(3)` describes (login opens, init
 * closes). What crosses the boundary is the record; what cannot is module
 * state kept in the opening process with `pam_set_data`, which modules that
 * need it at close (pam_systemd, pam_keyinit, ...) then cannot see.
 *
 * @example
 * ```ts
 * import { closeSession, type SessionRecord } from "@seed/pam";
 * const record: SessionRecord = JSON.parse(Deno.readTextFileSync("/run/my-app/session.json"));
 * await closeSession(record, { silent: true });
 * ```
 */
export async function closeSession(
  record: SessionRecord,
  options?: CloseSessionOptions,
): Promise<void> {
  const r = checkRecord(record);
  const o = optionsObject<CloseSessionOptions>(options, "closeSession() options");
  checkConversation(o.conversation);
  const silent = optionalBoolean(o.silent, "silent") ?? false;
  const confdir = optionalString(o.confdir, "confdir") ?? r.confdir;
  optionalString(o.library, "library");
  const flags = { silent };
  const tx = await AsyncPamTransaction.start({
    service: r.service,
    user: r.user,
    conversation: o.conversation,
    confdir,
    library: o.library,
  });
  await allSteps([() => setItems(tx, r.items), ...closeSteps(tx, r, flags)]);
}

/** Checks a record that came through JSON before anything runs. */
function checkRecord(record: unknown): SessionRecord {
  const r = optionsObject<SessionRecord>(record, "the session record");
  if (record === undefined) throw new TypeError("closeSession() needs the session record");
  checkCString(r.service, "record.service");
  checkCString(r.user, "record.user");
  const items = optionsObject<SessionRecord["items"]>(r.items, "record.items");
  for (const [name, value] of Object.entries(items)) {
    if (!(loginItems as readonly string[]).includes(name)) {
      throw new TypeError(`record.items has no "${name}" (known: ${loginItems.join(", ")})`);
    }
    optionalString(value, `record.items.${name}`);
  }
  optionalString(r.confdir, "record.confdir");
  checkPid(r.pid, "record.pid");
  const utmp = [r.line, r.id, r.utmpFile, r.wtmpFile];
  if (utmp.some((v) => v !== undefined)) {
    if (utmp.some((v) => typeof v !== "string")) {
      throw new TypeError(
        "record.line, record.id, record.utmpFile and record.wtmpFile go together: all strings or all absent",
      );
    }
    checkField(r.line!, 32, "record.line");
    checkField(r.id!, 4, "record.id");
    checkFilePath(r.utmpFile, "record.utmpFile");
    checkFilePath(r.wtmpFile, "record.wtmpFile");
    checkPlatform();
  }
  return { ...r, items: { ...items } };
}
