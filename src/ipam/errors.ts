// Distinct classes so the service can map each to its own gRPC status
// (RESOURCE_EXHAUSTED, UNAVAILABLE, ...) without matching on message text.

import type { Prefix } from "./prefix.js";

/** A prefix has no free address left. Maps to RESOURCE_EXHAUSTED. */
export class IpamExhaustedError extends Error {
  constructor(readonly prefix: Prefix) {
    // A /31, /32 or /128 never has room: say so, it is a config problem, not load.
    const tiny = prefix.family === 4 ? prefix.bits >= 31 : prefix.bits >= 127;
    super(
      `no free addresses in ${prefix.text}` +
        (tiny ? " (a prefix this small has no usable pod addresses)" : ""),
    );
    this.name = "IpamExhaustedError";
  }
}

/** No prefix has been configured yet. Maps to UNAVAILABLE. */
export class IpamNotReadyError extends Error {
  constructor() {
    super("no pod address prefixes are configured yet");
    this.name = "IpamNotReadyError";
  }
}

/** An address or family slot is already held by someone else. */
export class IpamConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IpamConflictError";
  }
}
