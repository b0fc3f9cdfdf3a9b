/**
 * A conversation for programs run in a terminal, behaving like Linux-PAM's
 * `misc_conv` (libpam_misc), which `pamtester`, `su` and friends use:
 * prompts on stderr, echo really off for passwords on a TTY, info messages on
 * stdout and error messages on stderr, and, when stdin is not a TTY, one line
 * of stdin per prompt, read a byte at a time so nothing past the line is
 * consumed.
 *
 * @module
 */

import { fstatSync } from "node:fs";
import { isatty } from "node:tty";
import { termiosConstants, termiosLayout } from "../../ffi/mod.ts";
import { MessageStyle } from "../constants.ts";
import type { PamAnswer, PamMessage } from "../conversation.ts";
import { wipeByteAnswers } from "../_answers.ts";
import { openLibc } from "../_library.ts";
import { checkKnownKeys, optionsObject } from "../_validate.ts";
import { readInto, write } from "./_fd_io.ts";

/**
 * Options for {@linkcode terminalConversation}.
 *
 * @example
 * ```ts
 * import type { TerminalConversationOptions } from "@seed/pam/cli";
 * const options: TerminalConversationOptions = { infoOutput: 2 };
 * ```
 */
export interface TerminalConversationOptions {
  /** The file descriptor answers are read from (default 0, standard input). */
  input?: number | undefined;
  /** Where info messages go (default 1, standard output, as `misc_conv`). */
  infoOutput?: number | undefined;
  /** Where prompts and error messages go (default 2, standard error). */
  errorOutput?: number | undefined;
  /** Told about every info and error message, after it was written. */
  onMessage?: ((message: PamMessage) => void) | undefined;
}

/**
 * A conversation function that also reports whether the user interrupted it.
 *
 * @example
 * ```ts
 * import { terminalConversation, type TerminalConversation } from "@seed/pam/cli";
 * const conversation: TerminalConversation = terminalConversation();
 * console.log(conversation.interrupted); // false
 * ```
 */
export interface TerminalConversation {
  /** Answers one batch of messages (a {@linkcode Conversation}). */
  (messages: readonly PamMessage[]): PamAnswer[];
  /**
   * `true` once the user pressed Ctrl-C (or Ctrl-\) at an echo-off prompt;
   * from then on every call fails without prompting.
   */
  readonly interrupted: boolean;
  /**
   * `true` once a prompt met end of input (nothing at all was read for it, or
   * Ctrl-D on an empty line) and so was answered NULL, as `misc_conv` answers.
   * A NULL answer is not a password, but a module may still take it for the
   * empty one: check this before trusting a success.
   */
  readonly endOfInput: boolean;
}

/**
 * Thrown (and so turned into `PAM_CONV_ERR`) when the user interrupts an
 * echo-off prompt with Ctrl-C.
 *
 * @example
 * ```ts
 * import { PamError } from "@seed/pam";
 * import { TerminalInterrupt } from "@seed/pam/cli";
 * function wasInterrupted(error: unknown): boolean {
 *   return error instanceof PamError && error.cause instanceof TerminalInterrupt;
 * }
 * ```
 */
export class TerminalInterrupt extends Error {
  /** Builds the error. */
  constructor() {
    super("interrupted at the terminal");
    this.name = "TerminalInterrupt";
  }
}

// misc_conv reads at most PAM_MISC_CONV_BUFSIZE - 1 bytes (Debian: 4096 - 1).
const INPUT_MAX = 4095;

// glibc's struct termios: the members and values misc_conv changes (ffi/layouts.ts).
const TERMIOS_SIZE = termiosLayout.size;
const LFLAG = termiosLayout.lflag.offset;
const CC = termiosLayout.cc.offset;
const { ISIG, ICANON, ECHO, VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN } = termiosConstants;
const { VSUSP, VWERASE, VLNEXT, TCSADRAIN, TCSAFLUSH } = termiosConstants;
// <fcntl.h>; /dev/null is character device 1:3 (<linux/major.h>, glibc's makedev encoding).
const F_GETFL = 3;
const O_ACCMODE = 0o3;
const O_RDWR = 0o2;
const DEV_NULL = (1 << 8) | 3;

/**
 * Whether `fd` is what the runtime put in place of a standard descriptor the
 * process was started without (`<&-`). Deno (Rust's runtime) and Bun open
 * /dev/null read-write there before any JavaScript runs, so reads see end
 * of input where misc_conv's `read(2)` fails with `EBADF`. A redirection
 * from /dev/null (`</dev/null`) is read-only, and keeps its end of input.
 */
function standsInForClosed(fd: number): boolean {
  if (fd < 0 || fd > 2) return false;
  let rdev: number;
  try {
    const stat = fstatSync(fd);
    if (!stat.isCharacterDevice()) return false;
    rdev = Number(stat.rdev);
  } catch {
    // Not open at all: the read fails on its own.
    return false;
  }
  return rdev === DEV_NULL && (openLibc().fcntl(fd, F_GETFL) & O_ACCMODE) === O_RDWR;
}

/** What reading one answer produced. */
interface Line {
  /** The bytes read (the line, with its newline when there was one); `undefined` on error. */
  bytes: Uint8Array | undefined;
  interrupted?: boolean;
}

/** Not a TTY: one line, one byte at a time, as misc_conv does, so the rest stays in stdin. */
function readPlainLine(fd: number): Line {
  const line = new Uint8Array(INPUT_MAX);
  const one = new Uint8Array(1);
  try {
    let n = 0;
    while (n < INPUT_MAX && (n === 0 || line[n - 1] !== 0x0a)) {
      const got = readInto(fd, one);
      if (got < 0) {
        line.fill(0);
        return { bytes: undefined };
      }
      if (got === 0) break;
      line[n++] = one[0];
    }
    return { bytes: line.subarray(0, n) };
  } finally {
    one.fill(0);
  }
}

/** A TTY in canonical mode (echo-on prompts): one read returns one line, as in misc_conv. */
function readTerminalLine(fd: number): Line {
  const line = new Uint8Array(INPUT_MAX);
  const got = readInto(fd, line);
  if (got < 0) {
    line.fill(0);
    return { bytes: undefined };
  }
  return { bytes: line.subarray(0, got) };
}

/**
 * A TTY with echo, canonical mode and signals off (echo-off prompts): the
 * line editing the terminal would do, done here, so that Ctrl-C arrives as
 * a byte and the terminal is restored before anything else happens.
 */
function readSecretLine(fd: number, cc: Uint8Array): Line {
  const line = new Uint8Array(INPUT_MAX);
  const one = new Uint8Array(1);
  let n = 0;
  let literal = false;
  try {
    while (n < INPUT_MAX) {
      const got = readInto(fd, one);
      if (got < 0) {
        line.fill(0);
        return { bytes: undefined };
      }
      if (got === 0) break;
      const c = one[0];
      const is = (index: number) => cc[index] !== 0 && c === cc[index];
      if (literal) {
        literal = false;
      } else if (is(VINTR) || is(VQUIT)) {
        line.fill(0);
        return { bytes: undefined, interrupted: true };
      } else if (is(VEOF)) {
        // Like the terminal's own ^D: ends the line without a newline; on an empty line, input.
        break;
      } else if (is(VERASE) || c === 0x08 || c === 0x7f) {
        // Drop one character: its UTF-8 continuation bytes, then its lead byte.
        while (n > 0 && (line[n - 1] & 0xc0) === 0x80) line[--n] = 0;
        if (n > 0) line[--n] = 0;
        continue;
      } else if (is(VKILL)) {
        line.fill(0, 0, n);
        n = 0;
        continue;
      } else if (is(VWERASE)) {
        while (n > 0 && (line[n - 1] === 0x20 || line[n - 1] === 0x09)) line[--n] = 0;
        while (n > 0 && line[n - 1] !== 0x20 && line[n - 1] !== 0x09) line[--n] = 0;
        continue;
      } else if (is(VLNEXT)) {
        literal = true;
        continue;
      } else if (is(VSUSP)) {
        // misc_conv blocks SIGTSTP while it reads.
        continue;
      }
      line[n++] = c;
      if (c === 0x0a) break;
    }
    return { bytes: line.subarray(0, n) };
  } finally {
    one.fill(0);
  }
}

function tcgetattr(fd: number): Uint8Array | undefined {
  const attributes = new Uint8Array(TERMIOS_SIZE);
  return openLibc().tcgetattr(fd, attributes) === 0 ? attributes : undefined;
}

function tcsetattr(fd: number, when: number, attributes: Uint8Array): void {
  openLibc().tcsetattr(fd, when, attributes);
}

function setFlags(attributes: Uint8Array, clear: number): Uint8Array {
  const copy = attributes.slice();
  const view = new DataView(copy.buffer);
  view.setUint32(LFLAG, view.getUint32(LFLAG, true) & ~clear, true);
  if (clear & ICANON) {
    copy[CC + VMIN] = 1;
    copy[CC + VTIME] = 0;
  }
  return copy;
}

/**
 * A conversation for a program run in a terminal, with the behaviour of
 * Linux-PAM's `misc_conv` (what `pamtester` uses):
 *
 * - Prompts go to stderr. On a TTY, echo-off prompts (passwords) are read
 *   with echo really off and a newline is printed after them; the terminal
 *   is restored before the answer is used, and Ctrl-C there restores it,
 *   marks the conversation {@linkcode TerminalConversation.interrupted} and
 *   fails the PAM call. Pending type-ahead is dropped before each prompt.
 * - When stdin is not a TTY, each prompt takes one line of stdin (without
 *   its newline; at most 4095 bytes), read a byte at a time so that the rest
 *   stays for the next prompt. At end of input the answer is NULL, and
 *   {@linkcode TerminalConversation.endOfInput} becomes `true`. A closed
 *   stdin (`<&-`, which the runtimes replace with /dev/null opened
 *   read-write) or a failed read fails the conversation instead, as in
 *   `misc_conv`.
 * - Info messages go to stdout, error messages to stderr, each with a
 *   newline; binary prompts and unknown styles fail the conversation.
 *
 * Answers are handed to libpam as bytes and wiped once copied.
 *
 * @example
 * ```ts
 * import { PamTransaction } from "@seed/pam";
 * import { terminalConversation } from "@seed/pam/cli";
 *
 * using tx = PamTransaction.start({
 *   service: "login",
 *   user: "alice",
 *   conversation: terminalConversation(),
 * });
 * tx.authenticate();
 * ```
 *
 * @throws {TypeError} for options of the wrong type or an unknown key.
 * @tags allow-ffi
 */
export function terminalConversation(
  options: TerminalConversationOptions = {},
): TerminalConversation {
  const what = "terminalConversation() options";
  checkKnownKeys(
    optionsObject(options, what),
    ["input", "infoOutput", "errorOutput", "onMessage"],
    what,
  );
  const input = options.input ?? 0;
  const info = options.infoOutput ?? 1;
  const errors = options.errorOutput ?? 2;
  const onMessage = options.onMessage;
  let interrupted = false;
  let endOfInput = false;

  const readAnswer = (echo: boolean, prompt: string): Uint8Array | null => {
    let before: Uint8Array | undefined;
    if (isatty(input)) {
      before = tcgetattr(input);
      if (!before) throw new Error("cannot read the terminal's settings (tcgetattr failed)");
    }
    let line: Line | undefined;
    try {
      if (!before) {
        write(errors, prompt);
        // As misc_conv's failed read: the conversation fails, it does not answer NULL.
        line = standsInForClosed(input) ? { bytes: undefined } : readPlainLine(input);
      } else {
        // Echo-on prompts keep the terminal as it is; flushing drops type-ahead, as misc_conv
        // does.
        const during = echo ? before : setFlags(before, ECHO | ICANON | ISIG);
        tcsetattr(input, TCSAFLUSH, during);
        try {
          write(errors, prompt);
          line = echo ? readTerminalLine(input) : readSecretLine(input, before.subarray(CC));
        } finally {
          tcsetattr(input, TCSADRAIN, before);
          try {
            if (!echo) write(errors, "\n");
          } finally {
            tcsetattr(input, TCSAFLUSH, before);
          }
        }
      }
      if (line.interrupted) {
        interrupted = true;
        throw new TerminalInterrupt();
      }
      const bytes = line.bytes;
      if (bytes === undefined) {
        if (echo) write(errors, "\n");
        throw new Error("cannot read the answer from standard input");
      }
      if (bytes.length === 0) {
        // End of input: misc_conv answers NULL.
        endOfInput = true;
        if (echo) write(errors, "\n");
        return null;
      }
      let end = bytes.length;
      if (bytes[end - 1] === 0x0a) end--;
      else if (echo) write(errors, "\n");
      // misc_conv strdup()s the line, so it ends at the first NUL.
      const nul = bytes.subarray(0, end).indexOf(0);
      if (nul !== -1) end = nul;
      return bytes.slice(0, end);
    } finally {
      // Whatever happened after the read (a failed write to stderr included).
      line?.bytes?.fill(0);
    }
  };

  const conversation = (messages: readonly PamMessage[]): PamAnswer[] => {
    if (interrupted) throw new TerminalInterrupt();
    const answers: PamAnswer[] = [];
    try {
      for (const message of messages) {
        switch (message.style) {
          case MessageStyle.PROMPT_ECHO_OFF:
            answers.push(readAnswer(false, message.text));
            break;
          case MessageStyle.PROMPT_ECHO_ON:
            answers.push(readAnswer(true, message.text));
            break;
          case MessageStyle.ERROR_MSG:
            write(errors, `${message.text}\n`);
            onMessage?.(message);
            answers.push(null);
            break;
          case MessageStyle.TEXT_INFO:
            write(info, `${message.text}\n`);
            onMessage?.(message);
            answers.push(null);
            break;
          case MessageStyle.BINARY_PROMPT:
            throw new TypeError("the terminal conversation cannot answer binary prompts");
          default:
            write(errors, `erroneous conversation (${message.style})\n`);
            throw new TypeError(`unknown conversation message style ${message.style}`);
        }
      }
    } catch (error) {
      // The answers collected so far are never handed over.
      wipeByteAnswers(answers);
      throw error;
    }
    return answers;
  };
  Object.defineProperties(conversation, {
    interrupted: { get: () => interrupted },
    endOfInput: { get: () => endOfInput },
  });
  return conversation as TerminalConversation;
}
