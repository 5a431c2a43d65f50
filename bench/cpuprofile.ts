// Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function,
// optionally only for samples inside time windows. V8 stamps samples with
// CLOCK_MONOTONIC microseconds, the clock of process.hrtime in any process on
// the machine, so windows taken in the bench select samples in the daemon.
import { readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
}

export interface ProfileSummary {
  /** Sampled time inside the windows, idle included. */
  totalMs: number;
  idleMs: number;
  /** Top functions by self time, "(idle)" left out. */
  top: SelfTime[];
  /** Self time by where the code lives: our module directory, npm package, node subsystem. */
  groups: SelfTime[];
}

/** Windows are [startMs, endMs] on the process.hrtime clock (ms). */
export function summarizeProfile(file: string, windows: [number, number][] | undefined, topN: number): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const names = new Map<number, string>();
  const groupOf = new Map<number, string>();
  for (const n of profile.nodes) {
    names.set(n.id, frameName(n.callFrame));
    groupOf.set(n.id, frameGroup(n.callFrame));
  }
  const self = new Map<string, number>();
  const groups = new Map<string, number>();
  let t = profile.startTime;
  let totalUs = 0;
  let idleUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    // A sample's time is attributed from the previous sample's time stamp to this one.
    const next = profile.timeDeltas[i + 1] ?? 0;
    const ms = t / 1000;
    if (windows && !windows.some(([a, b]) => ms >= a && ms <= b)) continue;
    const name = names.get(profile.samples[i]!) ?? "?";
    totalUs += next;
    if (name.startsWith("(idle)")) idleUs += next;
    self.set(name, (self.get(name) ?? 0) + next);
    const g = groupOf.get(profile.samples[i]!) ?? "?";
    groups.set(g, (groups.get(g) ?? 0) + next);
  }
  const top = [...self.entries()]
    .filter(([name]) => !name.startsWith("(idle)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([name, us]) => ({ name, ms: us / 1000 }));
  const groupList = [...groups.entries()]
    .filter(([g]) => g !== "(idle)")
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: us / 1000 }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, top, groups: groupList };
}

function frameGroup(f: ProfileNode["callFrame"]): string {
  const url = f.url.replace(/^file:\/\//, "");
  if (!url) return f.functionName.startsWith("(") ? f.functionName : "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.slice(nm + "node_modules/".length).split("/");
    return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const src = /\/dist\/(src\/[^/]+)\//.exec(url);
  if (src) return src[1]!;
  const internal = /^node:internal\/([^/]+)/.exec(url);
  if (internal) return `node:${internal[1]!.replace(/\.js$/, "")}`;
  if (url.startsWith("node:")) return url;
  return path.basename(url);
}

function frameName(f: ProfileNode["callFrame"]): string {
  const fn = f.functionName || "(anonymous)";
  if (!f.url) return fn;
  let where = f.url.replace(/^file:\/\//, "");
  const nm = where.lastIndexOf("node_modules/");
  if (nm >= 0) where = where.slice(nm + "node_modules/".length);
  else if (where.includes("/dist/")) where = where.slice(where.indexOf("/dist/") + 6);
  else if (!where.startsWith("node:")) where = path.basename(where);
  return `${fn} ${where}:${f.lineNumber + 1}`;
}
