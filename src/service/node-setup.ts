// Node-wide setup, once at start: the IPv4 first hop on the host's loopback
// (so the host answers for it on every pod link) and forwarding for both
// families (so pods reach each other and beyond).
import { readFile, writeFile } from "node:fs/promises";
import type { Logger } from "pino";
import { addAddress } from "../netlink/addr.js";
import { RT_SCOPE_LINK } from "../netlink/codec/constants.js";
import { isErrno } from "../netlink/errors.js";
import type { Handle } from "../netlink/handle.js";
import { FIRST_HOP_V4, LOOPBACK_INDEX } from "./constants.js";


const FORWARDING_SYSCTLS = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"];

export async function setupNode(host: Handle, log: Logger): Promise<void> {
  try {
    await addAddress(host, { index: LOOPBACK_INDEX, address: FIRST_HOP_V4, prefixLen: 32, scope: RT_SCOPE_LINK });
    log.info({ address: `${FIRST_HOP_V4}/32`, dev: "lo" }, "first hop added to loopback");
  } catch (err) {
    if (!isErrno(err, "EEXIST")) throw new Error(`node setup: ${(err as Error).message}`, { cause: err });
  }
  for (const path of FORWARDING_SYSCTLS) {
    // Written only when off: a container sees /proc/sys read-only, and nodes
    // set up for Kubernetes have forwarding on already.
    if ((await readFile(path, "utf8").catch(() => "")).trim() === "1") continue;
    try {
      await writeFile(path, "1\n");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      const hint = code === "EROFS" || code === "EACCES" ? ` (turn it on on the host: sysctl -w ${sysctlName(path)}=1)` : "";
      throw new Error(`node setup: enable forwarding in ${path}: ${code}${hint}`, { cause: err });
    }
  }
}

/** /proc/sys/net/ipv4/ip_forward → net.ipv4.ip_forward */
function sysctlName(path: string): string {
  return path.slice("/proc/sys/".length).replace(/\//g, ".");
}
