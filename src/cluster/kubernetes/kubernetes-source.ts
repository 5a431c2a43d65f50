// The cluster view from the Kubernetes API: Node objects, list + watch.
//
// One loop: list (the whole state and a resourceVersion), then watch from
// that resourceVersion, resuming from the last one seen (events and
// bookmarks) each time a stream ends. 410 Gone (an HTTP 410 or an ERROR
// event in the stream) means the history we would resume from is compacted:
// list again. Any other failure is recorded (lastError, onError), the view is
// left as it is, and after a capped backoff we list again, so the view is
// whole again as soon as the API answers. Events only update a small cache
// of records; a timer gathers a burst of them and rebuilds the whole view
// from the cache (level-triggered), and listeners hear only of real changes.
//
// Read-only: the only requests are GET /api/v1/nodes (list and watch).
//
// The official client does the configuration (kubeconfig or in-cluster),
// the credentials (token files, certificates, exec plugins) and TLS; its
// ListWatch/informer is not used because it stops for good on a connection
// error, asks for no bookmarks and no server-side timeout, and its list has
// no timeout (see the notes at each workaround below).

import type * as K8s from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Listeners } from "../listeners.js";
import type { ClusterSource } from "../source.js";
import { buildView, type ClusterView, emptyView, viewsEqual } from "../view.js";
import { describeApiError, httpStatusOf, isTimeout } from "./api-errors.js";
import { type NodeRecord, nodeRecord, rawViewFromRecords, recordsEqual } from "./node-records.js";

export type KubernetesClientModule = typeof K8s;

export interface KubernetesSourceOptions {
  /** This node's name: its Node gives our pod prefixes and addresses. */
  nodeName: string;
  /** A kubeconfig file; without it the pod's service-account credentials (in-cluster). */
  kubeconfig?: string;
  log: Pick<Logger, "debug" | "info" | "warn" | "error">;
  /** How long a burst of events is gathered before the view is rebuilt. Default 15 ms. */
  coalesceMs?: number;
  /** Asked of the server for each watch (it ends the stream then, and we resume). Default 300 s. */
  watchTimeoutSeconds?: number;
  /**
   * A watch whose connection is not answered, or that says nothing at all (no
   * event, no bookmark) for this long, is dropped. Default 90 s: a healthy API
   * server sends a bookmark about once a minute to a watch that asks for them.
   */
  watchIdleMs?: number;
  /** A list not answered by then fails. Default 30 s. */
  listTimeoutMs?: number;
  /** Wait after the first failure; doubles up to backoffMaxMs. Defaults 200 ms and 5 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

/** Figures for metrics. */
export interface KubernetesSourceStats {
  /** The last list or watch event (bookmarks included) received. */
  lastSuccessfulSync: Date | undefined;
  /** Failed lists and watches. */
  errors: number;
  /** Node objects in the cache (this node included). */
  nodesKnown: number;
  /** Watch events received (bookmarks included). */
  eventsReceived: number;
  /** Lists done (the first one and every relist). */
  lists: number;
  /** Watch requests made. */
  watches: number;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Loads the client configuration; throws an Error saying what is missing. */
export function loadKubeConfig(k8s: KubernetesClientModule, kubeconfig: string | undefined): K8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (kubeconfig !== undefined) {
    try {
      kc.loadFromFile(kubeconfig);
    } catch (err) {
      throw new Error(`kubeconfig ${kubeconfig}: ${(err as Error).message}`);
    }
    if (!kc.getCurrentCluster()) throw new Error(`kubeconfig ${kubeconfig}: its current context names no cluster`);
    return kc;
  }
  if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
    throw new Error("not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (give a kubeconfig instead)");
  }
  // The client reads the token file at most 60 s after the last read, so a
  // rotated service-account token is picked up; on a 401 we also build a new
  // configuration at once (see reconnect).
  kc.loadFromCluster();
  return kc;
}

interface Client {
  kc: K8s.KubeConfig;
  server: string;
  api: K8s.CoreV1Api;
  watch: K8s.Watch;
}

type WatchEnd = "ended" | "idle" | "gone";

export class KubernetesSource implements ClusterSource {
  readonly kind = "kubernetes" as const;
  readonly nodeName: string;

  private readonly k8s: KubernetesClientModule;
  private readonly opts: KubernetesSourceOptions;
  private readonly log: KubernetesSourceOptions["log"];
  private readonly coalesceMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly watchIdleMs: number;
  private readonly listTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;

  private client: Client;
  private readonly closing = new AbortController();
  private records = new Map<string, NodeRecord>();
  /** Where the next watch resumes; undefined: list first. */
  private resourceVersion: string | undefined;
  private view: ClusterView;
  private error: string | undefined;
  private syncedAt: Date | undefined;
  private readonly counts = { errors: 0, events: 0, lists: 0, watches: 0 };
  private readonly changeListeners = new Listeners<ClusterView>();
  private readonly errorListeners = new Listeners<string>();
  private rebuildTimer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;
  private stopWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(k8s: KubernetesClientModule, opts: KubernetesSourceOptions) {
    if (!opts.nodeName) throw new Error("kubernetes source: no node name");
    this.k8s = k8s;
    this.opts = opts;
    this.nodeName = opts.nodeName;
    this.log = opts.log;
    this.coalesceMs = opts.coalesceMs ?? 15;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.watchIdleMs = opts.watchIdleMs ?? 90_000;
    this.listTimeoutMs = opts.listTimeoutMs ?? 30_000;
    this.backoffInitialMs = opts.backoffInitialMs ?? 200;
    this.backoffMaxMs = opts.backoffMaxMs ?? 5000;
    this.client = this.makeClient();
    this.view = emptyView(`node ${this.nodeName}: the Kubernetes API has not been read yet`);
  }

  /** The API server's address, for messages. */
  get server(): string {
    return this.client.server;
  }

  private makeClient(): Client {
    const k8s = this.k8s;
    const kc = loadKubeConfig(k8s, this.opts.kubeconfig);
    const server = kc.getCurrentCluster()!.server;
    const closing = this.closing.signal;
    const listTimeoutMs = this.listTimeoutMs;
    // The generated API sets no timeout on a request; this middleware gives
    // each one its own, and close() aborts whatever is in flight.
    const config = k8s.createConfiguration({
      baseServer: new k8s.ServerConfiguration(server, {}),
      authMethods: { default: kc },
      promiseMiddleware: [
        {
          pre: async (ctx) => {
            ctx.setSignal(AbortSignal.any([closing, AbortSignal.timeout(listTimeoutMs)]));
            ctx.setHeaderParam("User-Agent", "workloadnetd");
            return ctx;
          },
          post: async (res) => res,
        },
      ],
    });
    const watch = new k8s.Watch(kc);
    // The client's Watch bounds the connect and then the silence between two
    // chunks with one timer, requestTimeoutMs, fixed at 30 s and private. We
    // set it to our bound: the handle it returns to abort a watch comes only
    // once the response has begun, too late to bound a connect ourselves.
    const w = watch as unknown as { requestTimeoutMs?: unknown };
    if (typeof w.requestTimeoutMs !== "number") throw new Error("kubernetes source: this @kubernetes/client-node has no Watch.requestTimeoutMs; check the pinned version");
    w.requestTimeoutMs = this.watchIdleMs;
    return { kc, server, api: new k8s.CoreV1Api(config), watch };
  }

  start(): Promise<void> {
    this.started ??= new Promise<void>((resolve) => {
      void this.run(resolve);
    });
    return this.started;
  }

  current(): ClusterView {
    return this.view;
  }

  lastError(): string | undefined {
    return this.error;
  }

  lastSync(): Date | undefined {
    return this.syncedAt;
  }

  stats(): KubernetesSourceStats {
    return {
      lastSuccessfulSync: this.syncedAt,
      errors: this.counts.errors,
      nodesKnown: this.records.size,
      eventsReceived: this.counts.events,
      lists: this.counts.lists,
      watches: this.counts.watches,
    };
  }

  onChange(listener: (view: ClusterView) => void): () => void {
    return this.changeListeners.add(listener);
  }

  onError(listener: (message: string) => void): () => void {
    return this.errorListeners.add(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.rebuildTimer);
    this.rebuildTimer = undefined;
    this.closing.abort();
    this.stopWatch?.();
    this.wake?.();
    this.changeListeners.clear();
    this.errorListeners.clear();
  }

  private async run(firstAttemptDone: () => void): Promise<void> {
    let backoff = this.backoffInitialMs;
    while (!this.closed) {
      try {
        if (this.resourceVersion === undefined) {
          await this.list();
          firstAttemptDone();
        }
        if (this.closed) break;
        const began = Date.now();
        const eventsBefore = this.counts.events;
        const end = await this.watchOnce();
        if (this.closed) break;
        if (end === "gone") {
          this.log.info({ resourceVersion: this.resourceVersion }, "kubernetes watch: resourceVersion too old (410 Gone); listing again");
          this.resourceVersion = undefined;
          continue;
        }
        // The watch worked: the next failure starts the backoff afresh. A
        // stream that ends at once with nothing in it is not a success, so
        // a server that keeps doing that is not asked again in a tight loop.
        if (this.counts.events > eventsBefore || Date.now() - began >= 1000) backoff = this.backoffInitialMs;
        else {
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, this.backoffMaxMs);
        }
        if (end === "idle") this.log.debug({ idleMs: this.watchIdleMs }, "kubernetes watch: silent too long; reconnecting");
      } catch (err) {
        if (this.closed) break;
        this.fail(err);
        firstAttemptDone();
        // Whatever happened while we could not see, the next success is a
        // full list, so nothing missed in between can linger in the view.
        this.resourceVersion = undefined;
        if (httpStatusOf(err) === 401) this.reconnect();
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.backoffMaxMs);
      }
    }
    firstAttemptDone();
  }

  /** A new configuration, so the token file (or kubeconfig) is read again now. */
  private reconnect(): void {
    try {
      this.client = this.makeClient();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "kubernetes source: cannot reload the credentials; keeping the old ones");
    }
  }

  private async list(): Promise<void> {
    const list = await this.client.api.listNode({});
    const rv = list.metadata?.resourceVersion;
    if (!rv) throw new Error("the node list has no resourceVersion");
    const next = new Map<string, NodeRecord>();
    for (const item of list.items) {
      const r = nodeRecord(item);
      if (r) next.set(r.name, r);
    }
    if (this.closed) return;
    this.records = next;
    this.resourceVersion = rv;
    this.counts.lists++;
    this.synced();
    if (this.error !== undefined) {
      this.log.info({ server: this.server, was: this.error }, "kubernetes API answers again; view resynced");
      this.error = undefined;
    }
    this.rebuild();
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      let connected = false;
      let controller: AbortController | undefined;
      let failure: unknown;
      let gone = false;
      const settle = (err: unknown) => {
        if (settled) return;
        settled = true;
        this.stopWatch = undefined;
        controller?.abort();
        if (gone) resolve("gone");
        else if (failure !== undefined) reject(failure);
        else if (err === null || err === undefined || this.closed) resolve("ended");
        else if (httpStatusOf(err) === 410) resolve("gone");
        else if (isTimeout(err) && connected) resolve("idle");
        else reject(err);
      };
      const onEvent = (type: string, obj: unknown) => {
        if (settled) return;
        connected = true;
        if (type === "ERROR") {
          // A Status object: 410 means our resourceVersion is compacted away.
          const status = obj as { code?: unknown; message?: unknown } | undefined;
          if (status?.code === 410) gone = true;
          else failure = Object.assign(new Error(`watch: ${String(status?.message ?? "error event")}`), typeof status?.code === "number" ? { statusCode: status.code } : {});
          settle(null);
          return;
        }
        this.counts.events++;
        this.synced();
        const rv = (obj as { metadata?: { resourceVersion?: unknown } } | undefined)?.metadata?.resourceVersion;
        if (type === "ADDED" || type === "MODIFIED") this.put(nodeRecord(obj));
        else if (type === "DELETED") {
          const r = nodeRecord(obj);
          if (r && this.records.delete(r.name)) this.schedule();
        } else if (type !== "BOOKMARK") this.log.debug({ type }, "kubernetes watch: unknown event type ignored");
        if (typeof rv === "string" && rv !== "") this.resourceVersion = rv;
      };
      this.counts.watches++;
      this.stopWatch = () => settle(null);
      this.client.watch
        .watch(
          "/api/v1/nodes",
          { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.watchTimeoutSeconds },
          onEvent,
          settle,
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
            else connected = true;
          },
          (err: unknown) => settle(err ?? new Error("watch failed")),
        );
    });
  }

  private put(r: NodeRecord | undefined): void {
    if (!r) return;
    if (recordsEqual(this.records.get(r.name), r)) return;
    this.records.set(r.name, r);
    this.schedule();
  }

  private synced(): void {
    this.syncedAt = new Date();
  }

  private schedule(): void {
    if (this.rebuildTimer !== undefined || this.closed) return;
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined;
      this.rebuild();
    }, this.coalesceMs);
  }

  /** The whole view again from the cache; listeners hear of it only if it changed. */
  private rebuild(): void {
    clearTimeout(this.rebuildTimer);
    this.rebuildTimer = undefined;
    if (this.closed) return;
    const next = buildView(rawViewFromRecords(this.nodeName, this.records));
    if (viewsEqual(next, this.view)) return;
    const before = new Set(this.view.problems);
    for (const p of next.problems) if (!before.has(p)) this.log.warn({ problem: p }, "kubernetes source: bad node data");
    this.view = next;
    this.changeListeners.emit(next, (err) => this.log.error({ err: err.message }, "cluster view listener failed"));
  }

  private fail(err: unknown): void {
    this.counts.errors++;
    const timeoutMs = httpStatusOf(err) === undefined && isTimeout(err) && this.resourceVersion === undefined ? this.listTimeoutMs : this.watchIdleMs;
    const message = `kubernetes API ${this.server}: ${describeApiError(err, timeoutMs)}`;
    if (message === this.error) return;
    this.error = message;
    this.log.warn({ err: message }, "kubernetes source error; keeping the last view");
    // A listener's failure is its own.
    this.errorListeners.emit(message);
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    }).finally(() => {
      this.wake = undefined;
    });
  }
}
