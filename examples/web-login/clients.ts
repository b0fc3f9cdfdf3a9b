/**
 * The web login example's server-side state: one {@linkcode Client} per
 * browser that has posted the login form, keyed by the session id in its
 * cookie. Visiting the page creates nothing here; a login post does, so the
 * table only ever holds browsers that asked for something.
 *
 * The table is bounded: at most `maxClients` entries, and at most
 * `maxPerAddress` of one address that hold no open session. A new entry
 * beyond either bound evicts the least recently seen entry without an open
 * session (its login is cancelled); when every entry holds an open session,
 * no entry is created and the caller refuses the request.
 *
 * Session ids are replaced, never reused: {@linkcode ClientTable.renew}
 * gives an entry a fresh id and token, and the old id finds nothing from
 * then on.
 *
 * @module
 */

import type { LoginSession, PamMessage } from "../../mod.ts";
import type { LoginFlow } from "./flow.ts";

/**
 * What the server keeps for one browser.
 *
 * @example
 * ```ts
 * import { ClientTable } from "./clients.ts";
 * const table = new ClientTable({ maxClients: 10, maxPerAddress: 4, onEvict: () => {} });
 * const client = table.create("192.0.2.1");
 * console.log(client?.id !== undefined);
 * ```
 */
export interface Client {
  /** The session id in the browser's cookie; replaced by {@linkcode ClientTable.renew}. */
  readonly id: string;
  /** The token every form of this browser carries; replaced with the id. */
  readonly csrf: string;
  /** Stays the same across renewals: keys the fail delay when there is no address. */
  readonly key: string;
  /** The address the entry was created from (what the per-address bound counts). */
  readonly address: string | undefined;
  /** When the browser last sent a request, or was last answered. */
  seen: number;
  /** How many of its requests are being answered (the browser is there, not idle). */
  busy: number;
  flow?: LoginFlow;
  session?: LoginSession;
  sessionNotices?: readonly PamMessage[];
  /** What `id` printed as the user, once the session opened. */
  sessionId?: string;
  failure?: { user: string; messages: readonly PamMessage[]; description: string };
  notice?: string;
}

/** A client's fields the table alone may change. */
type Entry = Omit<Client, "id" | "csrf"> & { id: string; csrf: string };

/**
 * How a {@linkcode ClientTable} is bounded.
 *
 * @example
 * ```ts
 * import type { ClientTableOptions } from "./clients.ts";
 * const options: ClientTableOptions = { maxClients: 10_000, maxPerAddress: 16, onEvict: () => {} };
 * ```
 */
export interface ClientTableOptions {
  /** Entries at most. */
  maxClients: number;
  /** Entries without an open session per address at most. */
  maxPerAddress: number;
  /** Told about an entry evicted to make room (already out of the table); cancels what it holds. */
  onEvict: (client: Client) => void;
}

/**
 * A random 256-bit value, base64url: session ids, tokens, nonces.
 *
 * @example
 * ```ts
 * import { randomId } from "./clients.ts";
 * console.log(randomId().length); // 43
 * ```
 */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/**
 * The browsers the server keeps state for, bounded as the module describes.
 *
 * @example
 * ```ts
 * import { ClientTable } from "./clients.ts";
 * const table = new ClientTable({ maxClients: 10, maxPerAddress: 4, onEvict: () => {} });
 * const client = table.create("192.0.2.1")!;
 * const old = client.id;
 * table.renew(client);
 * console.log(table.get(old)); // undefined
 * ```
 */
export class ClientTable {
  readonly #options: ClientTableOptions;
  // Least recently seen first: get() and renew() move an entry to the end.
  readonly #byId = new Map<string, Entry>();
  readonly #byAddress = new Map<string, Set<Entry>>();

  /** An empty table bounded by `options`. */
  constructor(options: ClientTableOptions) {
    this.#options = options;
  }

  /** How many entries there are. */
  get size(): number {
    return this.#byId.size;
  }

  /** The entries, least recently seen first. */
  values(): IterableIterator<Client> {
    return this.#byId.values();
  }

  /** The entry of session id `id`, marked as seen now; `undefined` for an unknown or old id. */
  get(id: string | undefined): Client | undefined {
    const entry = id === undefined ? undefined : this.#byId.get(id);
    if (!entry) return undefined;
    entry.seen = Date.now();
    this.#byId.delete(id!);
    this.#byId.set(id!, entry);
    return entry;
  }

  /** `true` while `client` is in the table (not evicted, forgotten or replaced). */
  has(client: Client): boolean {
    return this.#byId.get(client.id) === client;
  }

  /**
   * A new entry for a browser at `address`, after evicting what the bounds
   * ask for; `undefined` when the table is full of open sessions (then
   * nothing was created, and no cookie may be issued).
   */
  create(address: string | undefined): Client | undefined {
    if (address !== undefined) {
      const mine = [...this.#byAddress.get(address) ?? []].filter((c) => !c.session);
      // Oldest first (seen, then creation order, which the set keeps).
      mine.sort((a, b) => a.seen - b.seen);
      for (const old of mine.slice(0, Math.max(0, mine.length - this.#options.maxPerAddress + 1))) {
        this.#evict(old);
      }
    }
    while (this.#byId.size >= this.#options.maxClients) {
      let oldest: Entry | undefined;
      for (const entry of this.#byId.values()) {
        if (!entry.session) {
          oldest = entry;
          break;
        }
      }
      if (!oldest) return undefined;
      this.#evict(oldest);
    }
    const entry: Entry = {
      id: randomId(),
      csrf: randomId(),
      key: randomId(),
      address,
      seen: Date.now(),
      busy: 0,
    };
    this.#byId.set(entry.id, entry);
    if (address !== undefined) {
      let set = this.#byAddress.get(address);
      if (!set) this.#byAddress.set(address, set = new Set());
      set.add(entry);
    }
    return entry;
  }

  /** Gives `client` a fresh session id and token; the old id is dead from now on. */
  renew(client: Client): void {
    const entry = client as Entry;
    if (!this.has(entry)) return;
    this.#byId.delete(entry.id);
    entry.id = randomId();
    entry.csrf = randomId();
    entry.seen = Date.now();
    this.#byId.set(entry.id, entry);
  }

  /** Takes `client` out of the table; its id finds nothing from now on. */
  delete(client: Client): void {
    if (!this.has(client)) return;
    this.#byId.delete(client.id);
    if (client.address !== undefined) {
      const set = this.#byAddress.get(client.address);
      set?.delete(client as Entry);
      if (set?.size === 0) this.#byAddress.delete(client.address);
    }
  }

  #evict(entry: Entry): void {
    this.delete(entry);
    this.#options.onEvict(entry);
  }
}
