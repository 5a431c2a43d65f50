// Node-wide setup, once at start: the IPv4 first hop on the host's loopback
// (so the host answers for it on every pod link) and forwarding for both
// families (so pods reach each other and beyond).
import { writeFile } from "node:fs/promises";
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
    try {
      await writeFile(path, "1\n");
    } catch (err) {
      throw new Error(`node setup: enable forwarding in ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }
}
