/**
 * A process's threads and their nice values, through libc: the caller of a
 * session process gives every thread of it its priority back once it has
 * loaded, and a session process puts all of its own at nice 19 before it
 * exits. `/proc/PID/task` is read with `getdents64`, not `readdir`: Deno
 * lets only `--allow-all` read `/proc`, and neither the caller nor the
 * session process is run with it. Internal.
 *
 * @module
 */

import process from "node:process";
import {
  defaultLibraries,
  dirent64Layout,
  native,
  prioritySymbols,
  threadListSymbols,
} from "../../ffi/mod.ts";
import { cString } from "../_validate.ts";

/** `setpriority(2)`'s `which` for one thread or process. */
export const PRIO_PROCESS = 0;
/** The lowest priority a thread can have. */
export const lowestNice = 19;
const O_CLOEXEC = 0o2000000;

function openThreadLibc() {
  return native.open(defaultLibraries.libc, { ...prioritySymbols, ...threadListSymbols });
}

/** libc's priority and thread-listing calls, bound on first use. */
export type ThreadLibc = ReturnType<typeof openThreadLibc>;

let libc: ThreadLibc | undefined;

/**
 * The bound calls, opened on first use (binding costs Deno some time: call
 * it early where the first use must be quick). Throws when libc cannot be
 * opened.
 */
export function threadLibc(): ThreadLibc {
  libc ??= openThreadLibc();
  return libc;
}

/**
 * The thread ids of `pid`, from the `linux_dirent64` records of its task
 * directory; `[pid]` (its main thread) when that cannot be read.
 */
function threadsOf(pid: number): number[] {
  const lib = threadLibc();
  const fd = lib.getdents64 ? lib.open_dir(cString(`/proc/${pid}/task`, "a path"), O_CLOEXEC) : -1;
  if (fd < 0) return [pid];
  const ids: number[] = [];
  try {
    const buffer = new Uint8Array(4096);
    const view = new DataView(buffer.buffer);
    for (let n; (n = lib.getdents64!(fd, buffer, buffer.length)) > 0;) {
      const { reclen, name: nameField } = dirent64Layout;
      for (let at = 0; at < n; at += view.getUint16(at + reclen.offset, true)) {
        const start = at + nameField.offset;
        const name = buffer.subarray(start, buffer.indexOf(0, start));
        const id = Number(String.fromCharCode(...name));
        if (Number.isInteger(id) && id > 0) ids.push(id);
      }
    }
  } finally {
    lib.close_fd(fd);
  }
  return ids.length > 0 ? ids : [pid];
}

/**
 * Gives every thread of `pid` the nice value `nice` (nice values are per
 * thread on Linux); true when its main thread has it afterwards.
 */
export function setNiceOfThreads(pid: number, nice: number): boolean {
  const lib = threadLibc();
  for (const tid of threadsOf(pid)) lib.setpriority(PRIO_PROCESS, tid, nice);
  return lib.getpriority(PRIO_PROCESS, pid) === nice;
}

/**
 * Exits with code 0 at nice 19: a session has ended (its programs were
 * stopped, or detached and no longer this process's concern), and what is
 * left is tearing the runtime down, which twenty sessions closing together
 * would otherwise do at the caller's priority, on the caller's CPUs.
 */
export function exitQuietly(): never {
  try {
    setNiceOfThreads(process.pid, lowestNice);
  } catch {
    // Without libc's calls it exits as it is.
  }
  process.exit(0);
}
