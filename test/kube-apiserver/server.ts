/**
 * A STAND-IN for the Kubernetes API server, for tests and benchmarks only.
 *
 * No kube-apiserver can run here, so this is the one part of the test setup
 * that is not the real thing. It speaks the real protocol for what
 * workloadnetd uses, over HTTPS with a bearer token:
 *   GET /api/v1/nodes                    NodeList with metadata.resourceVersion
 *   GET /api/v1/nodes/NAME               one Node (404 Status when absent)
 *   GET /api/v1/nodes?watch=true&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N
 *                                        a chunked stream of JSON watch events, one per line:
 *                                        ADDED / MODIFIED / DELETED / BOOKMARK / ERROR
 * A resourceVersion older than the last compaction gets 410 Gone, either as
 * an ERROR event carrying a Status of code 410 in a 200 stream (what a real
 * API server does) or as an HTTP 410 (tooOldAs = "http"). A wrong or missing
 * token gets 401, anything but get/list/watch on nodes gets 403.
 *
 * Test controls: nodes.add/update/delete, compact (optionally expiring open
 * watches with an ERROR 410), bookmark, closeWatches, stop (refuse
 * connections), blackhole (accept but never answer; open streams go silent),
 * restart on the same port, a request log, and kubeconfig / service-account
 * files for clients.
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, isIPv6, type Server as TcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeCertificates } from "./certs.js";

export interface NodeAddress {
  type: string;
  address: string;
}

/** A Node as the tests describe it; the stand-in turns it into a v1 Node object. */
export interface NodeSpec {
  name: string;
  /** spec.podCIDRs (spec.podCIDR is set to the first unless podCIDR is given). */
  podCIDRs?: string[];
  /** spec.podCIDR alone (an old-style node without podCIDRs). */
  podCIDR?: string;
  /** InternalIP addresses (shorthand for addresses of type InternalIP). */
  internalIPs?: string[];
  /** Other status.addresses entries (ExternalIP, Hostname, …). */
  otherAddresses?: NodeAddress[];
}

export interface KubeNode {
  apiVersion: "v1";
  kind: "Node";
  metadata: { name: string; uid: string; resourceVersion: string; creationTimestamp: string; labels: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status: { addresses: NodeAddress[] };
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

export interface StartOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Extra names/addresses for the server certificate (the host is always in it). */
  certificateNames?: string[];
  /** The bearer token clients must send; a random one by default. */
  token?: string;
}

export interface KubeApiStandIn {
  /** https://HOST:PORT */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The CA certificate clients must trust. */
  readonly caFile: string;
  /** The token clients must send now (see setToken). */
  token(): string;
  /** Rotates the token: from now on only this one is accepted. */
  setToken(token: string): void;
  /** Writes a kubeconfig for this server (with the current token unless another is given) and returns its path. */
  kubeconfigFile(opts?: { token?: string; server?: string; path?: string }): string;
  /** Writes token, ca.crt and namespace as a pod's service-account directory has them; returns the directory. */
  serviceAccountDir(opts?: { token?: string }): string;
  readonly nodes: {
    add(spec: NodeSpec): KubeNode;
    /** Replaces the node's spec (a MODIFIED event). */
    update(spec: NodeSpec): KubeNode;
    /** Stores any object as the node, for malformed data (a MODIFIED or ADDED event). */
    put(node: KubeNode): KubeNode;
    delete(name: string): void;
    get(name: string): KubeNode | undefined;
    list(): KubeNode[];
  };
  /** The current resourceVersion. */
  resourceVersion(): number;
  /** Advances the resourceVersion without a node change (other objects were written). */
  bumpResourceVersion(by?: number): number;
  /** Forgets all history up to now: older resourceVersions get 410. With expireWatches, open watches get an ERROR 410 and end. */
  compact(opts?: { expireWatches?: boolean }): void;
  /** How a too-old resourceVersion on a new watch is refused. */
  tooOldAs: "event" | "http";
  /** Sends a BOOKMARK with the current resourceVersion to every open watch that asked for bookmarks; returns how many got one. */
  bookmark(): number;
  /**
   * While held, changes are recorded but not sent to open watches (a watcher
   * that has fallen behind); compact with expireWatches then ends them with 410.
   */
  holdEvents(hold: boolean): void;
  /** Ends every open watch stream normally (as a server-side timeout does). */
  closeWatches(): void;
  /** Open watch streams (not counting silenced ones). */
  openWatches(): number;
  /** Every request answered or held, in order. */
  readonly requests: RequestRecord[];
  /** Stops listening and drops every connection: clients get connection refused. */
  stop(): Promise<void>;
  /** Listens again on the same port (after stop). */
  restart(): Promise<void>;
  /** Accepts connections but never answers; open streams go silent. */
  blackhole(): void;
  /** Answers again; connections held while blackholed are dropped. */
  unblackhole(): void;
  /** Stops and removes its files. */
  close(): Promise<void>;
}

interface Watcher {
  res: ServerResponse;
  bookmarks: boolean;
  silenced: boolean;
  timer: NodeJS.Timeout;
}

interface HistoryEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeNode;
}

function status(code: number, reason: string, message: string) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

function nodeObject(spec: NodeSpec, rv: number, uid: string, created: string): KubeNode {
  const podCIDR = spec.podCIDR ?? spec.podCIDRs?.[0];
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: spec.name, uid, resourceVersion: String(rv), creationTimestamp: created, labels: { "kubernetes.io/hostname": spec.name } },
    spec: { ...(podCIDR !== undefined ? { podCIDR } : {}), ...(spec.podCIDRs !== undefined ? { podCIDRs: spec.podCIDRs } : {}) },
    status: {
      addresses: [...(spec.internalIPs ?? []).map((address) => ({ type: "InternalIP", address })), ...(spec.otherAddresses ?? []), { type: "Hostname", address: spec.name }],
    },
  };
}

/** Starts the stand-in. */
export async function startKubeApiServer(opts: StartOptions = {}): Promise<KubeApiStandIn> {
  const host = opts.host ?? "127.0.0.1";
  const dir = mkdtempSync(join(tmpdir(), "kube-apiserver-stand-in-"));
  const certs = makeCertificates(dir, [host, "127.0.0.1", "::1", "localhost", "kubernetes.default.svc", ...(opts.certificateNames ?? [])]);
  let token = opts.token ?? `stand-in-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

  let rv = 1;
  let compactedRv = 0;
  let history: HistoryEvent[] = [];
  const nodes = new Map<string, KubeNode>();
  const watchers = new Set<Watcher>();
  const requests: RequestRecord[] = [];
  const sockets = new Set<Socket>();
  const held = new Set<Socket>();
  let blackholed = false;
  let heldEvents = false;
  let uidCounter = 0;

  const send = (w: Watcher, event: unknown) => {
    if (!w.silenced && !w.res.writableEnded) w.res.write(`${JSON.stringify(event)}\n`);
  };
  const endWatch = (w: Watcher) => {
    clearTimeout(w.timer);
    watchers.delete(w);
    if (!w.res.writableEnded) w.res.end();
  };
  const record = (type: HistoryEvent["type"], object: KubeNode) => {
    const ev: HistoryEvent = { rv, type, object };
    history.push(ev);
    if (!heldEvents) for (const w of watchers) send(w, { type, object });
  };

  const respond = (res: ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "https://stand-in");
    const query = Object.fromEntries(url.searchParams);
    const rec: RequestRecord = { method: req.method ?? "", path: url.pathname, query, status: 0 };
    requests.push(rec);
    if (blackholed) {
      held.add(req.socket);
      return; // never answered
    }
    const reply = (code: number, body: unknown) => {
      rec.status = code;
      respond(res, code, body);
    };
    if (req.headers.authorization !== `Bearer ${token}`) {
      reply(401, status(401, "Unauthorized", "Unauthorized"));
      return;
    }
    const m = /^\/api\/v1\/nodes(?:\/([^/]+))?$/.exec(url.pathname);
    const watch = query.watch === "true" || query.watch === "1";
    const verb =
      req.method === "GET" ? (m?.[1] !== undefined ? "get" : watch ? "watch" : "list") : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<string, string>)[req.method ?? ""] ?? "unknown";
    if (!m || req.method !== "GET") {
      const resource = m ? "nodes" : url.pathname;
      reply(403, status(403, "Forbidden", `${resource} is forbidden: User "system:serviceaccount:kube-system:workloadnet" cannot ${verb} resource "${resource}" at the cluster scope`));
      return;
    }
    if (m[1] !== undefined) {
      const node = nodes.get(decodeURIComponent(m[1]));
      if (node) reply(200, node);
      else reply(404, status(404, "NotFound", `nodes "${m[1]}" not found`));
      return;
    }
    if (!watch) {
      reply(200, { kind: "NodeList", apiVersion: "v1", metadata: { resourceVersion: String(rv) }, items: [...nodes.values()] });
      return;
    }
    const from = query.resourceVersion ?? "";
    const fromRv = Number(from);
    const tooOld = from !== "" && from !== "0" && (!Number.isInteger(fromRv) || fromRv < compactedRv);
    const gone = status(410, "Expired", `too old resource version: ${from} (${compactedRv})`);
    if (tooOld && api.tooOldAs === "http") {
      reply(410, gone);
      return;
    }
    rec.status = 200;
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache, private" });
    res.flushHeaders();
    if (tooOld) {
      res.end(`${JSON.stringify({ type: "ERROR", object: gone })}\n`);
      return;
    }
    const timeoutSeconds = Number(query.timeoutSeconds ?? "1800");
    const w: Watcher = {
      res,
      bookmarks: query.allowWatchBookmarks === "true" || query.allowWatchBookmarks === "1",
      silenced: false,
      // A silenced (blackholed) stream never ends by itself either.
      timer: setTimeout(() => w.silenced || endWatch(w), Math.max(0, timeoutSeconds) * 1000),
    };
    watchers.add(w);
    res.on("close", () => {
      clearTimeout(w.timer);
      watchers.delete(w);
    });
    if (from === "" || from === "0") for (const n of nodes.values()) send(w, { type: "ADDED", object: n });
    else for (const ev of history) if (ev.rv > fromRv) send(w, { type: ev.type, object: ev.object });
  };

  const https: HttpsServer = createHttpsServer({ key: readFileSync(certs.keyFile), cert: readFileSync(certs.certFile) }, handle);
  // A plain TCP listener in front, so a blackholed server can accept a
  // connection and then say nothing at all (not even the TLS handshake).
  const tcp: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      held.delete(socket);
    });
    socket.on("error", () => {});
    if (blackholed) {
      held.add(socket);
      return;
    }
    https.emit("connection", socket);
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(port, host, () => {
        tcp.off("error", reject);
        resolve((tcp.address() as AddressInfo).port);
      });
    });
  const port = await listen(opts.port ?? 0);
  const url = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;

  const dropAll = () => {
    for (const w of [...watchers]) {
      clearTimeout(w.timer);
      watchers.delete(w);
    }
    for (const s of sockets) s.destroy();
  };

  const writeKubeconfig = (file: string, server: string, tok: string) => {
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "stand-in", cluster: { server, "certificate-authority": certs.caFile } }],
      users: [{ name: "workloadnet", user: { token: tok } }],
      contexts: [{ name: "stand-in", context: { cluster: "stand-in", user: "workloadnet" } }],
      "current-context": "stand-in",
    };
    // JSON is YAML: every kubeconfig reader takes it.
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  };
  let files = 0;

  const api: KubeApiStandIn = {
    url,
    host,
    port,
    caFile: certs.caFile,
    token: () => token,
    setToken(t) {
      token = t;
    },
    kubeconfigFile(o = {}) {
      return writeKubeconfig(o.path ?? join(dir, `kubeconfig-${++files}`), o.server ?? url, o.token ?? token);
    },
    serviceAccountDir(o = {}) {
      const sa = join(dir, `serviceaccount-${++files}`);
      mkdirSync(sa);
      writeFileSync(join(sa, "token"), o.token ?? token);
      writeFileSync(join(sa, "ca.crt"), readFileSync(certs.caFile));
      writeFileSync(join(sa, "namespace"), "kube-system");
      return sa;
    },
    nodes: {
      add(spec) {
        if (nodes.has(spec.name)) throw new Error(`stand-in: node ${spec.name} already exists`);
        rv++;
        const n = nodeObject(spec, rv, `uid-${++uidCounter}`, new Date().toISOString());
        nodes.set(spec.name, n);
        record("ADDED", n);
        return n;
      },
      update(spec) {
        const old = nodes.get(spec.name);
        if (!old) throw new Error(`stand-in: node ${spec.name} does not exist`);
        rv++;
        const n = nodeObject(spec, rv, old.metadata.uid, old.metadata.creationTimestamp);
        nodes.set(spec.name, n);
        record("MODIFIED", n);
        return n;
      },
      put(node) {
        rv++;
        const existed = nodes.has(node.metadata.name);
        const n = { ...node, metadata: { ...node.metadata, resourceVersion: String(rv) } };
        nodes.set(n.metadata.name, n);
        record(existed ? "MODIFIED" : "ADDED", n);
        return n;
      },
      delete(name) {
        const old = nodes.get(name);
        if (!old) throw new Error(`stand-in: node ${name} does not exist`);
        rv++;
        nodes.delete(name);
        record("DELETED", { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } });
      },
      get: (name) => nodes.get(name),
      list: () => [...nodes.values()],
    },
    resourceVersion: () => rv,
    bumpResourceVersion(by = 1) {
      rv += by;
      return rv;
    },
    compact(o = {}) {
      compactedRv = rv;
      history = [];
      if (o.expireWatches) {
        for (const w of [...watchers]) {
          send(w, { type: "ERROR", object: status(410, "Expired", `too old resource version (${compactedRv})`) });
          endWatch(w);
        }
      }
    },
    tooOldAs: "event",
    bookmark() {
      let sent = 0;
      for (const w of watchers) {
        if (!w.bookmarks || w.silenced) continue;
        send(w, { type: "BOOKMARK", object: { kind: "Node", apiVersion: "v1", metadata: { resourceVersion: String(rv) } } });
        sent++;
      }
      return sent;
    },
    holdEvents(hold) {
      heldEvents = hold;
    },
    closeWatches() {
      for (const w of [...watchers]) endWatch(w);
    },
    openWatches: () => [...watchers].filter((w) => !w.silenced).length,
    requests,
    async stop() {
      await new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        dropAll();
      });
    },
    async restart() {
      await listen(port);
    },
    blackhole() {
      blackholed = true;
      for (const w of watchers) w.silenced = true;
    },
    unblackhole() {
      blackholed = false;
      for (const w of [...watchers]) {
        if (!w.silenced) continue;
        clearTimeout(w.timer);
        watchers.delete(w);
        w.res.socket?.destroy();
      }
      for (const s of held) s.destroy();
      held.clear();
    },
    async close() {
      if (tcp.listening) await api.stop();
      else dropAll();
      https.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return api;
}
