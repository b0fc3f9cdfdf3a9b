/**
 * `PamTransaction`: one PAM handle, from `pam_start` to `pam_end`, with every
 * call of the application API.
 *
 * @module
 */

import { statSync } from "node:fs";
import { join } from "node:path";
import { native, pamXAuthDataLayout, type Pointer, pointerSize } from "../ffi/mod.ts";
import { type ItemName, ItemType, ReturnCode } from "./constants.ts";
import type { Conversation } from "./conversation.ts";
import { CMemory } from "./_c_memory.ts";
import {
  type ConversationSlot,
  conversationStruct,
  failDelayFunction,
  registerSlot,
  releaseSlot,
} from "./_trampoline.ts";
import { PamError } from "./errors.ts";
import {
  authFlags,
  chauthtokFlags,
  credFlag,
  endFlags,
  flagsOf,
  itemType,
  silentFlags,
  startOptionKeys,
} from "./_flags.ts";
import { openLibc, openPam, type PamLibrary, strerrorText } from "./_library.ts";
import { MAX_ITEM_BYTES, readBoundedCString } from "./_c_string.ts";
import { rawAccess } from "./_raw_access.ts";
import {
  checkConversation,
  checkCString,
  checkEnvEntry,
  checkFailDelay,
  checkKnownKeys,
  checkService,
  checkXAuthData,
  cString,
  CStringCache,
  describe,
  optionsObject,
} from "./_validate.ts";

/**
 * How a transaction starts.
 *
 * @example
 * ```ts
 * import { passwordConversation, type PamTransactionOptions } from "@seed/pam";
 * const options: PamTransactionOptions = {
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 *   confdir: "/tmp/my-pam.d",
 * };
 * ```
 */
export interface PamTransactionOptions {
  /** The PAM service: the file name in the configuration directory. */
  service: string;
  /** The user; when omitted, modules prompt for it through the conversation. */
  user?: string | undefined;
  /** Answers the modules' prompts; without one, prompts fail the call (`PAM_CONV_ERR`). */
  conversation?: Conversation | undefined;
  /** Read service files from this directory instead of `/etc/pam.d` (`pam_start_confdir`, Linux-PAM >= 1.4). */
  confdir?: string | undefined;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string | undefined;
  /**
   * `"native"` (default): libpam sleeps out the fail delay. `"report"`: the
   * call fails at once and `PamError.failDelayMs` says how long the modules
   * asked the application to wait.
   */
  failDelay?: "native" | "report" | undefined;
}

/**
 * Flags for {@linkcode PamTransaction.authenticate} and
 * {@linkcode PamTransaction.acctMgmt}.
 *
 * @example
 * ```ts
 * import type { AuthFlags } from "@seed/pam";
 * const flags: AuthFlags = { silent: true, disallowNullAuthtok: true };
 * ```
 */
export interface AuthFlags {
  /** `PAM_SILENT`: modules should not send messages. */
  silent?: boolean | undefined;
  /** `PAM_DISALLOW_NULL_AUTHTOK`: an empty password is not good enough. */
  disallowNullAuthtok?: boolean | undefined;
}

/**
 * Flags for calls that only take `PAM_SILENT`.
 *
 * @example
 * ```ts
 * import type { SilentFlag } from "@seed/pam";
 * const flags: SilentFlag = { silent: true };
 * ```
 */
export interface SilentFlag {
  /** `PAM_SILENT`: modules should not send messages. */
  silent?: boolean | undefined;
}

/**
 * Flags for {@linkcode PamTransaction.chauthtok}.
 *
 * @example
 * ```ts
 * import type { ChauthtokFlags } from "@seed/pam";
 * const flags: ChauthtokFlags = { changeExpiredAuthtok: true };
 * ```
 */
export interface ChauthtokFlags extends SilentFlag {
  /** `PAM_CHANGE_EXPIRED_AUTHTOK`: change the token only if it has expired. */
  changeExpiredAuthtok?: boolean | undefined;
}

/**
 * What {@linkcode PamTransaction.setCred} does with the credentials.
 *
 * @example
 * ```ts
 * import type { CredAction } from "@seed/pam";
 * const action: CredAction = "establish";
 * ```
 */
export type CredAction = "establish" | "delete" | "reinitialize" | "refresh";

/**
 * X authentication data (`PAM_XAUTHDATA`).
 *
 * @example
 * ```ts
 * import type { XAuthData } from "@seed/pam";
 * const xauth: XAuthData = { name: "MIT-MAGIC-COOKIE-1", data: new Uint8Array(16) };
 * ```
 */
export interface XAuthData {
  /** The authentication method, such as `"MIT-MAGIC-COOKIE-1"`. */
  name: string;
  /** The method's data (a secret: zero it when done). */
  data: Uint8Array;
}

// pam_start's arguments, reused from one transaction to the next (see CStringCache).
const serviceCache = new CStringCache();
const userCache = new CStringCache();
const confdirCache = new CStringCache();
// pam_start's and pam_get_item's out-parameters, each read right after its call.
const handleOut = new Uint8Array(pointerSize);
const itemOut = new Uint8Array(pointerSize);

const textDecoder = new TextDecoder();

/**
 * One PAM transaction: owns a `pam_handle_t` from `pam_start` to `pam_end`.
 * Every call that does not return `PAM_SUCCESS` throws {@linkcode PamError};
 * `end()` passes the last status to `pam_end`. All calls block the calling
 * thread (see `AsyncPamTransaction` for servers).
 *
 * @example
 * ```ts
 * import { PamTransaction, passwordConversation } from "@seed/pam";
 * using tx = PamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: passwordConversation("secret"),
 * });
 * tx.authenticate();
 * tx.acctMgmt();
 * tx.openSession();
 * // ... the user's activity ...
 * tx.closeSession();
 * ```
 *
 * @tags allow-ffi
 */
export class PamTransaction {
  #handle: Pointer | null;
  readonly #pam: PamLibrary;
  readonly #slot: ConversationSlot;
  readonly #slotId: number;
  readonly #reportFailDelay: boolean;
  #lastStatus: number = ReturnCode.SUCCESS;
  /** The PAM call in progress, while its modules converse. */
  #inCall: string | undefined;
  /** Set when a conversation could not complete: the modules' view of the call is unknown. */
  #broken = false;
  /** Why, once it could be said (building the error may itself hit the stack limit). */
  #brokenBy: unknown;

  static {
    // The CLI's bit-exact calls (src/_raw_access.ts); kept off the public API.
    rawAccess.call = (tx, operation, flags) => {
      // Also refuses NaN, fractions and ±Infinity: none survives `| 0` unchanged.
      if (flags !== (flags | 0)) {
        throw new TypeError(`flags must be a 32-bit integer, got ${describe(flags)}`);
      }
      tx.#call(operation, tx.#pam[operation], flags);
    };
    rawAccess.setItem = (tx, name, value) => {
      if (value !== null) return tx.setItem(name, value);
      const type = itemType(name);
      // libpam dereferences a NULL service name (pamtester -I service crashes there).
      if (type === ItemType.SERVICE) throw new TypeError("the service item cannot be unset");
      tx.#live();
      tx.#refuseSecret(type, "pam_set_item");
      const handle = tx.#changing("setItem");
      tx.#check(tx.#pam.pam_set_item(handle, type, null), "pam_set_item");
    };
  }

  /**
   * Not for callers: `PamTransaction.start()` makes one.
   *
   * @ignore
   */
  private constructor(
    handle: Pointer,
    pam: PamLibrary,
    slot: ConversationSlot,
    slotId: number,
    reportFailDelay: boolean,
  ) {
    this.#handle = handle;
    this.#pam = pam;
    this.#slot = slot;
    this.#slotId = slotId;
    this.#reportFailDelay = reportFailDelay;
  }

  /**
   * Starts a transaction (`pam_start`, or `pam_start_confdir` with `confdir`).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice", confdir: "/tmp/pam.d" });
   * ```
   *
   * @throws {TypeError} for options of the wrong type, an unknown key, or a string with a NUL
   *   byte, before any C call.
   * @throws {Error} when libpam cannot be loaded, or `confdir` needs `pam_start_confdir` and
   *   this libpam lacks it.
   * @throws {PamError} when `pam_start` fails.
   */
  static start(options: PamTransactionOptions): PamTransaction {
    const what = "PamTransaction.start() options";
    const o = optionsObject<PamTransactionOptions>(options, what);
    checkKnownKeys(o, startOptionKeys, what);
    checkService(o.service);
    const service = serviceCache.get(o.service, "service")!;
    const user = userCache.get(o.user, "user");
    const confdir = confdirCache.get(o.confdir, "confdir");
    checkConversation(o.conversation);
    if (o.library !== undefined) checkCString(o.library, "library");
    checkFailDelay(o.failDelay);
    const pam = openPam(o.library);
    if (confdir && !pam.pam_start_confdir) {
      throw new Error(
        "the confdir option needs pam_start_confdir, which this libpam lacks (Linux-PAM >= 1.4 has it)",
      );
    }

    const slot: ConversationSlot = {
      handler: o.conversation ?? null,
      messages: [],
      cause: undefined,
      failDelayUsec: undefined,
      unfinished: 0,
    };
    const slotId = registerSlot(slot);
    const out = handleOut;
    let status: number;
    let handle: Pointer | null;
    try {
      const conv = conversationStruct(slotId);
      status = confdir
        ? pam.pam_start_confdir!(service, user, conv, confdir, out)
        : pam.pam_start(service, user, conv, out);
      handle = native.readPointerFrom(out, 0);
    } catch (error) {
      // Thrown by the runtime around the call (the stack limit): the slot must not stay behind.
      releaseSlot(slotId);
      throw error;
    }
    if (status !== ReturnCode.SUCCESS || !handle) {
      releaseSlot(slotId);
      // pam_start frees the handle itself when it fails, so there is nothing to end.
      throw new PamError(status, confdir ? "pam_start_confdir" : "pam_start", {
        description: describeStart(status, o.service, o.confdir),
        messages: slot.messages,
      });
    }
    const tx = new PamTransaction(handle, pam, slot, slotId, o.failDelay === "report");
    if (tx.#reportFailDelay) {
      try {
        tx.#check(
          pam.pam_set_item_pointer(handle, ItemType.FAIL_DELAY, failDelayFunction()),
          "pam_set_item",
        );
      } catch (error) {
        // The caller never gets `tx`, so nobody else could end it.
        tx.end();
        throw error;
      }
    }
    return tx;
  }

  /** `true` once {@linkcode PamTransaction.end} has run. */
  get ended(): boolean {
    return this.#handle === null;
  }

  /**
   * Authenticates the user (`pam_authenticate`).
   *
   * @example
   * ```ts
   * import { PamTransaction, passwordConversation } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice", conversation: passwordConversation("pw") });
   * tx.authenticate({ disallowNullAuthtok: true });
   * ```
   *
   * @throws {TypeError} for flags that are not `true`/`false` options this call takes.
   * @throws {PamError} when `pam_authenticate` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  authenticate(flags?: AuthFlags): void {
    const f = flagsOf(flags, "authenticate() flags", authFlags);
    this.#call("pam_authenticate", this.#pam.pam_authenticate, f);
  }

  /**
   * Checks that the account may be used now (`pam_acct_mgmt`). Throws with
   * `ReturnCode.NEW_AUTHTOK_REQD` when the password must be changed first.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.acctMgmt();
   * ```
   *
   * @throws {TypeError} for flags that are not `true`/`false` options this call takes.
   * @throws {PamError} when `pam_acct_mgmt` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  acctMgmt(flags?: AuthFlags): void {
    const f = flagsOf(flags, "acctMgmt() flags", authFlags);
    this.#call("pam_acct_mgmt", this.#pam.pam_acct_mgmt, f);
  }

  /**
   * Establishes, deletes, reinitialises or refreshes the user's credentials (`pam_setcred`).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.setCred("establish");
   * ```
   *
   * @throws {TypeError} for an unknown action or bad flags.
   * @throws {PamError} when `pam_setcred` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  setCred(action: CredAction, flags?: SilentFlag): void {
    const cred = credFlag(action);
    const f = flagsOf(flags, "setCred() flags", silentFlags);
    this.#call("pam_setcred", this.#pam.pam_setcred, f | cred);
  }

  /**
   * Changes the user's authentication token (`pam_chauthtok`).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "passwd", user: "alice" });
   * tx.chauthtok({ changeExpiredAuthtok: true });
   * ```
   *
   * @throws {TypeError} for flags that are not `true`/`false` options this call takes.
   * @throws {PamError} when `pam_chauthtok` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  chauthtok(flags?: ChauthtokFlags): void {
    const f = flagsOf(flags, "chauthtok() flags", chauthtokFlags);
    this.#call("pam_chauthtok", this.#pam.pam_chauthtok, f);
  }

  /**
   * Opens a session (`pam_open_session`), after authentication and account
   * management succeeded. Throws with `ReturnCode.SESSION_ERR` when a module
   * cannot set it up.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.openSession();
   * tx.closeSession();
   * ```
   *
   * @throws {TypeError} for flags that are not `true`/`false` options this call takes.
   * @throws {PamError} when `pam_open_session` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  openSession(flags?: SilentFlag): void {
    const f = flagsOf(flags, "openSession() flags", silentFlags);
    this.#call("pam_open_session", this.#pam.pam_open_session, f);
  }

  /**
   * Closes the session (`pam_close_session`) when the user's activity ends.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.openSession();
   * tx.closeSession({ silent: true });
   * ```
   *
   * @throws {TypeError} for flags that are not `true`/`false` options this call takes.
   * @throws {PamError} when `pam_close_session` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  closeSession(flags?: SilentFlag): void {
    const f = flagsOf(flags, "closeSession() flags", silentFlags);
    this.#call("pam_close_session", this.#pam.pam_close_session, f);
  }

  /**
   * Reads a string item; `undefined` when it is unset. `"authtok"` and
   * `"oldauthtok"` are refused (`PamError` `PAM_BAD_ITEM`, as libpam refuses
   * them to applications), inside a conversation too. Allowed inside the
   * transaction's own conversation.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * console.log(tx.getItem("user")); // "alice"
   * ```
   *
   * @throws {TypeError} for an unknown item name.
   * @throws {PamError} for `"authtok"`/`"oldauthtok"` (`PAM_BAD_ITEM`), or when `pam_get_item` fails.
   * @throws {Error} once the transaction has ended.
   */
  getItem(name: ItemName): string | undefined {
    const type = itemType(name);
    this.#refuseSecret(type, "pam_get_item");
    const value = this.#getItemPointer(type);
    return value ? readBoundedCString(value, MAX_ITEM_BYTES, `the ${name} item`) : undefined;
  }

  /**
   * Sets a string item; libpam keeps a copy. `"authtok"` and `"oldauthtok"`
   * are refused (`PamError` `PAM_BAD_ITEM`). Throws inside the transaction's
   * own conversation (a module may still hold the item being replaced).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.setItem("tty", "/dev/pts/3");
   * tx.setItem("rhost", "203.0.113.7");
   * ```
   *
   * @throws {TypeError} for an unknown item name, a value that is not a string, or a NUL byte.
   * @throws {PamError} when `pam_set_item` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  setItem(name: ItemName, value: string): void {
    const type = itemType(name);
    const encoded = cString(value, `the value of item "${name}"`);
    try {
      this.#live();
      this.#refuseSecret(type, "pam_set_item");
      const handle = this.#changing("setItem");
      this.#check(this.#pam.pam_set_item(handle, type, encoded), "pam_set_item");
    } finally {
      // authtok and oldauthtok are secrets.
      encoded.fill(0);
    }
  }

  /**
   * Reads `PAM_XAUTHDATA`; `undefined` when unset.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * console.log(tx.getXAuthData()?.name);
   * ```
   *
   * @throws {RangeError} when a module set lengths outside 0 to 1 MiB.
   * @throws {PamError} when `pam_get_item` fails.
   * @throws {Error} once the transaction has ended.
   */
  getXAuthData(): XAuthData | undefined {
    const struct = this.#getItemPointer(ItemType.XAUTHDATA);
    if (!struct) return undefined;
    const L = pamXAuthDataLayout;
    const nameLength = native.readI32(struct, L.namelen.offset);
    const name = native.readPointer(struct, L.name.offset);
    // Linux-PAM returns its embedded, zeroed struct when nothing was set: never NULL.
    if (!name) return undefined;
    const dataLength = native.readI32(struct, L.datalen.offset);
    // A module may have set it: lengths are bounded before anything is read.
    for (const [what, length] of [["name", nameLength], ["data", dataLength]] as const) {
      if (length < 0 || length > MAX_ITEM_BYTES) {
        throw new RangeError(
          `PAM_XAUTHDATA's ${what} length is ${length}; expected 0 to ${MAX_ITEM_BYTES} bytes`,
        );
      }
    }
    const data = native.readPointer(struct, L.data.offset);
    // libpam strdup()s the name but keeps the module's namelen, which may say more: read up
    // to the NUL, never past it.
    const nameBytes = nameLength > 0 ? Number(openLibc().strnlen(name, nameLength)) : 0;
    return {
      name: nameBytes > 0 ? textDecoder.decode(native.view(name, nameBytes)) : "",
      data: data && dataLength > 0 ? native.view(data, dataLength).slice() : new Uint8Array(),
    };
  }

  /**
   * Sets `PAM_XAUTHDATA`; libpam keeps a copy, and the binding's own C copy
   * is wiped. Throws inside the transaction's own conversation.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.setXAuthData({ name: "MIT-MAGIC-COOKIE-1", data: crypto.getRandomValues(new Uint8Array(16)) });
   * ```
   *
   * @throws {TypeError} for a value that is not `{ name, data }`.
   * @throws {PamError} when `pam_set_item` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  setXAuthData(xauth: XAuthData): void {
    const o = checkXAuthData(xauth);
    const name = cString(o.name, "XAuthData.name");
    const handle = this.#changing("setXAuthData");
    const L = pamXAuthDataLayout;
    // One C block: the struct, then the name (NUL-terminated), then the data. libpam keeps
    // a copy, so the block is never handed on: wiped and freed here whatever happens.
    const size = L.size + name.length + o.data.length;
    using block = CMemory.malloc(size, "PAM_XAUTHDATA");
    const bytes = native.view(block.pointer, size);
    bytes.set(name, L.size);
    bytes.set(o.data, L.size + name.length);
    const view = new DataView(bytes.buffer, bytes.byteOffset, size);
    const address = native.addressOf(block.pointer);
    view.setInt32(L.namelen.offset, name.length - 1, true);
    view.setBigUint64(L.name.offset, BigInt(address + L.size), true);
    view.setInt32(L.datalen.offset, o.data.length, true);
    view.setBigUint64(L.data.offset, BigInt(address + L.size + name.length), true);
    this.#check(
      this.#pam.pam_set_item_pointer(handle, ItemType.XAUTHDATA, block.pointer),
      "pam_set_item",
    );
  }

  /**
   * Reads one variable of the PAM environment (`pam_getenv`).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.putEnv("LANG=C.UTF-8");
   * console.log(tx.getEnv("LANG")); // "C.UTF-8"
   * ```
   *
   * @throws {TypeError} for a name that is not a string, or holds a NUL byte.
   * @throws {Error} once the transaction has ended.
   */
  getEnv(name: string): string | undefined {
    const encoded = cString(name, "the environment variable name");
    const value = this.#pam.pam_getenv(this.#live(), encoded);
    return value ? readBoundedCString(value, MAX_ITEM_BYTES, `the variable ${name}`) : undefined;
  }

  /**
   * Sets (`"NAME=value"`), empties (`"NAME="`) or deletes (`"NAME"`) a
   * variable of the PAM environment (`pam_putenv`). Throws inside the
   * transaction's own conversation.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * tx.putEnv("EDITOR=vi");
   * tx.putEnv("EDITOR");
   * ```
   *
   * @throws {TypeError} for an entry that is not a string, has no name, or holds a NUL byte.
   * @throws {PamError} when `pam_putenv` fails (`cause` set when the conversation did).
   * @throws {Error} once the transaction has ended.
   */
  putEnv(entry: string): void {
    checkEnvEntry(entry);
    const encoded = cString(entry, "the environment entry");
    this.#check(this.#pam.pam_putenv(this.#changing("putEnv"), encoded), "pam_putenv");
  }

  /**
   * The whole PAM environment (`pam_getenvlist`), to pass to the user's
   * processes, as an object without a prototype: every name is an own
   * property, `__proto__` and `constructor` included (read it with
   * `Object.entries` or `Object.hasOwn`, not `env.hasOwnProperty`).
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * using tx = PamTransaction.start({ service: "login", user: "alice" });
   * const env = tx.getEnvList();
   * ```
   *
   * @throws {PamError} (`PAM_BUF_ERR`) when libpam cannot copy the list.
   * @throws {Error} once the transaction has ended.
   */
  getEnvList(): Record<string, string> {
    const list = this.#pam.pam_getenvlist(this.#live());
    if (!list) {
      throw new PamError(ReturnCode.BUF_ERR, "pam_getenvlist", { description: "out of memory" });
    }
    // The caller owns the copy: every string and the array are wiped and freed, however
    // far the reading got.
    using owned = CMemory.stringList(list);
    // No prototype: a variable named __proto__ must be a property, not a prototype setter.
    const env: Record<string, string> = Object.create(null);
    for (let i = 0;; i++) {
      const entry = native.readPointer(owned.pointer, i * pointerSize);
      if (!entry) break;
      const text = readBoundedCString(entry, MAX_ITEM_BYTES, `environment entry ${i}`);
      const eq = text.indexOf("=");
      if (eq > 0) env[text.slice(0, eq)] = text.slice(eq + 1);
    }
    return env;
  }

  /**
   * Ends the transaction (`pam_end`) with the status of the last call. Safe
   * to call again; every other method throws afterwards. Throws if called
   * from inside the conversation of a call in progress.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * const tx = PamTransaction.start({ service: "login", user: "alice" });
   * try {
   *   tx.authenticate();
   * } finally {
   *   tx.end();
   * }
   * ```
   *
   * @throws {TypeError} for bad options.
   * @throws {Error} when called from inside the transaction's own conversation.
   */
  end(options?: SilentFlag): void {
    const f = flagsOf(options, "end() options", endFlags);
    const handle = this.#handle;
    if (!handle) return;
    if (this.#inCall) {
      // libpam refuses pam_end from inside a module (PAM_SYSTEM_ERR): the handle would leak
      // and the call in progress would go on as if nothing happened.
      throw new Error(
        `end() was called from inside the conversation of ${this.#inCall}: throw from the ` +
          "handler to abort that call, and end the transaction once it has returned",
      );
    }
    this.#handle = null;
    try {
      this.#pam.pam_end(handle, this.#lastStatus | f);
    } finally {
      releaseSlot(this.#slotId);
    }
  }

  /**
   * Ends the transaction, for `using`.
   *
   * @example
   * ```ts
   * import { PamTransaction } from "@seed/pam";
   * {
   *   using tx = PamTransaction.start({ service: "login", user: "alice" });
   * } // pam_end has run here
   * ```
   */
  [Symbol.dispose](): void {
    this.end();
  }

  #live(): Pointer {
    if (!this.#handle) {
      throw new Error("this PamTransaction has ended (pam_end ran); start a new one");
    }
    if (this.#broken) {
      throw new Error(
        "this PamTransaction failed: a conversation could not complete, so its modules' state " +
          "is unknown; end it and start a new one",
        { cause: this.#brokenBy },
      );
    }
    return this.#handle;
  }

  /** The handle, for a method that changes it: refused inside the transaction's own conversation. */
  #changing(method: string): Pointer {
    const handle = this.#live();
    if (this.#inCall) {
      throw new Error(
        `${method}() was called from inside the conversation of ${this.#inCall}: the modules ` +
          "of that call may still use what it would change; call it before or after",
      );
    }
    return handle;
  }

  /**
   * libpam refuses the tokens to applications, except while a module runs: the binding
   * refuses them always, so a conversation handler cannot read or replace them either.
   */
  #refuseSecret(type: number, operation: string): void {
    if (type !== ItemType.AUTHTOK && type !== ItemType.OLDAUTHTOK) return;
    if (!this.#inCall) this.#lastStatus = ReturnCode.BAD_ITEM;
    throw new PamError(ReturnCode.BAD_ITEM, operation, {
      description: strerrorText(this.#pam, ReturnCode.BAD_ITEM, this.#handle),
    });
  }

  #getItemPointer(type: number): Pointer | null {
    this.#check(this.#pam.pam_get_item(this.#live(), type, itemOut), "pam_get_item");
    return native.readPointerFrom(itemOut, 0);
  }

  #call(operation: string, fn: (handle: Pointer, flags: number) => number, flags: number): void {
    const handle = this.#live();
    if (this.#inCall) {
      // libpam would refuse it (PAM_SYSTEM_ERR), but resetting the slot here would already
      // have wiped the messages and cause of the call in progress.
      throw new Error(
        `${operation} was called from inside the conversation of ${this.#inCall}; ` +
          "PAM calls on one transaction cannot nest",
      );
    }
    const slot = this.#slot;
    // A fresh array only when the last call left messages (PamError copies them): most
    // calls have none, and this runs on every PAM call.
    if (slot.messages.length > 0) slot.messages = [];
    slot.cause = undefined;
    slot.failDelayUsec = undefined;
    slot.unfinished = 0;
    let status: number;
    this.#inCall = operation;
    try {
      status = fn(handle, flags);
    } catch (error) {
      // The call itself threw: an exception escaped a callback during it and the runtime
      // raised it here, after handing the module 0 (PAM_SUCCESS) in its place. Plain stores
      // first: near the stack limit, any call from here on may throw again.
      this.#inCall = undefined;
      this.#broken = true;
      this.#lastStatus = ReturnCode.CONV_ERR;
      this.#brokenBy = error;
      throw this.#breakDown(operation, error);
    }
    this.#inCall = undefined;
    if (slot.unfinished !== 0) {
      this.#broken = true;
      this.#lastStatus = ReturnCode.CONV_ERR;
      this.#brokenBy = slot.cause;
      throw this.#breakDown(operation, slot.cause);
    }
    this.#check(status, operation);
  }

  /**
   * Fails the transaction for good after a conversation that could not
   * complete: the module saw success for it, so nothing it did since can be
   * trusted. `pam_end` then gets `PAM_CONV_ERR`.
   */
  #breakDown(operation: string, cause: unknown): PamError {
    const error = new PamError(ReturnCode.CONV_ERR, operation, {
      description: "the conversation could not complete (an exception escaped it, as at the " +
        "JavaScript stack limit); the transaction is failed",
      messages: this.#slot.messages,
      cause,
    });
    this.#slot.unfinished = 0;
    this.#brokenBy = error;
    return error;
  }

  #check(status: number, operation: string): void {
    this.#lastStatus = status;
    if (status === ReturnCode.SUCCESS) return;
    const slot = this.#slot;
    throw new PamError(status, operation, {
      description: this.#handle ? strerrorText(this.#pam, status, this.#handle) : undefined,
      messages: slot.messages,
      cause: slot.cause,
      failDelayMs: this.#reportFailDelay && slot.failDelayUsec !== undefined
        ? slot.failDelayUsec / 1000
        : undefined,
    });
  }
}

function describeStart(status: number, service: string, confdir: string | undefined): string {
  const missing = confdir !== undefined &&
      (status === ReturnCode.ABORT || status === ReturnCode.SYSTEM_ERR)
    ? missingPath(service, confdir)
    : undefined;
  if (missing) return `pam_start refused service "${service}": ${missing}`;
  if (status === ReturnCode.SYSTEM_ERR || status === ReturnCode.BUF_ERR) {
    return `pam_start could not set up service "${service}"`;
  }
  return `pam_start refused service "${service}"`;
}

/**
 * What libpam (1.5.2: a bare `PAM_ABORT`) does not say: which file of a
 * confdir is missing. Looked up only after pam_start failed, so the common
 * path pays nothing; `undefined` when everything exists or the lookup is not
 * allowed (Deno without `--allow-read`), leaving libpam's own words.
 */
function missingPath(service: string, confdir: string): string | undefined {
  const exists = (path: string) => statSync(path, { throwIfNoEntry: false }) !== undefined;
  try {
    if (!exists(confdir)) return `confdir: ${confdir} does not exist`;
    const file = join(confdir, service);
    // libpam falls back to the confdir's "other" file, as it does in /etc/pam.d.
    if (!exists(file) && !exists(join(confdir, "other"))) {
      return `service file: ${file} does not exist (nor ${join(confdir, "other")})`;
    }
  } catch {
    // No permission to look: libpam's own words will have to do.
  }
  return undefined;
}
