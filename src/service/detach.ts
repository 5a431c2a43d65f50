// Detach: delete the host veth (the kernel takes its routes, neighbours and the
// pod's peer with it), then free the addresses and the name. Idempotent: what
// is already gone counts as done. The link is named by its alternative name,
// which only it carries; failing that, it is looked up by its name and deleted
// only if its group and alias still mark it as the workload's. Names and
// addresses are freed only once the kernel has really let go of them: by the
// link's own delete when no other delete is under way, else through the
// retiring group and the reaper's bulk deletes (links retired meanwhile go
// together; see reaper.ts).
import type { Ipam } from "../ipam/allocator.js";
import type { Handle } from "../netlink/handle.js";
import { isErrno, NetlinkError } from "../netlink/errors.js";
import { getLinkByName, setLinkByAltNameRequest, setLinkByIndexRequest, type Link } from "../netlink/link.js";
import { ALIAS_PREFIX } from "./constants.js";
import { ServiceError, StatusCode } from "./errors.js";
import type { LinkReaper } from "./reaper.js";
import { hostAltName } from "./host-names.js";
import type { AttachmentRegistry } from "./registry.js";
import type { NftablesLayer } from "../nftables/layer.js";

export interface DetachDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  linkGroup: number;
  reaper: LinkReaper;
  /** Answer before the kernel has deleted the link (it is already down and out of service). */
  deferred: boolean;
  nftables?: NftablesLayer;
}

/** Ours means our group AND the alias naming exactly this workload. */
export function isOwnedBy(link: Link, linkGroup: number, workloadId: string): boolean {
  return link.group === linkGroup && link.alias === ALIAS_PREFIX + workloadId;
}

export async function detachWorkload(deps: DetachDeps, workloadId: string): Promise<void> {
  const attachment = deps.registry.get(workloadId);
  if (attachment === undefined) return;
  // Published ports first: no new connection reaches a pod on its way out.
  await deps.nftables?.unpublish(workloadId).catch((err: unknown) => {
    throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: remove published ports: ${(err as Error).message}`, { cause: err });
  });
  // By the alternative name first: only the workload's own link carries it
  // (host-names.ts), so no lookup comes first, and the kernel takes one request
  // fewer, under its rtnl lock, per Detach. No link carries it when the link is
  // gone already, or was made without one (a kernel before 5.5, an older
  // daemon): then look the link up by its name and check its marks.
  const known = { index: attachment.hostIfIndex, name: attachment.hostIfName };
  if (await removeLink(deps, workloadId, known, hostAltName(workloadId))) return;
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
  await removeLink(deps, workloadId, link);
}

/**
 * A sync Detach that finds no other delete under way deletes the link at once
 * (deleteNow); otherwise it is retired, and a sync Detach waits for its
 * deletion. The link is named by its index, or by `altName`: false when no
 * link carries that name (then nothing has changed).
 */
async function removeLink(deps: DetachDeps, workloadId: string, link: Pick<Link, "index" | "name">, altName?: string): Promise<boolean> {
  if (!deps.deferred && deps.reaper.canDeleteNow) return deleteNow(deps, workloadId, link, altName);
  const retired = await retire(deps, workloadId, link, altName);
  if (retired === undefined) return false;
  if (!deps.deferred) await retired.deleted;
  return true;
}

/**
 * Deletes the link at once, without moving it to the retiring group first. The
 * workload keeps its name and addresses (and this Detach its per-workload
 * lock) until the kernel has announced the link gone; if the kernel refuses,
 * nothing has changed. By index, a link already gone counts as deleted; by
 * name, no link of that name gives false.
 */
async function deleteNow(deps: DetachDeps, workloadId: string, link: Pick<Link, "index">, altName?: string): Promise<boolean> {
  try {
    await deps.reaper.deleteNow(link.index, altName);
  } catch (err) {
    if (altName !== undefined && isErrno(err, "ENODEV")) return false;
    throw new ServiceError(StatusCode.Unavailable, `detach ${workloadId}: ${(err as Error).message}`, { cause: err });
  }
  forget(deps, workloadId);
  return true;
}

/**
 * Moves the link into the retiring group (in deferred mode also down), forgets
 * the workload, and hands the link to the reaper. Until the kernel has deleted
 * it, a placeholder owner holds the addresses and the name stays taken.
 * Resolves once retired, with a promise of the deletion (wrapped, so that
 * awaiting the retirement does not also await the deletion); undefined when
 * no link carries `altName`.
 */
async function retire(deps: DetachDeps, workloadId: string, link: Pick<Link, "index" | "name">, altName?: string): Promise<{ deleted: Promise<void> } | undefined> {
  const listening = deps.reaper.listen(link.index);
  try {
    // Deferred: down now, so traffic stops before we answer. Sync: the delete
    // follows at once, and a separate down would cost an extra grace period.
    const up = deps.deferred ? false : undefined;
    const settings = { group: deps.reaper.group };
    await deps.host.request(altName === undefined ? setLinkByIndexRequest(link.index, settings, up, link.name) : setLinkByAltNameRequest(altName, settings, up));
  } catch (err) {
    listening?.cancel();
    if (err instanceof NetlinkError && err.code === "ENODEV") {
      if (altName !== undefined) return undefined; // no link by that name: the caller looks it up
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
