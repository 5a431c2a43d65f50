// Serves the metrics registry over HTTP (GET /metrics) for Prometheus, and
// the probes GET /healthz and GET /readyz (see probes.ts) beside it.
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { healthz, readyz, type ReadinessChecks } from "./probes.js";

export interface MetricsServer {
  /** "host:port" actually bound (port 0 picks one). */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(
  registry: Registry,
  listen: { host: string; port: number },
  log: Logger,
  readiness?: ReadinessChecks,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const text = (status: number, body: string): void => {
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(body);
    };
    if (req.method !== "GET") {
      text(405, "only GET is served\n");
    } else if (path === "/healthz") {
      const a = healthz();
      text(a.status, a.body);
    } else if (path === "/readyz" && readiness !== undefined) {
      readyz(readiness).then(
        (a) => text(a.status, a.body),
        (err: unknown) => text(500, `readiness check failed: ${(err as Error).message}\n`),
      );
    } else if (path === "/metrics") {
      registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
        (err: unknown) => {
          log.error({ err }, "metrics collection failed");
          text(500, "metrics collection failed\n");
        },
      );
    } else {
      text(404, "not found: served are /metrics, /healthz and /readyz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address();
  const address = typeof a === "object" && a !== null ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}` : String(a);
  log.info({ address }, "metrics served at /metrics, probes at /healthz and /readyz");
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A prober's kept-alive connection must not hold the shutdown.
        server.closeIdleConnections();
      }),
  };
}
