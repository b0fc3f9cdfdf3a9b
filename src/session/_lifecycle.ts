/**
 * The seed's lifecycle, written once for whichever process runs it: the
 * session process (a synchronous `PamTransaction` on its main thread) or the
 * caller itself with `inProcess: true` (an `AsyncPamTransaction`). Open:
 * items, `pam_authenticate`, `pam_acct_mgmt` (and `pam_chauthtok` for an
 * expired password), `pam_setcred(ESTABLISH)`, `pam_open_session`, then the
 * utmp/wtmp login entries. Close: the exit entries first, then
 * `pam_close_session`, `pam_setcred(DELETE)`, `pam_end`. Internal.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { type ItemName, ReturnCode } from "../constants.ts";
import { PamError } from "../errors.ts";
import { isNewPasswordNeeded } from "../_new_password.ts";
import type { AuthFlags, ChauthtokFlags, CredAction, SilentFlag } from "../transaction.ts";
import type { SessionRecord } from "./record.ts";
import {
  addressOfHost,
  checkFilePath,
  checkPlatform,
  idOfLine,
  lineOfTty,
  systemUtmpFile,
  systemWtmpFile,
  type UtmpCalls,
  utmpCalls,
  UtmpType,
  type UtmpxEntry,
} from "./_utmp.ts";
import {
  checkCString,
  checkFailDelay,
  checkIntegerIn,
  checkKnownKeys,
  checkService,
  describe,
  optionalBoolean,
  optionsObject,
} from "../_validate.ts";

/** The methods the lifecycle calls: `PamTransaction` and `AsyncPamTransaction` both have them. */
export interface LifecycleTransaction {
  setItem(name: ItemName, value: string): unknown;
  getItem(name: ItemName): string | undefined | Promise<string | undefined>;
  getEnvList(): Record<string, string> | Promise<Record<string, string>>;
  authenticate(flags?: AuthFlags): unknown;
  acctMgmt(flags?: AuthFlags): unknown;
  chauthtok(flags?: ChauthtokFlags): unknown;
  setCred(action: CredAction, flags?: SilentFlag): unknown;
  openSession(flags?: SilentFlag): unknown;
  closeSession(flags?: SilentFlag): unknown;
  end(options?: SilentFlag): unknown;
}

/** The utmp/wtmp entries to write, checked. `pid` absent: the process running the session. */
export interface UtmpPlan {
  readonly utmpFile: string;
  readonly wtmpFile: string;
  readonly line: string;
  readonly id: string;
  readonly host: string;
  readonly pid?: number;
}

/** The items `login()` sets before authentication, and a record carries. */
export const loginItems = ["tty", "rhost", "ruser"] as const;

/** The items, as a record keeps them. */
export type LoginItems = { tty?: string; rhost?: string; ruser?: string };

/** A login, checked and resolved in the caller, as plain data the session process can take. */
export interface LoginPlan {
  readonly service: string;
  readonly user: string | null;
  readonly confdir?: string;
  readonly library?: string;
  readonly failDelay?: "native" | "report" | "async";
  readonly items: LoginItems;
  readonly silent: boolean;
  readonly changeExpiredAuthtok: boolean;
  readonly utmp?: UtmpPlan;
}

/** What `pam_open_session(3)`'s other half needs: the public {@linkcode SessionRecord}. */
export type RecordData = SessionRecord;

const encoder = new TextEncoder();

/** Throws a `TypeError` naming the first key of `o` not in `known` (`checkKnownKeys`). */
export const checkKeys: (o: object, known: readonly string[], what: string) => void =
  checkKnownKeys;

/** `value` as an optional C string. */
export function optionalString(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  checkCString(value, what);
  return value as string;
}

/** A process id as utmp stores it. */
export function checkPid(value: unknown, what: string): number {
  checkIntegerIn(
    value,
    1,
    0x7fffffff,
    what,
    "a positive integer process id",
    "a process id (a number)",
  );
  return value;
}

// C0, DEL and C1: a newline forges a line in `who` and `last`, an escape rewrites the terminal.
// deno-lint-ignore no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;

/** Throws a `TypeError` if `value` holds a control character, which would reach utmp verbatim. */
export function checkPrintable(value: string | null | undefined, what: string): void {
  if (typeof value === "string" && controlCharacter.test(value)) {
    throw new TypeError(
      `${what} must not contain control characters (such as newlines): they would reach utmp`,
    );
  }
}

/** `value` fits utmp's fixed-size field of `size` bytes, and holds no control character. */
export function checkField(value: string, size: number, what: string): string {
  checkPrintable(value, what);
  const length = encoder.encode(value).length;
  if (length === 0 || length > size) {
    throw new RangeError(
      `${what} must be 1 to ${size} bytes (utmp's field size), got ${length} bytes`,
    );
  }
  return value;
}

/** An absolute path, so a process with another working directory finds the same file. */
export function absolute(path: string | undefined): string | undefined {
  return path === undefined || isAbsolute(path) ? path : resolve(path);
}

const utmpKeys = ["utmpFile", "wtmpFile", "line", "id", "host", "pid"];

/** Checks the utmp options before any C call; `undefined` when utmp is off. */
export function planUtmp(
  utmp: unknown,
  tty: string | undefined,
  rhost: string | undefined,
): UtmpPlan | undefined {
  if (utmp === false) return undefined;
  const u = optionsObject<Record<string, unknown>>(utmp, "utmp options");
  checkKeys(u, utmpKeys, "utmp options");
  const utmpFile = optionalString(u.utmpFile, "utmp.utmpFile");
  const wtmpFile = optionalString(u.wtmpFile, "utmp.wtmpFile");
  const lineGiven = optionalString(u.line, "utmp.line");
  const line = lineGiven ?? (tty !== undefined ? lineOfTty(tty) : undefined);
  if (line === undefined) {
    throw new TypeError(
      "utmp entries need a line: pass tty (or utmp.line), or utmp: false to write none",
    );
  }
  checkField(line, 32, "the utmp line");
  const id = optionalString(u.id, "utmp.id") ?? idOfLine(line);
  checkField(id, 4, "utmp.id");
  const host = optionalString(u.host, "utmp.host") ?? rhost ?? "";
  checkPrintable(host, u.host === undefined ? "rhost" : "utmp.host");
  checkPrintable(tty, "tty");
  checkPlatform();
  return {
    utmpFile: absolute(utmpFile) ?? systemUtmpFile,
    wtmpFile: absolute(wtmpFile) ?? systemWtmpFile,
    line,
    id,
    host,
    ...(u.pid === undefined ? {} : { pid: checkPid(u.pid, "utmp.pid") }),
  };
}

/** The keys of `LoginOptions` the lifecycle itself reads. */
export const planKeys = [
  "service",
  "user",
  "confdir",
  "library",
  "failDelay",
  "tty",
  "rhost",
  "ruser",
  "silent",
  "changeExpiredAuthtok",
  "utmp",
];

/** Checks what the lifecycle needs of `login()`'s options, before any C call. */
export function planLogin(o: Record<string, unknown>): LoginPlan {
  checkService(o.service);
  if (o.user !== undefined && o.user !== null) checkCString(o.user, "user");
  const confdir = absolute(optionalString(o.confdir ?? undefined, "confdir"));
  const library = optionalString(o.library, "library");
  const failDelay = o.failDelay as LoginPlan["failDelay"];
  checkFailDelay(failDelay, true);
  const tty = optionalString(o.tty, "tty");
  const rhost = optionalString(o.rhost, "rhost");
  const ruser = optionalString(o.ruser, "ruser");
  const items: LoginItems = {};
  if (tty !== undefined) items.tty = tty;
  if (rhost !== undefined) items.rhost = rhost;
  if (ruser !== undefined) items.ruser = ruser;
  const utmp = planUtmp(o.utmp, tty, rhost);
  if (utmp) {
    // Into utmp as the user (ut_user), and into the PAM items modules log.
    checkPrintable(o.user as string | null | undefined, "user");
    checkPrintable(ruser, "ruser");
  }
  return {
    service: o.service as string,
    user: (o.user as string | undefined) ?? null,
    ...(confdir !== undefined ? { confdir } : {}),
    ...(library !== undefined ? { library } : {}),
    ...(failDelay !== undefined ? { failDelay } : {}),
    items,
    silent: optionalBoolean(o.silent, "silent") ?? false,
    changeExpiredAuthtok: optionalBoolean(o.changeExpiredAuthtok, "changeExpiredAuthtok") ?? true,
    ...(utmp ? { utmp } : {}),
  };
}

/** Fails before PAM runs, not after the session opened: root-only files, typos. */
export async function checkUtmpFiles(
  plan: UtmpPlan | undefined,
  calls: UtmpCalls = utmpCalls,
): Promise<void> {
  if (!plan) return;
  // Files the caller named are created; the system ones are the system's to create.
  await calls.ensureWritable(plan.utmpFile, "utmp file", plan.utmpFile !== systemUtmpFile);
  await calls.ensureWritable(plan.wtmpFile, "wtmp file", plan.wtmpFile !== systemWtmpFile);
}

/** Sets the items given (`undefined` ones are left unset). */
export async function setItems(tx: LifecycleTransaction, items: LoginItems): Promise<void> {
  for (const name of loginItems) {
    const value = items[name];
    if (value !== undefined) await tx.setItem(name, value);
  }
}

/**
 * A `chauthtok` that failed because the conversation (`passwordConversation`)
 * cannot ask for a new password: the same code and messages, and a message
 * that says so.
 */
export function explainExpired(error: unknown): unknown {
  if (
    error instanceof PamError && error.operation === "pam_chauthtok" &&
    isNewPasswordNeeded(error.cause)
  ) {
    const explained = new PamError(error.code, error.operation, {
      messages: error.messages,
      cause: error.cause,
      ...(error.failDelayMs !== undefined ? { failDelayMs: error.failDelayMs } : {}),
    });
    explained.message = `${error.message}: the password has expired, and changing it needs ` +
      "a conversation that can ask for a new one (passwordConversation only knows the old one)";
    return explained;
  }
  return error;
}

/** An open session, as the process running it holds it. */
export interface OpenedSession {
  readonly user: string;
  readonly env: Record<string, string>;
  readonly record: RecordData;
}

/**
 * Runs the open half on `tx` (already started). On failure it undoes what was
 * done, in reverse, and rethrows the step's own error. `pid` is the process
 * running the session; `beforeUndo` runs first when a step failed.
 */
export async function openSession(
  tx: LifecycleTransaction,
  plan: LoginPlan,
  pid: number,
  beforeUndo: () => void = () => {},
  calls: UtmpCalls = utmpCalls,
): Promise<OpenedSession> {
  const flags = { silent: plan.silent };
  const undo: Array<() => unknown> = [];
  try {
    await setItems(tx, plan.items);
    await tx.authenticate(flags);
    try {
      await tx.acctMgmt(flags);
    } catch (error) {
      const expired = error instanceof PamError && error.code === ReturnCode.NEW_AUTHTOK_REQD;
      if (!(plan.changeExpiredAuthtok && expired)) throw error;
      try {
        await tx.chauthtok({ ...flags, changeExpiredAuthtok: true });
      } catch (changeError) {
        throw explainExpired(changeError);
      }
    }
    await tx.setCred("establish", flags);
    undo.push(() => tx.setCred("delete", flags));
    await tx.openSession(flags);
    undo.push(() => tx.closeSession(flags));
    const user = (await tx.getItem("user")) ?? plan.user ?? "";
    const env = await tx.getEnvList();
    const loginTimeMs = Date.now();
    const u = plan.utmp;
    const record: RecordData = {
      service: plan.service,
      user,
      items: { ...plan.items },
      ...(plan.confdir !== undefined ? { confdir: plan.confdir } : {}),
      pid: u?.pid ?? pid,
      loginTime: new Date(loginTimeMs).toISOString(),
    };
    if (u) {
      // A module may have mapped the name: what reaches utmp is checked, not what was asked.
      checkPrintable(user, "PAM_USER");
      const entry: UtmpxEntry = {
        type: UtmpType.USER_PROCESS,
        pid: record.pid,
        line: u.line,
        id: u.id,
        user,
        host: u.host,
        timeMs: loginTimeMs,
        address: addressOfHost(u.host),
      };
      await calls.putUtmpx(u.utmpFile, entry);
      undo.push(() => calls.clearUtmpx(u.utmpFile, entry));
      // The last step that can fail: nothing after it needs undoing in wtmp.
      await calls.appendWtmpx(u.wtmpFile, entry);
      Object.assign(record, { line: u.line, id: u.id, utmpFile: u.utmpFile, wtmpFile: u.wtmpFile });
    }
    return { user, env, record };
  } catch (error) {
    beforeUndo();
    // The login's own failure is what the caller needs to see, not an undo step's.
    await allSteps(undo.reverse()).catch(() => {});
    throw error;
  }
}

/**
 * Closing, in order; the same for the process that opened the session and
 * for another one holding its record: the exit entries (a logout record in
 * wtmp, then the utmp entry marked dead) when it had any, then
 * `pam_close_session`, `pam_setcred(PAM_DELETE_CRED)` and `pam_end`.
 */
export function closeSteps(
  tx: LifecycleTransaction,
  r: RecordData,
  silent: boolean,
  calls: UtmpCalls = utmpCalls,
): Array<() => unknown> {
  return [() => writeExitEntries(r, calls), ...pamCloseSteps(tx, silent)];
}

function pamCloseSteps(tx: LifecycleTransaction, silent: boolean): Array<() => unknown> {
  const flags = { silent };
  return [
    () => tx.closeSession(flags),
    () => tx.setCred("delete", flags),
    () => tx.end(),
  ];
}

/**
 * Closing from a record, in a transaction `start` opens: the exit entries
 * come first, before `pam_start`, so a transaction that cannot start (a
 * missing service file, a broken stack) still leaves no live utmp entry; then
 * the items and the PAM steps. Rejects with the first failure.
 */
export async function closeFromRecord(
  r: RecordData,
  silent: boolean,
  start: () => LifecycleTransaction | Promise<LifecycleTransaction>,
  calls: UtmpCalls = utmpCalls,
): Promise<void> {
  await allSteps([
    () => writeExitEntries(r, calls),
    async () => {
      const tx = await start();
      await allSteps([() => setItems(tx, r.items), ...pamCloseSteps(tx, silent)]);
    },
  ]);
}

/**
 * The logout: a wtmp record and the utmp entry marked dead, only while the
 * utmp entry is still the one this session wrote (user, line, pid and login
 * time): an older record never ends a newer login.
 */
export async function writeExitEntries(
  r: RecordData,
  calls: UtmpCalls = utmpCalls,
): Promise<boolean> {
  if (!r.utmpFile || !r.wtmpFile || !r.line || !r.id) return false;
  const login: UtmpxEntry = {
    type: UtmpType.USER_PROCESS,
    pid: r.pid,
    line: r.line,
    id: r.id,
    user: r.user,
    host: "",
    timeMs: Date.parse(r.loginTime),
  };
  return await calls.clearUtmpx(r.utmpFile, login, { wtmpFile: r.wtmpFile });
}

/** Runs every step, in order, even after one fails; rethrows the first failure. */
export async function allSteps(steps: ReadonlyArray<() => unknown>): Promise<void> {
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

/** Checks a record that came through JSON before anything runs; returns a plain copy. */
export function checkRecord(record: unknown): RecordData {
  if (record === undefined) throw new TypeError("closeSession() needs the session record");
  const r = optionsObject<Record<string, unknown>>(record, "the session record");
  checkCString(r.service, "record.service");
  checkCString(r.user, "record.user");
  const items = optionsObject<Record<string, unknown>>(r.items, "record.items");
  const copy: LoginItems = {};
  for (const [name, value] of Object.entries(items)) {
    if (!(loginItems as readonly string[]).includes(name)) {
      throw new TypeError(`record.items has no "${name}" (known: ${loginItems.join(", ")})`);
    }
    const text = optionalString(value, `record.items.${name}`);
    if (text !== undefined) copy[name as keyof LoginItems] = text;
  }
  const confdir = optionalString(r.confdir, "record.confdir");
  const pid = checkPid(r.pid, "record.pid");
  if (typeof r.loginTime !== "string") {
    throw new TypeError(`record.loginTime must be a string, got ${describe(r.loginTime)}`);
  }
  const out: RecordData = {
    service: r.service as string,
    user: r.user as string,
    items: copy,
    ...(confdir !== undefined ? { confdir } : {}),
    pid,
    loginTime: r.loginTime,
  };
  const utmp = [r.line, r.id, r.utmpFile, r.wtmpFile];
  if (utmp.some((v) => v !== undefined)) {
    if (utmp.some((v) => typeof v !== "string")) {
      throw new TypeError(
        "record.line, record.id, record.utmpFile and record.wtmpFile go together: all strings or all absent",
      );
    }
    checkField(r.line as string, 32, "record.line");
    checkField(r.id as string, 4, "record.id");
    if (Number.isNaN(Date.parse(r.loginTime))) {
      throw new TypeError(
        "record.loginTime must be an ISO 8601 time: the utmp entry is matched on it",
      );
    }
    checkFilePath(r.utmpFile, "record.utmpFile");
    checkFilePath(r.wtmpFile, "record.wtmpFile");
    checkPlatform();
    Object.assign(out, { line: r.line, id: r.id, utmpFile: r.utmpFile, wtmpFile: r.wtmpFile });
  }
  return out;
}
