// The prefix file's format. The old form gives only this node's prefixes:
//   {"ipv4": "10.70.1.0/24", "ipv6": "fd70:1::/64"}
// The cluster form adds this node's name and addresses and the other nodes:
//   {"name": "n1", "ipv4": "10.70.1.0/24", "ipv6": "fd70:1::/64",
//    "addresses": ["192.0.2.11", "2001:db8::11"],
//    "nodes": [{"name": "n2", "addresses": ["192.0.2.12"], "prefixes": ["10.70.2.0/24", "fd70:2::/64"]}]}
//
// What is wrong with the file as a whole (not JSON, an unknown key, a bad
// prefix of this node) refuses the file, so the last good one stays in force.
// What is wrong with one entry of "nodes" only skips that node, with a
// problem saying why: one bad line must not cut the routes to every node.

import { parsePrefixConfig } from "../ipam/prefix-config.js";
import type { RawNode, RawView } from "./view.js";

const TOP_KEYS = ["name", "ipv4", "ipv6", "addresses", "nodes"] as const;
const NODE_KEYS = ["name", "addresses", "prefixes"] as const;

export interface ParsedClusterFile {
  raw: RawView;
  /** Node entries skipped for their shape (buildView adds its own for their content). */
  problems: string[];
}

/** Validates the parsed JSON of a prefix file; throws an Error saying what is wrong with the file. */
export function parseClusterFile(value: unknown): ParsedClusterFile {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`expected an object like {"ipv4": "10.88.0.0/24", "ipv6": "fd00:88::/64"}`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    // Unknown keys are an error: a misspelt "ipv6" must not silently mean "no IPv6".
    if (!(TOP_KEYS as readonly string[]).includes(key)) {
      throw new Error(`unknown key ${JSON.stringify(key)} (expected ${TOP_KEYS.map((k) => `"${k}"`).join(", ")})`);
    }
  }
  const prefixes = parsePrefixConfig({ ...(obj.ipv4 !== undefined ? { ipv4: obj.ipv4 } : {}), ...(obj.ipv6 !== undefined ? { ipv6: obj.ipv6 } : {}) });

  let nodeName: string | undefined;
  if (obj.name !== undefined && obj.name !== null) {
    if (typeof obj.name !== "string" || obj.name === "") throw new Error(`"name" must be a non-empty string, got ${JSON.stringify(obj.name)}`);
    nodeName = obj.name;
  }
  const addresses = stringList(obj.addresses, `"addresses"`, `["192.0.2.11", "2001:db8::11"]`);

  const problems: string[] = [];
  const nodes: RawNode[] = [];
  if (obj.nodes !== undefined && obj.nodes !== null) {
    if (!Array.isArray(obj.nodes)) throw new Error(`"nodes" must be a list of {"name", "addresses", "prefixes"} objects`);
    obj.nodes.forEach((entry: unknown, i: number) => {
      try {
        nodes.push(parseNodeEntry(entry));
      } catch (err) {
        const name = typeof entry === "object" && entry !== null && typeof (entry as { name?: unknown }).name === "string" ? ` (${(entry as { name: string }).name})` : "";
        problems.push(`nodes[${i}]${name} skipped: ${(err as Error).message}`);
      }
    });
  }
  const raw: RawView = {
    ...(nodeName !== undefined ? { nodeName } : {}),
    prefixes: [prefixes.v4?.text, prefixes.v6?.text].filter((p): p is string => p !== undefined),
    addresses,
    nodes,
  };
  return { raw, problems };
}

function parseNodeEntry(entry: unknown): RawNode {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new Error(`expected an object like {"name": "n2", "addresses": [...], "prefixes": [...]}`);
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!(NODE_KEYS as readonly string[]).includes(key)) {
      throw new Error(`unknown key ${JSON.stringify(key)} (expected ${NODE_KEYS.map((k) => `"${k}"`).join(", ")})`);
    }
  }
  if (typeof e.name !== "string" || e.name === "") throw new Error(`"name" must be a non-empty string`);
  return {
    name: e.name,
    addresses: stringList(e.addresses, `"addresses"`, `["192.0.2.12"]`),
    prefixes: stringList(e.prefixes, `"prefixes"`, `["10.70.2.0/24", "fd70:2::/64"]`),
  };
}

/** A list of strings (absent means empty); the strings' content is checked by buildView. */
function stringList(value: unknown, what: string, example: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new Error(`${what} must be a list of strings like ${example}, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}
