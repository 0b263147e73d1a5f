// The work pump: claims only when due work may be waiting, runs at most `capacity` items at once, and
// takes items handed over directly without a claim query.
import { expect } from 'chai';
import { createLogger } from '../../config/log.js';
import { Pump } from '../../gateway/pump.js';

const log = createLogger('silent');
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function harness(capacity: number, due: number[]) {
  const claims: number[] = [];
  const handled: number[] = [];
  let running = 0;
  let maxRunning = 0;
  const pump = new Pump<number>({
    name: 'test',
    capacity,
    pollInterval: 60_000,
    log,
    claim: (n) => {
      claims.push(n);
      return Promise.resolve(due.splice(0, n));
    },
    handle: async (item) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await tick(5);
      handled.push(item);
      running--;
    },
  });
  return { pump, claims, handled, maxRunning: () => maxRunning };
}

describe('Pump', () => {
  it('does not query again after each item once a claim came back short', async () => {
    const h = harness(4, [1, 2, 3]);
    h.pump.start();
    await tick(100);
    expect(h.handled.sort()).to.deep.equal([1, 2, 3]);
    // One claim at start found everything; the three finished items did not each claim again.
    expect(h.claims).to.have.length(1);
    await h.pump.stop();
  });

  it('keeps claiming while claims come back full, within capacity', async () => {
    const due = Array.from({ length: 50 }, (_, i) => i);
    const h = harness(3, due);
    h.pump.start();
    for (let i = 0; i < 100 && h.handled.length < 50; i++) await tick(20);
    expect(h.handled).to.have.length(50);
    expect(h.maxRunning()).to.be.at.most(3);
    expect(h.claims.length).to.be.greaterThan(1);
    await h.pump.stop();
  });

  it('runs offered items without a claim, and claims again when woken', async () => {
    const due: number[] = [];
    const h = harness(2, due);
    h.pump.start();
    await tick(30);
    const before = h.claims.length;
    h.pump.offer([10, 11, 12]);
    await tick(100);
    expect(h.handled.sort()).to.deep.equal([10, 11, 12]);
    expect(h.claims.length).to.equal(before);
    due.push(20);
    h.pump.wake();
    await tick(60);
    expect(h.handled).to.include(20);
    expect(h.claims.length).to.equal(before + 1);
    await h.pump.stop();
  });
});
