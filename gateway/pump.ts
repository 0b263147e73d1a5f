// A bounded work pump: claims due items from the database in batches and runs at most `capacity` of them
// at once. Woken on new work, and by a timer for retries that come due. Stopping waits for work in flight.
import type { Logger } from '../config/log.js';

export interface PumpOptions<T> {
  name: string;
  capacity: number;
  pollInterval: number;
  log: Logger;
  /** Claims up to n due items (marks them taken in the database). */
  claim: (n: number) => Promise<T[]>;
  handle: (item: T) => Promise<void>;
}

export class Pump<T> {
  private inflight = 0;
  private buffer: T[] = [];
  private claiming = false;
  private dirty = false;
  /**
   * Whether the database may hold due work the last claim did not take (it was full, or was skipped because
   * the pump was at capacity). When false, a finished item does not trigger a claim: new work arrives by
   * `offer`, by `wake` from whoever created it, or by the poll timer. One claim query per finished item was
   * two transactions per message on the clean path.
   */
  private backlog = true;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: PumpOptions<T>) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.opts.pollInterval);
    this.timer.unref();
    this.wake();
  }

  /** Asks the pump to look for work now. Cheap; calls while it is busy coalesce. */
  wake(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.backlog = true;
    if (!this.claiming) void this.fill();
  }

  /** After an item finished: claim again only if due work may have been left behind. */
  private resume(): void {
    if (this.backlog) this.wake();
  }

  /**
   * Hands over items already claimed in the database (the fast path: a message just spooled, envelopes
   * just enqueued), so they need not be found again by a claim query. Ignored once stopped: the items keep
   * their lease and are resumed at the next start.
   */
  offer(items: T[]): void {
    if (this.stopped || items.length === 0) return;
    this.buffer.push(...items);
    this.runBuffered();
  }

  get busy(): number {
    return this.inflight + this.buffer.length;
  }

  private async fill(): Promise<void> {
    this.claiming = true;
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        this.runBuffered();
        const want = this.opts.capacity * 2 - this.inflight - this.buffer.length;
        if (want <= 0) {
          this.backlog = true;
          continue;
        }
        this.backlog = false;
        const items = await this.opts.claim(want);
        this.buffer.push(...items);
        this.runBuffered();
        // A full batch means more may be waiting.
        if (items.length === want) this.dirty = this.backlog = true;
      }
    } catch (err) {
      this.backlog = true;
      this.opts.log.error(
        { evt: 'QUEUE_CLAIM_FAILED', pump: this.opts.name, err },
        'claim failed; will retry',
      );
    } finally {
      this.claiming = false;
    }
  }

  private runBuffered(): void {
    while (!this.stopped && this.inflight < this.opts.capacity && this.buffer.length > 0) {
      const item = this.buffer.shift()!;
      this.inflight++;
      this.opts
        .handle(item)
        .catch((err: unknown) =>
          this.opts.log.error({ evt: 'QUEUE_HANDLER_FAILED', pump: this.opts.name, err }, 'handler failed'),
        )
        .finally(() => {
          this.inflight--;
          if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
          if (this.buffer.length > 0) this.runBuffered();
          this.resume();
        });
    }
  }

  /**
   * Stops claiming and waits for work in flight. Claimed but unstarted items are returned so the
   * caller can release them (their leases would also expire on their own).
   */
  async stop(): Promise<T[]> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.claiming) await new Promise((r) => setTimeout(r, 5));
    const unstarted = this.buffer.splice(0);
    if (this.inflight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    return unstarted;
  }
}
