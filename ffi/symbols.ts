/**
 * The libpam and libc symbols this package calls, written once as
 * runtime-neutral data. `ffi/deno.ts` and `ffi/bun.ts` translate these
 * descriptions into `Deno.dlopen` and `bun:ffi` definitions; nothing else in
 * the package names a raw symbol.
 *
 * @module
 */

/**
 * The C types a symbol can take or return.
 *
 * - `pointer`: an address handled as an opaque {@linkcode Pointer}.
 * - `buffer`: a `Uint8Array` passed by address (a NUL-terminated string or an
 *   out-parameter); `null` passes NULL.
 */
export type NativeType = "i32" | "u32" | "usize" | "pointer" | "buffer" | "void";

/** One C function: its parameter types, its result type, and whether it may be absent. */
export interface SymbolDefinition {
  readonly parameters: readonly NativeType[];
  readonly result: NativeType;
  /** Absent from older libraries; the adapter binds it as `null` instead of failing to load. */
  readonly optional?: boolean;
  /** The C symbol, when the key is an alias that binds it with other parameter types. */
  readonly symbol?: string;
}

/** libpam's application API (Linux-PAM, `libpam.so.0`). */
export const pamSymbols = {
  pam_start: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  // Linux-PAM >= 1.4 only; PamTransaction.start({ confdir }) reports its absence clearly.
  pam_start_confdir: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  pam_end: { parameters: ["pointer", "i32"], result: "i32" },
  pam_authenticate: { parameters: ["pointer", "i32"], result: "i32" },
  pam_setcred: { parameters: ["pointer", "i32"], result: "i32" },
  pam_acct_mgmt: { parameters: ["pointer", "i32"], result: "i32" },
  pam_open_session: { parameters: ["pointer", "i32"], result: "i32" },
  pam_close_session: { parameters: ["pointer", "i32"], result: "i32" },
  pam_chauthtok: { parameters: ["pointer", "i32"], result: "i32" },
  pam_set_item: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  // The same C function taking an address (a function pointer, or a struct in C memory).
  pam_set_item_pointer: {
    symbol: "pam_set_item",
    parameters: ["pointer", "i32", "pointer"],
    result: "i32",
  },
  pam_get_item: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  pam_strerror: { parameters: ["pointer", "i32"], result: "pointer" },
  pam_getenv: { parameters: ["pointer", "buffer"], result: "pointer" },
  pam_putenv: { parameters: ["pointer", "buffer"], result: "i32" },
  pam_getenvlist: { parameters: ["pointer"], result: "pointer" },
  pam_fail_delay: { parameters: ["pointer", "u32"], result: "i32" },
} as const satisfies Record<string, SymbolDefinition>;

/** libc: the allocator libpam frees with, wiping, and the utmpx database. */
export const libcSymbols = {
  calloc: { parameters: ["usize", "usize"], result: "pointer" },
  malloc: { parameters: ["usize"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  // Unlike memset, the compiler may not drop it, so secrets really are wiped.
  explicit_bzero: { parameters: ["pointer", "usize"], result: "void" },
  strlen: { parameters: ["pointer"], result: "usize" },
  // Writes JavaScript bytes into C memory. Cheaper per write than a view of the C memory,
  // which costs both runtimes an ArrayBuffer with an external backing store each time.
  memcpy: { parameters: ["pointer", "buffer", "usize"], result: "pointer" },
  // The terminal conversation turns echo off (and back on) the way libpam_misc's misc_conv does.
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // Variadic in C; bound for F_GETFL, which takes no third argument. Tells the /dev/null the
  // runtimes put in place of a closed standard input (opened read-write) from a redirected one.
  fcntl: { parameters: ["i32", "i32"], result: "i32" },
  utmpxname: { parameters: ["buffer"], result: "i32" },
  setutxent: { parameters: [], result: "void" },
  getutxid: { parameters: ["buffer"], result: "pointer" },
  pututxline: { parameters: ["buffer"], result: "pointer" },
  endutxent: { parameters: [], result: "void" },
  updwtmpx: { parameters: ["buffer", "buffer"], result: "void" },
  __errno_location: { parameters: [], result: "pointer" },
  // The async API's pool watches that a worker's OS thread still exists while it serves a
  // request (a module may end the thread: pthread_exit). glibc >= 2.30.
  gettid: { parameters: [], result: "i32", optional: true },
  getpid: { parameters: [], result: "i32" },
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32", optional: true },
  // Turns the errno a failed utmpx call left into text for the error message.
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * Priorities: the caller runs a session process at a low one while it loads
 * its runtime (src/session/_client.ts), and the session process lowers its
 * own once its session has ended, before it exits. Tables of their own for the
 * caller (with {@linkcode threadListSymbols}): binding a symbol costs Deno some
 * time, and these are all it needs.
 */
export const prioritySymbols = {
  // int getpriority(int which, id_t who), int setpriority(int which, id_t who, int prio), as
  // PRIO_PROCESS on a thread id (nice values are per thread on Linux).
  getpriority: { parameters: ["i32", "u32"], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * The thread ids of a process, from `/proc/PID/task` read through libc:
 * Deno lets only `--allow-all` read `/proc`. For the caller of a session
 * process, which gives every thread of it its priority back.
 */
export const threadListSymbols = {
  // int open(const char *path, int flags): variadic, called without a mode.
  open_dir: { symbol: "open", parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t getdents64(int fd, void *dirp, size_t count), glibc >= 2.30; a count fits in i32.
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "i32", optional: true },
  close_fd: { symbol: "close", parameters: ["i32"], result: "i32" },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * libc for the session process (src/session/): its control channel's file
 * descriptors, the user its programs run as, and their pseudo-terminal.
 */
export const sessionProcessSymbols = {
  ...prioritySymbols,
  // ssize_t read(int fd, void *buf, size_t count): blocking reads of the control channel while a
  // synchronous PAM call waits for the caller's answers.
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // ssize_t write(int fd, const void *buf, size_t count)
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int dup2(int oldfd, int newfd): fd 1 then points at stderr.
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  // int close_range(unsigned first, unsigned last, int flags), as CLOSE_RANGE_CLOEXEC: what the
  // caller left open is not inherited by the user's programs (glibc >= 2.34).
  close_range: { parameters: ["u32", "u32", "i32"], result: "i32", optional: true },
  // uid_t getuid(void)
  getuid: { parameters: [], result: "u32" },
  // gid_t getgid(void): a program may run as the session process's own user without setpriv.
  getgid: { parameters: [], result: "u32" },
  // int getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
  //                struct passwd **result): the user's uid, gid, home and shell, thread-safe.
  getpwnam_r: {
    parameters: ["buffer", "buffer", "buffer", "usize", "buffer"],
    result: "i32",
  },
  // The pseudo-terminal (src/session/_pty.ts). open, fcntl and ioctl are variadic: called with
  // their one optional argument as a fixed one, they find it where they look on x86_64 and
  // aarch64 Linux (the ABIs this supports).
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // fcntl as F_DUPFD_CLOEXEC, too: the channel moves off fd 1, so a module's stray printf cannot
  // corrupt it, and no program the session starts inherits it.
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  // Aliased: a bound table's own close() unloads the library.
  close_fd: { symbol: "close", parameters: ["i32"], result: "i32" },
  // On the descriptor, not the path: Deno wants --allow-all to change a file under /dev.
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int getgrnam_r(const char *name, struct group *grp, char *buf, size_t buflen,
  //                struct group **result): the tty group.
  getgrnam_r: { parameters: ["buffer", "buffer", "buffer", "usize", "buffer"], result: "i32" },
  // int madvise(void *addr, size_t length, int advice), as MADV_DONTNEED on clean, read-only file
  // mappings of an idle session process (src/session/_idle_pages.ts). The address is an integer
  // read from /proc/self/smaps, never a pointer this package dereferences.
  madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
  // int malloc_trim(size_t pad): an idle session process hands back what libc's allocator holds
  // freed (glibc-only, so optional).
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true },
} as const satisfies Record<string, SymbolDefinition>;

/** The conversation function libpam calls: `int (*conv)(int, const struct pam_message **, struct pam_response **, void *)`. */
export const conversationCallback = {
  // appdata_ptr is only ever the integer id this package put there: taken as an integer, it
  // costs no pointer object and no address conversion per call.
  parameters: ["i32", "pointer", "pointer", "usize"],
  result: "i32",
} as const satisfies SymbolDefinition;

/** The `PAM_FAIL_DELAY` function: `void (*delay_fn)(int retval, unsigned usec_delay, void *appdata_ptr)`. */
export const failDelayCallback = {
  // appdata_ptr is the conversation's: the slot id, taken as an integer as there.
  parameters: ["i32", "u32", "usize"],
  result: "void",
} as const satisfies SymbolDefinition;

/** Default library file names, overridable per transaction. */
export const defaultLibraries = {
  pam: "libpam.so.0",
  libc: "libc.so.6",
} as const;
