// Waiting in tests: poll until a condition holds (a truthy value), or fail with a timeout. Never a sleep
// that hopes the work is done.
export async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
