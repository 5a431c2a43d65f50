// Where a process's resident memory is, from /proc/PID/smaps: for the daemon's
// RSS figure in bench/bench.ts. The kernel names only some mappings, so the
// rest is recognised by shape:
//   - file-backed: the Node.js binary and shared libraries (page cache,
//     shared with every process that maps the same files; clean, so the
//     kernel may drop it under pressure and read it again);
//   - malloc heaps: "[heap]" (glibc's main arena) and the other arenas, each
//     in a 64 MiB-aligned reservation (glibc's HEAP_MAX_SIZE on 64-bit) of
//     which only the front is read-write;
//   - thread stacks: a read-write mapping right above a one-page guard that
//     has no access (glibc's pthread stacks: libuv's pool, V8's workers);
//   - the rest of the anonymous memory: V8's heap (its pages are anonymous
//     mappings of their own), and the few large allocations malloc maps
//     separately.
import { readFileSync } from "node:fs";

export interface MemoryMap {
  /** VmRSS as the kernel counts it, KiB (smaps' sum can differ by a little: it is read a moment apart). */
  rssKiB: number;
  fileKiB: number;
  mallocKiB: number;
  /** Arenas besides the main one. */
  arenas: number;
  stackKiB: number;
  threads: number;
  otherAnonKiB: number;
}

interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  name: string;
  rssKiB: number;
}

const ARENA_RESERVATION = 64n << 20n;
const PAGE = 4096n;

function parseSmaps(text: string): Mapping[] {
  const maps: Mapping[] = [];
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      maps.push({ start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3]!, name: head[4]!.trim(), rssKiB: 0 });
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length > 0) maps[maps.length - 1]!.rssKiB = Number(rss[1]);
  }
  return maps;
}

export function memoryMap(pid: number): MemoryMap {
  const maps = parseSmaps(readFileSync(`/proc/${pid}/smaps`, "utf8"));
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m: MemoryMap = { rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN), fileKiB: 0, mallocKiB: 0, arenas: 0, stackKiB: 0, threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? NaN), otherAnonKiB: 0 };
  maps.forEach((x, i) => {
    const prev = maps[i - 1];
    const next = maps[i + 1];
    const noAccess = (y: Mapping | undefined): y is Mapping => y !== undefined && y.perms.startsWith("---") && y.name === "";
    if (x.name.startsWith("/")) m.fileKiB += x.rssKiB;
    else if (x.name === "[heap]") m.mallocKiB += x.rssKiB;
    else if (x.name !== "" || x.perms.startsWith("---")) m.otherAnonKiB += x.rssKiB; // [stack], [vdso]…: a few KiB
    else if (x.start % ARENA_RESERVATION === 0n && (x.end - x.start === ARENA_RESERVATION || (noAccess(next) && next.start === x.end && next.end - x.start === ARENA_RESERVATION))) {
      m.mallocKiB += x.rssKiB;
      m.arenas++;
    } else if (noAccess(prev) && prev.end === x.start && prev.end - prev.start === PAGE && x.end - x.start >= 256n << 10n) m.stackKiB += x.rssKiB;
    else m.otherAnonKiB += x.rssKiB;
  });
  return m;
}

const mib = (kib: number): string => (kib / 1024).toFixed(1);

/** One line: where the RSS is. */
export function describeMemoryMap(m: MemoryMap): string {
  return (
    `Node.js's binary and libraries ${mib(m.fileKiB)} MiB (file-backed, shared page cache); ` +
    `V8's heap and other anonymous memory ${mib(m.otherAnonKiB)}; malloc heaps ${mib(m.mallocKiB)} (${m.arenas + 1} arenas); ` +
    `thread stacks ${mib(m.stackKiB)} (${m.threads} threads)`
  );
}
