/**
 * Argument checks that run before any C call, so bad input becomes a
 * `TypeError` (a value of the wrong type) or a `RangeError` (the right type,
 * out of range) instead of a truncated string or a crash.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Encodes `value` as a NUL-terminated C string, refusing embedded NULs. */
export function cString(value: unknown, what: string): Uint8Array {
  checkCString(value, what);
  return encoder.encode(value + "\0");
}

/**
 * Throws as {@linkcode cString} would, without encoding: for arguments that
 * are checked on one thread and encoded on another.
 */
export function checkCString(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string") {
    throw new TypeError(`${what} must be a string, got ${describe(value)}`);
  }
  if (value.includes("\0")) {
    throw new TypeError(`${what} contains a NUL byte, which C would silently truncate`);
  }
}

/**
 * {@linkcode cString} with a one-entry memory, for values that repeat call
 * after call (service, user, confdir): encoding costs a fresh buffer, and a
 * fresh buffer handed to C costs a backing store. Only for values C copies and
 * that are no secret; nobody may write to the bytes it returns.
 */
export class CStringCache {
  #value: string | undefined;
  #bytes: Uint8Array | null = null;

  /** The encoded `value`; `undefined` and `null` give C's NULL. */
  get(value: unknown, what: string): Uint8Array | null {
    if (value === undefined || value === null) return null;
    if (value !== this.#value || this.#bytes === null) {
      this.#bytes = cString(value, what);
      this.#value = value as string;
    }
    return this.#bytes;
  }
}

/** Whether a `pam_putenv` entry lacks its name (`""`, `"=value"`). */
export function envNameMissing(entry: string): boolean {
  return entry === "" || entry.startsWith("=");
}

/** Throws unless `entry` is a `pam_putenv` entry: `"NAME=value"`, `"NAME="` or `"NAME"`. */
export function checkEnvEntry(entry: unknown): asserts entry is string {
  checkCString(entry, "the environment entry");
  if (envNameMissing(entry)) {
    throw new TypeError('putEnv() takes "NAME=value", "NAME=" or "NAME"; the name is missing');
  }
}

/** Checks `PAM_XAUTHDATA` as the application gives it; returns it typed. */
export function checkXAuthData(xauth: unknown): { name: string; data: Uint8Array } {
  const o = optionsObject<{ name: unknown; data: unknown }>(xauth, "setXAuthData() argument");
  checkCString(o.name, "XAuthData.name");
  if (!(o.data instanceof Uint8Array)) {
    throw new TypeError(`XAuthData.data must be a Uint8Array, got ${describe(o.data)}`);
  }
  return { name: o.name, data: o.data };
}

/** Throws unless `value` is a conversation function or absent. */
export function checkConversation(value: unknown): void {
  if (value !== undefined && typeof value !== "function") {
    throw new TypeError(`conversation must be a function, got ${describe(value)}`);
  }
}

/** `value` when it is a boolean, `undefined` when absent; throws otherwise. */
export function optionalBoolean(value: unknown, what: string): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`${what} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

/**
 * Throws unless `value` is a `failDelay` option: `"native"`, `"report"`,
 * `"async"` where the async API takes it, or absent.
 */
export function checkFailDelay(value: unknown, async = false): void {
  if (value === undefined || value === "native" || value === "report") return;
  if (async && value === "async") return;
  throw new TypeError(
    `failDelay must be ${async ? '"async", ' : ""}"native" or "report", got ${
      describeChoice(value)
    }`,
  );
}

/**
 * A bad choice among names, for error messages: strings, numbers and
 * booleans as written, anything else by its type (JSON.stringify would
 * throw on a BigInt or a cycle).
 */
export function describeChoice(value: unknown): string {
  const t = typeof value;
  return t === "string" || t === "number" || t === "boolean"
    ? JSON.stringify(value)
    : describe(value);
}

/**
 * Throws unless `value` is an integer from `min` to `max`: a `TypeError` for
 * a non-number (`${what} must be ${kind}`), a `RangeError` otherwise
 * (`${what} must be ${range}`).
 */
export function checkIntegerIn(
  value: unknown,
  min: number,
  max: number,
  what: string,
  range: string,
  kind = "a number",
): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be ${kind}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be ${range}, got ${value}`);
  }
}

/** A short, secret-free description of a value's type for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * Throws a `TypeError` naming the first own key of `object` that is not in
 * `known`, and listing the known ones: a misspelt or misplaced option (a
 * `password` given where a `conversation` belongs) must not be ignored.
 */
export function checkKnownKeys(object: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) throw unknownKey(key, known, what);
  }
}

/** The error {@linkcode checkKnownKeys} throws, for checks that walk the keys themselves. */
export function unknownKey(key: string, known: readonly string[], what: string): TypeError {
  return new TypeError(`${what} has no option ${JSON.stringify(key)} (known: ${known.join(", ")})`);
}

/** Throws unless `service` is a non-empty C string. */
export function checkService(service: unknown): asserts service is string {
  checkCString(service, "service");
  if (service === "") throw new TypeError("service must not be empty: it names the service file");
}

/** Throws unless `value` is a plain options object (or undefined, when allowed). */
export function optionsObject<T extends object>(value: unknown, what: string): T {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TypeError(`${what} must be an object, got ${describe(value)}`);
  }
  // A plain snapshot of its own properties, each read exactly once, here: a getter or a Proxy
  // cannot pass a check with one value and be used with another. A loop, not
  // Object.fromEntries(Object.entries()): this runs on every transaction's start, and that
  // pair costs an array per property.
  const source = value as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  const keys = Object.keys(source);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const read = source[key];
    // A data property even for "__proto__", which an assignment would take as the prototype.
    if (key === "__proto__") {
      Object.defineProperty(copy, key, {
        value: read,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else copy[key] = read;
  }
  return copy as T;
}

/**
 * Returns `value` when it is `undefined` or a timeout in milliseconds that
 * `setTimeout` honours (more than 0, at most 2^31 - 1); throws otherwise.
 */
export function checkTimeoutMs(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(`${what} must be a number of milliseconds, got ${describe(value)}`);
  }
  if (!(value > 0) || value > 2 ** 31 - 1) {
    throw new RangeError(`${what} must be more than 0 and at most 2^31 - 1 ms, got ${value}`);
  }
  return value;
}
