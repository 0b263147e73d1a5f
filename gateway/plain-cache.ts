// Recently spooled messages kept in memory (never on disk), so the worker and the delivery that follow
// within moments need not read and decrypt the spool file again. Bounded by bytes; oldest out first.
// The sealed spool file stays the source of truth: a miss simply reads it.

export class PlainCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  set(id: string, data: Buffer): void {
    if (data.length > this.maxBytes / 8) return;
    this.delete(id);
    this.entries.set(id, data);
    this.bytes += data.length;
    for (const [oldest, buf] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= buf.length;
    }
  }

  get(id: string): Buffer | undefined {
    return this.entries.get(id);
  }

  delete(id: string): void {
    const buf = this.entries.get(id);
    if (!buf) return;
    this.entries.delete(id);
    this.bytes -= buf.length;
  }
}
