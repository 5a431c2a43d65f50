#!/usr/bin/env node
// workloadnetctl: talk to a running workloadnetd from a shell — status, list,
// attach, detach, check, gc. One line per result; --json for scripts.
import { Command, CommanderError } from "commander";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectDaemon, type DaemonClient } from "../client/daemon-client.js";
import { bufferToAddress } from "../ipam/address.js";
import { DEFAULT_SOCKET_PATH } from "./config.js";
import { describeMapping, PROTOCOLS, type Protocol } from "../nftables/port-mappings.js";

interface WireMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIp: string;
}

/** "[HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTOCOL]", as podman's -p (HOSTIP in brackets for IPv6). */
export function parsePublish(value: string, previous: WireMapping[] = []): WireMapping[] {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?([0-9]+):([0-9]+)(?:\/([a-z]+))?$/.exec(value);
  if (m === null) throw new Error(`-p ${JSON.stringify(value)}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp|sctp]`);
  const hostIp = (m[1] ?? "").replace(/^\[|\]$/g, "");
  // Range and protocol are the daemon's to check: it answers INVALID_ARGUMENT with the reason.
  return [...previous, { hostIp, hostPort: Number(m[2]), containerPort: Number(m[3]), protocol: m[4] ?? "tcp" }];
}

function mappingText(m: WireMapping): string {
  const protocol = (PROTOCOLS as readonly string[]).includes(m.protocol) ? (m.protocol as Protocol) : "tcp";
  return describeMapping({ hostPort: m.hostPort, containerPort: m.containerPort, protocol, ...(m.hostIp ? { hostIp: m.hostIp } : {}) });
}

interface GlobalOptions {
  socket: string;
  json: boolean;
}

/** Output goes through here so tests and scripts get exactly one line per result. */
function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(`${json ? JSON.stringify(value) : text}\n`);
}

async function withClient<T>(opts: GlobalOptions, what: string, fn: (d: DaemonClient) => Promise<T>): Promise<T> {
  const d = connectDaemon(opts.socket);
  try {
    return await fn(d);
  } catch (err) {
    throw new Failure(what, opts.socket, err);
  } finally {
    d.close();
  }
}

/** A failed call, printed as "workloadnetctl: <what>: <CODE>: <message>". */
class Failure extends Error {
  constructor(what: string, socket: string, err: unknown) {
    const e = ConnectError.from(err);
    // The socket could not be opened at all: say so, whatever code the transport chose.
    if (/\bconnect E[A-Z]+\b/.test(e.rawMessage)) {
      super(`${what}: ${Code[Code.Unavailable]}: cannot reach workloadnetd at ${socket}: ${e.rawMessage}`);
      return;
    }
    super(`${what}: ${Code[e.code] ?? e.code}: ${e.rawMessage}`);
  }
}

function program(): Command {
  const cmd = new Command("workloadnetctl")
    .description("Talk to a running workloadnetd over its unix socket.")
    .option("--socket <path>", "the daemon's socket", DEFAULT_SOCKET_PATH)
    .option("--json", "print JSON instead of text", false)
    .exitOverride();
  const globals = (): GlobalOptions => cmd.opts<GlobalOptions>();

  cmd
    .command("status")
    .description("is the daemon ready, with which prefixes; where the cluster view comes from")
    .action(async () => {
      const o = globals();
      const s = await withClient(o, "status", (d) => d.client.status({}));
      const sourceError = s.sourceError || s.prefixError;
      const lines = [
        `ready: prefixes ${s.prefixes.join(", ") || "(none)"}; ${s.attached} attached${sourceError ? `; prefix source: ${sourceError}` : ""}`,
        // Daemons from before the cluster view leave these empty.
        ...(s.source
          ? [
              `source: ${s.source}${s.nodeName ? `; node ${s.nodeName}` : ""}; last sync ${s.lastSync || "never"}; ${s.nodesKnown} other node${s.nodesKnown === 1 ? "" : "s"}; routing ${s.routing || "none"}`,
            ]
          : []),
        ...s.problems.map((p) => `problem: ${p}`),
      ];
      print(
        o.json,
        {
          prefixes: s.prefixes,
          attached: s.attached,
          prefixError: s.prefixError || undefined,
          source: s.source || undefined,
          nodeName: s.nodeName || undefined,
          lastSync: s.lastSync || undefined,
          sourceError: s.sourceError || undefined,
          problems: s.problems,
          nodesKnown: s.nodesKnown,
          routing: s.routing || undefined,
        },
        lines.join("\n"),
      );
    });

  cmd
    .command("nodes")
    .description("the cluster view: every node, its addresses and pod prefixes, how its pods are routed")
    .action(async () => {
      const o = globals();
      const res = await withClient(o, "nodes", (d) => d.client.nodes({}));
      if (o.json) {
        for (const n of res.nodes) {
          print(true, { node: n.name, self: n.self, addresses: n.addresses, prefixes: n.prefixes, route: n.route, state: n.state, ...(n.message ? { message: n.message } : {}) }, "");
        }
        for (const p of res.problems) print(true, { problem: p }, "");
        return;
      }
      const rows = [
        ["NODE", "ADDRESSES", "PREFIXES", "ROUTE", "STATE"],
        ...res.nodes.map((n) => [n.name, n.addresses.join(",") || "-", n.prefixes.join(",") || "-", n.route || "-", n.message ? `${n.state}: ${n.message}` : n.state]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows) print(false, null, r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
      for (const p of res.problems) print(false, null, `problem: ${p}`);
    });

  cmd
    .command("list")
    .description("current attachments")
    .action(async () => {
      const o = globals();
      const res = await withClient(o, "list", (d) => d.client.list({}));
      for (const a of res.attachments) {
        const addresses = a.ip.map((b) => bufferToAddress(b));
        const portMappings = a.portMappings.map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, hostIp: m.hostIp }));
        const ports = portMappings.length > 0 ? `\t${portMappings.map(mappingText).join(", ")}` : "";
        print(o.json, { workloadId: a.workloadId, hostIfName: a.hostIfName, addresses, portMappings }, `${a.workloadId}\t${a.hostIfName}\t${addresses.join(" ")}${ports}`);
      }
    });

  cmd
    .command("attach <workload-id> <netns-path>")
    .description("attach a workload's network namespace")
    .option("--if-name <name>", "interface to create in the namespace", "eth0")
    .option("-p, --publish <[hostip:]hostport:containerport[/protocol]>", "publish a port on the node (repeatable)", parsePublish)
    .action(async (id: string, netnsPath: string, sub: { ifName: string; publish?: WireMapping[] }) => {
      const o = globals();
      const portMappings = sub.publish ?? [];
      const res = await withClient(o, `attach ${id}`, (d) => d.client.attach({ workloadId: id, netns: { netnsPath, ifName: sub.ifName }, portMappings }));
      const addresses = res.ip.map((b) => bufferToAddress(b));
      print(o.json, { workloadId: id, addresses, hostIfName: res.hostIfName, mac: res.mac }, `${id}\t${res.hostIfName}\t${addresses.join(" ")}`);
    });

  cmd
    .command("detach <workload-id>")
    .description("detach a workload (succeeds when it is already gone)")
    .action(async (id: string) => {
      const o = globals();
      await withClient(o, `detach ${id}`, (d) => d.client.detach({ workloadId: id }));
      print(o.json, { workloadId: id, detached: true }, `${id}\tdetached`);
    });

  cmd
    .command("check <workload-id> <netns-path>")
    .description("verify an attachment against the kernel")
    .option("--if-name <name>", "interface in the namespace", "eth0")
    .action(async (id: string, netnsPath: string, sub: { ifName: string }) => {
      const o = globals();
      await withClient(o, `check ${id}`, (d) => d.client.check({ workloadId: id, netns: { netnsPath, ifName: sub.ifName } }));
      print(o.json, { workloadId: id, ok: true }, `${id}\tok`);
    });

  cmd
    .command("gc [keep...]")
    .description("detach every attachment except the workload ids given")
    .action(async (keep: string[]) => {
      const o = globals();
      const res = await withClient(o, "gc", (d) => d.client.gC({ keepWorkloadIds: keep }));
      for (const id of res.removedWorkloadIds) print(o.json, { workloadId: id, removed: true }, `${id}\tremoved`);
    });
  return cmd;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode); // commander has printed it
    process.stderr.write(`workloadnetctl: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

void main();
