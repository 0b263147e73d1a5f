// The pipeline's byte budget: small messages go together, large ones wait their turn, one larger than the
// whole budget still goes (alone), and nobody is overtaken forever.
import { expect } from 'chai';
import { ByteBudget } from '../../gateway/workers.js';

/** Starts acquire(n) and reports when it was granted. */
function track(budget: ByteBudget, n: number, log: string[], name: string): Promise<void> {
  return budget.acquire(n).then(() => {
    log.push(name);
  });
}

const tick = () => new Promise((r) => setImmediate(r));

describe('pipeline byte budget', () => {
  it('grants at once while the total stays within the limit', async () => {
    const b = new ByteBudget(100);
    const log: string[] = [];
    await Promise.all([track(b, 30, log, 'a'), track(b, 30, log, 'b'), track(b, 40, log, 'c')]);
    expect(log).to.deep.equal(['a', 'b', 'c']);
  });

  it('makes a message wait until enough is released', async () => {
    const b = new ByteBudget(100);
    const log: string[] = [];
    await track(b, 80, log, 'big');
    const waiting = track(b, 30, log, 'late');
    await tick();
    expect(log).to.deep.equal(['big']);
    b.release(80);
    await waiting;
    expect(log).to.deep.equal(['big', 'late']);
  });

  it('lets a message larger than the whole budget through when nothing else is in', async () => {
    const b = new ByteBudget(100);
    const log: string[] = [];
    await track(b, 500, log, 'huge');
    const next = track(b, 1, log, 'tiny');
    await tick();
    expect(log, 'nothing beside the huge one').to.deep.equal(['huge']);
    b.release(500);
    await next;
    expect(log).to.deep.equal(['huge', 'tiny']);
  });

  it('serves in order: small ones do not overtake a waiting large one', async () => {
    const b = new ByteBudget(100);
    const log: string[] = [];
    await track(b, 60, log, 'first');
    const large = track(b, 90, log, 'large');
    const small = track(b, 10, log, 'small');
    await tick();
    expect(log).to.deep.equal(['first']);
    b.release(60);
    await Promise.all([large, small]);
    expect(log).to.deep.equal(['first', 'large', 'small']);
  });
});
