// TOTP against the RFC 6238 / RFC 4226 test vectors, and the replay and drift rules.
import { expect } from 'chai';
import { base32Decode, base32Encode, hotp, otpauthUri, totp, totpStep, verifyTotp } from '../../web/totp.js';

const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');

describe('web/totp', () => {
  it('matches the RFC 4226 HOTP vectors', () => {
    const want = [
      '755224',
      '287082',
      '359152',
      '969429',
      '338314',
      '254676',
      '287922',
      '162583',
      '399871',
      '520489',
    ];
    want.forEach((code, counter) => expect(hotp(RFC_SECRET, counter)).to.equal(code));
  });

  it('matches the RFC 6238 SHA-1 vectors (last 6 digits)', () => {
    const rows: Array<[number, string]> = [
      [59, '287082'],
      [1111111109, '081804'],
      [1111111111, '050471'],
      [1234567890, '005924'],
      [2000000000, '279037'],
    ];
    for (const [seconds, code] of rows) expect(totp(RFC_SECRET, seconds * 1000)).to.equal(code);
  });

  it('round-trips base32', () => {
    for (const len of [0, 1, 5, 10, 20]) {
      const buf = Buffer.from(Array.from({ length: len }, (_, i) => (i * 37) & 255));
      expect(base32Decode(base32Encode(buf)).equals(buf)).to.equal(true);
    }
    expect(base32Encode(Buffer.from('foobar'))).to.equal('MZXW6YTBOI');
    expect(() => base32Decode('not base32!')).to.throw();
  });

  it('accepts the current code and one step of drift, refuses others and replays', () => {
    const now = 1_700_000_000_000;
    const step = totpStep(now);
    expect(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now), null, now)).to.equal(step);
    expect(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now - 30_000), null, now)).to.equal(step - 1);
    expect(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now + 30_000), null, now)).to.equal(step + 1);
    expect(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now - 90_000), null, now)).to.equal(null);
    expect(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now), step, now), 'replay').to.equal(null);
    expect(verifyTotp(RFC_SECRET, '12345', null, now)).to.equal(null);
    expect(verifyTotp(RFC_SECRET, 'abcdef', null, now)).to.equal(null);
    expect(verifyTotp(Buffer.from('another secret 1234'), totp(RFC_SECRET, now), null, now)).to.equal(null);
  });

  it('builds the otpauth URI authenticator apps read', () => {
    const uri = otpauthUri(RFC_SECRET, 'ann@clinic.example', 'Maple Dental');
    expect(uri).to.equal(
      'otpauth://totp/Maple%20Dental%3Aann%40clinic.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Maple%20Dental&algorithm=SHA1&digits=6&period=30',
    );
  });
});
