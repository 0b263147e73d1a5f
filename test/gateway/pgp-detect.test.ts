// Which mail counts as already encrypted (and may pass through unchanged). A false positive sends PHI in
// clear, so the table has more negative rows than positive ones, including labels without ciphertext.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import * as openpgp from 'openpgp';
import { loadOrgKey } from '../../store/org-key.js';
import { buildPgpMime, detectEncrypted, mayBeEncrypted } from '../../gateway/pgp-mime.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { makeKey, openStore } from '../support/pgp.js';

const HEAD =
  'From: doctor@clinic.example\r\nTo: alice@partner.example\r\nSubject: results\r\nMIME-Version: 1.0\r\n';

function crlf(s: string): string {
  return s.replace(/\r?\n/g, '\r\n');
}

function openssl(args: string[], input?: string): string {
  const r = spawnSync('openssl', args, { input: input ?? '', encoding: 'latin1' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  return r.stdout;
}

describe('detectEncrypted', function () {
  this.timeout(60000);
  const cases: Array<[string, () => Promise<Buffer>, ReturnType<typeof detectEncrypted>]> = [];
  let dir: string;

  before(async () => {
    dir = await tempDir();
    const key = path.join(dir, 'smime.key');
    const cert = path.join(dir, 'smime.crt');
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=alice@partner.example',
    ]);
    const plain = path.join(dir, 'plain.txt');
    await writeFile(plain, crlf('Content-Type: text/plain\n\nPatient Jane Roe, MRN 1234\n'));
    const smime = {
      enveloped: crlf(openssl(['smime', '-encrypt', '-aes256', '-in', plain, cert])),
      signed: crlf(openssl(['smime', '-sign', '-in', plain, '-signer', cert, '-inkey', key])),
      opaque: crlf(openssl(['smime', '-sign', '-nodetach', '-in', plain, '-signer', cert, '-inkey', key])),
    };
    const store = await openStore(dir);
    const org = await loadOrgKey(store, { practiceName: 'P', hostname: 'gw.clinic.example' });
    const alice = await makeKey('alice@partner.example');
    const pgpMime = await buildPgpMime({
      raw: Buffer.from(HEAD + 'Content-Type: text/plain\r\n\r\nJane Roe MRN 1234\r\n'),
      recipientKeys: [{ key: alice.privateKey.toPublic() }],
      signingKey: org,
      outerSubject: 'Secure message',
    });
    await store.close();
    const encryptedArmour = crlf(
      (await openpgp.encrypt({
        message: await openpgp.createMessage({ text: 'Jane Roe MRN 1234' }),
        encryptionKeys: alice.privateKey.toPublic(),
      })) as string,
    );
    const signedOnlyArmour = crlf(
      (await openpgp.sign({
        message: await openpgp.createMessage({ text: 'Jane Roe MRN 1234' }),
        signingKeys: alice.privateKey,
      })) as string,
    );
    const clearSigned = crlf(
      (await openpgp.sign({
        message: await openpgp.createCleartextMessage({ text: 'Jane Roe MRN 1234' }),
        signingKeys: alice.privateKey,
      })) as string,
    );
    const detached = crlf(
      (await openpgp.sign({
        message: await openpgp.createMessage({ text: 'Content-Type: text/plain\r\n\r\nJane Roe\r\n' }),
        signingKeys: alice.privateKey,
        detached: true,
      })) as string,
    );
    // A PGP MESSAGE armour around a literal data packet: the look of encryption, clear text inside.
    const literalOnly = crlf(
      openpgp.armor(
        openpgp.enums.armor.message,
        (await openpgp.createMessage({ text: 'Jane Roe MRN 1234' })).write() as Uint8Array,
      ),
    );
    const mail = (s: string) => () => Promise.resolve(Buffer.from(s, 'latin1'));
    const pgpMimeLabel = (payload: string, protocol = 'application/pgp-encrypted') =>
      mail(
        HEAD +
          `Content-Type: multipart/encrypted; protocol="${protocol}"; boundary="B"\r\n\r\n` +
          '--B\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n' +
          `--B\r\nContent-Type: application/octet-stream\r\n\r\n${payload}\r\n--B--\r\n`,
      );
    const relabel = (m: string, type: string) =>
      m.replace(/Content-Type: application\/x-pkcs7-mime;[^\r]*/i, `Content-Type: ${type}`);
    cases.push(
      // positives
      ['PGP/MIME built by us', () => Promise.resolve(pgpMime), 'pgp-mime'],
      ['PGP/MIME, hand-made, encrypted payload', pgpMimeLabel(encryptedArmour), 'pgp-mime'],
      [
        'inline PGP, whole body is one encrypted block',
        mail(`${HEAD}Content-Type: text/plain; charset=us-ascii\r\n\r\n\r\n${encryptedArmour}\r\n\r\n`),
        'pgp-inline',
      ],
      ['inline PGP without Content-Type', mail(`${HEAD}\r\n${encryptedArmour}`), 'pgp-inline'],
      [
        // Blanks around the block as trim() reads them in latin1: tabs, form feeds, no-break spaces (byte A0).
        'inline PGP with tabs, form feeds and no-break spaces around it',
        () =>
          Promise.resolve(
            Buffer.concat([
              Buffer.from(`${HEAD}Content-Type: text/plain\r\n\r\n \t\f`),
              Buffer.from([0xa0]),
              Buffer.from(encryptedArmour),
              Buffer.from([0x0b, 0xa0, 0x20]),
            ]),
          ),
        'pgp-inline',
      ],
      [
        'inline PGP in base64',
        mail(
          `${HEAD}Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n` +
            Buffer.from(`\r\n${encryptedArmour}`).toString('base64').replace(/.{76}/g, '$&\r\n'),
        ),
        'pgp-inline',
      ],
      ['S/MIME enveloped (openssl, x-pkcs7-mime)', mail(smime.enveloped), 'smime'],
      [
        'S/MIME enveloped as application/pkcs7-mime',
        mail(relabel(smime.enveloped, 'application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m')),
        'smime',
      ],
      [
        'S/MIME enveloped, no smime-type (content sniffed)',
        mail(relabel(smime.enveloped, 'application/x-pkcs7-mime; name=smime.p7m')),
        'smime',
      ],
      // negatives
      ['clean text', mail(`${HEAD}Content-Type: text/plain\r\n\r\nSee you Tuesday.\r\n`), null],
      ['empty message', mail(''), null],
      [
        'PGP/MIME signed only (multipart/signed)',
        mail(
          HEAD +
            'Content-Type: multipart/signed; protocol="application/pgp-signature"; micalg=pgp-sha256; boundary="S"\r\n\r\n--S\r\nContent-Type: text/plain\r\n\r\nJane Roe\r\n--S\r\nContent-Type: application/pgp-signature\r\n\r\n' +
            detached +
            '\r\n--S--\r\n',
        ),
        null,
      ],
      ['inline PGP clear-signed', mail(`${HEAD}Content-Type: text/plain\r\n\r\n${clearSigned}`), null],
      [
        'inline PGP block with a word after it',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\n${encryptedArmour}\r\nThanks\r\n`),
        null,
      ],
      [
        'inline PGP block with a byte beyond ASCII before it (not a blank)',
        () =>
          Promise.resolve(
            Buffer.concat([
              Buffer.from(`${HEAD}Content-Type: text/plain\r\n\r\n`),
              Buffer.from([0x85]),
              Buffer.from(encryptedArmour),
            ]),
          ),
        null,
      ],
      [
        'the armour lines alone, overlapping',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\n-----BEGIN PGP MESSAGE-----END PGP MESSAGE-----`),
        null,
      ],
      [
        'a body shorter than the armour line',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\n-----BEGIN`),
        null,
      ],
      [
        'inline PGP MESSAGE that is only signed',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\n${signedOnlyArmour}`),
        null,
      ],
      [
        'inline PGP MESSAGE holding only literal (clear) data',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\n${literalOnly}`),
        null,
      ],
      [
        'a quoted sentence mentioning BEGIN PGP MESSAGE mid-text',
        mail(
          `${HEAD}Content-Type: text/plain\r\n\r\nJane, paste the block that starts "-----BEGIN PGP MESSAGE-----" into the tool.\r\nMRN 1234\r\n`,
        ),
        null,
      ],
      [
        'clear text before an encrypted block',
        mail(`${HEAD}Content-Type: text/plain\r\n\r\nJane Roe MRN 1234, details:\r\n${encryptedArmour}`),
        null,
      ],
      ['multipart/encrypted label around clear base64', pgpMimeLabel(literalOnly), null],
      [
        'an armour start with no end, then 50 000 blank lines',
        pgpMimeLabel(`-----BEGIN PGP MESSAGE-----\r\n${' \r\n'.repeat(50000)}`),
        null,
      ],
      [
        'multipart/encrypted with another protocol',
        pgpMimeLabel(encryptedArmour, 'application/x-other'),
        null,
      ],
      ['S/MIME signed only (multipart/signed)', mail(smime.signed), null],
      ['S/MIME opaque signed (signed-data)', mail(smime.opaque), null],
      [
        'signed-data labelled enveloped-data',
        mail(relabel(smime.opaque, 'application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m')),
        null,
      ],
      [
        'encrypted part nested in multipart/mixed with a clear part',
        mail(
          HEAD +
            'Content-Type: multipart/mixed; boundary="M"\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\nJane Roe MRN 1234\r\n--M\r\nContent-Type: text/plain\r\n\r\n' +
            encryptedArmour +
            '\r\n--M--\r\n',
        ),
        null,
      ],
    );
  });
  after(() => removeDir(dir));

  it('tells encrypted mail from everything else (table)', async () => {
    const positives = cases.filter((c) => c[2] !== null).length;
    expect(cases.length - positives).to.be.at.least(positives);
    for (const [name, make, expected] of cases)
      expect(detectEncrypted(await make()), name).to.equal(expected);
  });

  // A large message is read whole for detectEncrypted only when its first bytes say it may be encrypted.
  it('mayBeEncrypted: true for every encrypted message, however its first bytes are cut', async () => {
    for (const [name, make, expected] of cases) {
      if (expected === null) continue;
      const raw = await make();
      for (let cut = 1; cut <= raw.length; cut += cut < 400 ? 1 : 97)
        expect(mayBeEncrypted(raw.subarray(0, cut)), `${name} cut at ${cut}`).to.equal(true);
    }
  });

  it('mayBeEncrypted: false when the header or the start of a text body rules it out (table)', () => {
    const office = 'Hello team,\r\nthe supply order went out on Tuesday.\r\n'.repeat(2000);
    const rows: Array<[string, string, boolean]> = [
      ['plain text, 7bit', `${HEAD}Content-Type: text/plain\r\n\r\n${office}`, false],
      ['plain text, no Content-Type', `${HEAD}\r\n\r\n\r\n  ${office}`, false],
      [
        'plain text in base64',
        `${HEAD}Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(office).toString('base64')}`,
        false,
      ],
      [
        'multipart/mixed',
        `${HEAD}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--`,
        false,
      ],
      ['text/html', `${HEAD}Content-Type: text/html\r\n\r\n<p>hi</p>`, false],
      // Unsure: the header is not over, the body is too short to tell, quoted-printable is not read here.
      ['header cut short', `${HEAD}Content-Type: text/pl`, true],
      ['body too short to tell', `${HEAD}Content-Type: text/plain\r\n\r\n\r\n-----BEGIN PGP`, true],
      [
        'quoted-printable',
        `${HEAD}Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${office}`,
        true,
      ],
      [
        'an armour block first',
        `${HEAD}Content-Type: text/plain\r\n\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n`,
        true,
      ],
      ['multipart/encrypted', `${HEAD}Content-Type: multipart/encrypted; boundary=b\r\n\r\n${office}`, true],
    ];
    for (const [name, raw, expected] of rows)
      expect(mayBeEncrypted(Buffer.from(raw, 'latin1').subarray(0, 65536)), name).to.equal(expected);
  });
});
