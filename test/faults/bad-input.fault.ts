// Fault: bad input through the full pipeline of the real process: the MimeKit corpus (path from
// MIME_CORPUS) and generated breakage. No crash, bounded memory and time, each message with an outcome.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, ROOT, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';
import {
  openWork,
  outcomeOf,
  queueDb,
  queueIdOf,
  report,
  sendRaw,
  smtpClient,
  vmHwmKb,
  waitUntil,
  type Outcome,
} from './support.js';

const CORPUS = process.env.MIME_CORPUS ?? path.join(ROOT, '../shared/corpus/external/mimekit-testdata');
const MEMORY_LIMIT_MB = 512;

function crlf(data: Buffer): Buffer {
  const text = data.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
}

/** Every message of the corpus: single files, mbox files split at "From " lines, TNEF blobs as attachments. */
function corpusMessages(dir: string): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((n) => {
      const p = path.join(d, n);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
  for (const file of walk(dir).sort()) {
    const rel = path.relative(dir, file);
    if (/README|LICENSE|-summary\.txt$|\.list$/.test(rel)) continue;
    const data = readFileSync(file);
    if (rel.startsWith('mbox/')) {
      const parts = data
        .toString('latin1')
        .split(/^From [^\n]*\n/m)
        .filter((p) => p.trim() !== '');
      parts.forEach((p, i) => out.push([`${rel}#${i + 1}`, crlf(Buffer.from(p, 'latin1'))]));
    } else if (rel.startsWith('tnef/')) {
      const b64 = data.toString('base64').replace(/.{76}/g, '$&\r\n');
      out.push([
        rel,
        Buffer.from(
          `From: staff@clinic.example\r\nTo: partner@partner.example\r\nSubject: attachment ${path.basename(rel)}\r\n` +
            `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="t"\r\n\r\n--t\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n` +
            `--t\r\nContent-Type: application/ms-tnef; name="${path.basename(rel)}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--t--\r\n`,
        ),
      ]);
    } else out.push([rel, crlf(data)]);
  }
  return out;
}

const head = (subject: string, extra = '') =>
  `From: staff@clinic.example\r\nTo: partner@partner.example\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n${extra}`;

/** The project's broken-message generator: each entry is one kind of breakage, at a size that hurts. */
function generated(): Array<[string, Buffer]> {
  const deep = (() => {
    let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
    for (let i = 0; i < 1000; i++)
      body = `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n${body}--d${i}--\r\n`;
    return head('deep nesting') + body;
  })();
  const manyParts = (() => {
    const parts: string[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(`--p\r\n\r\n${i}\r\n`);
    return (
      head('100000 parts', 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n') +
      parts.join('') +
      '--p--\r\n'
    );
  })();
  const cases: Array<[string, string | Buffer]> = [
    [
      'missing boundaries (declared, never used)',
      head('no boundary', 'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n') + 'text only\r\n',
    ],
    [
      'missing closing boundary',
      head('open', 'Content-Type: multipart/mixed; boundary="o"\r\n\r\n') +
        '--o\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n',
    ],
    [
      'multipart without boundary parameter',
      head('nobound', 'Content-Type: multipart/alternative\r\n\r\n') + '--\r\nx\r\n',
    ],
    [
      'base64 over garbage',
      head('b64', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n') +
        '!!@@##$$ not base64 at all ====\r\n',
    ],
    [
      'base64 on a multipart container',
      head(
        'b64mp',
        'Content-Type: multipart/mixed; boundary="q"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      ) + '--q\r\n\r\nx\r\n--q--\r\n',
    ],
    [
      'broken quoted-printable',
      head('qp', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n') +
        '=ZZ=\r\n=4\r\n=\r\n',
    ],
    [
      'unknown transfer encoding',
      head('x-enc', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode-ish\r\n\r\n') +
        'begin 644 x\r\nend\r\n',
    ],
    [
      '7bit declared, 8-bit sent',
      Buffer.concat([
        Buffer.from(head('8bit body', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n')),
        Buffer.from([0xe9, 0xff, 0x80, 0x0d, 0x0a]),
      ]),
    ],
    ['deep nesting (1000 levels)', deep],
    [
      'huge header (1 MB line)',
      head('huge', `X-Huge: ${'h'.repeat(1024 * 1024)}\r\nContent-Type: text/plain\r\n\r\n`) +
        'small body\r\n',
    ],
    [
      '50,000 header lines',
      head('many headers', Array.from({ length: 50_000 }, (_, i) => `X-H${i}: v\r\n`).join('') + '\r\n') +
        'body\r\n',
    ],
    [
      'NUL bytes in body and headers',
      head('nul\0subject', 'Content-Type: text/plain\r\nX-Nul: a\0b\r\n\r\n') + 'a\0b\0c\r\n',
    ],
    [
      '8-bit bytes in headers',
      Buffer.concat([
        Buffer.from('From: Dr. M'),
        Buffer.from([0xfc, 0x6c, 0x6c, 0x65, 0x72]),
        Buffer.from(' <staff@clinic.example>\r\nTo: partner@partner.example\r\nSubject: r'),
        Buffer.from([0xe9, 0xff, 0xfe]),
        Buffer.from('sum\r\n\r\nbody\r\n'),
      ]),
    ],
    ['100,000 tiny parts', manyParts],
    ['no header/body separator', 'this is not even a header line\r\nnor this\r\n'],
    ['empty message', ''],
  ];
  return cases.map(([name, body]) => [name, typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

describe('fault: bad input through the full pipeline (real process)', function () {
  this.timeout(400000);
  let capture: CaptureServer;
  let child: ChildGateway | undefined;
  let dataDir: string;

  before(async () => {
    capture = new CaptureServer();
    await capture.start();
    dataDir = await tempDir('phigw-fault-input-');
    child = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      overrides: {
        logLevel: 'warn',
        queue: { stageTimeout: 20000, maxProcessingAttempts: 2 },
        pickup: { passwordDelay: 0 },
      },
    });
  });

  after(async () => {
    await child?.kill('SIGTERM');
    await capture.stop();
    await removeDir(dataDir);
  });

  async function run(label: string, inputs: Array<[string, Buffer]>) {
    const t = smtpClient(child!.smtpPort, 2, 30000);
    const sent: Array<{ name: string; qid: string; ms: number }> = [];
    const refused: string[] = [];
    const started = Date.now();
    try {
      await Promise.all(
        inputs.map(async ([name, raw]) => {
          const t0 = Date.now();
          const r = await sendRaw(t, raw, 'staff@clinic.example', ['partner@partner.example']);
          const qid = queueIdOf(r.response);
          if (r.ok && qid) sent.push({ name, qid, ms: Date.now() - t0 });
          else refused.push(`${name}: ${r.response.slice(0, 60)}`);
        }),
      );
    } finally {
      t.close();
    }
    await waitUntil(
      () => {
        const db = queueDb(dataDir);
        try {
          return sent.every((s) => outcomeOf(db, s.qid).outcome !== 'pending');
        } finally {
          db.close();
        }
      },
      240000,
      `an outcome for every ${label} message`,
    ).catch((err: Error) => {
      const db = queueDb(dataDir);
      const pending = sent.filter((s) => outcomeOf(db, s.qid).outcome === 'pending');
      const detail = pending.map((s) => `${s.name}: ${outcomeOf(db, s.qid).reason}`).join('; ');
      db.close();
      throw new Error(`${err.message}: ${detail}`);
    });
    const db = queueDb(dataDir);
    const tally: Record<Outcome, number> = { delivered: 0, protected: 0, held: 0, pending: 0 };
    const reasons = new Set<string>();
    try {
      for (const s of sent) {
        const o = outcomeOf(db, s.qid);
        tally[o.outcome]++;
        if (o.reason) reasons.add(`${s.name} → ${o.reason}`);
      }
    } finally {
      db.close();
    }
    const slowest = (() => {
      const d = queueDb(dataDir);
      try {
        let worst = { name: '', ms: 0 };
        for (const s of sent) {
          const row = d.prepare('SELECT created_at, updated_at FROM messages WHERE id = ?').get(s.qid) as {
            created_at: number;
            updated_at: number;
          };
          const ms = Number(row.updated_at) - Number(row.created_at);
          if (ms > worst.ms) worst = { name: s.name, ms };
        }
        return worst;
      } finally {
        d.close();
      }
    })();
    report(`      slowest to an outcome: ${slowest.name} (${slowest.ms} ms)`);
    const hwm = Math.round(vmHwmKb(child!.child.pid!) / 1024);
    report(
      `      ${label}: ${inputs.length} inputs in ${Math.round((Date.now() - started) / 1000)} s; delivered ${tally.delivered}, protected ${tally.protected}, held ${tally.held}; refused at SMTP ${refused.length}; VmHWM ${hwm} MB`,
    );
    for (const r of [...reasons, ...refused]) report(`        ${r}`);
    expect(child!.child.exitCode, 'the gateway crashed').to.equal(null);
    expect(tally.pending).to.equal(0);
    expect(hwm, 'peak memory of the gateway process').to.be.below(MEMORY_LIMIT_MB);
    expect(slowest.ms, 'time from 250 to an outcome (stageTimeout is 20 s)').to.be.below(30000);
    return { sent, refused, tally };
  }

  it('the MimeKit corpus: each message delivered, protected or held with a reason', async () => {
    expect(existsSync(CORPUS), `MIME corpus not found at ${CORPUS} (set MIME_CORPUS)`).to.equal(true);
    const inputs = corpusMessages(CORPUS);
    expect(inputs.length, 'corpus messages').to.be.greaterThan(60);
    const { refused } = await run('corpus', inputs);
    expect(refused, 'well-formed SMTP transfers refused').to.deep.equal([]);
  });

  it('generated breakage (boundaries, encodings, 1000-deep nesting, 1 MB header, NUL, 8-bit, 100,000 parts)', async () => {
    const inputs = generated();
    const { refused } = await run('generated', inputs);
    // A refusal is allowed only with a proper SMTP reply (5xx for bytes we never take, e.g. NUL if refused).
    for (const r of refused) expect(r).to.match(/: [45]\d\d /);
    expect(openWork(dataDir).messages).to.equal(0);
  });

  it('10,000 recipients: 452 past the limit, the rest in another transaction, each recipient once', async () => {
    const { connect } = await import('node:net');
    const port = child!.smtpPort;
    const before = capture.count;
    const transaction = async (rcpts: string[]) => {
      const s = connect({ port, host: '127.0.0.1' });
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      await new Promise<void>((r) => s.once('connect', () => r()));
      await waitUntil(() => text.includes('\r\n'), 5000, 'greeting');
      s.write(
        'EHLO c\r\nMAIL FROM:<staff@clinic.example>\r\n' + rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join(''),
      );
      const finals = () => text.split('\r\n').filter((l) => /^\d{3} /.test(l)).length;
      await waitUntil(() => finals() >= rcpts.length + 3, 60000, 'RCPT replies');
      s.write('DATA\r\n');
      await waitUntil(() => /\r\n354 /.test(text), 10000, '354');
      s.write(head('many recipients', 'Content-Type: text/plain\r\n\r\n') + 'hello all\r\n.\r\nQUIT\r\n');
      await waitUntil(() => /\r\n221 /.test(text), 30000, 'the end of the transaction');
      s.destroy();
      const codes = text
        .split('\r\n')
        .filter((l) => /^\d{3} /.test(l))
        .map((l) => l.slice(0, 3));
      return codes;
    };
    const all = Array.from({ length: 10_000 }, (_, i) => `u${i}@partner.example`);
    const first = await transaction(all);
    const over = first.filter((c) => c === '452').length;
    expect(over, '452 for every recipient past maxRecipients (100)').to.equal(9_900);
    const second = await transaction(all.slice(100, 200));
    expect(second.filter((c) => c === '452').length).to.equal(0);
    await capture.waitFor(before + 2, 60000);
    const got = capture.messages
      .slice(before)
      .filter((m) => m.raw.toString().includes('Subject: many recipients'))
      .flatMap((m) => m.to);
    expect(got.length, 'each recipient once').to.equal(200);
    expect(new Set(got)).to.deep.equal(new Set(all.slice(0, 200)));
    report(
      `      10,000 RCPTs: 100 accepted, ${over} × 452; the next 100 in a second transaction; 200 delivered once each`,
    );
    expect(child!.child.exitCode).to.equal(null);
  });
});
