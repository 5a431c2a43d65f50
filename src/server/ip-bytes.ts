// Text IP addresses <-> the raw network-order bytes used on the wire
// (AttachResponse.ip: 4 bytes per IPv4 address, 16 per IPv6 address). The
// parsing and formatting are the netlink codec's; the API adds no zone ids
// and TypeErrors for what is not an address.
import { bytesToIp as formatIp, parseIp } from "../netlink/codec/ip.js";

/** Converts "10.88.0.2" to 4 bytes and "fd00:88::2" to 16 bytes. Throws on anything else. */
export function ipToBytes(text: string): Uint8Array {
  const bytes = text.includes("%") ? undefined : parseIp(text);
  if (bytes === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return bytes;
}

/** Converts 4 or 16 bytes back to the usual text form (IPv6 compressed, lower case). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length !== 4 && bytes.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  return formatIp(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}
