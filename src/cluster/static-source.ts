// Fixed prefixes from the daemon's config (--ipv4-prefix, --ipv6-prefix): a
// view with no other nodes that never changes and never fails later.

import type { Prefixes } from "../ipam/prefix.js";
import type { ClusterSource } from "./source.js";
import { type ClusterView, buildView } from "./view.js";

export class StaticClusterSource implements ClusterSource {
  readonly kind = "static";
  private readonly view: ClusterView;
  private syncedAt: Date | undefined;

  /** Prefixes as parsed objects; an empty object means "none configured". */
  constructor(prefixes: Prefixes) {
    this.view = buildView({
      prefixes: [prefixes.v4?.text, prefixes.v6?.text].filter((p): p is string => p !== undefined),
      addresses: [],
      nodes: [],
      pendingReason: "no pod prefixes configured (--ipv4-prefix, --ipv6-prefix or --prefix-file)",
    });
  }

  async start(): Promise<void> {
    this.syncedAt ??= new Date();
  }

  current(): ClusterView {
    return this.view;
  }

  lastError(): string | undefined {
    return undefined;
  }

  lastSync(): Date | undefined {
    return this.syncedAt;
  }

  // Nothing ever changes or fails, so listeners are never called.
  onChange(_listener: (view: ClusterView) => void): () => void {
    return () => {};
  }

  onError(_listener: (message: string) => void): () => void {
    return () => {};
  }

  close(): void {}
}
