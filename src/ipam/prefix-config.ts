// The one place that turns user-written prefix config into Prefixes, so the
// static config and the prefix file accept exactly the same thing:
//   {"ipv4": "10.88.0.0/24", "ipv6": "fd00:88::/64"}   (either key optional, not both)

import { type Prefixes, parsePrefix } from "./prefix.js";

/** The user-facing shape, with text prefixes. */
export interface PrefixConfig {
  ipv4?: string;
  ipv6?: string;
}

const KEYS = { ipv4: 4, ipv6: 6 } as const;

/** Validates and parses a config object; throws an Error whose message says what is wrong. */
export function parsePrefixConfig(value: unknown): Prefixes {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`expected an object like {"ipv4": "10.88.0.0/24", "ipv6": "fd00:88::/64"}`);
  }
  const out: Prefixes = {};
  for (const [key, raw] of Object.entries(value)) {
    // Unknown keys are an error: a misspelt "ipv6" must not silently mean "no IPv6".
    if (!(key in KEYS)) {
      throw new Error(`unknown key ${JSON.stringify(key)} (expected "ipv4" and/or "ipv6")`);
    }
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== "string") {
      throw new Error(`"${key}" must be a string like "10.88.0.0/24", got ${JSON.stringify(raw)}`);
    }
    const prefix = parsePrefix(raw);
    const want = KEYS[key as keyof typeof KEYS];
    if (prefix.family !== want) {
      throw new Error(`"${key}" must be an IPv${want} prefix, got ${JSON.stringify(raw)}`);
    }
    out[want === 4 ? "v4" : "v6"] = prefix;
  }
  if (out.v4 === undefined && out.v6 === undefined) {
    throw new Error(`no prefix given: set "ipv4", "ipv6" or both`);
  }
  return out;
}
