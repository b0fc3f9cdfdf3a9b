/**
 * Keeping a service's modules loaded between transactions: libpam `dlopen`s
 * every module of the stack in `pam_start` and `dlclose`s them in `pam_end`,
 * which is most of its cost per transaction (and every `mmap`/`munmap` of it
 * costs more in a multi-threaded process such as a JavaScript runtime). One
 * handle held open keeps the libraries mapped, so the `dlopen`s of the
 * transactions after it only count references.
 *
 * @module
 */

import { PamTransaction } from "./transaction.ts";
import { setIdleWindow } from "./_module_hold.ts";
import { checkKnownKeys, optionsObject } from "./_validate.ts";

/**
 * Which stack {@linkcode keepModulesLoaded} keeps loaded.
 *
 * @example
 * ```ts
 * import type { KeepModulesLoadedOptions } from "@seed/pam";
 * const options: KeepModulesLoadedOptions = { service: "login", confdir: "/tmp/pam.d" };
 * ```
 */
export interface KeepModulesLoadedOptions {
  /** The PAM service whose modules stay loaded. */
  service: string;
  /** Read the service file from this directory instead of `/etc/pam.d`. */
  confdir?: string | undefined;
  /** The libpam file to load (default `libpam.so.0`). */
  library?: string | undefined;
}

// Set by LoadedModules' static block: only the class may construct one.
let open: (options: KeepModulesLoadedOptions) => LoadedModules;

/**
 * The modules of one service, held loaded by a PAM handle that runs no
 * module: {@linkcode LoadedModules.release} (or `using`) ends it.
 *
 * @example
 * ```ts
 * import { keepModulesLoaded } from "@seed/pam";
 * using modules = keepModulesLoaded({ service: "login" });
 * console.log(modules.released); // false
 * ```
 *
 * @tags allow-ffi
 */
export class LoadedModules {
  readonly #handle: PamTransaction;

  /**
   * Not for callers: `keepModulesLoaded()` makes one.
   *
   * @ignore
   */
  private constructor(handle: PamTransaction) {
    this.#handle = handle;
  }

  static {
    open = (options) => {
      const what = "keepModulesLoaded() options";
      const o = optionsObject<KeepModulesLoadedOptions>(options, what);
      checkKnownKeys(o, ["service", "confdir", "library"], what);
      // pam_start reads the service file and loads its modules; no module function runs
      // until a transaction calls one, and this handle never does.
      return new LoadedModules(
        PamTransaction.start({ service: o.service, confdir: o.confdir, library: o.library }),
      );
    };
  }

  /** `true` once {@linkcode LoadedModules.release} has run. */
  get released(): boolean {
    return this.#handle.ended;
  }

  /**
   * Ends the holding handle (`pam_end`): the modules unload with the last
   * transaction that still uses them. Call it on the thread that called
   * {@linkcode keepModulesLoaded}. Safe to call again.
   *
   * @example
   * ```ts
   * import { keepModulesLoaded } from "@seed/pam";
   * const modules = keepModulesLoaded({ service: "login" });
   * modules.release();
   * ```
   */
  release(): void {
    this.#handle.end();
  }

  /**
   * Releases the modules, for `using`.
   *
   * @example
   * ```ts
   * import { keepModulesLoaded } from "@seed/pam";
   * {
   *   using _modules = keepModulesLoaded({ service: "login" });
   * } // released here
   * ```
   */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * Keeps the modules of `service` loaded until the returned object is
 * released, so that transactions on that service — on this thread, on the
 * async API's worker threads, anywhere in the process — skip libpam's
 * `dlopen` and `dlclose` of every module: about half of what a transaction
 * costs libpam on a small stack. It runs `pam_start` once, on the calling
 * thread, and holds that handle without calling any module.
 *
 * What changes: a module upgraded on disk, or a module added to a stack
 * later, is not what runs until the modules are released (as with libpam and
 * libc themselves, which a process keeps loaded anyway), and a module's
 * global state lives from one transaction to the next (as it does whenever
 * two transactions overlap). The configuration itself is still read by every
 * `pam_start`.
 *
 * @example
 * ```ts
 * import { authenticate, keepModulesLoaded } from "@seed/pam";
 * // At server start: one pam_start, modules stay mapped until shutdown.
 * using _modules = keepModulesLoaded({ service: "webapp" });
 * await authenticate({ service: "webapp", user: "alice", password: "secret" });
 * ```
 *
 * @throws {TypeError} for options of the wrong type, an unknown key, or a NUL byte.
 * @throws {Error} when libpam cannot be loaded.
 * @throws {PamError} when `pam_start` fails.
 * @tags allow-ffi
 */
export function keepModulesLoaded(options: KeepModulesLoadedOptions): LoadedModules {
  if (options === undefined) {
    throw new TypeError("keepModulesLoaded() needs options: { service, confdir?, library? }");
  }
  return open(options);
}

/**
 * Sets how long the async API keeps a service's modules loaded after its
 * last transaction ended (default 1000 ms; 0 turns it off: libpam then
 * loads and unloads them with every transaction that does not overlap
 * another). While `authenticate()` and `AsyncPamTransaction` calls for a
 * service are in flight, and for this long after, its modules stay loaded,
 * as they would if the transactions overlapped: one `pam_start` on the main
 * thread holds them, and each transaction's `dlopen` only counts. A module
 * replaced on disk takes effect once the service has been idle this long;
 * a module's global state lives across a burst of transactions. The
 * synchronous `PamTransaction` is not affected; {@linkcode keepModulesLoaded}
 * is the explicit, indefinite form.
 *
 * @throws {TypeError} when `ms` is not a number.
 * @throws {RangeError} when `ms` is not from 0 to 2^31 - 1.
 * @example
 * ```ts
 * import { setModuleIdleWindow } from "@seed/pam";
 * setModuleIdleWindow(0); // every transaction loads its modules afresh
 * ```
 */
export function setModuleIdleWindow(ms: number): void {
  if (typeof ms !== "number") {
    throw new TypeError(`setModuleIdleWindow() takes a number of milliseconds, got ${typeof ms}`);
  }
  if (!(ms >= 0) || ms > 2 ** 31 - 1) {
    throw new RangeError(`setModuleIdleWindow() takes milliseconds from 0 to 2^31 - 1, got ${ms}`);
  }
  setIdleWindow(ms);
}
