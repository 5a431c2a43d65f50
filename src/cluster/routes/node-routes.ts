// Routes to the other nodes' pods, reconciled level-triggered: each apply()
// computes the wanted state from the view and the mode, reads what of ours is
// in the kernel, and changes only the difference. Ours is recognisable in the
// kernel alone (route protocol, our VXLAN device and what hangs off it), so a
// new instance after a restart adopts it and, when it already matches,
// changes nothing: traffic between nodes never waits for the daemon.
import type { Handle } from "../../netlink/handle.js";
import { addAddressRequest } from "../../netlink/addr.js";
import { listAddresses } from "../../netlink/addr.js";
import { deleteFdbRequest, listFdb, replaceFdbRequest, type FdbEntry } from "../../netlink/fdb.js";
import { deleteNeighbourRequest, listNeighbours, replacePermanentNeighbourRequest, type Neighbour } from "../../netlink/neigh.js";
import { deleteRouteRequest, listRoutes, lookupRouteRequest, replaceRouteRequest, type Route } from "../../netlink/route.js";
import type { Request } from "../../netlink/socket.js";
import { isErrno } from "../../netlink/errors.js";
import { decodeRoute } from "../../netlink/codec/route-message.js";
import {
  AF_INET,
  AF_INET6,
  IFA_F_NODAD,
  NUD_PERMANENT,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  RTM_DELADDR,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  RTPROT_WORKLOADNET,
} from "../../netlink/codec/constants.js";
import { encodeAddress } from "../../netlink/codec/addr-message.js";
import { bigintToAddress, type Family } from "../../ipam/prefix.js";
import type { ClusterView } from "../view.js";
import { computeWanted, routeKey, type NodePlan, type RouteKind, type RoutingMode, type Wanted, type WantedRoute } from "./wanted.js";
import { ensureDevice, removeDevice } from "./vxlan-device.js";
import { findUnderlay, mayUseVxlan, underlayLinkMtu } from "./underlay.js";
import { DEFAULT_VXLAN_NAME, DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI, VXLAN_OVERHEAD, vtepMac } from "./vtep.js";

export interface VxlanOptions {
  /** VXLAN network identifier (default 1). */
  vni?: number;
  /** Destination UDP port (default 4789). */
  port?: number;
  /** The device's name (default wnvx0). */
  name?: string;
}

export interface NodeRoutesOptions {
  /** A handle in the namespace whose routes these are (the host's). */
  handle: Handle;
  mode: RoutingMode;
  vxlan?: VxlanOptions;
  /** The route protocol that marks ours (default RTPROT_WORKLOADNET, 87). */
  protocol?: number;
  /** Requests per system call (default 128; the socket's buffers hold each batch's answers). */
  batchSize?: number;
}

export interface NodeRouteStatus {
  name: string;
  /** How its pods are reached: direct (via its address), vxlan, or none (not by us). */
  kind: RouteKind;
  state: "installed" | "error";
  /** Why not (all of) it is installed. */
  error?: string;
  /** The underlay address its pods' traffic goes to (next hop or VTEP). */
  via?: string;
}

export interface DeviceStatus {
  name: string;
  index: number;
  mtu: number;
  /** The underlay address the tunnel sends from, and our VTEP MAC derived from it. */
  local: string;
  mac: string;
  vni: number;
  port: number;
}

export interface ReconcileResult {
  mode: RoutingMode;
  nodes: NodeRouteStatus[];
  /** What is not tied to one node: the device, stale entries that would not go. */
  problems: string[];
  /** Our VXLAN device, when the mode has one. */
  device?: DeviceStatus;
  /** Kernel changes made by this apply (0, 0, 0 when the kernel already matched). */
  changes: { added: number; updated: number; removed: number };
}

interface Op {
  req: Request;
  effect: "added" | "updated" | "removed";
  /** The node whose status a failure goes to; none: a general problem. */
  node?: string;
  /** Errors that mean "already so" (e.g. deleting what is gone). */
  ignore?: readonly string[];
  /** When it runs: 0 before the additions (to make room), else additions (1) before removals (2). */
  phase?: number;
}

const GONE = ["ENOENT", "ESRCH", "ENODEV", "EADDRNOTAVAIL"] as const;
const isOnlink = (r: Route): boolean => ((r.flags ?? 0) & RTNH_F_ONLINK) !== 0;

export class NodeRoutes {
  private readonly h: Handle;
  private readonly protocol: number;
  private readonly batchSize: number;
  private readonly vx: Required<VxlanOptions>;
  private queue: Promise<unknown> = Promise.resolve();
  private last: ReconcileResult | undefined;

  constructor(private readonly opts: NodeRoutesOptions) {
    this.h = opts.handle;
    this.protocol = opts.protocol ?? RTPROT_WORKLOADNET;
    this.batchSize = Math.max(1, opts.batchSize ?? 128);
    this.vx = { vni: opts.vxlan?.vni ?? DEFAULT_VXLAN_VNI, port: opts.vxlan?.port ?? DEFAULT_VXLAN_PORT, name: opts.vxlan?.name ?? DEFAULT_VXLAN_NAME };
  }

  get mode(): RoutingMode {
    return this.opts.mode;
  }

  /**
   * Makes the kernel match the view: safe to call at any time and again
   * (calls run one after another). Failures of single entries are reported
   * per node in the result, not thrown; it throws only when the kernel cannot
   * be read at all.
   */
  apply(view: ClusterView): Promise<ReconcileResult> {
    const run = this.queue.then(() => this.reconcile(view));
    this.queue = run.catch(() => undefined);
    return run.then((r) => (this.last = r));
  }

  /** Removes everything of ours (routes, the VXLAN device): what mode none does, for turning routing off. */
  cleanup(): Promise<ReconcileResult> {
    const run = this.queue.then(() => this.removeAll({ mode: "none", nodes: [], problems: [], changes: { added: 0, updated: 0, removed: 0 } }));
    this.queue = run.catch(() => undefined);
    return run.then((r) => (this.last = r));
  }

  /** The result of the last apply (undefined before the first). */
  lastResult(): ReconcileResult | undefined {
    return this.last;
  }

  private async reconcile(view: ClusterView): Promise<ReconcileResult> {
    const mode = this.opts.mode;
    const result: ReconcileResult = { mode, nodes: [], problems: [], changes: { added: 0, updated: 0, removed: 0 } };
    if (mode === "none") {
      await this.removeAll(result);
      result.nodes = view.nodes.map((n) => ({ name: n.name, kind: "none", state: "installed" }));
      return result;
    }

    // 1. The VXLAN device (made before routes are read: recreating it takes its routes along).
    let vxlan: { index: number; family: Family } | undefined;
    let vxlanProblem: string | undefined;
    if (mayUseVxlan(mode)) {
      const underlay = await findUnderlay(this.h, view);
      if (underlay === undefined) {
        vxlanProblem = "this node has no underlay address (none in the view, no default route)";
      } else {
        const mtu = ((await underlayLinkMtu(this.h, underlay.address)) ?? 1500) - VXLAN_OVERHEAD[underlay.family];
        const mac = vtepMac(underlay.address);
        try {
          const { link, action } = await ensureDevice(this.h, { ...this.vx, local: underlay.address, mac, mtu });
          vxlan = { index: link.index, family: underlay.family };
          result.device = { name: this.vx.name, index: link.index, mtu, local: underlay.address, mac, vni: this.vx.vni, port: this.vx.port };
          if (action === "created") result.changes.added++;
          else if (action !== undefined) result.changes.updated++;
        } catch (err) {
          vxlanProblem = (err as Error).message;
        }
      }
      // Without other nodes nothing needs the device yet: no problem to show (e.g. before the first view).
      if (vxlanProblem !== undefined && view.nodes.length > 0) result.problems.push(`VXLAN device ${this.vx.name}: ${vxlanProblem}`);
    } else if (await removeDevice(this.h, this.vx.name)) {
      result.changes.removed++;
    }

    // 2. The main table: ours, and others' that a route of ours would overwrite.
    const main = (await retryInterrupted(() => listRoutes(this.h))).filter((r) => r.table === RT_TABLE_MAIN && r.dstLen > 0 && r.dst !== undefined);
    const ours = new Map<string, Route[]>();
    const foreign = new Map<string, string>();
    for (const r of main) {
      const key = routeKey(r.dst!, r.dstLen);
      if (r.protocol === this.protocol) ours.set(key, [...(ours.get(key) ?? []), r]);
      else foreign.set(key, `proto ${r.protocol}${r.gateway ? ` via ${r.gateway}` : ""}${r.oif ? ` dev index ${r.oif}` : ""}`);
    }

    // 3. Which node addresses are on-link (one lookup each, many per system call).
    const onLink = mode === "vxlan" ? new Map<string, number>() : await this.onLink(view, vxlan?.index);

    // 4. Wanted, and what of ours hangs off the device.
    const wanted = computeWanted(view, mode, { onLink, foreign, ...(vxlan ? { vxlan } : {}), ...(vxlanProblem ? { vxlanProblem } : {}) });
    const ops: Op[] = [];
    if (vxlan !== undefined) {
      const index = vxlan.index;
      const [fdb, neighbours, addresses] = await Promise.all([
        retryInterrupted(() => listFdb(this.h, index)),
        retryInterrupted(() => listNeighbours(this.h, { index })),
        retryInterrupted(() => listAddresses(this.h, { index })),
      ]);
      ops.push(...this.fdbOps(wanted, fdb, vxlan.index), ...this.neighbourOps(wanted, neighbours, vxlan.index));
      ops.push(...this.addressOps(view, addresses, vxlan.index));
    }
    ops.push(...this.routeOps(wanted, ours));
    // Removals after additions: a node moving between kinds gets its new route before its old entries go.
    const phase = (o: Op): number => o.phase ?? (o.effect === "removed" ? 2 : 1);
    ops.sort((a, b) => phase(a) - phase(b));

    // 5. Apply, and report per node.
    const failures = await this.run(ops, result);
    result.nodes = wanted.nodes.map((p) => status(p, failures.get(p.name)));
    return result;
  }

  /** Node address -> ifindex of the connected route (scope link, no gateway) it falls in. */
  private async onLink(view: ClusterView, vxlanIndex: number | undefined): Promise<Map<string, number>> {
    const addresses = new Set<string>();
    for (const n of view.nodes) {
      if (n.prefixes.v4 && n.address.v4) addresses.add(n.address.v4);
      if (n.prefixes.v6 && n.address.v6) addresses.add(n.address.v6);
    }
    const list = [...addresses];
    const out = new Map<string, number>();
    for (let i = 0; i < list.length; i += this.batchSize) {
      const chunk = list.slice(i, i + this.batchSize);
      const outcomes = await this.h.batch(chunk.map((a) => lookupRouteRequest(a, this.h.where)));
      outcomes.forEach((o, j) => {
        if (!o.ok) return; // no route at all: not on-link
        const m = o.messages.find((x) => x.type === RTM_NEWROUTE);
        const r = m && decodeRoute(m.payload);
        if (r === undefined || r.type !== RTN_UNICAST || r.gateway !== undefined || r.oif === undefined) return;
        if (r.oif === vxlanIndex || r.protocol === this.protocol) return;
        // IPv6 connected routes have universe scope; IPv4 ones link scope.
        if (r.family === AF_INET && r.scope !== RT_SCOPE_LINK) return;
        out.set(chunk[j]!, r.oif);
      });
    }
    return out;
  }

  private fdbOps(wanted: Wanted, current: FdbEntry[], index: number): Op[] {
    const ops: Op[] = [];
    const byMac = new Map<string, FdbEntry[]>();
    for (const e of current) {
      if (isUnicast(e.mac) && (e.state & NUD_PERMANENT) !== 0) byMac.set(e.mac, [...(byMac.get(e.mac) ?? []), e]);
    }
    for (const w of wanted.fdb.values()) {
      const cur = byMac.get(w.mac) ?? [];
      byMac.delete(w.mac);
      const keep = cur.find((e) => e.dst === w.dst);
      if (keep !== undefined && cur.length === 1) continue;
      if (keep !== undefined || cur.length > 1) {
        // Extra remotes for the MAC: drop them (the right one, when present, stays).
        for (const e of cur) if (e !== keep) ops.push({ req: deleteFdbRequest({ index, mac: e.mac, ...(e.dst ? { dst: e.dst } : {}) }, this.h.where), effect: "removed", node: w.node, ignore: GONE });
        if (keep !== undefined) continue;
      }
      ops.push({ req: replaceFdbRequest({ index, mac: w.mac, dst: w.dst }, this.h.where), effect: cur.length === 0 ? "added" : "updated", node: w.node });
    }
    for (const stale of byMac.values()) {
      for (const e of stale) ops.push({ req: deleteFdbRequest({ index, mac: e.mac, ...(e.dst ? { dst: e.dst } : {}) }, this.h.where), effect: "removed", ignore: GONE });
    }
    return ops;
  }

  private neighbourOps(wanted: Wanted, current: Neighbour[], index: number): Op[] {
    const ops: Op[] = [];
    const byAddress = new Map(current.filter((n) => (n.state & NUD_PERMANENT) !== 0).map((n) => [n.address, n]));
    for (const w of wanted.neighbours.values()) {
      const cur = byAddress.get(w.address);
      byAddress.delete(w.address);
      if (cur?.mac === w.mac) continue;
      ops.push({ req: replacePermanentNeighbourRequest({ index, address: w.address, mac: w.mac }, this.h.where), effect: cur ? "updated" : "added", node: w.node });
    }
    for (const stale of byAddress.values()) {
      ops.push({ req: deleteNeighbourRequest({ index, address: stale.address }, this.h.where), effect: "removed", ignore: GONE });
    }
    return ops;
  }

  /**
   * The first host address of each of our pod prefixes (kept for the node by
   * the IPAM) on the device, so traffic the host itself sends to remote pods
   * leaves with an address of ours that the far side routes back over VXLAN.
   */
  private addressOps(view: ClusterView, current: { address: string; prefixLen: number; scope: number }[], index: number): Op[] {
    const want = new Map<string, number>();
    for (const p of [view.prefixes?.v4, view.prefixes?.v6]) {
      if (p !== undefined && p.size > 2n) want.set(bigintToAddress(p.network + 1n, p.family), p.family === 4 ? 32 : 128);
    }
    const ops: Op[] = [];
    const have = new Map(current.filter((a) => a.scope === RT_SCOPE_UNIVERSE).map((a) => [a.address, a.prefixLen]));
    for (const [address, prefixLen] of want) {
      if (have.get(address) === prefixLen) {
        have.delete(address);
        continue;
      }
      ops.push({ req: addAddressRequest({ index, address, prefixLen, flags: IFA_F_NODAD }, this.h.where), effect: "added", ignore: ["EEXIST"] });
    }
    for (const [address, prefixLen] of have) {
      ops.push({
        req: { type: RTM_DELADDR, flags: 0, parts: encodeAddress({ index, address, prefixLen, scope: 0, flags: 0 }), context: `delete address ${address}/${prefixLen} dev index ${index} in ${this.h.where}` },
        effect: "removed",
        ignore: GONE,
      });
    }
    return ops;
  }

  private routeOps(wanted: Wanted, ours: Map<string, Route[]>): Op[] {
    const ops: Op[] = [];
    const remove = (r: Route, node?: string): Op => ({ req: deleteRouteRequest(r, this.h.where), effect: "removed", ignore: GONE, ...(node ? { node } : {}) });
    for (const [key, w] of wanted.routes) {
      const cur = ours.get(key) ?? [];
      ours.delete(key);
      const keep = cur.find((r) => sameRoute(r, w));
      let replaced: Route | undefined;
      if (keep === undefined) {
        replaced = cur.find((r) => r.priority === defaultMetric(w.family));
        if (replaced !== undefined && w.family === 6 && w.onlink && replaced.oif !== w.oif) {
          // IPv6 refuses an on-link gateway that a route on another device covers, and the
          // route being replaced covers it (a node moving from direct to VXLAN): delete it first.
          ops.push({ ...remove(replaced, w.node), phase: 0 });
          ops.push({ req: replaceRouteRequest(this.routeSpec(w), this.h.where), effect: "added", node: w.node });
        } else {
          ops.push({ req: replaceRouteRequest(this.routeSpec(w), this.h.where), effect: replaced ? "updated" : "added", node: w.node });
        }
      }
      // Other routes of ours to the same prefix (another metric): the replace above did not cover them.
      for (const r of cur) if (r !== keep && r !== replaced) ops.push(remove(r, w.node));
    }
    for (const stale of ours.values()) for (const r of stale) ops.push(remove(r));
    return ops;
  }

  private routeSpec(w: WantedRoute): Parameters<typeof replaceRouteRequest>[0] {
    return {
      family: w.family === 4 ? AF_INET : AF_INET6,
      dst: bigintToAddress(w.prefix.network, w.prefix.family),
      dstLen: w.prefix.bits,
      gateway: w.gateway,
      oif: w.oif,
      protocol: this.protocol,
      table: RT_TABLE_MAIN,
      scope: RT_SCOPE_UNIVERSE,
      type: RTN_UNICAST,
      ...(w.onlink ? { flags: RTNH_F_ONLINK } : {}),
    };
  }

  /** Sends the operations in batches; returns the failures per node (general ones go to result.problems). */
  private async run(ops: Op[], result: ReconcileResult): Promise<Map<string, string[]>> {
    const failures = new Map<string, string[]>();
    for (let i = 0; i < ops.length; i += this.batchSize) {
      const chunk = ops.slice(i, i + this.batchSize);
      const outcomes = await this.h.batch(chunk.map((o) => o.req));
      outcomes.forEach((o, j) => {
        const op = chunk[j]!;
        if (o.ok) {
          result.changes[op.effect]++;
          return;
        }
        if (op.ignore?.includes(o.error.code)) return;
        if (op.node === undefined) result.problems.push(o.error.message);
        else failures.set(op.node, [...(failures.get(op.node) ?? []), o.error.message]);
      });
    }
    return failures;
  }

  private async removeAll(result: ReconcileResult): Promise<ReconcileResult> {
    if (await removeDevice(this.h, this.vx.name)) result.changes.removed++;
    const ours = (await retryInterrupted(() => listRoutes(this.h))).filter((r) => r.table === RT_TABLE_MAIN && r.protocol === this.protocol);
    const ops: Op[] = ours.map((r) => ({ req: deleteRouteRequest(r, this.h.where), effect: "removed", ignore: GONE }));
    await this.run(ops, result);
    return result;
  }
}

/**
 * A dump the kernel marks interrupted (the table changed under it, e.g. pods
 * attaching meanwhile) may be inconsistent: read it again, a few times.
 */
async function retryInterrupted<T>(read: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await read();
    } catch (err) {
      if (i >= tries || !isErrno(err, "EINTR")) throw err;
    }
  }
}

/** The metric the kernel gives a route added without one. */
const defaultMetric = (f: Family): number | undefined => (f === 6 ? 1024 : undefined);

function sameRoute(r: Route, w: WantedRoute): boolean {
  return r.type === RTN_UNICAST && r.gateway === w.gateway && r.oif === w.oif && isOnlink(r) === w.onlink && r.priority === defaultMetric(w.family);
}

function isUnicast(mac: string): boolean {
  const first = parseInt(mac.slice(0, 2), 16);
  return mac !== "00:00:00:00:00:00" && (first & 1) === 0;
}

function status(p: NodePlan, failed: string[] | undefined): NodeRouteStatus {
  const errors = [...p.errors, ...(failed ?? [])];
  return {
    name: p.name,
    kind: p.kind,
    state: errors.length > 0 ? "error" : "installed",
    ...(errors.length > 0 ? { error: errors.join("; ") } : {}),
    ...(p.via !== undefined ? { via: p.via } : {}),
  };
}
