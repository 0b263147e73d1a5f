// End to end over real loopback sockets: staff mail in through SMTP, out to a capture server playing
// the next hop. Covers clean relay, volume, a next hop that is down, 5xx bounces, and nothing at rest in clear.
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';

function client(port: number, pool = false) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool,
    maxConnections: 10,
    maxMessages: Infinity,
  });
}

async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Splits a raw message into the header lines the gateway added on top and the rest. */
function splitAdded(raw: Buffer, original: Buffer): { added: string; rest: Buffer } {
  const at = raw.indexOf(original);
  return { added: raw.subarray(0, Math.max(at, 0)).toString('latin1'), rest: raw.subarray(Math.max(at, 0)) };
}

describe('relay (integration)', function () {
  this.timeout(60000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;

  beforeEach(async () => {
    capture = new CaptureServer();
    await capture.start();
  });

  afterEach(async () => {
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
    gw = undefined;
    await capture.stop();
  });

  it('relays a clean message byte for byte, with the same envelope, adding only trace headers', async () => {
    gw = await startGateway({ relayUrl: capture.url });
    const original = Buffer.from(
      'From: Dr Ann <ann@clinic.example>\r\nTo: lab@partner.example\r\nSubject: Friday schedule\r\n' +
        'Message-ID: <m1@clinic.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        'Content-Transfer-Encoding: 8bit\r\n\r\nSee you on Friday — the usual room.\r\n..leading dots stay\r\n',
    );
    const info = (await client(gw.smtpPort).sendMail({
      envelope: { from: 'bounces@clinic.example', to: ['lab@partner.example', 'cc@partner.example'] },
      raw: original,
    })) as { response: string };
    expect(info.response).to.match(/^250 .*queued as [0-9A-Z]+/);
    await capture.waitFor(1);
    const got = capture.messages[0]!;
    expect(got.from).to.equal('bounces@clinic.example');
    expect(got.to).to.deep.equal(['lab@partner.example', 'cc@partner.example']);
    const { added, rest } = splitAdded(got.raw, original);
    expect(rest.equals(original), 'original bytes intact after the added headers').to.equal(true);
    const addedNames = added
      .replace(/\r\n[ \t]+/g, ' ')
      .split('\r\n')
      .filter(Boolean)
      .map((l) => l.split(':')[0]);
    expect(addedNames[0]).to.equal('Received');
    expect(addedNames.slice(1).every((n) => n!.startsWith('X-PHI-Gateway-'))).to.equal(true);
    const parsed = await simpleParser(got.raw);
    expect(parsed.subject).to.equal('Friday schedule');
    expect(parsed.text).to.contain('See you on Friday — the usual room.');
  });

  it('delivers 200 messages sent over 10 parallel connections, each exactly once', async () => {
    gw = await startGateway({ relayUrl: capture.url });
    const transports = Array.from({ length: 10 }, () => client(gw!.smtpPort));
    const seqs = Array.from({ length: 200 }, (_, i) => i);
    await Promise.all(
      transports.map(async (t, c) => {
        for (const i of seqs.filter((s) => s % 10 === c)) {
          await t.sendMail({
            envelope: { from: 'staff@clinic.example', to: [`r${i}@partner.example`] },
            raw: `From: staff@clinic.example\r\nTo: r${i}@partner.example\r\nSubject: n${i}\r\nX-Seq: ${i}\r\n\r\nmessage ${i}\r\n`,
          });
        }
      }),
    );
    await capture.waitFor(200, 30000);
    await new Promise((r) => setTimeout(r, 300)); // would a duplicate show up?
    const seen = capture.messages.map((m) => Number(/X-Seq: (\d+)/.exec(m.raw.toString())![1]));
    expect(seen).to.have.length(200);
    expect(new Set(seen).size).to.equal(200);
    for (const m of capture.messages) {
      const seq = /X-Seq: (\d+)/.exec(m.raw.toString())![1];
      expect(m.to).to.deep.equal([`r${seq}@partner.example`]);
    }
  });

  it('holds mail while the next hop is down and delivers it when it comes back', async () => {
    const port = capture.port;
    await capture.stop();
    gw = await startGateway({ relayUrl: `smtp://127.0.0.1:${port}` });
    await client(gw.smtpPort).sendMail({
      envelope: { from: 'staff@clinic.example', to: ['later@partner.example'] },
      raw: 'Subject: wait for me\r\n\r\nbody\r\n',
    });
    const store = gw.store;
    await waitUntil(
      async () => !!(await store.db('envelopes').where({ state: 'deferred' }).first()),
      10000,
      'a deferral',
    );
    const deferred = (await store.db('envelopes').first()) as { attempts: number; last_response: string };
    expect(deferred.attempts).to.be.greaterThan(0);
    capture = new CaptureServer();
    await capture.start(port);
    await capture.waitFor(1, 20000);
    expect(capture.messages[0]!.to).to.deep.equal(['later@partner.example']);
    await waitUntil(
      async () => !!(await store.db('envelopes').where({ state: 'delivered' }).first()),
      5000,
      'delivered state',
    );
  });

  it('bounces to the sender at once when the next hop answers 550, naming the reason', async () => {
    await capture.stop();
    capture = new CaptureServer({
      onRcpt: (rcpt) =>
        rcpt.startsWith('nobody@')
          ? { code: 550, message: '5.1.1 <nobody@partner.example>: Recipient address rejected: User unknown' }
          : undefined,
    });
    await capture.start();
    gw = await startGateway({ relayUrl: capture.url });
    await client(gw.smtpPort).sendMail({
      envelope: { from: 'staff@clinic.example', to: ['nobody@partner.example', 'someone@partner.example'] },
      raw: 'Message-ID: <b1@clinic.example>\r\nSubject: Quarterly figures for Jane\r\n\r\nbody\r\n',
    });
    // One copy to the good recipient, then the bounce back to the sender through the same next hop.
    await capture.waitFor(2, 15000);
    const delivered = capture.messages.find((m) => m.to.includes('someone@partner.example'))!;
    expect(delivered.to).to.deep.equal(['someone@partner.example']);
    const bounce = capture.messages.find((m) => m.to.includes('staff@clinic.example'))!;
    expect(bounce.from, 'bounces go out with the null sender').to.equal('');
    const text = bounce.raw.toString();
    expect(text).to.contain('X-PHI-Gateway-Kind: bounce');
    expect(text).to.match(/multipart\/report; report-type=delivery-status/);
    expect(text).to.contain('Final-Recipient: rfc822; nobody@partner.example');
    expect(text).to.contain('Status: 5.1.1');
    expect(text).to.contain('User unknown');
    expect(text).to.contain('Message-ID: <b1@clinic.example>');
    expect(text, 'the subject may hold PHI and is not quoted').not.to.contain('Quarterly figures for Jane');
    const states = (await gw.store.db('envelopes').select('rcpt', 'state', 'kind')) as Array<{
      rcpt: string;
      state: string;
      kind: string;
    }>;
    expect(states.find((s) => s.rcpt === 'nobody@partner.example')!.state).to.equal('bounced');
    await waitUntil(async () => {
      const b = (await gw!.store.db('envelopes').where({ kind: 'bounce' }).first()) as
        { state: string } | undefined;
      return b?.state === 'delivered';
    });
  });

  it('bounces a large message relayed from its spool (not kept in memory) the same way, quoting its headers', async () => {
    await capture.stop();
    capture = new CaptureServer({
      onRcpt: (rcpt) =>
        rcpt.startsWith('nobody@') ? { code: 550, message: '5.1.1 Recipient address rejected' } : undefined,
    });
    await capture.start();
    gw = await startGateway({ relayUrl: capture.url });
    // Larger than the cache of recent mail (8 MB): delivery streams it from the spool, and so reads it again.
    const body = 'The supply order went out on Tuesday; the invoice follows next week.\r\n'.repeat(140_000);
    await client(gw.smtpPort).sendMail({
      envelope: { from: 'staff@clinic.example', to: ['nobody@partner.example'] },
      raw: `Message-ID: <b2@clinic.example>\r\nFrom: Staff <staff@clinic.example>\r\nSubject: Figures for Jane\r\n\r\n${body}`,
    });
    await capture.waitFor(1, 30000);
    const bounce = capture.messages.find((m) => m.to.includes('staff@clinic.example'))!;
    const text = bounce.raw.toString();
    expect(text).to.contain('Final-Recipient: rfc822; nobody@partner.example');
    expect(text).to.contain('Message-ID: <b2@clinic.example>');
    expect(text).to.contain('From: Staff <staff@clinic.example>');
    expect(text).not.to.contain('Figures for Jane');
    expect(bounce.raw.length, 'headers only, not the message').to.be.lessThan(10_000);
  });

  it('keeps nothing of a message readable at rest: a marker is nowhere in the data directory', async () => {
    const marker = 'ZQX-MARKER-7731-PLAINTEXT';
    // A next hop that refuses for a while keeps the message in the spool while we look.
    await capture.stop();
    gw = await startGateway({ relayUrl: capture.url, overrides: { queue: { retryInitialDelay: 60000 } } });
    await client(gw.smtpPort).sendMail({
      envelope: { from: 'staff@clinic.example', to: ['p@partner.example'] },
      raw: `Subject: ${marker}\r\n\r\nBody with ${marker}\r\n`,
    });
    await waitUntil(
      async () => !!(await gw!.store.db('envelopes').where({ state: 'deferred' }).first()),
      10000,
      'a deferral',
    );
    const hits = (dir: string) => {
      try {
        return execFileSync('grep', ['-rla', marker, dir]).toString();
      } catch (err) {
        if ((err as { status?: number }).status === 1) return ''; // grep: no match
        throw err;
      }
    };
    expect(hits(gw.dataDir)).to.equal('');
    // The same check on the built-in outbox path.
    await gw.stop();
    const dir = gw.dataDir;
    gw = await startGateway({ dataDir: dir });
    await client(gw.smtpPort).sendMail({
      envelope: { from: 'a@clinic.example', to: ['b@x.example'] },
      raw: `Subject: ${marker}\r\n\r\n${marker}\r\n`,
    });
    await waitUntil(async () => !!(await gw!.store.db('outbox').first()), 10000, 'outbox entry');
    expect(hits(gw.dataDir)).to.equal('');
  });
});
