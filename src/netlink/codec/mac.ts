// MAC addresses: 6 bytes on the wire, "aa:bb:cc:dd:ee:ff" for people.

export function parseMac(text: string): Buffer {
  const parts = text.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`invalid MAC address "${text}"`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
