// Retry backoff: doubling from the initial delay, never beyond the ceiling.
import { expect } from 'chai';
import { retryDelay } from '../../gateway/retry.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function makeQueue(retryInitialDelay = MINUTE, retryMaxDelay = HOUR) {
  return { retryInitialDelay, retryMaxDelay };
}

describe('gateway/retry retryDelay', () => {
  const defaults: { attempts: number; delay: number }[] = [
    { attempts: 1, delay: 1 * MINUTE },
    { attempts: 2, delay: 2 * MINUTE },
    { attempts: 3, delay: 4 * MINUTE },
    { attempts: 4, delay: 8 * MINUTE },
    { attempts: 5, delay: 16 * MINUTE },
    { attempts: 6, delay: 32 * MINUTE },
    { attempts: 7, delay: HOUR },
    { attempts: 8, delay: HOUR },
    { attempts: 31, delay: HOUR },
    { attempts: 32, delay: HOUR },
    { attempts: 1000, delay: HOUR },
    // Fewer than one failure is treated as the first.
    { attempts: 0, delay: 1 * MINUTE },
    { attempts: -3, delay: 1 * MINUTE },
  ];
  for (const d of defaults) {
    it(`waits ${d.delay / MINUTE} min after ${d.attempts} failed attempt(s) (1 min doubling, 1 h cap)`, () => {
      expect(retryDelay(makeQueue(), d.attempts)).to.equal(d.delay);
    });
  }

  const other: { initial: number; max: number; attempts: number; delay: number }[] = [
    { initial: 1000, max: 5000, attempts: 1, delay: 1000 },
    { initial: 1000, max: 5000, attempts: 3, delay: 4000 },
    { initial: 1000, max: 5000, attempts: 4, delay: 5000 },
    { initial: 5000, max: 5000, attempts: 1, delay: 5000 },
    { initial: 5000, max: 1000, attempts: 1, delay: 1000 },
  ];
  for (const o of other) {
    it(`waits ${o.delay} ms after ${o.attempts} with initial ${o.initial} ms and cap ${o.max} ms`, () => {
      expect(retryDelay(makeQueue(o.initial, o.max), o.attempts)).to.equal(o.delay);
    });
  }

  it('never shrinks, never passes the cap, and is always a finite number', () => {
    let previous = 0;
    for (let attempts = 1; attempts <= 200; attempts++) {
      const delay = retryDelay(makeQueue(), attempts);
      expect(Number.isFinite(delay), `attempt ${attempts}`).to.equal(true);
      expect(delay, `attempt ${attempts}`).to.be.at.least(previous).and.at.most(HOUR);
      previous = delay;
    }
  });
});
