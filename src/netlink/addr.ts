// Address operations, each the equivalent of one `ip addr` command.
import type { Handle } from "./handle.js";
import { decodeAddress, encodeAddrFilter, encodeAddress, type Address } from "./codec/addr-message.js";
import { AF_UNSPEC, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR } from "./codec/constants.js";
import type { Request } from "./socket.js";

export type { Address } from "./codec/addr-message.js";

export type AddressSpec = Omit<Address, "label" | "flags" | "scope"> & { flags?: number; scope?: number; label?: string };

const describe = (a: AddressSpec): string => `${a.address}/${a.prefixLen} dev index ${a.index}`;

/** `ip addr add ADDR/LEN dev INDEX [scope S] [nodad]`. */
export function addAddressRequest(a: AddressSpec, where?: string): Request {
  return {
    type: RTM_NEWADDR,
    flags: NLM_F_CREATE | NLM_F_EXCL,
    parts: encodeAddress({ ...a, flags: a.flags ?? 0, scope: a.scope ?? 0 }),
    context: `add address ${describe(a)}${where ? ` in ${where}` : ""}`,
  };
}

export async function addAddress(h: Handle, a: AddressSpec): Promise<void> {
  await h.request(addAddressRequest(a, h.where));
}

/** `ip addr del ADDR/LEN dev INDEX`. */
export async function deleteAddress(h: Handle, a: AddressSpec): Promise<void> {
  await h.request({
    type: RTM_DELADDR,
    flags: 0,
    parts: encodeAddress({ ...a, flags: 0, scope: a.scope ?? 0 }),
    context: `delete address ${describe(a)} in ${h.where}`,
  });
}

/** `ip addr show [dev INDEX]`, both families unless one is given. */
export async function listAddresses(h: Handle, opts: { family?: number; index?: number } = {}): Promise<Address[]> {
  const replies = await h.request({
    type: RTM_GETADDR,
    flags: NLM_F_DUMP,
    parts: [encodeAddrFilter(opts.family ?? AF_UNSPEC, opts.index ?? 0)],
    context: `list addresses in ${h.where}`,
  });
  const all = replies.filter((m) => m.type === RTM_NEWADDR).map((m) => decodeAddress(m.payload));
  return opts.index ? all.filter((a) => a.index === opts.index) : all;
}
