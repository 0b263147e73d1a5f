// Image redaction in the gateway: a PHI message with a photo of a form goes to a patient as a pickup; the
// image inside the pickup is the redacted one (OCR of what the recipient downloads finds none of the PHI,
// the harmless words stay), metadata is gone, and the audit log counts boxes without text.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import sharp from 'sharp';
import { createLogger } from '../../config/log.js';
import { OcrPool } from '../../redaction/ocr-pool.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { HARMLESS_LINE, makePng, PHI_LINE, readText } from '../redaction/fixtures.js';
import { redactionMode } from '../../gateway/protect.js';
import type { Verdict } from '../../dlp/types.js';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { DEFAULT_RULES_FILE } from '../../gateway/rules.js';

describe('redactionMode', () => {
  const fired = (
    ...entries: Array<{
      action?: 'protect' | 'log';
      monitorOnly?: boolean;
      redaction?: 'on' | 'off' | 'clear-copy';
    }>
  ) =>
    ({
      phi: true,
      score: 1,
      action: 'protect',
      findings: [],
      rules: [],
      monitored: [],
      explanation: entries.map((e, i) => ({
        rule: `r${i}`,
        action: e.action ?? 'protect',
        monitorOnly: e.monitorOnly ?? false,
        reason: '',
        findingTypes: [],
        parts: [],
        ...(e.redaction ? { redaction: e.redaction } : {}),
      })),
    }) as Verdict;
  const rows: Array<[string, Verdict, 'external' | 'on' | 'off', string]> = [
    ['no rule setting, gateway external', fired({}), 'external', 'on'],
    ['no rule setting, gateway off', fired({}), 'off', 'off'],
    [
      'one rule on wins over clear-copy',
      fired({ redaction: 'clear-copy' }, { redaction: 'on' }),
      'off',
      'on',
    ],
    [
      'all acting rules clear-copy',
      fired({ redaction: 'clear-copy' }, { redaction: 'clear-copy' }),
      'external',
      'clear-copy',
    ],
    [
      'clear-copy with another acting rule that says nothing',
      fired({ redaction: 'clear-copy' }, {}),
      'external',
      'on',
    ],
    [
      'a monitor-only rule does not count',
      fired({ redaction: 'clear-copy' }, { monitorOnly: true, redaction: 'on' }),
      'external',
      'clear-copy',
    ],
    ['off from a rule', fired({ redaction: 'off' }), 'external', 'off'],
    ['nothing fired (tag only)', fired(), 'external', 'on'],
  ];
  for (const [name, verdict, gatewayDefault, want] of rows)
    it(name, () => expect(redactionMode(verdict, gatewayDefault)).to.equal(want));
});

/** Sends a message with a text part and one PNG attachment over real SMTP; returns its queue id. */
async function sendImageMail(
  port: number,
  rcpt: string,
  subject: string,
  text: string,
  filename: string,
  png: Buffer,
): Promise<string> {
  const b = 'img-b0undary';
  const message = [
    'From: ann@clinic.example',
    `To: ${rcpt}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    text,
    `--${b}`,
    `Content-Type: image/png; name="${filename}"`,
    `Content-Disposition: attachment; filename="${filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    png.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${b}--`,
    '',
  ].join('\r\n');
  return queueIdOf(await sendMessage(port, 'ann@clinic.example', rcpt, message));
}

describe('image redaction in the gateway (integration)', function () {
  this.timeout(120000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let pool: OcrPool;

  before(async () => {
    dir = await tempDir();
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { pickup: { passwordDelay: 0 }, redaction: { workers: 1 } },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    pool = new OcrPool({ size: 1 });
  });

  after(async () => {
    server.close();
    await pool.close();
    await gw.stop();
    await capture.stop();
    await removeDir(dir);
  });

  it('seals the redacted image in the pickup, never the original', async () => {
    const png = await sharp(await makePng({ lines: [PHI_LINE, HARMLESS_LINE] }))
      .withMetadata({ exif: { IFD0: { Artist: 'Dr Camera Owner' } } })
      .png()
      .toBuffer();
    const id = await sendImageMail(
      gw.smtpPort,
      'patient@mail.example',
      '[secure] Your form',
      'Here is the photo of your intake form.',
      'form.png',
      png,
    );
    await capture.waitFor(2);
    const text = async (kind: string) =>
      (
        await simpleParser(
          capture.messages.find((m) => m.raw.toString().includes(`X-PHI-Gateway-Kind: ${kind}`))!.raw,
        )
      ).text ?? '';
    const token = /\/p\/([A-Za-z0-9_-]+)/.exec(await text('pickup-notice'))![1]!;
    const password = /^Password: (\S+)$/m.exec(await text('pickup-password'))![1]!;

    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${base}/api/pickups/${token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password }),
    });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { attachments: Array<{ url: string; contentType: string }> };
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const download = await fetch(new URL(body.attachments[0]!.url, base), { headers: { cookie } });
    const got = Buffer.from(await download.arrayBuffer());
    expect(got.equals(png)).to.equal(false);
    expect((await sharp(got).metadata()).exif, 'metadata stripped').to.equal(undefined);
    const seen = await readText(pool, got);
    for (const token of ['John', 'Smith', '4829301', '1962']) expect(seen).not.to.contain(token);
    expect(seen).to.contain('quick');

    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: id, type: 'message.routed' })
      .first()) as { detail: string };
    const detail = JSON.parse(audit.detail) as {
      redactedAttachments: number;
      redactedBoxes: number;
      redactedWhich: string[];
    };
    expect(detail.redactedAttachments).to.equal(1);
    expect(detail.redactedWhich).to.deep.equal(['1']);
    expect(detail.redactedBoxes).to.be.greaterThan(0);
    expect(audit.detail).not.to.contain('Smith');
  });

  it('with a clear-copy rule: the original image in the pickup, and a copy in clear with the image redacted', async () => {
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as {
      rules: Array<{ id: string; monitorOnly: boolean; redaction?: string }>;
    };
    const rule = pack.rules.find((r) => r.id === 'image-attachment')!;
    rule.monitorOnly = false;
    rule.redaction = 'clear-copy';
    const rulesFile = path.join(dir, 'clear-copy-rules.yaml');
    await writeFile(rulesFile, stringify(pack));
    const capture2 = new CaptureServer();
    await capture2.start();
    const gw2 = await startGateway({
      relayUrl: capture2.url,
      overrides: { dlp: { rulesFile }, pickup: { passwordDelay: 0 }, redaction: { workers: 1 } },
    });
    try {
      const png = await makePng({ lines: [PHI_LINE, HARMLESS_LINE] });
      await sendImageMail(
        gw2.smtpPort,
        'vendor@supplies.example',
        'Photo of the shelf label',
        'Here is the photo you asked for.',
        'photo.png',
        png,
      );
      await capture2.waitFor(3);
      const kinds = capture2.messages.map(
        (m) => /X-PHI-Gateway-Kind: ([\w-]+)/.exec(m.raw.toString('latin1'))?.[1],
      );
      expect(kinds.sort()).to.deep.equal(['pickup-notice', 'pickup-password', 'relay-redacted']);
      const copy = await simpleParser(
        capture2.messages.find((m) => m.raw.toString('latin1').includes('relay-redacted'))!.raw,
      );
      expect(copy.subject).to.equal('Photo of the shelf label');
      expect(copy.text).to.contain('Here is the photo you asked for.');
      const seen = await readText(pool, copy.attachments[0]!.content);
      for (const token of ['John', 'Smith', '4829301']) expect(seen).not.to.contain(token);
      expect(seen).to.contain('quick');
    } finally {
      await gw2.stop();
      await capture2.stop();
      await removeDir(gw2.dataDir);
    }
  });
});
