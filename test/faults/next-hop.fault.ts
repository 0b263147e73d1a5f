// Fault: the next hop is down, flapping, slow, answers 4xx then recovers, answers 5xx, drops mid-DATA or
// fails the TLS handshake. The queue must hold, retries back off, bounces go once, nothing goes twice.
import os from 'node:os';
import { expect } from 'chai';
import { generate } from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import { retryDelay } from '../../gateway/retry.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { ScriptedHop } from './scripted-hop.js';
import { Ledger, report, sendRaw, seqMessage, sleep, smtpClient, waitUntil } from './support.js';

const queue = { retryInitialDelay: 300, retryMaxDelay: 2400, pollInterval: 100 };
const RELAY_TIMEOUT = 1000;

interface Attempt {
  rcpt: string;
  at: number;
  outcome: string;
  code: number | null;
  response: string;
}

async function attempts(gw: RunningGateway): Promise<Map<string, Attempt[]>> {
  const rows = (await gw.store
    .db('delivery_attempts as a')
    .join('envelopes as e', 'e.id', 'a.envelope_id')
    .where('e.kind', 'relay')
    .orderBy('a.id')
    .select('e.rcpt', 'a.at', 'a.outcome', 'a.code', 'a.response')) as Attempt[];
  const byRcpt = new Map<string, Attempt[]>();
  for (const r of rows) byRcpt.set(r.rcpt, [...(byRcpt.get(r.rcpt) ?? []), r]);
  return byRcpt;
}

/** Each retry waited at least the scheduled backoff (recorded times are attempt ends, so gaps ≥ delay). */
function expectBackoff(list: Attempt[]): number[] {
  const gaps: number[] = [];
  for (let i = 1; i < list.length; i++) {
    const gap = Number(list[i]!.at) - Number(list[i - 1]!.at);
    gaps.push(gap);
    expect(gap, `gap before attempt ${i + 1}`).to.be.at.least(retryDelay(queue, i) - 5);
  }
  return gaps;
}

function externalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

describe('fault: next hop misbehaves', function () {
  this.timeout(60000);
  let gw: RunningGateway | undefined;
  let hop: ScriptedHop | undefined;
  let tlsHop: SMTPServer | undefined;

  afterEach(async () => {
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
    gw = undefined;
    await hop?.stop();
    hop = undefined;
    if (tlsHop) {
      const s = tlsHop;
      await new Promise<void>((r) => s.close(() => r()));
    }
    tlsHop = undefined;
  });

  async function start(url: string, timeout = RELAY_TIMEOUT, dataTimeout = timeout): Promise<RunningGateway> {
    gw = await startGateway({ relayUrl: url, overrides: { relay: { timeout, dataTimeout }, queue } });
    return gw;
  }

  async function send(port: number, ledger: Ledger, seqs: number[], to?: (seq: number) => string[]) {
    const t = smtpClient(port, 4);
    try {
      await Promise.all(
        seqs.map(async (seq) => {
          const raw = seqMessage(seq, 3000 + seq * 97);
          ledger.record(seq, raw);
          const r = await sendRaw(t, raw, 'staff@clinic.example', to?.(seq) ?? [`r${seq}@partner.example`]);
          if (r.ok && /^250 /.test(r.response)) ledger.acked.add(seq);
        }),
      );
    } finally {
      t.close();
    }
  }

  function exactlyOnce(ledger: Ledger, h: ScriptedHop) {
    const r = ledger.check(h.messages);
    expect(r.lost, 'lost').to.deep.equal([]);
    expect(r.corrupted, 'corrupted').to.deep.equal([]);
    expect(r.duplicates, 'sent twice').to.equal(0);
    expect(r.unexpected).to.equal(0);
    return r;
  }

  it('down: holds the queue with growing backoff, then delivers each message once', async () => {
    hop = new ScriptedHop();
    const port = await hop.start();
    await hop.stop();
    const g = await start(`smtp://127.0.0.1:${port}`);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [...Array(10).keys()]);
    expect(ledger.acked.size).to.equal(10);
    await sleep(3500);
    const before = await attempts(g);
    expect(before.size).to.equal(10);
    const gaps = [...before.values()].map((list) => {
      expect(list.length, 'retried while down').to.be.at.least(3);
      expect(list.every((a) => a.outcome === 'deferred')).to.equal(true);
      return expectBackoff(list);
    });
    await hop.start(port);
    await waitUntil(() => hop!.messages.length >= 10, 15000, 'delivery after the hop came back');
    await sleep(1000);
    exactlyOnce(ledger, hop);
    report(
      `      down 3.5 s: attempts per message ${before.get('r0@partner.example')!.length}, gaps ms ${gaps[0]!.join('/')}`,
    );
  });

  it('flapping (up/down every 200-500 ms): every message arrives once, none twice', async () => {
    hop = new ScriptedHop();
    const port = await hop.start();
    const g = await start(hop.url);
    const ledger = new Ledger();
    let flapping = true;
    let flips = 0;
    const flapper = (async () => {
      while (flapping) {
        await sleep(200 + Math.random() * 300);
        await hop!.stop();
        flips++;
        await sleep(200 + Math.random() * 300);
        await hop!.start(port);
      }
    })();
    await send(g.smtpPort, ledger, [...Array(60).keys()]);
    await sleep(4000);
    flapping = false;
    await flapper;
    await waitUntil(() => hop!.messages.length >= 60, 20000, 'all 60 after flapping');
    await sleep(1000);
    exactlyOnce(ledger, hop);
    const all = [...(await attempts(g)).values()].flat();
    const deferred = all.filter((a) => a.outcome === 'deferred').length;
    report(`      flapping: ${flips} outages, 60 messages, ${deferred} deferred attempts, duplicates 0`);
    expect(flips).to.be.at.least(4);
  });

  it('slow (greeting and RCPT replies past relay.timeout): defers, then delivers once', async () => {
    hop = new ScriptedHop((conn) =>
      conn <= 2
        ? { kind: 'slow-greeting', ms: RELAY_TIMEOUT * 3 }
        : conn <= 4
          ? { kind: 'slow-rcpt', ms: RELAY_TIMEOUT * 3 }
          : { kind: 'ok' },
    );
    await hop.start();
    const g = await start(hop.url);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [0, 1, 2]);
    await waitUntil(() => hop!.messages.length >= 3, 30000, 'delivery once the hop is fast again');
    await sleep(RELAY_TIMEOUT * 3);
    exactlyOnce(ledger, hop);
    const all = [...(await attempts(g)).values()].flat();
    expect(all.filter((a) => a.outcome === 'deferred').length, 'timeouts were deferrals').to.be.at.least(1);
    report(`      slow: ${hop.connections} connections, ${all.length} attempts for 3 messages`);
  });

  // The classic duplicate (RFC 1047): the next hop has committed the message at the final dot but its 250
  // comes after the gateway stopped waiting. The gateway cannot know the outcome; it defers and retries.
  const SLOW_TIMEOUT = 2000;

  /** A hop that answers the final dot after `replyMs`: the gateway waits for it, one attempt each, one copy. */
  async function waitsForSlow250(replyMs: number, dataTimeout: number): Promise<void> {
    hop = new ScriptedHop(() => ({ kind: 'slow-250', ms: replyMs }));
    await hop.start();
    const g = await start(hop.url, SLOW_TIMEOUT, dataTimeout);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [0, 1, 2]);
    await waitUntil(() => hop!.messages.length >= 3, 30000, 'three slow deliveries');
    await sleep(SLOW_TIMEOUT * 1.5); // a wrongly retried copy would show up here
    exactlyOnce(ledger, hop);
    for (const [rcpt, list] of await attempts(g))
      expect(
        list.map((a) => a.outcome),
        rcpt,
      ).to.deep.equal(['delivered']);
  }

  it('slow 250 within relay.timeout: the gateway waits for it, one attempt, delivered once', () =>
    waitsForSlow250(SLOW_TIMEOUT * 0.4, SLOW_TIMEOUT));

  it('250 after relay.timeout but within relay.dataTimeout (checks after the dot): one attempt, delivered once', () =>
    waitsForSlow250(SLOW_TIMEOUT * 2.5, SLOW_TIMEOUT * 5));

  it('250 only after relay.dataTimeout (hop committed at the dot): retried, never lost; each extra copy is one timed-out attempt', async () => {
    // Connections 1-3 commit at the dot and answer 250 after 2.5 x relay.timeout; later ones at once.
    hop = new ScriptedHop((conn) =>
      conn <= 3 ? { kind: 'slow-250', ms: SLOW_TIMEOUT * 2.5 } : { kind: 'ok' },
    );
    await hop.start();
    const g = await start(hop.url, SLOW_TIMEOUT);
    const ledger = new Ledger();
    const seqs = [0, 1, 2, 3, 4];
    await send(g.smtpPort, ledger, seqs);
    expect(ledger.acked.size).to.equal(seqs.length);
    await waitUntil(
      async () => {
        const states = (await g.store.db('envelopes').where('kind', 'relay').select('state')) as Array<{
          state: string;
        }>;
        return states.length === seqs.length && states.every((s) => s.state === 'delivered');
      },
      40000,
      'every envelope delivered',
    );
    await sleep(SLOW_TIMEOUT * 3); // late 250s and any further retry have landed by now
    const r = ledger.check(hop.messages);
    expect(r.lost, 'lost').to.deep.equal([]);
    expect(r.corrupted, 'corrupted').to.deep.equal([]);
    expect(r.unexpected).to.equal(0);
    const byRcpt = await attempts(g);
    let late = 0;
    let timedOut = 0;
    for (const seq of seqs) {
      const rcpt = `r${seq}@partner.example`;
      const copies = hop.messages.filter((m) => m.to.includes(rcpt));
      const lateCopies = copies.filter((m) => m.late).length;
      const list = byRcpt.get(rcpt) ?? [];
      const deferred = list.filter((a) => a.outcome === 'deferred');
      // Exactly one attempt got its 250 in time and was recorded as the delivery, and it was the last one.
      expect(list.at(-1)?.outcome, `${rcpt}: last attempt`).to.equal('delivered');
      expect(list.filter((a) => a.outcome === 'delivered').length, `${rcpt}: deliveries`).to.equal(1);
      expect(copies.filter((m) => !m.late).length, `${rcpt}: copies answered in time`).to.equal(1);
      // Every extra copy comes from an attempt the gateway recorded as timed out, none from anything else.
      expect(lateCopies, `${rcpt}: late copies <= timed-out attempts`).to.be.at.most(deferred.length);
      for (const a of deferred) expect(a.response, `${rcpt}: deferral reason`).to.match(/ETIMEDOUT|timeout/i);
      expectBackoff(list);
      late += lateCopies;
      timedOut += deferred.length;
    }
    expect(late, 'the slow hop committed at least one message the gateway then gave up on').to.be.at.least(1);
    expect(r.duplicates, 'duplicates = copies the hop committed after the gateway timed out').to.equal(late);
    report(
      `      250 after timeout: ${seqs.length} messages, ${timedOut} timed-out attempts, ` +
        `${r.duplicates} duplicate copies at the next hop (all from those attempts), lost 0`,
    );
  });

  it('4xx three times, then 250: deferred with backoff, delivered once', async () => {
    const refused = new Map<string, number>();
    hop = new ScriptedHop((_conn, rcpt) => {
      if (!rcpt) return { kind: 'ok' };
      const n = (refused.get(rcpt) ?? 0) + 1;
      refused.set(rcpt, n);
      return n <= 3 ? { kind: 'rcpt-reply', code: 451, text: '4.7.1 greylisted, try later' } : { kind: 'ok' };
    });
    await hop.start();
    const g = await start(hop.url);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [0, 1, 2, 3, 4]);
    await waitUntil(() => hop!.messages.length >= 5, 30000, 'delivery after greylisting');
    await sleep(1000);
    exactlyOnce(ledger, hop);
    for (const [rcpt, list] of await attempts(g)) {
      expect(
        list.map((a) => a.outcome),
        rcpt,
      ).to.deep.equal(['deferred', 'deferred', 'deferred', 'delivered']);
      expect(list[0]!.code).to.equal(451);
      expectBackoff(list);
    }
  });

  it('5xx: bounces to the sender exactly once per message, never delivers to the refused recipient', async () => {
    hop = new ScriptedHop((_conn, rcpt) =>
      rcpt?.startsWith('gone@')
        ? { kind: 'rcpt-reply', code: 550, text: '5.1.1 user unknown' }
        : { kind: 'ok' },
    );
    await hop.start();
    const g = await start(hop.url);
    const ledger = new Ledger();
    // seq 0: gone + a good recipient; seq 1, 2: gone only.
    await send(g.smtpPort, ledger, [0, 1, 2], (seq) =>
      seq === 0 ? ['gone@partner.example', 'ok@partner.example'] : ['gone@partner.example'],
    );
    await waitUntil(() => hop!.messages.length >= 4, 15000, 'one delivery and three bounces');
    await sleep(2500); // long enough for any retry or second bounce to show up
    const bounces = hop.messages.filter((m) => m.from === '' && m.to.includes('staff@clinic.example'));
    const relayed = hop.messages.filter((m) => m.from !== '');
    expect(bounces.length, 'one bounce per message with a refused recipient').to.equal(3);
    expect(relayed.map((m) => m.to)).to.deep.equal([['ok@partner.example']]);
    expect(hop.messages.some((m) => m.to.includes('gone@partner.example'))).to.equal(false);
    for (const b of bounces) expect(b.raw.toString()).to.contain('X-PHI-Gateway-Kind: bounce');
    const states = (await g.store
      .db('envelopes')
      .where({ rcpt: 'gone@partner.example' })
      .select('state')) as Array<{
      state: string;
    }>;
    expect(states.map((s) => s.state)).to.deep.equal(['bounced', 'bounced', 'bounced']);
  });

  it('drops the connection mid-DATA twice: the message arrives once, byte-identical', async () => {
    hop = new ScriptedHop((conn) => (conn <= 2 ? { kind: 'drop-mid-data', after: 1500 } : { kind: 'ok' }));
    await hop.start();
    const g = await start(hop.url);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [7]);
    await waitUntil(() => hop!.messages.length >= 1, 20000, 'delivery after two drops');
    await sleep(1500);
    exactlyOnce(ledger, hop);
    const list = (await attempts(g)).get('r7@partner.example')!;
    expect(list.map((a) => a.outcome)).to.deep.equal(['deferred', 'deferred', 'delivered']);
    expectBackoff(list);
  });

  it('TLS handshake fails (untrusted certificate) or STARTTLS is missing: queued, never sent in clear', async () => {
    // A next hop off loopback must do STARTTLS with a valid certificate (relay.allowInvalidCertificates off).
    const ip = externalIPv4();
    expect(ip, 'this test needs a non-loopback IPv4 address').to.be.a('string');
    const pems = await generate([{ name: 'commonName', value: 'wrong-name.invalid' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 3 * 86400_000),
      notAfterDate: new Date(Date.now() - 86400_000),
    });
    let received = 0;
    let handshakes = 0;
    const makeHop = (offerTls: boolean) =>
      new SMTPServer({
        authOptional: true,
        disabledCommands: offerTls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
        key: pems.private,
        cert: pems.cert,
        logger: false,
        onConnect: (_s, cb) => {
          handshakes++;
          cb();
        },
        onData: (stream, _s, cb) => {
          stream.resume();
          stream.on('end', () => {
            received++;
            cb(null, 'ok');
          });
        },
      });
    tlsHop = makeHop(true);
    tlsHop.on('error', () => undefined);
    const server = tlsHop;
    await new Promise<void>((r) => server.listen(0, ip, () => r()));
    const port = (server.server.address() as { port: number }).port;
    const g = await start(`smtp://${ip}:${port}`);
    const ledger = new Ledger();
    await send(g.smtpPort, ledger, [0, 1]);
    await sleep(3000);
    const tlsAttempts = [...(await attempts(g)).values()];
    expect(tlsAttempts.length).to.equal(2);
    for (const list of tlsAttempts) {
      expect(list.length).to.be.at.least(2);
      expect(list.every((a) => a.outcome === 'deferred')).to.equal(true);
      expectBackoff(list);
    }
    expect(received, 'nothing reached a hop whose certificate failed').to.equal(0);
    // Now a hop that offers no STARTTLS at all on the same address: still nothing in clear.
    await new Promise<void>((r) => server.close(() => r()));
    tlsHop = makeHop(false);
    tlsHop.on('error', () => undefined);
    const plain = tlsHop;
    await new Promise<void>((r) => plain.listen(port, ip, () => r()));
    const seenBefore = handshakes;
    await waitUntil(() => handshakes > seenBefore + 1, 10000, 'retries against the plain hop');
    expect(received, 'nothing sent to a hop without STARTTLS').to.equal(0);
    const states = (await g.store.db('envelopes').select('state', 'last_response')) as Array<{
      state: string;
      last_response: string;
    }>;
    expect(states.map((s) => s.state).filter((s) => s !== 'deferred' && s !== 'sending')).to.deep.equal([]);
    report(`      TLS: ${handshakes} connections refused by us, last reason "${states[0]!.last_response}"`);
  });
});
