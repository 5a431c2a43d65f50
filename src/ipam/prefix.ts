// CIDR prefixes ("10.88.0.0/24", "fd00:88::/64"): the pools pod addresses
// come from. Parsing is strict so that a typo in config fails loudly instead
// of silently handing out addresses from an unintended range.

import {
  ADDRESS_BITS,
  type Address,
  type Family,
  bigintToAddress,
  parseAddress,
} from "./address.js";

// The address helpers belong with prefixes for most callers; one import suffices.
export {
  ADDRESS_BITS,
  type Address,
  type Family,
  addressFamily,
  addressToBigint,
  addressToBuffer,
  bigintToAddress,
  bufferToAddress,
  canonicalAddress,
  parseAddress,
} from "./address.js";

export class Prefix {
  /** Canonical text, e.g. "fd00:88::/64". */
  readonly text: string;

  private constructor(
    readonly family: Family,
    /** The network address (all host bits zero). */
    readonly network: bigint,
    /** Prefix length. */
    readonly bits: number,
  ) {
    this.text = `${bigintToAddress(network, family)}/${bits}`;
  }

  /** Builds a prefix from parts; throws if host bits are set or the length is out of range. */
  static of(family: Family, network: bigint, bits: number): Prefix {
    const max = ADDRESS_BITS[family];
    if (!Number.isInteger(bits) || bits < 0 || bits > max) {
      throw new RangeError(`IPv${family} prefix length must be 0..${max}, got ${bits}`);
    }
    const hostMask = (1n << BigInt(max - bits)) - 1n;
    if ((network & hostMask) !== 0n) {
      throw new RangeError(
        `host bits set in ${bigintToAddress(network, family)}/${bits} ` +
          `(did you mean ${bigintToAddress(network & ~hostMask, family)}/${bits}?)`,
      );
    }
    return new Prefix(family, network, bits);
  }

  /** Number of addresses the prefix spans (network and broadcast included). */
  get size(): bigint {
    return 1n << BigInt(ADDRESS_BITS[this.family] - this.bits);
  }

  /** The highest address in the prefix (the broadcast address, for IPv4). */
  get last(): bigint {
    return this.network + this.size - 1n;
  }

  contains(addr: string | bigint | Address): boolean {
    return contains(this, addr);
  }

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }
}

/** At most one prefix per family: what a node's pods are numbered from. */
export interface Prefixes {
  v4?: Prefix;
  v6?: Prefix;
}

/**
 * Parses "address/length". Errors read like
 * `invalid IPv4 prefix "10.0.0.300/24": "10.0.0.300" is not a valid IPv4 address`.
 */
export function parsePrefix(input: string): Prefix {
  const text = input.trim();
  const kind = text.includes(":") ? "IPv6" : "IPv4";
  const fail = (why: string): never => {
    throw new Error(`invalid ${kind} prefix ${JSON.stringify(input)}: ${why}`);
  };
  const slash = text.indexOf("/");
  if (slash < 0) fail(`missing "/length" (e.g. ${kind === "IPv4" ? "10.88.0.0/24" : "fd00:88::/64"})`);
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  let addr: Address | undefined;
  try {
    addr = parseAddress(addrText);
  } catch (err) {
    fail((err as Error).message);
  }
  const { family, value } = addr as Address;
  const max = ADDRESS_BITS[family];
  // Digits only: Number() would also take "", " 24", "0x18" or "2e1".
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
    fail(`prefix length must be a number from 0 to ${max}, got ${JSON.stringify(lenText)}`);
  }
  try {
    return Prefix.of(family, value, Number(lenText));
  } catch (err) {
    return fail((err as Error).message);
  }
}

/** Whether addr lies in prefix. A bare bigint is taken to be of the prefix's family. */
export function contains(prefix: Prefix, addr: string | bigint | Address): boolean {
  let value: bigint;
  if (typeof addr === "bigint") {
    value = addr;
  } else {
    const parsed = typeof addr === "string" ? parseAddress(addr) : addr;
    if (parsed.family !== prefix.family) return false;
    value = parsed.value;
  }
  return value >= prefix.network && value <= prefix.last;
}

/** Same prefixes in both families (undefined equals undefined). */
export function prefixesEqual(a: Prefixes | undefined, b: Prefixes | undefined): boolean {
  return a?.v4?.text === b?.v4?.text && a?.v6?.text === b?.v6?.text;
}

/** Human form for logs: "10.88.0.0/24, fd00:88::/64" or "none". */
export function formatPrefixes(p: Prefixes | undefined): string {
  const parts = [p?.v4?.text, p?.v6?.text].filter((s): s is string => s !== undefined);
  return parts.length > 0 ? parts.join(", ") : "none";
}

