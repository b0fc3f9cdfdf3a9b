/**
 * A session program's stdin as the caller feeds it through the session
 * process: writes in order, no more than a window of bytes in flight, and a
 * clear error once the program takes no more. Internal.
 *
 * @module
 */

/**
 * Bytes of a program's input that may be on their way to it (sent to the
 * session process, not yet taken by the program's pipe) before a write
 * waits: the session process holds no more than this per program, however
 * slowly the program reads.
 */
export const INPUT_WINDOW_BYTES = 256 * 1024;

/** Input goes in frames of at most this many bytes (a frame's limit is 1 MiB). */
export const INPUT_FRAME_BYTES = 64 * 1024;

/**
 * One program's input. The session process writes each frame to the
 * program's pipe and reports when the pipe took it ({@linkcode ProgramInput.taken}),
 * or that it never will; the writer waits while more than
 * {@linkcode INPUT_WINDOW_BYTES} are unreported.
 */
export class ProgramInput {
  readonly #send: (part: Uint8Array) => Promise<void>;
  readonly #sendEnd: () => Promise<void>;
  #unacked = 0;
  #wake: (() => void) | undefined;
  /** Why the program takes no more input, once it does not. */
  #closed: Error | undefined;
  #tail: Promise<void> = Promise.resolve();

  constructor(send: (part: Uint8Array) => Promise<void>, sendEnd: () => Promise<void>) {
    this.#send = send;
    this.#sendEnd = sendEnd;
  }

  /**
   * Sends `bytes` after every earlier write; resolves once they are on their
   * way and the bytes in flight are back within the window.
   *
   * @throws {Error} (a rejection) once the program takes no more input
   *   (it exited, closed its input, or the session process died), or
   *   {@linkcode ProgramInput.cancel} was called.
   */
  write(bytes: Uint8Array): Promise<void> {
    const run = () => this.#write(bytes);
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => {});
    return result;
  }

  // As with a pipe, a failure shows at the write after the bytes that met it: a write resolves
  // once its bytes are on their way, and waiting for each report would cost a round trip apiece.
  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) throw this.#closed;
    for (let at = 0; at < bytes.length; at += INPUT_FRAME_BYTES) {
      if (this.#closed) throw this.#closed;
      const part = bytes.subarray(at, at + INPUT_FRAME_BYTES);
      // Counted before it is sent: the report may come back before send() resolves.
      this.#unacked += part.length;
      await this.#send(part);
      while (this.#unacked > INPUT_WINDOW_BYTES) {
        if (this.#closed) throw this.#closed;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    }
  }

  /** Ends the input once every earlier write has settled. */
  end(): void {
    const run = () => this.#sendEnd().catch(() => {});
    this.#tail = this.#tail.then(run, run);
  }

  /**
   * The session process's report on `bytes` of one frame: taken by the
   * program's pipe, or `failed` (the pipe is closed). Values out of range
   * are ignored.
   */
  taken(bytes: unknown, failed: boolean): void {
    if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) return;
    if (bytes > this.#unacked) return;
    this.#unacked -= bytes;
    if (failed) {
      this.close(new Error("the program's stdin is closed: it exited or closed its input"));
    }
    if (this.#unacked <= INPUT_WINDOW_BYTES) this.#wakeUp();
  }

  /** The program takes no more input (`reason` says why): a write waiting or later rejects. */
  close(reason: Error): void {
    this.#closed ??= reason;
    this.#wakeUp();
  }

  /** Gives up on what is being written (the stream was aborted). */
  cancel(): void {
    this.close(new Error("the write to the program's stdin was aborted"));
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
