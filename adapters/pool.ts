// A small pool of connections, sized by the target's threads. Connections are
// created lazily and reused; callers wait in FIFO order when all are busy.

export class ConnectionPool<S> {
  private readonly idle: S[] = [];
  private readonly busy = new Set<S>();
  private readonly waiting: Array<(s: S) => void> = [];
  private created = 0;

  constructor(
    private readonly size: number,
    private readonly create: () => Promise<S>,
    private readonly destroy: (s: S) => void,
  ) {}

  async use<T>(fn: (s: S) => Promise<T>): Promise<T> {
    const session = await this.acquire();
    try {
      return await fn(session);
    } finally {
      this.release(session);
    }
  }

  /** Replaces a connection that broke (dropped by the server) instead of returning it. */
  async discard(session: S): Promise<void> {
    this.busy.delete(session);
    this.created--;
    try {
      this.destroy(session);
    } catch {
      // already gone
    }
  }

  forEachBusy(fn: (s: S) => void): void {
    for (const s of this.busy) fn(s);
  }

  closeAll(): void {
    for (const s of [...this.idle, ...this.busy]) {
      try {
        this.destroy(s);
      } catch {
        // closing is best effort
      }
    }
    this.idle.length = 0;
    this.busy.clear();
  }

  private async acquire(): Promise<S> {
    const idle = this.idle.pop();
    if (idle !== undefined) {
      this.busy.add(idle);
      return idle;
    }
    if (this.created < this.size) {
      this.created++;
      try {
        const s = await this.create();
        this.busy.add(s);
        return s;
      } catch (err) {
        this.created--;
        throw err;
      }
    }
    return new Promise<S>((resolve) => this.waiting.push(resolve)).then((s) => {
      this.busy.add(s);
      return s;
    });
  }

  private release(session: S): void {
    if (!this.busy.delete(session)) return;
    const next = this.waiting.shift();
    if (next) next(session);
    else this.idle.push(session);
  }
}
