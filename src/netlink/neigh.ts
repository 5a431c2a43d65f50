// Neighbour (ARP/NDP cache) operations, like `ip neigh`.
import type { Handle } from "./handle.js";
import { decodeNeighbour, encodeNeighDeviceFilter, encodeNeighFilter, encodeNeighbour, type Neighbour } from "./codec/neigh-message.js";
import { AF_UNSPEC, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NUD_PERMANENT, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH } from "./codec/constants.js";
import type { Request } from "./socket.js";

export type { Neighbour } from "./codec/neigh-message.js";

/**
 * `ip neigh replace ADDR lladdr MAC dev INDEX nud permanent`: the entry never
 * expires and needs no ARP/ND exchange, so traffic flows the moment it exists.
 * Adds the entry or overwrites the one for ADDR on that device.
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

/** `ip neigh replace ...`: the same request as addPermanentNeighbour, named for what it does to an existing entry. */
export const replacePermanentNeighbourRequest = addPermanentNeighbourRequest;
export const replacePermanentNeighbour = addPermanentNeighbour;

/** `ip neigh del ADDR dev INDEX`. */
export function deleteNeighbourRequest(n: { index: number; address: string }, where?: string): Request {
  return {
    type: RTM_DELNEIGH,
    flags: 0,
    parts: encodeNeighbour({ ...n, state: 0, flags: 0 }),
    context: `delete neighbour ${n.address} dev index ${n.index}${where ? ` in ${where}` : ""}`,
  };
}

export async function deleteNeighbour(h: Handle, n: { index: number; address: string }): Promise<void> {
  await h.request(deleteNeighbourRequest(n, h.where));
}

/** `ip neigh show [dev INDEX]`; with a device, the kernel sends only that device's entries. */
export async function listNeighbours(h: Handle, opts: { family?: number; index?: number } = {}): Promise<Neighbour[]> {
  const family = opts.family ?? AF_UNSPEC;
  const replies = await h.request({
    type: RTM_GETNEIGH,
    flags: NLM_F_DUMP,
    parts: opts.index ? encodeNeighDeviceFilter(family, opts.index) : [encodeNeighFilter(family, 0)],
    context: `list neighbours${opts.index ? ` of dev index ${opts.index}` : ""} in ${h.where}`,
  });
  const all = replies.filter((m) => m.type === RTM_NEWNEIGH).map((m) => decodeNeighbour(m.payload));
  return opts.index ? all.filter((n) => n.index === opts.index) : all;
}
