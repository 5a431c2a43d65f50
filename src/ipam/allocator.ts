// Address allocation for pods.
//
// AddressAllocator hands out addresses from one prefix, round-robin like CNI's
// host-local: it continues after the last address it gave out and wraps, so a
// just-freed address is the last to be reused and stale ARP/neighbour/conntrack
// state on other hosts does not reach a new workload.
//
// Ipam combines one allocator per family with a record of who holds what, so
// that a workload gets at most one IPv4 and one IPv6 address, and addresses
// outlive prefix changes and daemon restarts (see markUsed).

import { IpamConflictError, IpamExhaustedError, IpamNotReadyError } from "./errors.js";
import {
  type Family,
  type Prefix,
  type Prefixes,
  bigintToAddress,
  parseAddress,
} from "./prefix.js";

export { IpamConflictError, IpamExhaustedError, IpamNotReadyError } from "./errors.js";

export interface AddressAllocatorOptions {
  /**
   * Keep the first host address (network + 1) out of the pool; the node uses
   * it. Default true.
   */
  reserveFirstHost?: boolean;
  /** More addresses never to hand out. Ones outside the prefix are ignored. */
  reserved?: Iterable<string | bigint>;
  /** Resume round-robin after this address (the last one handed out). */
  cursor?: bigint;
}

/**
 * The free/used state of one prefix.
 *
 * Candidates are network+1 .. last-1 for IPv4 (no network, no broadcast) and
 * network+1 .. last for IPv6 (no subnet-router anycast address), minus the
 * reserved ones. An IPv4 /31 or /32 therefore has no candidates and is always
 * exhausted: the point-to-point use of /31 (RFC 3021) does not fit pods, which
 * need the prefix to leave room for the node. Likewise IPv6 /128, and /127
 * once its first host is reserved.
 *
 * Cost: allocate() scans forward from the cursor, skipping used addresses.
 * Under round-robin the addresses right after the cursor are normally free, so
 * a call is O(1) however many are allocated; the worst case is bounded by the
 * number used plus reserved, and a full pool is detected in O(1) by counting.
 */
export class AddressAllocator {
  private readonly first: bigint;
  private readonly lastCandidate: bigint;
  /** Reserved addresses inside the candidate range. */
  private readonly reserved = new Set<bigint>();
  /** Used candidates (never reserved ones, so the count below stays exact). */
  private readonly used = new Set<bigint>();
  private readonly capacity: bigint;
  private cursorValue: bigint | undefined;

  constructor(
    readonly prefix: Prefix,
    options: AddressAllocatorOptions = {},
  ) {
    this.first = prefix.network + 1n;
    this.lastCandidate = prefix.family === 4 ? prefix.last - 1n : prefix.last;
    const span = this.lastCandidate >= this.first ? this.lastCandidate - this.first + 1n : 0n;
    if (options.reserveFirstHost ?? true) this.reserve(prefix.network + 1n);
    for (const r of options.reserved ?? []) {
      if (typeof r === "bigint") {
        this.reserve(r);
      } else {
        const addr = parseAddress(r);
        if (addr.family === prefix.family) this.reserve(addr.value);
      }
    }
    this.capacity = span - BigInt(this.reserved.size);
    this.cursorValue = options.cursor;
  }

  /** The last address handed out, where round-robin resumes. */
  get cursor(): bigint | undefined {
    return this.cursorValue;
  }

  /** How many more addresses could be handed out. */
  get available(): bigint {
    return this.capacity - BigInt(this.used.size);
  }

  /** Whether addr can ever be handed out by this allocator. */
  isCandidate(addr: bigint): boolean {
    return addr >= this.first && addr <= this.lastCandidate && !this.reserved.has(addr);
  }

  isUsed(addr: bigint): boolean {
    return this.used.has(addr);
  }

  /** Takes the next free address after the cursor, or returns undefined when none is left. */
  allocate(): bigint | undefined {
    if (this.available <= 0n) return undefined;
    const c = this.cursorValue;
    let addr = c === undefined || c < this.first || c >= this.lastCandidate ? this.first : c + 1n;
    // Terminates: available > 0 means some candidate is neither used nor reserved.
    while (this.used.has(addr) || this.reserved.has(addr)) {
      addr = addr === this.lastCandidate ? this.first : addr + 1n;
    }
    this.used.add(addr);
    this.cursorValue = addr;
    return addr;
  }

  /** Records addr as taken (e.g. found in use at restart). Non-candidates are ignored. */
  markUsed(addr: bigint): void {
    if (this.isCandidate(addr)) this.used.add(addr);
  }

  /** Frees addr. The cursor stays, so addr is reused only after a full lap. */
  release(addr: bigint): void {
    this.used.delete(addr);
  }

  private reserve(addr: bigint): void {
    if (addr >= this.first && addr <= this.lastCandidate) this.reserved.add(addr);
  }
}

/** An owner's addresses in canonical text form. */
export interface Allocation {
  v4?: string;
  v6?: string;
}

export interface IpamOptions {
  /** See AddressAllocatorOptions.reserveFirstHost. Default true. */
  reserveFirstHost?: boolean;
  /** Addresses never handed out, in any prefix (either family). */
  reserved?: readonly string[];
}

type Slot = "v4" | "v6";
const SLOTS: readonly Slot[] = ["v4", "v6"];
const slotOf = (family: Family): Slot => (family === 4 ? "v4" : "v6");

interface Holding {
  owner: string;
  family: Family;
  value: bigint;
}

/**
 * Who holds which address, across prefix changes.
 *
 * The record of held addresses is independent of the current prefixes: an
 * address stays held (and is never handed out twice) even when its prefix is
 * gone, and comes back into the pool only when its owner releases it.
 */
export class Ipam {
  private readonly options: { reserveFirstHost: boolean; reserved: readonly string[] };
  private current: Prefixes = {};
  private pools: Partial<Record<Slot, AddressAllocator>> = {};
  /** Round-robin position of prefixes no longer current, by prefix text, in case they return. */
  private readonly savedCursors = new Map<string, bigint>();
  private readonly byOwner = new Map<string, Allocation>();
  /** Keyed by canonical address text. */
  private readonly byAddress = new Map<string, Holding>();

  constructor(options: IpamOptions = {}) {
    const reserved = options.reserved ?? [];
    // Validate now: a typo in the reserved list must not surface at the first Attach.
    for (const r of reserved) parseAddress(r);
    this.options = { reserveFirstHost: options.reserveFirstHost ?? true, reserved };
  }

  /** True once any prefix has been set. */
  ready(): boolean {
    return this.current.v4 !== undefined || this.current.v6 !== undefined;
  }

  /** The current prefixes (a copy). */
  prefixes(): Prefixes {
    return { ...this.current };
  }

  /**
   * Switches to new prefixes. Existing owners keep their addresses; new
   * allocations come from the new prefixes. An unchanged prefix keeps its
   * allocator, and a prefix that comes back resumes its old cursor.
   */
  setPrefixes(next: Prefixes): void {
    for (const slot of SLOTS) {
      const p = next[slot];
      if (p !== undefined && slotOf(p.family) !== slot) {
        throw new TypeError(`${slot} prefix must be IPv${slot === "v4" ? 4 : 6}, got ${p.text}`);
      }
    }
    for (const slot of SLOTS) {
      const old = this.pools[slot];
      const p = next[slot];
      if (old?.prefix.text === p?.text) continue;
      if (old?.cursor !== undefined) this.savedCursors.set(old.prefix.text, old.cursor);
      this.pools[slot] = p === undefined ? undefined : this.newPool(p);
    }
    this.current = { ...next };
  }

  /**
   * Gives owner one address in each current family it does not hold yet and
   * returns all its addresses. All or nothing: if any family is exhausted,
   * whatever this call took is given back and IpamExhaustedError is thrown.
   * (The cursor stays advanced; that only shifts the round-robin.)
   */
  allocate(owner: string): Allocation {
    if (!this.ready()) throw new IpamNotReadyError();
    const held = this.byOwner.get(owner) ?? {};
    const taken: Array<{ slot: Slot; pool: AddressAllocator; value: bigint }> = [];
    for (const slot of SLOTS) {
      const pool = this.pools[slot];
      if (pool === undefined || held[slot] !== undefined) continue;
      const value = pool.allocate();
      if (value === undefined) {
        for (const t of taken) t.pool.release(t.value);
        throw new IpamExhaustedError(pool.prefix);
      }
      taken.push({ slot, pool, value });
    }
    const result: Allocation = { ...held };
    for (const { slot, pool, value } of taken) {
      const text = bigintToAddress(value, pool.prefix.family);
      this.byAddress.set(text, { owner, family: pool.prefix.family, value });
      result[slot] = text;
    }
    this.byOwner.set(owner, result);
    return { ...result };
  }

  /**
   * Records that owner holds addr, e.g. an address found in the kernel at
   * restart. Works for addresses outside the current prefixes too, so they are
   * not handed out if their prefix returns. Repeating a call is harmless;
   * throws IpamConflictError if addr is someone else's or owner already holds
   * a different address of that family.
   */
  markUsed(owner: string, addr: string): void {
    const { family, value } = parseAddress(addr);
    const text = bigintToAddress(value, family);
    const holder = this.byAddress.get(text);
    if (holder !== undefined) {
      if (holder.owner === owner) return;
      throw new IpamConflictError(
        `${text} is already held by ${JSON.stringify(holder.owner)}, not ${JSON.stringify(owner)}`,
      );
    }
    const slot = slotOf(family);
    const held = this.byOwner.get(owner) ?? {};
    const other = held[slot];
    if (other !== undefined) {
      throw new IpamConflictError(
        `${JSON.stringify(owner)} already holds IPv${family} address ${other}; cannot also record ${text}`,
      );
    }
    this.byAddress.set(text, { owner, family, value });
    this.byOwner.set(owner, { ...held, [slot]: text });
    this.pools[slot]?.markUsed(value);
  }

  /** Frees owner's addresses and returns what it held. Unknown owners are fine. */
  release(owner: string): Allocation | undefined {
    const held = this.byOwner.get(owner);
    if (held === undefined) return undefined;
    this.byOwner.delete(owner);
    for (const slot of SLOTS) {
      const text = held[slot];
      if (text === undefined) continue;
      const h = this.byAddress.get(text);
      this.byAddress.delete(text);
      if (h !== undefined) this.pools[slot]?.release(h.value);
    }
    return { ...held };
  }

  /** The owner's addresses, or undefined if it holds none. */
  addressesOf(owner: string): Allocation | undefined {
    const held = this.byOwner.get(owner);
    return held === undefined ? undefined : { ...held };
  }

  /** Who holds addr (any text form), if anyone. */
  ownerOf(addr: string): string | undefined {
    const { family, value } = parseAddress(addr);
    return this.byAddress.get(bigintToAddress(value, family))?.owner;
  }

  /** Every owner and its addresses (copies), e.g. for listing or garbage collection. */
  entries(): Array<[string, Allocation]> {
    return [...this.byOwner].map(([owner, a]) => [owner, { ...a }]);
  }

  /** Number of owners holding addresses. */
  /** Free addresses left in each current prefix (e.g. for metrics). */
  free(): Array<{ prefix: string; family: Family; free: bigint }> {
    return SLOTS.flatMap((slot) => {
      const pool = this.pools[slot];
      return pool === undefined ? [] : [{ prefix: pool.prefix.text, family: pool.prefix.family, free: pool.available }];
    });
  }

  size(): number {
    return this.byOwner.size;
  }

  // A fresh allocator for p, aware of every address already held in it.
  private newPool(p: Prefix): AddressAllocator {
    const pool = new AddressAllocator(p, {
      reserveFirstHost: this.options.reserveFirstHost,
      reserved: this.options.reserved,
      cursor: this.savedCursors.get(p.text),
    });
    for (const h of this.byAddress.values()) {
      if (h.family === p.family) pool.markUsed(h.value);
    }
    return pool;
  }
}
