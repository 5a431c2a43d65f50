// Neighbour (ARP/NDP cache) operations, like `ip neigh`.
import type { Handle } from "./handle.js";
import { decodeNeighbour, encodeNeighFilter, encodeNeighbour, type Neighbour } from "./codec/neigh-message.js";
import { AF_UNSPEC, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NUD_PERMANENT, RTM_GETNEIGH, RTM_NEWNEIGH } from "./codec/constants.js";
import type { Request } from "./socket.js";

export type { Neighbour } from "./codec/neigh-message.js";

/**
 * `ip neigh replace ADDR lladdr MAC dev INDEX nud permanent`: the entry never
 * expires and needs no ARP/ND exchange, so traffic flows the moment it exists.
 */
export function addPermanentNeighbourRequest(n: { index: number; address: string; mac: string }, where?: string): Request {
  return {
    type: RTM_NEWNEIGH,
    flags: NLM_F_CREATE | NLM_F_REPLACE,
    parts: encodeNeighbour({ ...n, state: NUD_PERMANENT, flags: 0 }),
    context: `add neighbour ${n.address} lladdr ${n.mac} dev index ${n.index}${where ? ` in ${where}` : ""}`,
  };
}

export async function addPermanentNeighbour(h: Handle, n: { index: number; address: string; mac: string }): Promise<void> {
  await h.request(addPermanentNeighbourRequest(n, h.where));
}

/** `ip neigh show [dev INDEX]`. */
export async function listNeighbours(h: Handle, opts: { family?: number; index?: number } = {}): Promise<Neighbour[]> {
  const replies = await h.request({
    type: RTM_GETNEIGH,
    flags: NLM_F_DUMP,
    parts: [encodeNeighFilter(opts.family ?? AF_UNSPEC, opts.index ?? 0)],
    context: `list neighbours in ${h.where}`,
  });
  const all = replies.filter((m) => m.type === RTM_NEWNEIGH).map((m) => decodeNeighbour(m.payload));
  return opts.index ? all.filter((n) => n.index === opts.index) : all;
}
