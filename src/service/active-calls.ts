// How many Attach/Detach calls are running. The service counts them; the
// netlink handles ask, before each exchange, whether to run it inline (only
// while at most one call runs: see daemon.ts).
export class ActiveCalls {
  private n = 0;

  get count(): number {
    return this.n;
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    this.n++;
    try {
      return await work();
    } finally {
      this.n--;
    }
  }
}
