// Servers and clients in test namespaces, to see what a far end sees: an HTTP
// server that answers with the address the request came from, a UDP server
// that does the same, and clients for both. Each runs as `node -e` under
// `ip netns exec`, so it lives in that namespace only.
import { spawn, type ChildProcess } from "node:child_process";
import { execIn } from "./sandbox.js";

const SERVER = `
const [kind, port, tag] = process.argv.slice(1);
const say = (addr) => \`\${tag} saw \${addr.replace(/^::ffff:/, "")}\`;
if (kind === "udp") {
  const dgram = require("node:dgram");
  const s = dgram.createSocket({ type: "udp6", ipv6Only: false });
  s.on("message", (_m, r) => s.send(say(r.address), r.port, r.address));
  s.bind(Number(port), "::", () => console.log("listening"));
} else {
  const http = require("node:http");
  http.createServer((q, r) => r.end(say(q.socket.remoteAddress))).listen(Number(port), "::", () => console.log("listening"));
}
`;

const CLIENT = `
const [kind, host, port] = process.argv.slice(1);
const fail = (e) => { console.error(String((e && e.cause && e.cause.code) || (e && e.message) || e)); process.exit(1); };
setTimeout(() => fail("timeout"), 2500).unref();
if (kind === "udp") {
  const dgram = require("node:dgram");
  const s = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  s.on("message", (m) => { console.log(m.toString()); process.exit(0); });
  s.on("error", fail);
  s.send("hello", Number(port), host);
} else {
  fetch(\`http://\${host.includes(":") ? "[" + host + "]" : host}:\${port}/\`).then((r) => r.text()).then((t) => { console.log(t); process.exit(0); }, fail);
}
`;

export interface Server {
  stop(): void;
}

/**
 * An HTTP (tcp) or UDP server in `ns` (a name of `ip netns`, or a namespace
 * file such as /proc/PID/ns/net) on every address, port `port`; its answer is
 * "TAG saw ADDRESS".
 */
export function serve(ns: string, kind: "tcp" | "udp", port: number, tag: string): Promise<Server> {
  const enter = ns.startsWith("/") ? ["nsenter", `--net=${ns}`] : ["ip", "netns", "exec", ns];
  const child: ChildProcess = spawn(enter[0]!, [...enter.slice(1), process.execPath, "-e", SERVER, kind, String(port), tag], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server in ${ns} did not start: ${err}`));
    }, 10_000);
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.once("data", () => {
      clearTimeout(timer);
      resolve({ stop: () => child.kill("SIGKILL") });
    });
    child.once("exit", () => {
      clearTimeout(timer);
      reject(new Error(`server in ${ns} exited: ${err}`));
    });
  });
}

/** What the server at host:port answered, from namespace `ns`; throws with the client's error. */
export async function ask(ns: string, kind: "tcp" | "udp", host: string, port: number): Promise<string> {
  const r = await execIn(ns, [process.execPath, "-e", CLIENT, kind, host, String(port)], 10_000);
  if (r.code !== 0) throw new Error(`${kind} ${host}:${port} from ${ns}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.trim();
}

/** ask(), but the failure message instead of an exception. */
export async function tryAsk(ns: string, kind: "tcp" | "udp", host: string, port: number): Promise<string> {
  try {
    return await ask(ns, kind, host, port);
  } catch (err) {
    return `failed: ${(err as Error).message}`;
  }
}
