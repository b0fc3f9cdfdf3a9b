/**
 * Gives back the pages an idle session process only borrowed.
 *
 * A session process is a whole runtime waiting on a pipe. Loading it touches
 * tens of MiB of the runtime's executable and shared libraries (figures in
 * docs/bench.md, "Sessions"), all of it file pages the caller and every other session
 * process share through the page cache. They cost the machine nothing per
 * session, but they count in each process's RSS, which is what operators,
 * `ps` and memory limits look at. An idle session needs almost none of them,
 * so once it is idle the process drops its mappings of those pages with
 * `MADV_DONTNEED`; the page cache keeps them, and the few the process touches
 * again come back as minor faults.
 *
 * The scan and the advice run on the main thread, the only thread of a
 * session process that loads or unloads libraries (PAM modules), so a range
 * it found cannot be unmapped and reused before the advice reaches it.
 *
 * Only mappings that cannot hold private data are dropped: file-backed, not
 * writable, not hugetlb, and with no anonymous (copied-on-write), dirty,
 * swapped, locked or huge page according to `/proc/self/smaps`. For such a
 * mapping `MADV_DONTNEED` only unmaps page-cache pages, so nothing can be
 * lost (a writable, relocated or hugetlb mapping would lose its contents;
 * those are skipped). Internal; not an API.
 *
 * @module
 */

import { lastErrno } from "../_library.ts";
import { processLibc } from "./_spawn.ts";

const MADV_DONTNEED = 4;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const EINTR = 4;

/** One mapping of `/proc/self/smaps` that holds only page-cache pages of a file. */
export interface CleanMapping {
  readonly start: number;
  readonly end: number;
}

/** The mappings of `smaps` text whose pages are all clean, shared-with-the-file pages. */
export function cleanFileMappings(smaps: string): CleanMapping[] {
  const scan = new SmapsScan();
  const bytes = new TextEncoder().encode(smaps + "\n");
  scan.push(bytes, bytes.length);
  return scan.done();
}

const NL = 0x0a;
const SPACE = 0x20;
// Huge pages are counted only in the *_Hugetlb fields, never in Anonymous or Private_Dirty, and
// MADV_DONTNEED discards a private one for good (Linux >= 5.18): any of them rules a mapping out.
const fieldNames = [
  "Anonymous:",
  "Private_Dirty:",
  "Swap:",
  "Locked:",
  "Private_Hugetlb:",
  "Shared_Hugetlb:",
].map((name) => new TextEncoder().encode(name));
const vmFlags = new TextEncoder().encode("VmFlags:");
/** `ht`: a hugetlb mapping, refused even when it has no page yet. */
const HT = [0x68, 0x74];

/**
 * Reads smaps bytes a line at a time without making strings of them: the scan
 * runs in a process that is about to sit idle, and every string it made would
 * stay behind as heap the process keeps (measured in docs/bench.md, "Sessions").
 */
class SmapsScan {
  #found: CleanMapping[] = [];
  #start = 0;
  #end = 0;
  #clean = false;
  /** The start of a line the last chunk cut; smaps lines are far shorter than this. */
  #carry = new Uint8Array(4096);
  #carried = 0;

  push(chunk: Uint8Array, length: number): void {
    let from = 0;
    for (let i = 0; i < length; i++) {
      if (chunk[i] !== NL) continue;
      if (this.#carried > 0) {
        const take = Math.min(i, this.#carry.length - this.#carried);
        this.#carry.set(chunk.subarray(0, take), this.#carried);
        this.#line(this.#carry, 0, this.#carried + take);
        this.#carried = 0;
      } else {
        this.#line(chunk, from, i);
      }
      from = i + 1;
    }
    const rest = Math.min(length - from, this.#carry.length - this.#carried);
    this.#carry.set(chunk.subarray(from, from + rest), this.#carried);
    this.#carried += rest;
  }

  done(): CleanMapping[] {
    this.#flush();
    return this.#found;
  }

  #line(b: Uint8Array, from: number, to: number): void {
    const first = b[from];
    if (first === undefined || from >= to) return;
    const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
    if (isHex(first)) {
      // "start-end perms offset dev inode   path"
      this.#flush();
      let i = from;
      let start = 0;
      for (; i < to && isHex(b[i]); i++) start = start * 16 + hexValue(b[i]);
      let end = 0;
      for (i++; i < to && isHex(b[i]); i++) end = end * 16 + hexValue(b[i]);
      const perms = i + 1;
      if (perms + 4 > to) return;
      // Skip perms, offset and dev to the inode.
      i = perms;
      for (let field = 0; field < 3; field++) {
        while (i < to && b[i] !== SPACE) i++;
        while (i < to && b[i] === SPACE) i++;
      }
      let inodeNonZero = false;
      for (; i < to && b[i] !== SPACE; i++) if (b[i] !== 0x30) inodeNonZero = true;
      while (i < to && b[i] === SPACE) i++;
      this.#start = start;
      this.#end = end;
      // Not writable, and a real file (inode 0 is anonymous or a kernel mapping); shared or
      // private, as a read-only shared mapping holds nothing but the file either.
      this.#clean = b[perms + 1] === 0x2d /* - */ && inodeNonZero && b[i] === 0x2f /* / */;
      return;
    }
    if (!this.#clean) return;
    // A page copied on write (relocations made read-only afterwards, a debugger's breakpoint) is
    // this process's only copy: such a mapping is never dropped. A locked one refuses anyway.
    if (startsWith(b, from, to, vmFlags)) {
      for (let i = from + vmFlags.length; i + 1 < to; i++) {
        if (
          b[i] === HT[0] && b[i + 1] === HT[1] && b[i - 1] === SPACE &&
          (i + 2 >= to || b[i + 2] === SPACE)
        ) {
          this.#clean = false;
        }
      }
      return;
    }
    for (const name of fieldNames) {
      if (!startsWith(b, from, to, name)) continue;
      let i = from + name.length;
      while (i < to && b[i] === SPACE) i++;
      if (i < to && !(b[i] === 0x30 && (i + 1 >= to || b[i + 1] === SPACE))) this.#clean = false;
      return;
    }
  }

  #flush(): void {
    if (this.#clean) this.#found.push({ start: this.#start, end: this.#end });
    this.#clean = false;
  }
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x61 + 10;
}

function startsWith(b: Uint8Array, from: number, to: number, prefix: Uint8Array): boolean {
  if (to - from < prefix.length) return false;
  for (let k = 0; k < prefix.length; k++) if (b[from + k] !== prefix[k]) return false;
  return true;
}

/**
 * Drops this process's mappings of clean file pages; returns how many bytes of
 * address range were advised. Never throws: it is an optimisation.
 */
export function dropCleanFilePages(): number {
  try {
    const lib = processLibc();
    let advised = 0;
    for (const { start, end } of scanSmaps()) {
      if (lib.madvise(start, end - start, MADV_DONTNEED) === 0) advised += end - start;
    }
    lib.malloc_trim?.(0);
    return advised;
  } catch {
    return 0;
  }
}

/**
 * Scans `/proc/self/smaps`, read through libc: Deno grants /proc/self only to
 * `--allow-all`, which the session process does not have.
 */
function scanSmaps(): CleanMapping[] {
  const lib = processLibc();
  const fd = lib.open(smapsPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return [];
  try {
    const scan = new SmapsScan();
    for (;;) {
      const n = lib.read(fd, readBuffer, readBuffer.length);
      if (n < 0 && lastErrno() === EINTR) continue;
      if (n <= 0) break;
      scan.push(readBuffer, n);
    }
    scan.push(newline, 1);
    return scan.done();
  } finally {
    lib.close_fd(fd);
  }
}

const smapsPath = new TextEncoder().encode("/proc/self/smaps\0");
const readBuffer = new Uint8Array(1 << 16);
const newline = new Uint8Array([NL]);
