// A set of listeners for one kind of event, as the cluster sources keep them:
// add returns the unsubscribe, emit calls each in turn, and a listener that
// throws neither stops the others nor the source (its error goes to onFailure).

export class Listeners<T> {
  private readonly set = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.set.add(listener);
    return () => this.set.delete(listener);
  }

  /** Calls every listener with value; a copy is iterated, so a listener may unsubscribe. */
  emit(value: T, onFailure?: (err: Error) => void): void {
    for (const l of [...this.set]) {
      try {
        l(value);
      } catch (err) {
        onFailure?.(err as Error);
      }
    }
  }

  clear(): void {
    this.set.clear();
  }
}
