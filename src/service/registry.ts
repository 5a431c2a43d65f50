// What the daemon knows is attached: workload id -> host interface and
// addresses, and which host interface names are taken (including those of
// attaches still in progress). Rebuilt from the kernel at start (recover.ts).

import type { PortMapping } from "../nftables/port-mappings.js";

export interface Attachment {
  workloadId: string;
  hostIfName: string;
  hostIfIndex: number;
  addresses: string[];
  /** MAC of the pod's interface; from the host's neighbour entries after a restart. */
  podMac?: string;
  /** Published ports (kept in our nftables table; from there after a restart). */
  portMappings?: PortMapping[];
}

export class AttachmentRegistry {
  private readonly byId = new Map<string, Attachment>();
  private readonly names = new Set<string>();

  get(id: string): Attachment | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  add(a: Attachment): void {
    this.byId.set(a.workloadId, a);
    this.names.add(a.hostIfName);
  }

  /** Forgets an attachment and frees its name. */
  remove(id: string): void {
    const a = this.byId.get(id);
    if (a === undefined) return;
    this.byId.delete(id);
    this.names.delete(a.hostIfName);
  }

  nameTaken(name: string): boolean {
    return this.names.has(name);
  }

  /** Holds a name for an attach in progress; release it if the attach fails. */
  reserveName(name: string): void {
    this.names.add(name);
  }

  releaseName(name: string): void {
    this.names.delete(name);
  }

  list(): Attachment[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }
}
