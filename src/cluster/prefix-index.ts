// Disjoint prefixes kept sorted per family, so "does this prefix overlap one
// already taken?" is a binary search instead of a scan: a view of 1 000 nodes
// is validated in milliseconds, not a second.
import type { Family, Prefix } from "../ipam/prefix.js";

export interface Taken<T> {
  prefix: Prefix;
  owner: T;
}

export class PrefixIndex<T> {
  private readonly byFamily: Record<Family, Taken<T>[]> = { 4: [], 6: [] };

  /** One taken prefix that overlaps p, if any (the entries are disjoint, so only p's neighbours in order can). */
  findOverlap(p: Prefix): Taken<T> | undefined {
    const list = this.byFamily[p.family];
    const i = this.firstAfter(list, p.network);
    const before = list[i - 1];
    if (before !== undefined && before.prefix.last >= p.network) return before;
    const after = list[i];
    if (after !== undefined && after.prefix.network <= p.last) return after;
    return undefined;
  }

  /** Adds a prefix that overlaps none taken (check with findOverlap first). */
  add(prefix: Prefix, owner: T): void {
    const list = this.byFamily[prefix.family];
    list.splice(this.firstAfter(list, prefix.network), 0, { prefix, owner });
  }

  /** Index of the first entry whose network is above `network`. */
  private firstAfter(list: Taken<T>[], network: bigint): number {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.prefix.network <= network) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
