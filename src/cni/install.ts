// The daemon installs its CNI side on the node itself (--cni-bin-dir,
// --cni-conf-dir), as cluster network agents do:
// - the plugin is copied into the runtime's plugin directory at start,
//   atomically (a temporary file in the same directory, synced, renamed over
//   the old one), so a runtime that execs it never sees it half-written, and
//   a running old copy keeps its own inode;
// - the network configuration is written only once the node's pod prefixes
//   are known: a runtime (and so the kubelet) reports the node's network
//   ready when a conflist appears, and pods must then be attachable;
// - both are written only when their content differs, and both stay when the
//   daemon stops: pods are set up again as soon as it is back (the plugin
//   reports "cannot reach workloadnetd", and the runtime retries).
import { constants } from "node:fs";
import { access, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";

/** The plugin node-gyp builds (this file is dist/src/cni/install.js). */
export const BUILT_PLUGIN = fileURLToPath(new URL("../../../build/Release/workloadnet-cni", import.meta.url));
export const PLUGIN_NAME = "workloadnet-cni";
export const CONFLIST_NAME = "10-workloadnet.conflist";
export const NETWORK_NAME = "workloadnet";
/**
 * The version the conflist declares: 1.0.0, the newest that the CNI library
 * of containerd 1.6/1.7 and CRI-O understands (1.1.0 results are refused
 * there). The plugin answers every version from 0.3.0 to 1.1.0.
 */
export const CONFLIST_CNI_VERSION = "1.0.0";
/** containerd 1.6/1.7 run this plugin for every pod sandbox, before ours. */
export const LOOPBACK_PLUGIN = "loopback";

export interface CniInstallOptions {
  binDir: string;
  confDir: string;
  /** The daemon's socket, written into the conflist. */
  socketPath: string;
  log: Logger;
  /** The plugin to copy; default BUILT_PLUGIN. */
  pluginSource?: string;
}

/** The conflist for a daemon on socketPath, as written (trailing newline included). */
export function conflistText(socketPath: string): string {
  const conf = {
    cniVersion: CONFLIST_CNI_VERSION,
    name: NETWORK_NAME,
    // portMappings: the runtime then passes hostPort / podman -p mappings, which the daemon publishes.
    plugins: [{ type: PLUGIN_NAME, socket: socketPath, capabilities: { portMappings: true } }],
  };
  return `${JSON.stringify(conf, null, 2)}\n`;
}

export class CniInstaller {
  private readonly log: Logger;
  private conflistDone = false;

  constructor(private readonly opts: CniInstallOptions) {
    this.log = opts.log.child({ component: "cni-install" });
  }

  get conflistPath(): string {
    return join(this.opts.confDir, CONFLIST_NAME);
  }

  get pluginPath(): string {
    return join(this.opts.binDir, PLUGIN_NAME);
  }

  /** Copies the plugin into binDir (when it differs) and says when binDir lacks `loopback`. */
  async installPlugin(): Promise<void> {
    const source = this.opts.pluginSource ?? BUILT_PLUGIN;
    let bytes: Buffer;
    try {
      bytes = await readFile(source);
    } catch (err) {
      throw new Error(`install CNI plugin: read ${source}: ${errText(err)}`, { cause: err });
    }
    const changed = await writeIfChanged(this.pluginPath, bytes, 0o755).catch((err: unknown) => {
      throw new Error(`install CNI plugin into ${this.opts.binDir}: ${errText(err)}`, { cause: err });
    });
    this.log.info({ path: this.pluginPath, changed }, changed ? "CNI plugin installed" : "CNI plugin already installed");
    try {
      await access(join(this.opts.binDir, LOOPBACK_PLUGIN), constants.X_OK);
    } catch {
      this.log.warn(
        { dir: this.opts.binDir, missing: LOOPBACK_PLUGIN },
        `--cni-bin-dir ${this.opts.binDir} has no executable "${LOOPBACK_PLUGIN}" plugin: containerd 1.6 and 1.7 run it for every pod and then fail with 'failed to find plugin "loopback"'. ` +
          "Install the CNI reference plugins there (Debian: package containernetworking-plugins, which puts them in /usr/lib/cni; or the upstream release archive).",
      );
    }
  }

  /**
   * Writes the conflist (when it differs); called once the pod prefixes are
   * known. Later calls do nothing: the content does not depend on them.
   */
  async writeConflist(): Promise<void> {
    if (this.conflistDone) return;
    let changed: boolean;
    try {
      changed = await writeIfChanged(this.conflistPath, Buffer.from(conflistText(this.opts.socketPath)), 0o644);
    } catch (err) {
      throw new Error(`write CNI network configuration ${this.conflistPath}: ${errText(err)}`, { cause: err });
    }
    this.conflistDone = true;
    this.log.info({ path: this.conflistPath, changed }, changed ? "CNI network configuration written: pods can be networked" : "CNI network configuration already in place");
  }
}

/** Replaces path with bytes unless it already holds exactly them: temp file, fsync, rename, fsync of the directory. */
async function writeIfChanged(path: string, bytes: Buffer, mode: number): Promise<boolean> {
  const current = await readFile(path).catch(() => undefined);
  if (current !== undefined && current.equals(bytes)) return false;
  const dir = join(path, "..");
  // A dot name with no CNI extension: runtimes load only *.conf, *.conflist, *.json
  // from the config directory, and nothing execs a dot file from the plugin directory.
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.tmp-${process.pid}`);
  try {
    const f = await open(tmp, "w", mode);
    try {
      await f.writeFile(bytes);
      await f.chmod(mode);
      await f.sync();
    } finally {
      await f.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return true;
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined ? `${e.code} (${e.message})` : String(err);
}

/** Writes the conflist when asked, retrying every few seconds after a failure until stopped. */
export class ConflistWriter {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;

  constructor(
    private readonly installer: CniInstaller,
    private readonly log: Logger,
    private readonly retryMs = 5_000,
  ) {}

  write(): void {
    if (this.running || this.closed) return;
    this.running = true;
    clearTimeout(this.timer);
    this.installer.writeConflist().then(
      () => (this.running = false),
      (err: unknown) => {
        this.running = false;
        this.log.error({ err: (err as Error).message, retryMs: this.retryMs }, "cannot write the CNI network configuration; retrying");
        if (!this.closed) this.timer = setTimeout(() => this.write(), this.retryMs);
      },
    );
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
