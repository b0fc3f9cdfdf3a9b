/**
 * Closing a session from another process, given its {@linkcode SessionRecord}:
 * the situation `pam_open_session(3)` describes (login opens, init closes).
 *
 * @module
 */

import { type AsyncConversation, AsyncPamTransaction } from "../async.ts";
import { checkConversation, describe, optionalBoolean, optionsObject } from "../validate.ts";
import { diedError, quiet, SessionProcess } from "./_client.ts";
import {
  allSteps,
  checkKeys,
  checkRecord,
  closeSteps,
  optionalString,
  type RecordData,
  setItems,
} from "./_lifecycle.ts";
import { fromWire, type WireError } from "./_protocol.ts";
import { isAbsolute, resolve } from "node:path";

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
  conversation?: AsyncConversation | undefined;
  /** `PAM_SILENT` on every call. */
  silent?: boolean | undefined;
  /** Overrides the record's configuration directory. */
  confdir?: string | undefined;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string | undefined;
  /** Closes in the caller's own process instead of a session process (see `LoginOptions.inProcess`). */
  inProcess?: boolean | undefined;
}

const closeKeys = ["conversation", "silent", "confdir", "library", "inProcess"];

/**
 * Closes a session `login()` opened, from any process, given its
 * {@linkcode SessionRecord}: in a session process of its own (as `login()`
 * runs), starts a new transaction with the record's service, user,
 * configuration directory and items, writes the exit entries (wtmp logout
 * record, utmp entry cleared), then calls `pam_close_session`,
 * `pam_setcred(PAM_DELETE_CRED)` and `pam_end`. Every step after
 * `pam_start` runs even if one fails; the promise rejects with the first
 * failure.
 *
 * What crosses the boundary is the record; what cannot is module state kept
 * in the opening process with `pam_set_data`, which modules that need it at
 * close (pam_systemd, pam_keyinit, ...) then cannot see.
 *
 * @example
 * ```ts
 * import { closeSession, type SessionRecord } from "@seed/pam";
 * const record: SessionRecord = JSON.parse(Deno.readTextFileSync("/run/my-app/session.json"));
 * await closeSession(record, { silent: true });
 * ```
 *
 * @throws {TypeError} For a malformed record or bad options, before anything runs.
 * @throws {PamError} When a PAM step fails.
 */
export async function closeSession(
  record: SessionRecord,
  options?: CloseSessionOptions,
): Promise<void> {
  const r = checkRecord(record);
  const o = optionsObject<Record<string, unknown>>(options, "closeSession() options");
  checkKeys(o, closeKeys, "closeSession() options");
  checkConversation(o.conversation);
  const silent = optionalBoolean(o.silent, "silent") ?? false;
  const given = optionalString(o.confdir, "confdir") ?? r.confdir;
  const confdir = given === undefined || isAbsolute(given) ? given : resolve(given);
  const library = optionalString(o.library, "library");
  if (o.inProcess !== undefined && typeof o.inProcess !== "boolean") {
    throw new TypeError(`inProcess must be a boolean, got ${describe(o.inProcess)}`);
  }
  const conversation = o.conversation as AsyncConversation | undefined;
  if (o.inProcess) {
    const tx = await AsyncPamTransaction.start({
      service: r.service,
      user: r.user,
      ...(conversation !== undefined ? { conversation } : {}),
      ...(confdir !== undefined ? { confdir } : {}),
      ...(library !== undefined ? { library } : {}),
    });
    await allSteps([() => setItems(tx, r.items), ...closeSteps(tx, r, silent)]);
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
  await proc.send({
    t: "close",
    record: r,
    silent,
    ...(confdir !== undefined ? { confdir } : {}),
    ...(library !== undefined ? { library } : {}),
    conversation: conversation !== undefined,
  }).catch(() => {});
  const header = await result;
  await proc.exited;
  if (header.error) throw fromWire(header.error as WireError, proc.failure);
}
