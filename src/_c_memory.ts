/**
 * Ownership of C memory in the types: a {@linkcode CMemory} owns one block
 * (and the blocks attached to it) until {@linkcode CMemory.release} hands
 * it to libpam, which frees it; disposing of it before then wipes every
 * byte with `explicit_bzero` and frees it. Use it with `using`, so that no
 * path, a throw included, forgets the memory or leaves a secret in it.
 *
 * @module
 */

import { native, type Pointer, pointerSize } from "../ffi/mod.ts";
import { openLibc } from "./_library.ts";

/** The size of a block whose length is its NUL-terminated string's (read when it is wiped). */
const STRING = -1;

/**
 * One block of C memory from libc's allocator, owned here until
 * {@linkcode CMemory.release} or {@linkcode CMemory.[Symbol.dispose]}.
 *
 * @example
 * ```ts ignore
 * using block = CMemory.malloc(32, "PAM_XAUTHDATA");
 * pam.pam_set_item_pointer(handle, ItemType.XAUTHDATA, block.pointer); // libpam copies it
 * // wiped and freed here, whatever happened
 * ```
 */
export class CMemory {
  #pointer: Pointer | null;
  readonly #size: number;
  readonly #list: boolean;
  // How far disposing of a string list got: its entries stay in place, so the next call resumes here.
  #listOffset = 0;
  // Blocks freed with this one, before it (a response array's strings); made on first use.
  #attached: (Pointer | null)[] | undefined;
  #attachedSizes: number[] | undefined;

  private constructor(pointer: Pointer, size: number, list: boolean) {
    this.#pointer = pointer;
    this.#size = size;
    this.#list = list;
  }

  /**
   * `size` bytes from `malloc`.
   *
   * @throws {Error} When `malloc` fails; `what` names the memory.
   */
  static malloc(size: number, what: string): CMemory {
    const pointer = openLibc().malloc(size);
    if (!pointer) throw new Error(`malloc failed for ${what}`);
    return new CMemory(pointer, size, false);
  }

  /**
   * A zeroed array of `count` elements of `size` bytes, from `calloc` (what
   * libpam frees a conversation's responses with).
   *
   * @throws {Error} When `calloc` fails; `what` names the memory.
   */
  static calloc(count: number, size: number, what: string): CMemory {
    const pointer = openLibc().calloc(count, size);
    if (!pointer) throw new Error(`calloc failed for ${what}`);
    return new CMemory(pointer, count * size, false);
  }

  /**
   * Takes a NULL-terminated array of `malloc`'d strings that a C call handed
   * to its caller (`pam_getenvlist`'s): disposing of it wipes and frees each
   * string, then the array. The strings are found when it is disposed of,
   * not before, so that however far a caller got reading them, none leaks.
   */
  static stringList(list: Pointer): CMemory {
    return new CMemory(list, 0, true);
  }

  /**
   * The block's address.
   *
   * @throws {Error} Once the block was released or disposed of.
   */
  get pointer(): Pointer {
    if (!this.#pointer) throw new Error("this C memory was released or freed");
    return this.#pointer;
  }

  /**
   * Attaches another `malloc`'d block of `size` bytes at slot `index`: it
   * is released with this one, or wiped and freed (before it) when this one
   * is disposed of.
   */
  attach(index: number, pointer: Pointer, size: number): void {
    this.#attached ??= [];
    this.#attachedSizes ??= [];
    this.#attached[index] = pointer;
    this.#attachedSizes[index] = size;
  }

  /** Hands the block and what is attached to it on (to libpam, which frees it); returns its address. */
  release(): Pointer {
    const pointer = this.pointer;
    this.#pointer = null;
    this.#attached = undefined;
    return pointer;
  }

  /**
   * Wipes and frees the block and what is attached to it, unless it was
   * released. Idempotent: each part is forgotten as soon as it is freed, so
   * a failure part way (the stack limit) leaves the rest to a second call
   * instead of leaking it unwiped.
   */
  [Symbol.dispose](): void {
    const pointer = this.#pointer;
    if (!pointer) return;
    const libc = openLibc();
    const attached = this.#attached;
    if (attached) {
      for (let i = 0; i < attached.length; i++) {
        const block = attached[i];
        if (!block) continue;
        wipeAndFree(block, this.#attachedSizes![i]);
        attached[i] = null;
      }
    }
    if (this.#list) {
      for (;;) {
        const entry = native.readPointer(pointer, this.#listOffset);
        if (!entry) break;
        wipeAndFree(entry, STRING);
        this.#listOffset += pointerSize;
      }
    } else if (this.#size > 0) {
      libc.explicit_bzero(pointer, this.#size);
    }
    libc.free(pointer);
    this.#pointer = null;
  }
}

function wipeAndFree(block: Pointer, size: number): void {
  const libc = openLibc();
  libc.explicit_bzero(block, size === STRING ? libc.strlen(block) : size);
  libc.free(block);
}
