// Detach: delete the host veth (the kernel takes its routes, neighbours and the
// pod's peer with it), then free the addresses and the name. Idempotent: what
// is already gone counts as done. Names and addresses are freed only once the
// kernel has really let go of them: by the link's own delete when no other
// delete is under way, else through the retiring group and the reaper's bulk
// deletes (links retired meanwhile go together; see reaper.ts).
import type { Ipam } from "../ipam/allocator.js";
import { NetlinkError } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { getLinkByName, setLinkByIndexRequest, type Link } from "../netlink/link.js";
import { ALIAS_PREFIX } from "./constants.js";
import { ServiceError, StatusCode } from "./errors.js";
import type { LinkReaper } from "./reaper.js";
import type { AttachmentRegistry } from "./registry.js";

export interface DetachDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  linkGroup: number;
  reaper: LinkReaper;
  /** Answer before the kernel has deleted the link (it is already down and out of service). */
  deferred: boolean;
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
  if (link === undefined) {
    forget(deps, workloadId);
    return;
  }
  if (!deps.deferred && deps.reaper.canDeleteNow) return deleteNow(deps, workloadId, link);
  const { deleted } = await retire(deps, workloadId, link);
  if (!deps.deferred) await deleted;
}

/**
 * A sync Detach when no other delete is under way: delete the link by its index at
 * once, without moving it to the retiring group first. The workload keeps its
 * name and addresses (and this Detach its per-workload lock) until the kernel
 * has announced the link gone; if the kernel refuses, nothing has changed.
 */
async function deleteNow(deps: DetachDeps, workloadId: string, link: Link): Promise<void> {
  try {
    await deps.reaper.deleteNow(link.index);
  } catch (err) {
    throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: ${(err as Error).message}`, { cause: err });
  }
  forget(deps, workloadId);
}

/**
 * Moves the link into the retiring group (in deferred mode also down), forgets
 * the workload, and hands the link to the reaper. Until the kernel has deleted
 * it, a placeholder owner holds the addresses and the name stays taken.
 * Resolves once retired, with a promise of the deletion (wrapped, so that
 * awaiting the retirement does not also await the deletion).
 */
async function retire(deps: DetachDeps, workloadId: string, link: Link): Promise<{ deleted: Promise<void> }> {
  const listening = deps.reaper.listen(link.index);
  try {
    // Deferred: down now, so traffic stops before we answer. Sync: the delete
    // follows at once, and a separate down would cost an extra grace period.
    const up = deps.deferred ? false : undefined;
    await deps.host.request(setLinkByIndexRequest(link.index, { group: deps.reaper.group }, up, link.name));
  } catch (err) {
    listening?.cancel();
    if (err instanceof NetlinkError && err.code === "ENODEV") {
      forget(deps, workloadId); // already gone: nothing left to wait for
      return { deleted: Promise.resolve() };
    }
    throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: ${(err as Error).message}`, { cause: err });
  }
  const placeholder = `\u0000retiring:${link.index}`;
  const held = deps.ipam.release(workloadId);
  for (const address of [held?.v4, held?.v6]) if (address !== undefined) deps.ipam.markUsed(placeholder, address);
  deps.registry.remove(workloadId);
  deps.registry.reserveName(link.name);
  const deleted = deps.reaper.enqueue(
    link.index,
    () => {
      deps.ipam.release(placeholder);
      deps.registry.releaseName(link.name);
    },
    listening,
  );
  return { deleted };
}

function forget(deps: DetachDeps, workloadId: string): void {
  deps.ipam.release(workloadId);
  deps.registry.remove(workloadId);
}
