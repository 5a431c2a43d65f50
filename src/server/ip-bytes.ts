// Text IP addresses <-> the raw network-order bytes used on the wire
// (AttachResponse.ip: 4 bytes per IPv4 address, 16 per IPv6 address). The
// conversions are the IPAM's (ipam/address.ts); the API reports what is not
// an address as a TypeError.
import { addressBytes, bufferToAddress } from "../ipam/address.js";

/** Converts "10.88.0.2" to 4 bytes and "fd00:88::2" to 16 bytes. Throws on anything else. */
export function ipToBytes(text: string): Uint8Array {
  const bytes = addressBytes(text);
  if (bytes === undefined) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  return bytes;
}

/** Converts 4 or 16 bytes back to the usual text form (IPv6 compressed, lower case). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length !== 4 && bytes.length !== 16) throw new TypeError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  return bufferToAddress(bytes);
}
