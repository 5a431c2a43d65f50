// Where the cluster view comes from. The daemon depends only on this
// interface: static config, the watched prefix file and the Kubernetes API
// are interchangeable. A source that loses its backend (file unreadable, API
// server unreachable) keeps its last view in force and says why in lastError:
// nothing is withdrawn because a source went away.

import type { ClusterView } from "./view.js";

export type ClusterSourceKind = "static" | "file" | "kubernetes";

export interface ClusterSource {
  readonly kind: ClusterSourceKind;
  /** Resolves once the first attempt to read the source has finished (successfully or not). */
  start(): Promise<void>;
  /** The latest view (an empty one until the source has produced any). */
  current(): ClusterView;
  /** Why the source is not (or no longer) up to date; undefined while all is well. */
  lastError(): string | undefined;
  /** When the source last read its backend successfully; undefined before the first time. */
  lastSync(): Date | undefined;
  /** Called whenever current() changes. Returns an unsubscribe. */
  onChange(listener: (view: ClusterView) => void): () => void;
  /** Called when a new error is recorded (see lastError). Returns an unsubscribe. */
  onError(listener: (message: string) => void): () => void;
  /** Stops watching. Idempotent; no listener is called afterwards. */
  close(): void;
}
