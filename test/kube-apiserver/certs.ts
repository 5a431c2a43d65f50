// Test certificates for the Kubernetes API stand-in: a throwaway CA and a
// server certificate signed by it, made with the openssl command (Node's
// crypto can make keys but not X.509 certificates).

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Writes ca.crt, server.crt and server.key into dir; the server certificate names every IP and DNS name given. */
export function makeCertificates(dir: string, names: readonly string[]): TestCertificates {
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=kube-apiserver-stand-in-ca");
  ssl("req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver");
  const san = [...new Set(names)].map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  writeFileSync(
    join(dir, "server.ext"),
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  );
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext");
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
}
