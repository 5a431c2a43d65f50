// Detach: delete the host veth (the kernel takes its routes, neighbours and the
// pod's peer with it), then free the addresses and the name. Idempotent: what
// is already gone counts as done. Names and addresses are freed only once the
// kernel has really let go of them.
import type { Ipam } from "../ipam/allocator.js";
import { NetlinkError } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { deleteLink, getLinkByName, type Link } from "../netlink/link.js";
import { ALIAS_PREFIX } from "./constants.js";
import { ServiceError, StatusCode } from "./errors.js";
import type { AttachmentRegistry } from "./registry.js";

export interface DetachDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  linkGroup: number;
}

/** Ours means our group AND the alias naming exactly this workload. */
export function isOwnedBy(link: Link, linkGroup: number, workloadId: string): boolean {
  return link.group === linkGroup && link.alias === ALIAS_PREFIX + workloadId;
}

export async function detachWorkload(deps: DetachDeps, workloadId: string): Promise<void> {
  const attachment = deps.registry.get(workloadId);
  if (attachment === undefined) return;
  const link = await getLinkByName(deps.host, attachment.hostIfName).catch((err: unknown) => {
    throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: look up ${attachment.hostIfName}: ${(err as Error).message}`, { cause: err });
  });
  if (link !== undefined && !isOwnedBy(link, deps.linkGroup, workloadId)) {
    // Our link is gone and someone else's has its name. Leave theirs alone, but
    // free our records: the addresses' routes went with our link.
    forget(deps, workloadId);
    throw new ServiceError(
      StatusCode.FailedPrecondition,
      `detach ${workloadId}: refusing to delete ${link.name}: it is not this workload's (group ${link.group ?? 0}, alias ${JSON.stringify(link.alias ?? "")}); the workload's own interface is already gone and its addresses were freed`,
    );
  }
  if (link !== undefined) {
    try {
      await deleteLink(deps.host, link.index, link.name);
    } catch (err) {
      if (!(err instanceof NetlinkError && err.code === "ENODEV")) {
        throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  forget(deps, workloadId);
}

function forget(deps: DetachDeps, workloadId: string): void {
  deps.ipam.release(workloadId);
  deps.registry.remove(workloadId);
}
