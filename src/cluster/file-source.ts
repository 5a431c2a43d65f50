// The cluster view from the watched prefix file (--prefix-file); its format
// is in file-form.ts, the watching in watched-file.ts. A broken or missing
// file keeps the last good view in force and says why in lastError.

import { formatPrefixes } from "../ipam/prefix.js";
import { parseClusterFile, type ParsedClusterFile } from "./file-form.js";
import type { ClusterSource } from "./source.js";
import { type ClusterView, buildView, emptyView, viewsEqual } from "./view.js";
import { WatchedFile, parseJsonText } from "./watched-file.js";

export interface FileClusterSourceOptions {
  /** Quiet time after the last change event before re-reading. Default 50 ms. */
  debounceMs?: number;
  /** How often to retry when the directory cannot be watched (e.g. not created yet). Default 1 s. */
  retryMs?: number;
}

/** The file's content as a view: buildView's problems after the shape problems of node entries. */
function toView(parsed: ParsedClusterFile): ClusterView {
  const view = buildView(parsed.raw);
  return { ...view, problems: [...parsed.problems, ...view.problems] };
}

export class FileClusterSource implements ClusterSource {
  readonly kind = "file";
  private readonly file: WatchedFile<ClusterView>;

  constructor(path: string, options: FileClusterSourceOptions = {}) {
    this.file = new WatchedFile<ClusterView>(path, {
      label: "prefix file",
      parse: (text) => toView(parseClusterFile(parseJsonText(text))),
      equal: viewsEqual,
      describe: (v) => formatPrefixes(v.prefixes) + (v.nodes.length > 0 ? ` and ${v.nodes.length} other node${v.nodes.length === 1 ? "" : "s"}` : ""),
      missingMeans: "no pod prefixes until it is created",
      ...options,
    });
  }

  get path(): string {
    return this.file.path;
  }

  start(): Promise<void> {
    return this.file.start();
  }

  current(): ClusterView {
    return this.file.current() ?? emptyView(this.file.lastError());
  }

  lastError(): string | undefined {
    return this.file.lastError();
  }

  lastSync(): Date | undefined {
    return this.file.lastGoodRead();
  }

  onChange(listener: (view: ClusterView) => void): () => void {
    return this.file.onChange(listener);
  }

  onError(listener: (message: string) => void): () => void {
    return this.file.onError(listener);
  }

  close(): void {
    this.file.close();
  }
}
