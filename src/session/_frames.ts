/**
 * The control channel between a caller and its session process: frames of
 * `[u32 header length][u32 payload length][header JSON][payload bytes]`,
 * big-endian. The header is plain data; the payload carries bytes that must
 * not pass through a JavaScript string (answers, binary prompts, program
 * output), so the side that owns them can wipe them. Internal.
 *
 * @module
 */

/** One decoded frame. `payload` is a fresh copy its receiver owns (and wipes when secret). */
export interface Frame {
  readonly header: Record<string, unknown>;
  readonly payload: Uint8Array;
}

/** Larger headers or payloads mean a corrupt or hostile stream: the channel is closed. */
export const maxHeaderBytes = 1 << 20;
/** See {@linkcode maxHeaderBytes}; program output is sent in chunks below this. */
export const maxPayloadBytes = 1 << 20;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes one frame into a single buffer (one write, so frames never interleave). */
export function encodeFrame(header: object, payload?: Uint8Array): Uint8Array {
  const json = encoder.encode(JSON.stringify(header));
  const length = payload?.length ?? 0;
  if (json.length > maxHeaderBytes || length > maxPayloadBytes) {
    throw new RangeError(
      `a session process frame is limited to ${maxHeaderBytes} header and ${maxPayloadBytes} payload bytes`,
    );
  }
  const out = new Uint8Array(8 + json.length + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length);
  view.setUint32(4, length);
  out.set(json, 8);
  if (payload) out.set(payload, 8 + json.length);
  return out;
}

function parseHeader(bytes: Uint8Array): Record<string, unknown> {
  const value: unknown = JSON.parse(decoder.decode(bytes));
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("a session process frame's header is not an object");
  }
  return value as Record<string, unknown>;
}

function checkLengths(headerLength: number, payloadLength: number): void {
  if (headerLength > maxHeaderBytes || payloadLength > maxPayloadBytes) {
    throw new RangeError("a session process frame is larger than the channel allows");
  }
}

/**
 * Reassembles frames from chunks as a stream delivers them. Bytes it buffered
 * are zeroed once copied out, since they may hold answers.
 */
export class FrameDecoder {
  #buffer = new Uint8Array(0);
  #used = 0;

  /** Adds `chunk` and returns the frames it completed. */
  push(chunk: Uint8Array): Frame[] {
    if (this.#used + chunk.length > this.#buffer.length) {
      const next = new Uint8Array(
        Math.max(this.#used + chunk.length, this.#buffer.length * 2, 4096),
      );
      next.set(this.#buffer.subarray(0, this.#used));
      this.#buffer.fill(0);
      this.#buffer = next;
    }
    this.#buffer.set(chunk, this.#used);
    this.#used += chunk.length;
    const frames: Frame[] = [];
    let start = 0;
    while (this.#used - start >= 8) {
      const view = new DataView(this.#buffer.buffer, start, 8);
      const headerLength = view.getUint32(0);
      const payloadLength = view.getUint32(4);
      checkLengths(headerLength, payloadLength);
      const end = start + 8 + headerLength + payloadLength;
      if (end > this.#used) break;
      const header = parseHeader(this.#buffer.subarray(start + 8, start + 8 + headerLength));
      const payload = this.#buffer.slice(start + 8 + headerLength, end);
      frames.push({ header, payload });
      start = end;
    }
    if (start > 0) {
      this.#buffer.copyWithin(0, start, this.#used);
      this.#buffer.fill(0, this.#used - start, this.#used);
      this.#used -= start;
    }
    return frames;
  }

  /** Zeroes whatever is still buffered. */
  wipe(): void {
    this.#buffer.fill(0);
    this.#used = 0;
  }
}

/**
 * Reads exactly one frame with a blocking `read(length)` function that
 * returns up to `length` bytes, or an empty array at end of file (then
 * `null` is returned when no byte of a frame had arrived).
 */
export function readFrameSync(read: (length: number) => Uint8Array): Frame | null {
  const head = readExactly(read, 8, true);
  if (!head) return null;
  const view = new DataView(head.buffer, head.byteOffset, 8);
  const headerLength = view.getUint32(0);
  const payloadLength = view.getUint32(4);
  checkLengths(headerLength, payloadLength);
  const header = parseHeader(readExactly(read, headerLength, false)!);
  const payload = readExactly(read, payloadLength, false)!;
  return { header, payload };
}

function readExactly(
  read: (length: number) => Uint8Array,
  length: number,
  eofAllowed: boolean,
): Uint8Array | null {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const chunk = read(length - got);
    if (chunk.length === 0) {
      if (eofAllowed && got === 0) return null;
      throw new Error("the session process channel closed in the middle of a frame");
    }
    out.set(chunk, got);
    chunk.fill(0);
    got += chunk.length;
  }
  return out;
}
