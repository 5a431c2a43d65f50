// Where the node's pod prefixes come from. The daemon depends only on this
// interface, so static config, a watched file and (later) the Kubernetes Node
// object are interchangeable.

import type { Prefixes } from "./prefix.js";

export type { Prefixes } from "./prefix.js";

export interface PrefixSource {
  /** The latest good prefixes, or undefined until the source has produced any. */
  current(): Prefixes | undefined;
  /**
   * Why the source is not (or no longer) up to date, for Status and logs.
   * Undefined while all is well. A source keeps its last good prefixes on error.
   */
  lastError(): string | undefined;
  /** Called whenever current() changes to different prefixes, including the first ones. Returns an unsubscribe. */
  onChange(listener: (prefixes: Prefixes) => void): () => void;
  /** Called when a new error is recorded (see lastError), so the daemon can log it. */
  onError(listener: (message: string) => void): () => void;
  /** Stops watching. Idempotent; no listener is called afterwards. */
  close(): void;
}
