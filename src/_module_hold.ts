/**
 * The async API's automatic hold on a service's modules, for the idle
 * window `setModuleIdleWindow()` sets (see `src/loaded_modules.ts` for why
 * holding them pays).
 *
 * @module
 */

import { clearTimeout, setTimeout } from "node:timers";
import { PamTransaction } from "./transaction.ts";

/** Which stack a hold keeps loaded. */
export interface ModuleStack {
  service: string;
  confdir?: string | undefined;
  library?: string | undefined;
}

/** How long a service's modules stay loaded after its last async transaction ended. */
let idleWindowMs = 1000;

/** One service's automatic hold: the transactions using it, and the handle holding its modules. */
interface Window {
  users: number;
  modules: PamTransaction | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** When the last user let go (performance.now()). */
  idleSince: number;
}

const windows = new Map<string, Window>();

/** Lets `window`'s modules go (when no transaction uses them and the idle window is over). */
function close(key: string, window: Window): void {
  if (window.users > 0 || windows.get(key) !== window) return;
  windows.delete(key);
  if (window.timer !== undefined) clearTimeout(window.timer);
  window.modules?.end();
}

/**
 * Holds the modules of a service loaded while the async API uses it and
 * for the idle window after (see `setModuleIdleWindow()`): the
 * first transaction of a burst runs one `pam_start` on this thread (the
 * holder, as `keepModulesLoaded()` does), the others only count.
 * Not public: `AsyncPamTransaction` and `authenticate()` call it; `release()`
 * (once per call) ends their use.
 */
export function holdModules(options: ModuleStack): { release(): void } {
  if (idleWindowMs === 0) return { release() {} };
  const key = JSON.stringify([options.service, options.confdir ?? null, options.library ?? null]);
  let window = windows.get(key);
  if (!window) {
    let modules: PamTransaction | undefined;
    try {
      // pam_start reads the service file and loads its modules; this handle never calls one.
      modules = PamTransaction.start({
        service: options.service,
        confdir: options.confdir,
        library: options.library,
      });
    } catch {
      // The transaction's own pam_start reports what is wrong (a missing service file,
      // a library that does not load); nothing is held.
    }
    window = { users: 0, modules, timer: undefined, idleSince: 0 };
    windows.set(key, window);
  }
  // A timer still armed stays: it finds the window in use and lets it be (see watchIdle).
  window.users++;
  const held = window;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      if (--held.users > 0 || windows.get(key) !== held) return;
      if (idleWindowMs === 0) return close(key, held);
      held.idleSince = performance.now();
      if (held.timer === undefined) watchIdle(key, held, idleWindowMs);
    },
  };
}

/**
 * Closes `window` once it has been idle for the whole window, checking in
 * `ms`: one timer per window, re-armed for what is left, rather than one set
 * and cleared per call (a one-shot at a time would pay for both each time).
 */
function watchIdle(key: string, window: Window, ms: number): void {
  window.timer = setTimeout(() => {
    window.timer = undefined;
    // In use again: its next release re-arms the watch.
    if (window.users > 0 || windows.get(key) !== window) return;
    const idle = performance.now() - window.idleSince;
    if (idle >= idleWindowMs) close(key, window);
    else watchIdle(key, window, idleWindowMs - idle);
  }, Math.max(1, ms));
  // An idle window never keeps the process alive.
  window.timer.unref();
}

/** Sets the idle window (checked by `setModuleIdleWindow()`); 0 lets every hold go now. */
export function setIdleWindow(ms: number): void {
  idleWindowMs = ms;
  for (const [key, window] of [...windows]) {
    if (ms === 0) {
      close(key, window);
    } else if (window.timer !== undefined) {
      // A shorter window takes effect now, not when the longer one's timer would have fired.
      clearTimeout(window.timer);
      watchIdle(key, window, ms - (performance.now() - window.idleSince));
    }
  }
}
