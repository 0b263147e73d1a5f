// Evaluation, not part of the test suites: a MIME corpus (such as ../shared/corpus/external/mimekit-testdata)
// through the full pipeline of a real gateway process; each message delivered, protected or held with a
// reason, no crash, bounded memory and time. Run: npm run eval:mime -- PATH (or MIME_CORPUS=PATH).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { badInputHarness } from './bad-input-harness.js';

const CORPUS = process.env.MIME_CORPUS ?? '';

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

describe('eval: a MIME corpus through the full pipeline (real process)', function () {
  this.timeout(400000);
  const h = badInputHarness();

  it('each message of the corpus delivered, protected or held with a reason', async () => {
    expect(
      CORPUS !== '' && existsSync(CORPUS),
      `MIME corpus not found at "${CORPUS}": npm run eval:mime -- PATH`,
    ).to.equal(true);
    const inputs = corpusMessages(CORPUS);
    expect(inputs.length, 'corpus messages').to.be.greaterThan(0);
    const { refused } = await h.run('corpus', inputs);
    expect(refused, 'well-formed SMTP transfers refused').to.deep.equal([]);
  });
});
