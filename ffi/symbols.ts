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

/** libpam's application API (Linux-PAM, `libpam.so.0`), `<security/pam_appl.h>`. */
export const pamSymbols = {
  pam_start: {
    parameters: [
      "buffer", /* const char *service_name */
      "buffer", /* const char *user (NULL: a module asks) */
      "buffer", /* const struct pam_conv *pam_conversation (copied) */
      "buffer", /* pam_handle_t **pamh (out) */
    ],
    result: "i32",
  },
  // Linux-PAM >= 1.4 only; PamTransaction.start({ confdir }) reports its absence clearly.
  pam_start_confdir: {
    parameters: [
      "buffer", /* const char *service_name */
      "buffer", /* const char *user */
      "buffer", /* const struct pam_conv *pam_conversation */
      "buffer", /* const char *confdir */
      "buffer", /* pam_handle_t **pamh (out) */
    ],
    result: "i32",
    optional: true,
  },
  pam_end: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int pam_status */
    ],
    result: "i32",
  },
  pam_authenticate: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_setcred: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_acct_mgmt: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_open_session: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_close_session: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_chauthtok: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  pam_set_item: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int item_type */
      "buffer", /* const void *item (a string, copied) */
    ],
    result: "i32",
  },
  // The same C function taking an address (a function pointer, or a struct in C memory).
  pam_set_item_pointer: {
    symbol: "pam_set_item",
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int item_type */
      "pointer", /* const void *item */
    ],
    result: "i32",
  },
  pam_get_item: {
    parameters: [
      "pointer", /* const pam_handle_t *pamh */
      "i32", /* int item_type */
      "buffer", /* const void **item (out; libpam keeps ownership) */
    ],
    result: "i32",
  },
  pam_strerror: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "i32", /* int errnum */
    ],
    result: "pointer", /* const char * */
  },
  pam_getenv: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "buffer", /* const char *name */
    ],
    result: "pointer", /* const char * (libpam's) */
  },
  pam_putenv: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "buffer", /* const char *name_value */
    ],
    result: "i32",
  },
  pam_getenvlist: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
    ],
    result: "pointer", /* char ** (the caller frees each string and the array) */
  },
  pam_fail_delay: {
    parameters: [
      "pointer", /* pam_handle_t *pamh */
      "u32", /* unsigned int musec_delay */
    ],
    result: "i32",
  },
} as const satisfies Record<string, SymbolDefinition>;

/** libc: the allocator libpam frees with, wiping, and the utmpx database. */
export const libcSymbols = {
  calloc: {
    parameters: [
      "usize", /* size_t nmemb */
      "usize", /* size_t size */
    ],
    result: "pointer", /* void * */
  },
  malloc: {
    parameters: [
      "usize", /* size_t size */
    ],
    result: "pointer", /* void * */
  },
  free: {
    parameters: [
      "pointer", /* void *ptr */
    ],
    result: "void",
  },
  // Unlike memset, the compiler may not drop it, so secrets really are wiped.
  explicit_bzero: {
    parameters: [
      "pointer", /* void *s */
      "usize", /* size_t n */
    ],
    result: "void",
  },
  strlen: {
    parameters: [
      "pointer", /* const char *s */
    ],
    result: "usize", /* size_t */
  },
  // Bounds every C string a module hands over before it is read (a missing NUL must not run on).
  strnlen: {
    parameters: [
      "pointer", /* const char *s */
      "usize", /* size_t maxlen */
    ],
    result: "usize", /* size_t */
  },
  // A conversation answer's malloc and copy in one call (answers hold no NUL but the last).
  strndup: {
    parameters: [
      "buffer", /* const char *s */
      "usize", /* size_t n */
    ],
    result: "pointer", /* char * (malloc'd) */
  },
  // Writes JavaScript bytes into C memory. Cheaper per write than a view of the C memory,
  // which costs both runtimes an ArrayBuffer with an external backing store each time.
  memcpy: {
    parameters: [
      "pointer", /* void *dest */
      "buffer", /* const void *src */
      "usize", /* size_t n */
    ],
    result: "pointer", /* void * */
  },
  // The terminal conversation turns echo off (and back on) the way libpam_misc's misc_conv does.
  tcgetattr: {
    parameters: [
      "i32", /* int fd */
      "buffer", /* struct termios *termios_p (out) */
    ],
    result: "i32",
  },
  tcsetattr: {
    parameters: [
      "i32", /* int fd */
      "i32", /* int optional_actions */
      "buffer", /* const struct termios *termios_p */
    ],
    result: "i32",
  },
  // Variadic in C; bound for F_GETFL, which takes no third argument. Tells the /dev/null the
  // runtimes put in place of a closed standard input (opened read-write) from a redirected one.
  fcntl: {
    parameters: [
      "i32", /* int fd */
      "i32", /* int cmd */
    ],
    result: "i32",
  },
  utmpxname: {
    parameters: [
      "buffer", /* const char *file */
    ],
    result: "i32",
  },
  setutxent: { parameters: [], result: "void" },
  getutxid: {
    parameters: [
      "buffer", /* const struct utmpx *ut */
    ],
    result: "pointer", /* struct utmpx * */
  },
  pututxline: {
    parameters: [
      "buffer", /* const struct utmpx *ut */
    ],
    result: "pointer", /* struct utmpx * */
  },
  endutxent: { parameters: [], result: "void" },
  updwtmpx: {
    parameters: [
      "buffer", /* const char *wtmpx_file */
      "buffer", /* const struct utmpx *utx */
    ],
    result: "void",
  },
  __errno_location: { parameters: [], result: "pointer" /* int * */ },
  // The async API's pool watches that a worker's OS thread still exists while it serves a
  // request (a module may end the thread: pthread_exit). glibc >= 2.30.
  gettid: { parameters: [], result: "i32", /* pid_t */ optional: true },
  getpid: { parameters: [], result: "i32" /* pid_t */ },
  tgkill: {
    parameters: [
      "i32", /* pid_t tgid */
      "i32", /* pid_t tid */
      "i32", /* int sig */
    ],
    result: "i32",
    optional: true,
  },
  // Turns the errno a failed utmpx call left into text for the error message.
  strerror: {
    parameters: [
      "i32", /* int errnum */
    ],
    result: "pointer", /* char * */
  },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * Priorities: the caller runs a session process at a low one while it loads
 * its runtime (src/session/_client.ts), and the session process lowers its
 * own once its session has ended, before it exits. Tables of their own for the
 * caller (with {@linkcode threadListSymbols}): binding a symbol costs Deno some
 * time, and these are all it needs.
 */
export const prioritySymbols = {
  // As PRIO_PROCESS on a thread id (nice values are per thread on Linux).
  getpriority: {
    parameters: [
      "i32", /* int which */
      "u32", /* id_t who */
    ],
    result: "i32",
  },
  setpriority: {
    parameters: [
      "i32", /* int which */
      "u32", /* id_t who */
      "i32", /* int prio */
    ],
    result: "i32",
  },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * The thread ids of a process, from `/proc/PID/task` read through libc:
 * Deno lets only `--allow-all` read `/proc`. For the caller of a session
 * process, which gives every thread of it its priority back.
 */
export const threadListSymbols = {
  // Variadic, called without a mode.
  open_dir: {
    symbol: "open",
    parameters: [
      "buffer", /* const char *path */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  // glibc >= 2.30; returns ssize_t, bound as i32: a count fits.
  getdents64: {
    parameters: [
      "i32", /* int fd */
      "buffer", /* void *dirp (out: struct linux_dirent64 records) */
      "usize", /* size_t count */
    ],
    result: "i32",
    optional: true,
  },
  close_fd: {
    symbol: "close",
    parameters: [
      "i32", /* int fd */
    ],
    result: "i32",
  },
} as const satisfies Record<string, SymbolDefinition>;

/**
 * libc for the session process (src/session/): its control channel's file
 * descriptors, the user its programs run as, and their pseudo-terminal.
 */
export const sessionProcessSymbols = {
  ...prioritySymbols,
  // Blocking reads of the control channel while a synchronous PAM call waits for the caller's
  // answers. read and write return ssize_t, bound as i32: no call here moves near 2 GiB.
  read: {
    parameters: [
      "i32", /* int fd */
      "buffer", /* void *buf */
      "usize", /* size_t count */
    ],
    result: "i32",
  },
  write: {
    parameters: [
      "i32", /* int fd */
      "buffer", /* const void *buf */
      "usize", /* size_t count */
    ],
    result: "i32",
  },
  // fd 1 then points at stderr.
  dup2: {
    parameters: [
      "i32", /* int oldfd */
      "i32", /* int newfd */
    ],
    result: "i32",
  },
  // As CLOSE_RANGE_CLOEXEC: what the caller left open is not inherited by the user's programs
  // (glibc >= 2.34).
  close_range: {
    parameters: [
      "u32", /* unsigned int first */
      "u32", /* unsigned int last */
      "i32", /* int flags */
    ],
    result: "i32",
    optional: true,
  },
  getuid: { parameters: [], result: "u32" /* uid_t */ },
  // A program may run as the session process's own user without setpriv.
  getgid: { parameters: [], result: "u32" /* gid_t */ },
  // The user's uid, gid, home and shell, thread-safe.
  getpwnam_r: {
    parameters: [
      "buffer", /* const char *name */
      "buffer", /* struct passwd *pwd (out) */
      "buffer", /* char *buf (out: the strings pwd points into) */
      "usize", /* size_t buflen */
      "buffer", /* struct passwd **result (out: NULL when there is no such user) */
    ],
    result: "i32",
  },
  // The pseudo-terminal (src/session/_pty.ts). open, fcntl and ioctl are variadic: called with
  // their one optional argument as a fixed one, they find it where they look on x86_64 and
  // aarch64 Linux (the ABIs this supports).
  posix_openpt: {
    parameters: [
      "i32", /* int flags */
    ],
    result: "i32",
  },
  grantpt: {
    parameters: [
      "i32", /* int fd */
    ],
    result: "i32",
  },
  unlockpt: {
    parameters: [
      "i32", /* int fd */
    ],
    result: "i32",
  },
  ptsname_r: {
    parameters: [
      "i32", /* int fd */
      "buffer", /* char *buf (out) */
      "usize", /* size_t buflen */
    ],
    result: "i32",
  },
  open: {
    parameters: [
      "buffer", /* const char *pathname */
      "i32", /* int flags */
    ],
    result: "i32",
  },
  // fcntl as F_DUPFD_CLOEXEC, too: the channel moves off fd 1, so a module's stray printf cannot
  // corrupt it, and no program the session starts inherits it.
  fcntl: {
    parameters: [
      "i32", /* int fd */
      "i32", /* int cmd */
      "i32", /* int arg */
    ],
    result: "i32",
  },
  ioctl: {
    parameters: [
      "i32", /* int fd */
      "usize", /* unsigned long request */
      "buffer", /* void *argp (a struct winsize for TIOCSWINSZ) */
    ],
    result: "i32",
  },
  // Aliased: a bound table's own close() unloads the library.
  close_fd: {
    symbol: "close",
    parameters: [
      "i32", /* int fd */
    ],
    result: "i32",
  },
  // On the descriptor, not the path: Deno wants --allow-all to change a file under /dev.
  fchown: {
    parameters: [
      "i32", /* int fd */
      "u32", /* uid_t owner */
      "u32", /* gid_t group */
    ],
    result: "i32",
  },
  fchmod: {
    parameters: [
      "i32", /* int fd */
      "u32", /* mode_t mode */
    ],
    result: "i32",
  },
  // The tty group.
  getgrnam_r: {
    parameters: [
      "buffer", /* const char *name */
      "buffer", /* struct group *grp (out) */
      "buffer", /* char *buf (out) */
      "usize", /* size_t buflen */
      "buffer", /* struct group **result (out: NULL when there is no such group) */
    ],
    result: "i32",
  },
  // As MADV_DONTNEED on clean, read-only file mappings of an idle session process
  // (src/session/_idle_pages.ts). The address is an integer read from /proc/self/smaps, never a
  // pointer this package dereferences.
  madvise: {
    parameters: [
      "usize", /* void *addr */
      "usize", /* size_t length */
      "i32", /* int advice */
    ],
    result: "i32",
  },
  // An idle session process hands back what libc's allocator holds freed (glibc-only, so
  // optional).
  malloc_trim: {
    parameters: [
      "usize", /* size_t pad */
    ],
    result: "i32",
    optional: true,
  },
} as const satisfies Record<string, SymbolDefinition>;

/** The conversation function libpam calls, `struct pam_conv`'s `conv`. */
export const conversationCallback = {
  parameters: [
    "i32", /* int num_msg */
    "pointer", /* const struct pam_message **msg */
    "pointer", /* struct pam_response **resp (out: a calloc'd array libpam frees) */
    // Only ever the integer id this package put there: taken as an integer, it costs no
    // pointer object and no address conversion per call.
    "usize", /* void *appdata_ptr */
  ],
  result: "i32",
} as const satisfies SymbolDefinition;

/** The `PAM_FAIL_DELAY` function, `void (*delay_fn)(int, unsigned, void *)`. */
export const failDelayCallback = {
  parameters: [
    "i32", /* int retval */
    "u32", /* unsigned usec_delay */
    // The conversation's: the slot id, taken as an integer as there.
    "usize", /* void *appdata_ptr */
  ],
  result: "void",
} as const satisfies SymbolDefinition;

/** Default library file names, overridable per transaction. */
export const defaultLibraries = {
  pam: "libpam.so.0",
  libc: "libc.so.6",
} as const;
