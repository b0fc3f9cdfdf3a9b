/**
 * One `DataView` cache shared by the adapters: the same struct or
 * out-parameter buffer is usually read or written several times in a row,
 * and a fresh `DataView` per access is an allocation each time.
 *
 * @module
 */

let lastBuffer: Uint8Array | undefined;
let lastView: DataView | undefined;

/** A `DataView` over exactly `buffer`'s bytes, reused while the same buffer comes back. */
export function dataViewOf(buffer: Uint8Array): DataView {
  if (buffer !== lastBuffer) {
    lastView = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    lastBuffer = buffer;
  }
  return lastView!;
}
