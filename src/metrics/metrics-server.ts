// Serves the metrics registry over HTTP (GET /metrics) for Prometheus.
import { createServer, type Server } from "node:http";
import type { Logger } from "pino";
import type { Registry } from "prom-client";

export interface MetricsServer {
  /** "host:port" actually bound (port 0 picks one). */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(registry: Registry, listen: { host: string; port: number }, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
      (err: unknown) => {
        log.error({ err }, "metrics collection failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const a = server.address();
  const address = typeof a === "object" && a !== null ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}` : String(a);
  log.info({ address }, "metrics served at /metrics");
  return {
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
