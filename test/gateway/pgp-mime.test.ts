// PGP/MIME output checked by outsiders: real GnuPG decrypts and verifies it and gets the original body back
// byte for byte; Python's email package and mailparser read its structure; no PHI shows outside.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { loadOrgKey, type OrgKey } from '../../store/org-key.js';
import { buildPgpMime, buildPgpMimeStream } from '../../gateway/pgp-mime.js';
import type { RecipientKey } from '../../store/pgp-keyring.js';
import type { Store } from '../../store/store.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { gnupgHome, makeKey, openStore, type TestKey } from '../support/pgp.js';

const PHI = {
  subject: 'Biopsy results for Jane Quixote DOB 1961-04-12',
  text: 'Histology confirms melanoma in situ, Quixote chart 88231.',
  html: 'Pathology <b>Quixote</b> margin clear 4mm',
  latin1: 'Patientin Müller, Überweisung wegen Hämatom',
  filename: 'quixote-lab-report.bin',
  header: 'Quixote-case-88231',
};

function b64lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/** A realistic message: alternative text/HTML, a Latin-1 part, an inline image and a binary attachment. */
export function makeRichMessage(attachment: Buffer, image: Buffer): Buffer {
  const head =
    'Received: from pc12 ([10.0.0.12]) by mail.clinic.example; Mon, 1 Jun 2026 10:00:00 +0000\r\n' +
    'From: "Dr. Who" <doctor@clinic.example>\r\n' +
    'To: Partner Lab <alice@partner.example>\r\n' +
    'Cc: bob@partner.example\r\n' +
    `Subject: ${PHI.subject}\r\n` +
    'Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n' +
    'Message-ID: <orig-1@clinic.example>\r\n' +
    'MIME-Version: 1.0\r\n' +
    `Thread-Topic: ${PHI.subject}\r\n` +
    `X-Case-Reference: ${PHI.header}\r\n` +
    'X-Mailer: Outlook 16\r\n' +
    'Content-Type: multipart/mixed;\r\n boundary="MIX"\r\n' +
    '\r\n';
  const body = Buffer.concat([
    Buffer.from(
      'This is a multi-part message in MIME format.\r\n' +
        '--MIX\r\nContent-Type: multipart/related; boundary="REL"\r\n\r\n' +
        '--REL\r\nContent-Type: multipart/alternative; boundary="ALT"\r\n\r\n' +
        '--ALT\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
        `${PHI.text} =E2=9C=93\r\n` +
        '--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n' +
        `<html><body><p>${PHI.html}</p><img src="cid:scan@clinic"></body></html>\r\n` +
        '--ALT--\r\n' +
        '--REL\r\nContent-Type: image/png; name="scan.png"\r\nContent-Transfer-Encoding: base64\r\n' +
        'Content-ID: <scan@clinic>\r\nContent-Disposition: inline; filename="scan.png"\r\n\r\n' +
        `${b64lines(image)}\r\n` +
        '--REL--\r\n' +
        '--MIX\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
    ),
    Buffer.from(`${PHI.latin1}\r\n`, 'latin1'),
    Buffer.from(
      '--MIX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n' +
        `Content-Disposition: attachment; filename="${PHI.filename}"\r\n\r\n` +
        `${b64lines(attachment)}\r\n` +
        '--MIX--\r\n',
    ),
  ]);
  return Buffer.concat([Buffer.from(head), body]);
}

function bodyOf(raw: Buffer): Buffer {
  return raw.subarray(raw.indexOf('\r\n\r\n') + 4);
}

/** RFC 4880 §6.1's CRC-24, a bit at a time as the RFC writes it: an independent check of the armour's. */
function crc24Bitwise(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

function armourOf(mail: Buffer): string {
  const s = mail.toString('latin1');
  const m = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----\r?\n/.exec(s);
  expect(m, 'armour in the output').to.not.equal(null);
  return m![0];
}

async function recipient(k: TestKey): Promise<RecipientKey> {
  return {
    fingerprint: k.fingerprint,
    address: k.email,
    source: 'api',
    key: (await openpgp.readKey({ armoredKey: k.publicArmored })) as openpgp.PublicKey,
  };
}

describe('PGP/MIME', function () {
  this.timeout(60000);
  let dir: string;
  let store: Store;
  let org: OrgKey;
  let alice: TestKey;
  let bob: TestKey;
  const attachment = randomBytes(48 * 1024);
  const image = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(3000)]);
  let original: Buffer;
  let out: Buffer;

  before(async () => {
    dir = await tempDir();
    store = await openStore(dir);
    org = await loadOrgKey(store, { practiceName: 'Smile Dental', hostname: 'gw.clinic.example' });
    alice = await makeKey('alice@partner.example');
    bob = await makeKey('bob@partner.example');
    original = makeRichMessage(attachment, image);
    out = await buildPgpMime({
      raw: original,
      recipientKeys: [await recipient(alice)],
      signingKey: org,
      outerSubject: 'Secure message from Smile Dental',
      extraHeaders:
        'Received: from gw ([127.0.0.1]) by gw.clinic.example; Mon, 1 Jun 2026 10:00:01 +0000\r\n',
    });
  });
  after(async () => {
    await store.close();
    await removeDir(dir);
  });

  it('GnuPG decrypts it to the original body, byte for byte, and finds a good signature by the org key', async () => {
    const g = await gnupgHome();
    try {
      expect(g.gpg(['--import'], alice.privateArmored).code).to.equal(0);
      expect(g.gpg(['--import'], org.publicArmored).code).to.equal(0);
      const r = g.gpg(['--status-fd', '2', '--decrypt'], armourOf(out));
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/\[GNUPG:\] GOODSIG /);
      const validsig = /\[GNUPG:\] VALIDSIG (\S+).* (\S+)\r?$/m.exec(r.stderr);
      expect(validsig?.[2] ?? validsig?.[1]).to.equal(org.fingerprint);
      expect(r.stderr).to.match(/\[GNUPG:\] DECRYPTION_OKAY/);
      expect(r.stderr).not.to.match(/invalid|no valid OpenPGP|WARNING: message was not integrity protected/);

      const inner = r.stdout;
      expect(bodyOf(inner).equals(bodyOf(original)), 'inner body identical to the original body').to.equal(
        true,
      );
      const innerHead = inner.subarray(0, inner.indexOf('\r\n\r\n') + 2).toString('latin1');
      expect(innerHead).to.match(
        /^Content-Type: multipart\/mixed;\r\n boundary="MIX";\r\n protected-headers="v1"\r\n/,
      );
      for (const h of [
        `Subject: ${PHI.subject}`,
        'From: "Dr. Who" <doctor@clinic.example>',
        'To: Partner Lab <alice@partner.example>',
        'Cc: bob@partner.example',
        'Date: Mon, 1 Jun 2026 10:00:00 +0000',
        'Message-ID: <orig-1@clinic.example>',
      ])
        expect(innerHead).to.contain(`${h}\r\n`);
      expect(innerHead).not.to.contain('X-Mailer');

      // The decrypted entity, read by a MIME parser: every part as it was.
      const mail = await simpleParser(inner);
      expect(mail.subject).to.equal(PHI.subject);
      expect(mail.text).to.contain(PHI.text).and.contain('✓');
      expect(mail.html).to.contain(PHI.html);
      const att = mail.attachments.find((a) => a.filename === PHI.filename);
      expect(att?.content.equals(attachment), 'binary attachment').to.equal(true);
      const img = mail.attachments.find((a) => a.contentId === '<scan@clinic>');
      expect(img?.content.equals(image), 'inline image').to.equal(true);
      const latin = mail.attachments.find((a) => a.contentType === 'text/plain') ?? null;
      const latinText = latin ? latin.content.toString('latin1') : (mail.text ?? '');
      expect(latinText).to.contain(PHI.latin1);
    } finally {
      await g.close();
    }
  });

  it('shows nothing of the original outside but the addressing headers and the neutral subject', () => {
    const outer = out.toString('latin1');
    const outerHead = outer.slice(0, outer.indexOf('\r\n\r\n') + 2);
    const secrets = [
      ...Object.values(PHI),
      'Jane',
      'melanoma',
      'Thread-Topic',
      'X-Mailer',
      'scan@clinic',
      // Any line of the attachment's and image's base64, and raw bytes of the attachment.
      b64lines(attachment).split('\r\n')[3]!,
      b64lines(image).split('\r\n')[1]!,
      attachment.subarray(100, 140).toString('latin1'),
    ];
    // The ciphertext's armor is random base64, where a short word ("Jane") turns up by chance now and then (it did, once
    // in a CI run): short secrets are looked for outside it, long ones (20 characters or more) everywhere.
    const armor = /-----BEGIN PGP MESSAGE-----\r\n[\s\S]*?\r\n-----END PGP MESSAGE-----/g;
    expect(outer.match(armor), 'one armored message').to.have.length(1);
    const outsideArmor = outer.replace(armor, '');
    for (const s of secrets)
      expect(
        (s.length >= 20 ? outer : outsideArmor).includes(s),
        `outer message contains ${s.slice(0, 30)}`,
      ).to.equal(false);
    expect(outerHead).to.match(/^Received: from gw /);
    expect(outerHead).to.contain('Subject: Secure message from Smile Dental\r\n');
    expect(outerHead).to.contain('X-PHI-Gateway-Kind: pgp\r\n');
    expect(outerHead).to.contain('From: "Dr. Who" <doctor@clinic.example>\r\n');
    expect(outerHead).to.contain('Message-ID: <orig-1@clinic.example>\r\n');
    expect(outerHead.match(/^MIME-Version:/gm)).to.have.length(1);
    expect(outerHead).not.to.contain('mail.clinic.example'); // the original Received header is dropped
    expect(/[\r\n]\n|\r(?!\n)/.test(outer.replace(/\r\n/g, ''))).to.equal(false);
  });

  it("Python's email package sees multipart/encrypted with the two parts in RFC 3156 order", () => {
    const script = `
import sys, json, email
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
parts = list(m.iter_parts())
print(json.dumps({
  "type": m.get_content_type(),
  "protocol": m.get_param("protocol"),
  "subject": str(m["subject"]),
  "defects": len(m.defects),
  "parts": [{"type": p.get_content_type(), "body": p.get_payload(decode=True).decode("ascii")} for p in parts],
}))
`;
    const r = spawnSync('python3', ['-c', script], { input: out, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const seen = JSON.parse(r.stdout) as {
      type: string;
      protocol: string;
      subject: string;
      defects: number;
      parts: Array<{ type: string; body: string }>;
    };
    expect(seen.type).to.equal('multipart/encrypted');
    expect(seen.protocol).to.equal('application/pgp-encrypted');
    expect(seen.subject).to.equal('Secure message from Smile Dental');
    expect(seen.defects).to.equal(0);
    expect(seen.parts.map((p) => p.type)).to.deep.equal([
      'application/pgp-encrypted',
      'application/octet-stream',
    ]);
    expect(seen.parts[0]!.body.trim()).to.equal('Version: 1');
    expect(seen.parts[1]!.body).to.match(
      /^-----BEGIN PGP MESSAGE-----\r?\n[\s\S]+-----END PGP MESSAGE-----\s*$/,
    );
  });

  it('mailparser reads it as two parts with the armour in the second', async () => {
    const m = await simpleParser(out);
    expect(m.subject).to.equal('Secure message from Smile Dental');
    expect((m.headers.get('content-type') as { value: string }).value).to.equal('multipart/encrypted');
    expect(m.headers.get('x-phi-gateway-kind')).to.equal('pgp');
    expect(m.attachments.map((a) => a.contentType)).to.deep.equal([
      'application/pgp-encrypted',
      'application/octet-stream',
    ]);
    expect(m.attachments[1]!.content.toString('ascii')).to.contain('-----BEGIN PGP MESSAGE-----');
  });

  it('encrypts to several recipients: each one decrypts on their own', async () => {
    const two = await buildPgpMime({
      raw: original,
      recipientKeys: [await recipient(alice), await recipient(bob)],
      signingKey: org,
      outerSubject: 'Secure message from Smile Dental',
      innerSubject: 'Biopsy results (tag removed)',
    });
    for (const who of [alice, bob]) {
      const g = await gnupgHome();
      try {
        g.gpg(['--import'], who.privateArmored);
        g.gpg(['--import'], org.publicArmored);
        const r = g.gpg(['--status-fd', '2', '--decrypt'], armourOf(two));
        expect(r.code, `${who.email}: ${r.stderr}`).to.equal(0);
        expect(r.stderr).to.match(/GOODSIG/);
        expect(r.stderr).not.to.match(/invalid|no valid OpenPGP/);
        expect(bodyOf(r.stdout).equals(bodyOf(original))).to.equal(true);
        const head = r.stdout.subarray(0, r.stdout.indexOf('\r\n\r\n')).toString('latin1');
        expect(head).to.contain('Subject: Biopsy results (tag removed)');
        expect(head).not.to.contain(PHI.subject);
      } finally {
        await g.close();
      }
    }
  });

  it('handles a single-part message without Content-Type, and a non-ASCII outer subject', async () => {
    const raw = Buffer.from(
      'From: a@clinic.example\r\nTo: alice@partner.example\r\nSubject: hi\r\n\r\nplain body\r\n',
    );
    const mail = await buildPgpMime({
      raw,
      recipientKeys: [await recipient(alice)],
      signingKey: org,
      outerSubject: 'Sichere Nachricht von Zahnärzte Müller',
    });
    const parsed = await simpleParser(mail);
    expect(parsed.subject).to.equal('Sichere Nachricht von Zahnärzte Müller');
    const msg = await openpgp.readMessage({ armoredMessage: armourOf(mail) });
    const { data } = (await openpgp.decrypt({
      message: msg,
      decryptionKeys: alice.privateKey,
      format: 'binary',
    })) as { data: Uint8Array };
    expect(Buffer.from(data).toString('latin1')).to.equal(
      'Content-Type: text/plain; charset=us-ascii; protected-headers="v1"\r\n' +
        'From: a@clinic.example\r\nTo: alice@partner.example\r\nSubject: hi\r\n\r\nplain body\r\n',
    );
  });

  it("armours every ciphertext length the same way as Node's base64, in 64-column lines with the right CRC-24", async () => {
    // Bodies of 0..95 bytes give ciphertexts of every length modulo 48 (the armour's whole-line unit), and the
    // extra header's length changes the parity of where the armour starts in the output.
    const seen = new Set<number>();
    for (let n = 0; n < 96; n++) {
      const raw = Buffer.from(`From: a@clinic.example\r\nSubject: s\r\n\r\n${'x'.repeat(n)}`);
      const mail = await buildPgpMime({
        raw,
        recipientKeys: [await recipient(alice)],
        signingKey: org,
        outerSubject: 'Secure',
        extraHeaders: `X-Pad: ${'p'.repeat(n % 3)}\r\n`,
      });
      const armour = armourOf(mail);
      const [head, ...rest] = armour.split('\r\n\r\n');
      expect(head).to.equal('-----BEGIN PGP MESSAGE-----');
      const body = rest.join('\r\n\r\n').split('\r\n');
      expect(body.slice(-2)).to.deep.equal(['-----END PGP MESSAGE-----', '']);
      const crcLine = body[body.length - 3]!;
      const b64 = body.slice(0, -3);
      b64.forEach((line, i) => {
        expect(line, `line ${i} of ${b64.length}`).to.match(/^[A-Za-z0-9+/]+=*$/);
        if (i < b64.length - 1) expect(line.length).to.equal(64);
        else expect(line.length).to.be.within(4, 64);
      });
      const binary = Buffer.from(b64.join(''), 'base64');
      seen.add(binary.length % 48);
      expect(b64.join('')).to.equal(binary.toString('base64'));
      expect(crcLine).to.equal(
        `=${Buffer.from(crc24Bitwise(binary).toString(16).padStart(6, '0'), 'hex').toString('base64')}`,
      );
      const { data } = (await openpgp.decrypt({
        message: await openpgp.readMessage({ binaryMessage: binary }),
        decryptionKeys: alice.privateKey,
        format: 'binary',
      })) as { data: Uint8Array };
      expect(Buffer.from(data).toString('latin1')).to.match(new RegExp(`\r\n\r\nx{${n}}$`));
    }
    expect(seen.size, 'ciphertext lengths modulo 48').to.equal(48);
  });

  it('refuses to build without a recipient key or with extra headers that would end the header', async () => {
    const raw = Buffer.from('From: a@b.example\r\n\r\nx\r\n');
    for (const input of [
      { recipientKeys: [], extraHeaders: undefined },
      { recipientKeys: [await recipient(alice)], extraHeaders: 'X-A: 1\r\n\r\nInjected: yes\r\n' },
      { recipientKeys: [await recipient(alice)], extraHeaders: 'X-A: no line end' },
      { recipientKeys: [await recipient(alice)], extraHeaders: 'X-A: 1\n\nInjected: yes\r\n' },
      { recipientKeys: [await recipient(alice)], extraHeaders: 'not a header\r\n' },
    ]) {
      let code = '';
      try {
        await buildPgpMime({ raw, signingKey: org, outerSubject: 's', ...input });
      } catch (err) {
        code = (err as { code: string }).code;
      }
      expect(code).to.equal('PGP_FAILED');
    }
  });
});

/** `data` in chunks of `size` bytes, as a stream gives them. */
function chunked(data: Buffer, size: number): AsyncIterable<Buffer> {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
    })(),
  );
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

/** The message with its random parts (boundary, armour) replaced: what must be the same on both paths. */
function frameOf(mail: Buffer): string {
  return mail
    .toString('latin1')
    .replace(/phigw-pgp-[0-9a-f]{24}/g, 'BOUNDARY')
    .replace(/-----BEGIN PGP MESSAGE-----[\s\S]*-----END PGP MESSAGE-----\r\n/, 'ARMOUR');
}

async function innerOf(mail: Buffer, k: TestKey): Promise<Buffer> {
  const message = await openpgp.readMessage({ armoredMessage: armourOf(mail) });
  const { data } = (await openpgp.decrypt({
    message,
    decryptionKeys: k.privateKey,
    format: 'binary',
  })) as { data: Uint8Array };
  return Buffer.from(data);
}

describe('PGP/MIME built as a stream', function () {
  this.timeout(60000);
  let dir: string;
  let store: Store;
  let org: OrgKey;
  let alice: TestKey;
  let original: Buffer;
  const extraHeaders =
    'Received: from gw ([127.0.0.1]) by gw.clinic.example; Mon, 1 Jun 2026 10:00:01 +0000\r\n';

  before(async () => {
    dir = await tempDir();
    store = await openStore(dir);
    org = await loadOrgKey(store, { practiceName: 'Smile Dental', hostname: 'gw.clinic.example' });
    alice = await makeKey('alice@partner.example');
    original = makeRichMessage(randomBytes(300 * 1024), randomBytes(2000));
  });
  after(async () => {
    await store.close();
    await removeDir(dir);
  });

  const input = async () => ({
    recipientKeys: [await recipient(alice)],
    signingKey: org,
    outerSubject: 'Secure message from Smile Dental',
    extraHeaders,
  });

  // Chunkings that split the header's end, the armour's 48-byte groups and OpenPGP's packets differently.
  for (const size of [7, 1000, 64 * 1024, 1 << 30]) {
    it(`gives what the buffer path gives, the message read in ${size >= 1 << 30 ? 'one chunk' : `${size}-byte chunks`}; GnuPG decrypts and verifies it`, async () => {
      const whole = await buildPgpMime({ raw: original, ...(await input()) });
      const streamed = await collect(
        buildPgpMimeStream({ source: chunked(original, size), ...(await input()) }),
      );
      expect(frameOf(streamed)).to.equal(frameOf(whole));
      const lines = armourOf(streamed).split('\r\n');
      const base64 = lines.slice(
        2,
        lines.findIndex((l) => l.startsWith('=')),
      );
      expect(
        base64.slice(0, -1).every((l) => l.length === 64),
        '64-column armour lines',
      ).to.equal(true);
      const g = await gnupgHome();
      try {
        expect(g.gpg(['--import'], alice.privateArmored).code).to.equal(0);
        expect(g.gpg(['--import'], org.publicArmored).code).to.equal(0);
        const r = g.gpg(['--status-fd', '2', '--decrypt'], armourOf(streamed));
        expect(r.code, r.stderr).to.equal(0);
        const validsig = /\[GNUPG:\] VALIDSIG (\S+).* (\S+)\r?$/m.exec(r.stderr);
        expect(validsig?.[2] ?? validsig?.[1]).to.equal(org.fingerprint);
        expect(r.stderr).not.to.match(/invalid|CRC error|WARNING: message was not integrity protected/);
        expect(r.stdout.equals(await innerOf(whole, alice)), 'the same inner entity').to.equal(true);
        expect(bodyOf(r.stdout).equals(bodyOf(original)), 'the original body, byte for byte').to.equal(true);
      } finally {
        await g.close();
      }
    });
  }

  // Messages whose header is odd: the split must be the buffer path's, whatever the chunking.
  const odd: Array<[string, Buffer]> = [
    ['no header at all (a leading empty line)', Buffer.from('\r\nJust a body.\r\n')],
    ['a header and no body', Buffer.from('From: a@b.example\r\nSubject: x\r\n')],
    ['LF line ends only', Buffer.from('From: a@b.example\nSubject: x\n\nBody\nline 2\n')],
    [
      'no Content-Type, folded Subject',
      Buffer.from('From: a@b.example\r\nSubject: one\r\n two\r\n\r\nBody\r\n'),
    ],
  ];
  for (const [label, raw] of odd) {
    it(`splits ${label} as the buffer path does`, async () => {
      const whole = await buildPgpMime({ raw, ...(await input()) });
      for (const size of [1, 3]) {
        const streamed = await collect(
          buildPgpMimeStream({ source: chunked(raw, size), ...(await input()) }),
        );
        expect(frameOf(streamed)).to.equal(frameOf(whole));
        expect((await innerOf(streamed, alice)).equals(await innerOf(whole, alice))).to.equal(true);
      }
    });
  }

  it("fails with the source's own error when the source fails mid-way, and never yields the end", async () => {
    const head = original.subarray(0, 200 * 1024);
    const failing = () =>
      Readable.from(
        (function* () {
          for (let at = 0; at < head.length; at += 16 * 1024) yield head.subarray(at, at + 16 * 1024);
          throw Object.assign(new Error('spool tag'), { code: 'SPOOL_CORRUPT' });
        })(),
      );
    const parts: Buffer[] = [];
    let caught: unknown;
    try {
      for await (const c of buildPgpMimeStream({ source: failing(), ...(await input()) })) parts.push(c);
    } catch (err) {
      caught = err;
    }
    expect((caught as { code?: string }).code).to.equal('SPOOL_CORRUPT');
    const got = Buffer.concat(parts).toString('latin1');
    expect(got).not.to.contain('-----END PGP MESSAGE-----');
    expect(got).not.to.match(/--phigw-pgp-[0-9a-f]{24}--/);
  });
});
