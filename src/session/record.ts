/**
 * Closing a session from another process, given its {@linkcode SessionRecord}:
 * the situation `pam_open_session(3)` describes (login opens, init closes).
 *
 * @module
 */

import { type AsyncConversation, AsyncPamTransaction } from "../async/transaction.ts";
import {
  checkConversation,
  checkService,
  describe,
  optionalBoolean,
  optionsObject,
} from "../_validate.ts";
import { diedError, quiet, SessionProcess } from "./_client.ts";
import { threadUtmp } from "./_utmp_thread.ts";
import { systemUtmpFile, systemWtmpFile } from "./_utmp.ts";
import {
  absolute,
  checkKeys,
  checkRecord,
  closeFromRecord,
  optionalString,
  type RecordData,
} from "./_lifecycle.ts";
import { fromWire, type WireError } from "./_protocol.ts";

/**
 * Everything another process needs to close a session: plain JSON.
 *
 * @example
 * ```ts
 * import { closeSession, type SessionRecord } from "@seed/pam";
 * const record: SessionRecord = JSON.parse(Deno.readTextFileSync("/run/my-app/session.json"));
 * await closeSession(record, { service: "my-app", confdir: "/etc/my-app/pam.d" });
 * ```
 */
export interface SessionRecord {
  /**
   * The PAM service the session was opened with. Not obeyed: `closeSession`
   * runs the stack of its own `service` option and refuses a record that
   * names another.
   */
  service: string;
  /** `PAM_USER` as the modules left it. */
  user: string;
  /** The items set before authentication. */
  items: { tty?: string; rhost?: string; ruser?: string };
  /**
   * The configuration directory, when not `/etc/pam.d`. Not obeyed:
   * `closeSession` runs the modules of its own `confdir` option and refuses a
   * record that names another.
   */
  confdir?: string;
  /** The session's process: `ut_pid` of the utmp entries. */
  pid: number;
  /** When the session opened (ISO 8601). */
  loginTime: string;
  /** `ut_line`, when utmp/wtmp entries were written. */
  line?: string;
  /** `ut_id`, when utmp/wtmp entries were written. */
  id?: string;
  /** The utmp file holding the login entry (checked against `closeSession`'s, never obeyed). */
  utmpFile?: string;
  /** The wtmp file holding the login record (checked against `closeSession`'s, never obeyed). */
  wtmpFile?: string;
}

/**
 * Options for {@linkcode closeSession}.
 *
 * @example
 * ```ts
 * import type { CloseSessionOptions } from "@seed/pam";
 * const options: CloseSessionOptions = { service: "login", silent: true };
 * ```
 */
export interface CloseSessionOptions {
  /**
   * The PAM service whose stack closes the session (required). The closer
   * decides, not the record: a record naming another service is refused
   * with a `TypeError`.
   */
  service: string;
  /** Answers the modules' prompts while closing. */
  conversation?: AsyncConversation | undefined;
  /** `PAM_SILENT` on every call. */
  silent?: boolean | undefined;
  /**
   * The configuration directory whose modules close the session (default
   * `/etc/pam.d`). The closer decides, not the record: a record naming
   * another directory is refused with a `TypeError`.
   */
  confdir?: string | undefined;
  /**
   * The utmp and wtmp files the exit entries go to (default `/var/run/utmp`
   * and `/var/log/wtmp`): the closer decides, not the record; a record with
   * entries in other files is refused with a `TypeError`.
   */
  utmp?: { utmpFile?: string | undefined; wtmpFile?: string | undefined } | undefined;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string | undefined;
  /** Closes in the caller's own process instead of a session process (see `LoginOptions.inProcess`). */
  inProcess?: boolean | undefined;
}

const closeKeys = ["service", "conversation", "silent", "confdir", "library", "inProcess", "utmp"];

/**
 * The record, with what it may not choose checked against what the closer
 * chose: a record is data anyone who can write its file could edit, so it
 * never picks the modules that run as root or the files that are written.
 */
function trustedRecord(
  r: RecordData,
  service: string,
  confdir: string | undefined,
  utmp: Record<string, unknown>,
): RecordData {
  if (r.service !== service) {
    throw new TypeError(
      `the record's service (${JSON.stringify(r.service)}) is not the one this closer runs ` +
        `(${JSON.stringify(service)}): pass closeSession(record, { service }) with the service ` +
        "the session was opened with",
    );
  }
  if (absolute(r.confdir) !== confdir) {
    throw new TypeError(
      `the record's confdir (${r.confdir ?? "the default, /etc/pam.d"}) is not the one this ` +
        `closer trusts (${confdir ?? "the default, /etc/pam.d"}): pass closeSession(record, ` +
        "{ confdir }) with the directory the session was opened with",
    );
  }
  // From here on the closer's own values, not the record's, even where they are equal.
  if (r.line === undefined) return { ...r, service };
  const files = {
    utmpFile: absolute(optionalString(utmp.utmpFile, "utmp.utmpFile")) ?? systemUtmpFile,
    wtmpFile: absolute(optionalString(utmp.wtmpFile, "utmp.wtmpFile")) ?? systemWtmpFile,
  };
  for (const name of ["utmpFile", "wtmpFile"] as const) {
    if (absolute(r[name]) !== files[name]) {
      throw new TypeError(
        `the record's ${name} (${r[name]}) is not the one this closer writes ` +
          `(${files[name]}): pass closeSession(record, { utmp: { utmpFile, wtmpFile } }) ` +
          "with the files the session was opened with",
      );
    }
  }
  return { ...r, service, ...files };
}

/**
 * Closes a session `login()` opened, from any process, given its
 * {@linkcode SessionRecord}: in a session process of its own (as `login()`
 * runs), writes the exit entries (wtmp logout record, utmp entry cleared)
 * first, then starts a new transaction with `options.service` and the
 * record's user and items and calls `pam_close_session`, `pam_setcred(PAM_DELETE_CRED)` and
 * `pam_end`. Every step runs even if one fails (the exit entries even when
 * `pam_start` fails); the promise rejects with the first failure.
 *
 * The record is data, not authority: the modules that run come from
 * `options.service` under `options.confdir` and the files written from
 * `options.utmp` (the system defaults when absent), and a record naming
 * others is refused. The utmp
 * entry is cleared, and a wtmp logout written, only while it is still the
 * record's login (user, line, pid and login time), never a newer one's.
 *
 * What crosses the boundary is the record; what cannot is module state kept
 * in the opening process with `pam_set_data`, which modules that need it at
 * close (pam_systemd, pam_keyinit, ...) then cannot see.
 *
 * @example
 * ```ts
 * import { closeSession, type SessionRecord } from "@seed/pam";
 * const record: SessionRecord = JSON.parse(Deno.readTextFileSync("/run/my-app/session.json"));
 * await closeSession(record, {
 *   service: "my-app",
 *   confdir: "/etc/my-app/pam.d",
 *   utmp: { utmpFile: "/var/run/utmp", wtmpFile: "/var/log/wtmp" },
 *   silent: true,
 * });
 * ```
 *
 * @throws {TypeError} For a malformed record, bad options (`service` missing
 *   included), or a record whose `service`, `confdir`, `utmpFile` or
 *   `wtmpFile` is not the closer's, before anything runs.
 * @throws {PamError} When a PAM step fails.
 * @throws {Error} When a utmp or wtmp file is not a regular utmp file (nothing is written to it).
 * @tags allow-ffi, allow-run, allow-env
 */
export async function closeSession(
  record: SessionRecord,
  options: CloseSessionOptions,
): Promise<void> {
  const checked = checkRecord(record);
  const o = optionsObject<Record<string, unknown>>(options, "closeSession() options");
  checkKeys(o, closeKeys, "closeSession() options");
  if (o.service === undefined) {
    throw new TypeError(
      "closeSession() options.service is required: the service whose stack closes the " +
        "session (the record's is checked against it, never obeyed)",
    );
  }
  checkService(o.service);
  const service = o.service;
  checkConversation(o.conversation);
  const silent = optionalBoolean(o.silent, "silent") ?? false;
  const confdir = absolute(optionalString(o.confdir, "confdir"));
  const utmp = o.utmp === undefined ? {} : optionsObject<Record<string, unknown>>(o.utmp, "utmp");
  checkKeys(utmp, ["utmpFile", "wtmpFile"], "closeSession() utmp options");
  const library = optionalString(o.library, "library");
  if (o.inProcess !== undefined && typeof o.inProcess !== "boolean") {
    throw new TypeError(`inProcess must be a boolean, got ${describe(o.inProcess)}`);
  }
  const r = trustedRecord(checked, service, confdir, utmp);
  const conversation = o.conversation as AsyncConversation | undefined;
  if (o.inProcess) {
    await closeFromRecord(r, silent, () =>
      AsyncPamTransaction.start({
        service,
        user: r.user,
        ...(conversation !== undefined ? { conversation } : {}),
        ...(confdir !== undefined ? { confdir } : {}),
        ...(library !== undefined ? { library } : {}),
      }), threadUtmp);
    return;
  }
  const proc = new SessionProcess(conversation);
  const release = proc.hold();
  try {
    await closeInSessionProcess(proc, r, silent, confdir, library, conversation);
  } finally {
    release();
  }
}

async function closeInSessionProcess(
  proc: SessionProcess,
  r: RecordData,
  silent: boolean,
  confdir: string | undefined,
  library: string | undefined,
  conversation: AsyncConversation | undefined,
): Promise<void> {
  const result = quiet(
    new Promise<Record<string, unknown>>((resolve, reject) => {
      proc.onFrame = (frame) => {
        if (frame.header.t === "closed") resolve(frame.header);
      };
      proc.exited.then((exit) => reject(diedError(proc, exit, "before it closed")));
    }),
  );
  await proc.sendJob({
    t: "close",
    record: r,
    silent,
    ...(confdir !== undefined ? { confdir } : {}),
    ...(library !== undefined ? { library } : {}),
    conversation: conversation !== undefined,
  });
  const header = await result;
  await proc.exited;
  if (header.error) throw fromWire(header.error as WireError, proc.failure);
}
