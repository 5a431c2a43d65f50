// Rebuilds the daemon's state from the kernel before it serves: every link in
// our group with a "wk<id>" alias is an attachment, and its host routes give
// its addresses. The kernel is the source of truth, so nothing is handed out
// twice after a crash or restart.
//
// A pod namespace deleted while the daemon was down takes the veth pair with
// it, so its link is simply not found here and its addresses are free at once:
// no route points at them any more. Links in our group with our MAC but no
// alias are attaches cut off half-way (the alias is set right after creation);
// they are deleted.
import type { Logger } from "pino";
import type { Ipam } from "../ipam/allocator.js";
import { AF_UNSPEC, RTPROT_STATIC } from "../netlink/codec/constants.js";
import type { Handle } from "../netlink/handle.js";
import { deleteLink, listLinks } from "../netlink/link.js";
import { listRoutes } from "../netlink/route.js";
import { ALIAS_PREFIX, HOST_VETH_MAC } from "./constants.js";
import type { AttachmentRegistry } from "./registry.js";

export interface RecoverDeps {
  host: Handle;
  ipam: Ipam;
  registry: AttachmentRegistry;
  linkGroup: number;
  log: Logger;
}

export interface RecoveryReport {
  recovered: number;
  removedHalfMade: number;
  conflicts: number;
}

export async function recoverFromKernel(deps: RecoverDeps): Promise<RecoveryReport> {
  const links = await listLinks(deps.host, deps.linkGroup);
  const report: RecoveryReport = { recovered: 0, removedHalfMade: 0, conflicts: 0 };
  if (links.length === 0) return report;
  const routes = await listRoutes(deps.host, AF_UNSPEC);
  for (const link of links) {
    const alias = link.alias ?? "";
    if (!alias.startsWith(ALIAS_PREFIX) || alias.length === ALIAS_PREFIX.length) {
      if (link.mac === HOST_VETH_MAC && link.kind === "veth") {
        await deleteLink(deps.host, link.index, link.name).catch(() => undefined);
        deps.log.warn({ link: link.name }, "removed a half-made pod link (no alias) left by an interrupted attach");
        report.removedHalfMade++;
      }
      continue;
    }
    const workloadId = alias.slice(ALIAS_PREFIX.length);
    const addresses = routes
      .filter((r) => r.oif === link.index && r.protocol === RTPROT_STATIC && r.dst !== undefined && r.dstLen === (r.dst.includes(":") ? 128 : 32))
      .map((r) => r.dst as string);
    try {
      for (const a of addresses) deps.ipam.markUsed(workloadId, a);
    } catch (err) {
      report.conflicts++;
      deps.log.error({ link: link.name, workloadId, addresses, err: (err as Error).message }, "recovered link conflicts with another; left in place, not adopted");
      continue;
    }
    deps.registry.add({ workloadId, hostIfName: link.name, hostIfIndex: link.index, addresses });
    report.recovered++;
  }
  return report;
}
