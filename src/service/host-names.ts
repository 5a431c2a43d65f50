// Host-side interface names: "wk" + the first 8 usable characters of the
// workload id, then "-0000".."-ffff" on collision. At most 15 bytes (IFNAMSIZ),
// for ids of any length.
import { hash } from "node:crypto";
import { HOST_NAME_PREFIX } from "./constants.js";

const MAX_SUFFIX = 0xffff;

export function hostNameBase(workloadId: string): string {
  // Keep characters that are safe in interface names everywhere; ':' is not.
  const usable = workloadId.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 8);
  return HOST_NAME_PREFIX + usable;
}

/** Candidate names in the order they are tried. */
export function* hostNameCandidates(workloadId: string): Generator<string> {
  const base = hostNameBase(workloadId);
  yield base;
  for (let i = 0; i <= MAX_SUFFIX; i++) yield `${base}-${i.toString(16).padStart(4, "0")}`;
}

/**
 * The host link's alternative name: derived from the whole workload id, so
 * only that workload's link carries it, and too long (35 bytes) to clash
 * with any interface's own name. Detach deletes the link by it: the
 * ownership check is the kernel's name lookup, with no lookup of ours first.
 */
export function hostAltName(workloadId: string): string {
  // The one-shot hash: a fraction of createHash()'s JavaScript per call.
  return `${HOST_NAME_PREFIX}-${hash("sha256", workloadId, "hex").slice(0, 32)}`;
}
