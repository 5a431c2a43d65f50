// The CNI spec versions we speak, and which verbs each one has.

/** Oldest first. The C forwarder answers VERSION with the same list when the daemon is down. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = "1.1.0";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "VERSION" | "GC";
export const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "STATUS", "VERSION", "GC"];

/** The first spec version that has each verb. */
const INTRODUCED: Record<CniCommand, CniVersion> = {
  ADD: "0.3.0",
  DEL: "0.3.0",
  VERSION: "0.3.0",
  CHECK: "0.4.0",
  STATUS: "1.1.0",
  GC: "1.1.0",
};

export function isSupportedVersion(v: unknown): v is CniVersion {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function commandAllowed(command: CniCommand, version: CniVersion): boolean {
  return SUPPORTED_VERSIONS.indexOf(version) >= SUPPORTED_VERSIONS.indexOf(INTRODUCED[command]);
}

export function introducedIn(command: CniCommand): CniVersion {
  return INTRODUCED[command];
}

/** 0.3.x and 0.4.0 results carry "version" in each IP; 1.0.0 dropped it. */
export function ipsCarryVersion(v: CniVersion): boolean {
  return v === "0.3.0" || v === "0.3.1" || v === "0.4.0";
}
