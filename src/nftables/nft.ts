// The one place that loads the nftables addon (native/nftables.c): a
// libnftables context that runs command buffers in nft's syntax, each buffer
// one kernel transaction (all of it applies, or none).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

interface NativeNftables {
  /** Runs the commands on a worker thread; resolves with nft's output (JSON when asked). */
  run(commands: string, jsonOutput?: boolean): Promise<string>;
  /** The same on the calling thread. */
  runSync(commands: string, jsonOutput?: boolean): string;
}

/** A failed transaction; the message is nft's own (what it refused and where). */
export class NftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NftError";
  }
}

/** Runs nft command buffers as transactions. */
export interface Nft {
  run(commands: readonly string[]): Promise<void>;
  /** Runs a read-only command (list …) and parses its JSON output. */
  list(command: string): Promise<unknown>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/src/nftables -> project root
const root = path.resolve(here, "..", "..", "..");
const require = createRequire(import.meta.url);

let loaded: NativeNftables | undefined;

function addon(): NativeNftables {
  if (loaded !== undefined) return loaded;
  try {
    loaded = require(path.join(root, "build", "Release", "workloadnet_nftables.node")) as NativeNftables;
  } catch (err) {
    throw new NftError(`cannot load libnftables (Debian package libnftables1): ${(err as Error).message}`, { cause: err });
  }
  return loaded;
}

/** nft's message, on one line where it has several (it marks the failing command with ^^^ below it). */
function nftMessage(err: unknown): string {
  const text = (err as Error)?.message ?? String(err);
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !/^\s*\^+\s*$/.test(l))
    .join(" | ");
}

/** The libnftables context of this process (loaded on first use, from the main thread). */
export function openNft(): Nft {
  const native = addon();
  return {
    async run(commands) {
      if (commands.length === 0) return;
      try {
        await native.run(commands.join("\n") + "\n");
      } catch (err) {
        throw new NftError(`nft: ${nftMessage(err)}`, { cause: err });
      }
    },
    async list(command) {
      let out: string;
      try {
        out = await native.run(command, true);
      } catch (err) {
        throw new NftError(`nft ${command}: ${nftMessage(err)}`, { cause: err });
      }
      return out.trim() === "" ? { nftables: [] } : JSON.parse(out);
    },
  };
}
