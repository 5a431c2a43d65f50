// How many Attach/Detach calls are running. The service counts them; the
// netlink handles ask, before each exchange, whether to run it inline (only
// while at most one call runs: see daemon.ts); the daemon notices from them
// when it has become idle (daemon/release-memory.ts).
export class ActiveCalls {
  private n = 0;
  private total = 0;
  /** Called as each call starts, before its work. */
  onStart: (() => void) | undefined;

  get count(): number {
    return this.n;
  }

  /** Calls started since the daemon started. */
  get started(): number {
    return this.total;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.n++;
    this.total++;
    this.onStart?.();
    try {
      return await work();
    } finally {
      this.n--;
    }
  }
}
