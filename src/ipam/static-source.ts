// Fixed prefixes from the daemon's config: never changes, never fails later.

import { type PrefixConfig, parsePrefixConfig } from "./prefix-config.js";
import type { Prefixes } from "./prefix.js";
import type { PrefixSource } from "./prefix-source.js";

export class StaticPrefixSource implements PrefixSource {
  private readonly prefixes: Prefixes | undefined;

  /** Prefixes as parsed objects; an empty object means "none configured". */
  constructor(prefixes: Prefixes) {
    const copy = { ...prefixes };
    this.prefixes = copy.v4 === undefined && copy.v6 === undefined ? undefined : copy;
  }

  /** From text config ({"ipv4": "...", "ipv6": "..."}); throws on invalid input. */
  static fromConfig(config: PrefixConfig): StaticPrefixSource {
    return new StaticPrefixSource(parsePrefixConfig(config));
  }

  current(): Prefixes | undefined {
    return this.prefixes === undefined ? undefined : { ...this.prefixes };
  }

  lastError(): string | undefined {
    return this.prefixes === undefined ? "no pod prefixes configured" : undefined;
  }

  // Nothing ever changes or fails, so listeners are never called.
  onChange(_listener: (prefixes: Prefixes) => void): () => void {
    return () => {};
  }

  onError(_listener: (message: string) => void): () => void {
    return () => {};
  }

  close(): void {}
}
