// Forwarding database operations on a device of its own FDB (a VXLAN
// device), each the equivalent of one `bridge fdb ... self` command.
import type { Handle } from "./handle.js";
import { decodeFdb, encodeFdb, encodeFdbFilter, type FdbEntry } from "./codec/fdb-message.js";
import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH } from "./codec/constants.js";
import type { Request } from "./socket.js";

export type { FdbEntry } from "./codec/fdb-message.js";

export interface FdbSpec {
  /** The device's ifindex. */
  index: number;
  mac: string;
  /** The remote address frames to `mac` are sent to. */
  dst: string;
}

const describe = (e: FdbSpec): string => `${e.mac} dst ${e.dst} dev index ${e.index}`;

/**
 * `bridge fdb append MAC dev INDEX dst DST self permanent`: one more remote
 * for MAC (a VXLAN entry may have several; frames go to each).
 */
export function appendFdbRequest(e: FdbSpec, where?: string): Request {
  return { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_APPEND, parts: encodeFdb(e), context: `append fdb ${describe(e)}${where ? ` in ${where}` : ""}` };
}

export async function appendFdb(h: Handle, e: FdbSpec): Promise<void> {
  await h.request(appendFdbRequest(e, h.where));
}

/**
 * `bridge fdb replace MAC dev INDEX dst DST self permanent`: creates the
 * entry, or points an existing one (its first remote) at DST.
 */
export function replaceFdbRequest(e: FdbSpec, where?: string): Request {
  return { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE, parts: encodeFdb(e), context: `replace fdb ${describe(e)}${where ? ` in ${where}` : ""}` };
}

export async function replaceFdb(h: Handle, e: FdbSpec): Promise<void> {
  await h.request(replaceFdbRequest(e, h.where));
}

/** `bridge fdb del MAC dev INDEX [dst DST] self`: with DST only that remote, else the whole entry. */
export function deleteFdbRequest(e: { index: number; mac: string; dst?: string }, where?: string): Request {
  return {
    type: RTM_DELNEIGH,
    flags: 0,
    parts: encodeFdb(e),
    context: `delete fdb ${e.mac}${e.dst ? ` dst ${e.dst}` : ""} dev index ${e.index}${where ? ` in ${where}` : ""}`,
  };
}

export async function deleteFdb(h: Handle, e: { index: number; mac: string; dst?: string }): Promise<void> {
  await h.request(deleteFdbRequest(e, h.where));
}

/** `bridge fdb show dev INDEX`: the device's entries, one per remote. */
export async function listFdb(h: Handle, index: number): Promise<FdbEntry[]> {
  const replies = await h.request({ type: RTM_GETNEIGH, flags: NLM_F_DUMP, parts: [encodeFdbFilter(index)], context: `list fdb of dev index ${index} in ${h.where}` });
  return replies
    .filter((m) => m.type === RTM_NEWNEIGH)
    .map((m) => decodeFdb(m.payload))
    .filter((e) => e.index === index);
}
