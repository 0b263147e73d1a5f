import { expect } from 'chai';
import { makeMessage, makeMessages, makePhiMessage, type BodyCache } from '../../bench/message.js';

describe('bench messages', () => {
  it('a warm-up round made with a body cache is byte for byte the round made afresh', () => {
    const cache: BodyCache = new Map();
    makeMessages(20, 'runw0', 20_000, cache);
    const cached = makeMessages(20, 'runw1', 20_000, cache);
    const fresh = makeMessages(20, 'runw1', 20_000);
    expect(cache.size).to.equal(20);
    for (let i = 0; i < fresh.length; i++) {
      expect(cached[i]!.wire.equals(fresh[i]!.wire), `message ${i}`).to.equal(true);
      expect(cached[i]!.bodySha256).to.equal(fresh[i]!.bodySha256);
    }
    // Another run tag length is another seed: other bodies, not the cached ones.
    const other = makeMessage(3, 'runw10', 20_000, cache);
    expect(other.bodySha256).to.not.equal(fresh[3]!.bodySha256);
    expect(other.wire.equals(makeMessage(3, 'runw10', 20_000).wire)).to.equal(true);
  });

  it('a cached PHI message keeps its own record number and recipient', () => {
    const cache: BodyCache = new Map();
    const a = makePhiMessage(4, 'pw0', 10_000, 'p4.pw0@mail.example', cache);
    const b = makePhiMessage(5, 'pw0', 10_000, 'p5.pw0@mail.example', cache);
    const again = makePhiMessage(4, 'pw1', 10_000, 'p4.pw1@mail.example', cache);
    expect(a.wire.toString('latin1')).to.include('MRN 4821341');
    expect(b.wire.toString('latin1')).to.include('MRN 4821342');
    expect(again.wire.equals(makePhiMessage(4, 'pw1', 10_000, 'p4.pw1@mail.example').wire)).to.equal(true);
  });
});
