/**
 * Which host names the web login example answers to. A page on any site can
 * make a browser send requests to 127.0.0.1; with DNS rebinding it can even
 * make them same-origin for the browser (`evil.example` resolving to
 * 127.0.0.1), and then it reads the pages and posts the forms with
 * `Host: evil.example` and `Origin: http://evil.example`. Refusing every
 * request whose `Host` is not on an allow-list closes that, and a form post's
 * `Origin` must then be the server's own origin under an allowed name.
 *
 * @module
 */

/**
 * The host names allowed by default: the loopback names. main.ts adds the
 * address the server listens on.
 *
 * @example
 * ```ts
 * import { defaultAllowedHosts } from "./hosts.ts";
 * console.log(defaultAllowedHosts); // ["localhost", "127.0.0.1"]
 * ```
 */
export const defaultAllowedHosts: readonly string[] = ["localhost", "127.0.0.1"];

// A Host header is a name or an IP literal and an optional port: nothing else (no userinfo,
// no path) gets as far as a comparison.
const HOST = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$/;

/**
 * A host name as allow-lists and requests are compared: lower case, an IPv6
 * address in brackets.
 *
 * @example
 * ```ts
 * import { normalizeHost } from "./hosts.ts";
 * console.log(normalizeHost("::1"), normalizeHost("LocalHost")); // "[::1]" "localhost"
 * ```
 */
export function normalizeHost(name: string): string {
  const lower = name.trim().toLowerCase();
  return lower.includes(":") && !lower.startsWith("[") ? `[${lower}]` : lower;
}

/** The host name of a `Host` header value (`name[:port]`), or `undefined` if it is not one. */
function hostName(value: string): string | undefined {
  const match = HOST.exec(value);
  return match ? normalizeHost(match[1]) : undefined;
}

/**
 * Checks requests against an allow-list of host names.
 *
 * @example
 * ```ts
 * import { HostCheck } from "./hosts.ts";
 * const hosts = new HostCheck(["localhost", "127.0.0.1"]);
 * console.log(hosts.allows(new Request("http://127.0.0.1:8000/"))); // true
 * console.log(hosts.allows(new Request("http://evil.example:8000/"))); // false
 * ```
 */
export class HostCheck {
  readonly #allowed: ReadonlySet<string>;

  /**
   * @throws {TypeError} an entry is not a host name.
   */
  constructor(allowed: readonly string[]) {
    const names = new Set<string>();
    for (const name of allowed) {
      const normalized = typeof name === "string" ? normalizeHost(name) : "";
      if (!normalized || !HOST.test(normalized)) {
        throw new TypeError(`Not a host name for the allow-list: ${JSON.stringify(name)}`);
      }
      names.add(normalized);
    }
    this.#allowed = names;
  }

  /**
   * Whether the request names an allowed host: its `Host` header when it has
   * one (what the browser sent) and the host of its URL (what the server
   * made of it) must both be on the list.
   */
  allows(request: Request): boolean {
    const header = request.headers.get("host");
    const names = [new URL(request.url).host, ...(header === null ? [] : [header])];
    return names.every((value) => {
      const name = hostName(value);
      return name !== undefined && this.#allowed.has(name);
    });
  }

  /**
   * Whether a form post's `Origin` header may be accepted for `url` (the
   * request's URL, whose host {@linkcode HostCheck.allows} has already
   * checked): absent (no browser leaves it out of a cross-site post), or
   * exactly the server's origin under an allowed name.
   */
  allowsOrigin(origin: string | null, url: URL): boolean {
    if (origin === null) return true;
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false;
    }
    const name = hostName(parsed.host);
    return origin === url.origin && name !== undefined && this.#allowed.has(name);
  }
}
