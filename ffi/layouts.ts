/**
 * The C structs and constants this package reads and writes by hand, as
 * data: offsets and sizes in bytes for LP64 Linux (x86_64, aarch64) with
 * glibc and Linux-PAM. Nothing above `ffi/` writes a struct offset of its
 * own. `test/c_layouts.test.ts` compiles a C program against the system's
 * headers and compares every table here with what the compiler says.
 *
 * @module
 */

/** Where one member of a C struct lies: its byte offset and its size. */
export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
}

/** `sizeof(void *)`: the stride of the C pointer arrays libpam hands over. */
export const pointerSize = 8;

/** `struct pam_message` (`<security/_pam_types.h>`): one message of a conversation call. */
export const pamMessageLayout = {
  size: 16,
  /** `int msg_style` */
  style: { offset: 0, size: 4 },
  /** `const char *msg` */
  msg: { offset: 8, size: 8 },
} as const;

/** `struct pam_response`: one answer; the conversation returns a `calloc`'d array of them. */
export const pamResponseLayout = {
  size: 16,
  /** `char *resp`, from `malloc`: libpam frees it. */
  resp: { offset: 0, size: 8 },
  /** `int resp_retcode`, unused by Linux-PAM (left 0). */
  retcode: { offset: 8, size: 4 },
} as const;

/** `struct pam_conv`, which `pam_start` copies. */
export const pamConvLayout = {
  size: 16,
  /** `int (*conv)(int, const struct pam_message **, struct pam_response **, void *)` */
  conv: { offset: 0, size: 8 },
  /** `void *appdata_ptr` */
  appdataPtr: { offset: 8, size: 8 },
} as const;

/** `struct pam_xauth_data`, the `PAM_XAUTHDATA` item. */
export const pamXAuthDataLayout = {
  size: 32,
  /** `int namelen` */
  namelen: { offset: 0, size: 4 },
  /** `char *name` */
  name: { offset: 8, size: 8 },
  /** `int datalen` */
  datalen: { offset: 16, size: 4 },
  /** `char *data` */
  data: { offset: 24, size: 8 },
} as const;

/**
 * glibc's `struct termios` (`<bits/termios-struct.h>`), the members the
 * terminal conversation changes; the rest are copied through untouched.
 */
export const termiosLayout = {
  size: 60,
  /** `tcflag_t c_lflag` */
  lflag: { offset: 12, size: 4 },
  /** `cc_t c_cc[NCCS]`, indexed by the `V*` constants. */
  cc: { offset: 17, size: 32 },
} as const;

/** The `<termios.h>` values the terminal conversation uses, as `misc_conv` does. */
export const termiosConstants = {
  ISIG: 0o1,
  ICANON: 0o2,
  ECHO: 0o10,
  VINTR: 0,
  VQUIT: 1,
  VERASE: 2,
  VKILL: 3,
  VEOF: 4,
  VTIME: 5,
  VMIN: 6,
  VSUSP: 10,
  VWERASE: 14,
  VLNEXT: 15,
  TCSADRAIN: 1,
  TCSAFLUSH: 2,
  /** `ioctl` request that sets a terminal's {@linkcode winsizeLayout}. */
  TIOCSWINSZ: 0x5414,
} as const;

/** `struct winsize` (`<sys/ioctl.h>`): a terminal's size, for `TIOCSWINSZ`. */
export const winsizeLayout = {
  size: 8,
  /** `unsigned short ws_row` */
  row: { offset: 0, size: 2 },
  /** `unsigned short ws_col` */
  col: { offset: 2, size: 2 },
} as const;

/** glibc's `struct passwd` (`<pwd.h>`), filled by `getpwnam_r`. */
export const passwdLayout = {
  size: 48,
  /** `char *pw_name` */
  name: { offset: 0, size: 8 },
  /** `uid_t pw_uid` */
  uid: { offset: 16, size: 4 },
  /** `gid_t pw_gid` */
  gid: { offset: 20, size: 4 },
  /** `char *pw_dir` */
  dir: { offset: 32, size: 8 },
  /** `char *pw_shell` */
  shell: { offset: 40, size: 8 },
} as const;

/** glibc's `struct group` (`<grp.h>`), filled by `getgrnam_r`. */
export const groupLayout = {
  size: 32,
  /** `gid_t gr_gid` */
  gid: { offset: 16, size: 4 },
} as const;

/**
 * The records `getdents64` fills (the kernel's `struct linux_dirent64`,
 * laid out as glibc's `struct dirent64` in `<dirent.h>`).
 */
export const dirent64Layout = {
  /** glibc's struct; the kernel's records are only as long as their name needs. */
  size: 280,
  /** `unsigned short d_reclen`: the record's length, to the next one. */
  reclen: { offset: 16, size: 2 },
  /** `char d_name[]`, NUL-terminated. */
  name: { offset: 19, size: 256 },
} as const;

/**
 * glibc's `struct utmpx` on x86_64 (`<bits/utmpx.h>`): 384 bytes, `ut_tv` as
 * two 32-bit fields so 32- and 64-bit programs share the files.
 */
export const utmpxLayout = {
  size: 384,
  type: { offset: 0, size: 2 },
  pid: { offset: 4, size: 4 },
  line: { offset: 8, size: 32 },
  id: { offset: 40, size: 4 },
  user: { offset: 44, size: 32 },
  host: { offset: 76, size: 256 },
  exit: { offset: 332, size: 4 },
  session: { offset: 336, size: 4 },
  tvSec: { offset: 340, size: 4 },
  tvUsec: { offset: 344, size: 4 },
  addrV6: { offset: 348, size: 16 },
} as const;

/** `ut_type` values from `<utmpx.h>`. */
export const UtmpType = {
  EMPTY: 0,
  RUN_LVL: 1,
  BOOT_TIME: 2,
  NEW_TIME: 3,
  OLD_TIME: 4,
  INIT_PROCESS: 5,
  LOGIN_PROCESS: 6,
  USER_PROCESS: 7,
  DEAD_PROCESS: 8,
} as const;
