// PGP benchmark (run by hand: `node dist/bench/pgp.js`): messages/s for buildPgpMime on one core, for a 5 KB
// message and one with a 1 MB attachment, plus the keyring lookup on the hot path. Measures; asserts nothing.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as openpgp from 'openpgp';
import { loadConfig } from '../config/load.js';
import { loadOrgKey } from '../store/org-key.js';
import { Keyring } from '../store/pgp-keyring.js';
import { buildPgpMime } from '../gateway/pgp-mime.js';
import { Store } from '../store/store.js';
import { removeDir, tempDir } from '../test/support/gateway.js';

function makeMessage(textBytes: number, attachment?: Buffer): Buffer {
  const line = 'Maria Gonzalez (DOB 04/12/1961) was seen today for hypertension follow-up; recheck A1c.\r\n';
  const text = line.repeat(Math.ceil(textBytes / line.length)).slice(0, textBytes);
  const head =
    'From: staff@clinic.example\r\nTo: partner@partner.example\r\nSubject: Follow-up\r\n' +
    'Date: Mon, 1 Jun 2026 10:00:00 +0000\r\nMessage-ID: <bench@clinic.example>\r\nMIME-Version: 1.0\r\n';
  if (!attachment) return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${text}\r\n`);
  const b64 = (attachment.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n${text}\r\n` +
      `--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n` +
      `Content-Disposition: attachment; filename="scan.pdf"\r\n\r\n${b64}\r\n--B--\r\n`,
  );
}

/** `inFlight` calls at a time on this one event loop, as the gateway's workers run them. */
async function rate(label: string, seconds: number, fn: () => Promise<unknown>, inFlight = 1): Promise<void> {
  for (let i = 0; i < 3; i++) await fn(); // warm up
  const times: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() - start < seconds * 1000) {
        const t0 = performance.now();
        await fn();
        times.push(performance.now() - t0);
      }
    }),
  );
  const total = (performance.now() - start) / 1000;
  times.sort((a, b) => a - b);
  const p = (q: number) =>
    (times[Math.min(times.length - 1, Math.floor(times.length * q))] ?? NaN).toFixed(2);
  console.log(
    `${label.padEnd(44)} ${(times.length / total).toFixed(1).padStart(9)} msg/s   p50 ${p(0.5)} ms   p99 ${p(0.99)} ms   (${times.length} runs)`,
  );
}

async function main(): Promise<void> {
  const dir = await tempDir('phigw-bench-pgp-');
  const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: dir, PHIGW_CONFIG: '' }));
  try {
    const org = await loadOrgKey(store, { practiceName: 'Bench Practice', hostname: 'gw.clinic.example' });
    const keyring = new Keyring(store, { wkdDomains: [], wkdTimeout: 5000, wkdCacheTtl: 86_400_000 });
    const { publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [{ email: 'partner@partner.example' }],
    });
    await keyring.importArmored(publicKey, 'api');
    const key = await keyring.keyFor('partner@partner.example');
    if (!key) throw new Error('no key');
    const small = makeMessage(5 * 1024);
    const large = makeMessage(2 * 1024, randomBytes(1024 * 1024));
    console.log(`PGP path, one core (Node ${process.version}, openpgp ${openpgp.config.versionString})`);
    await rate('keyFor (hit, parsed-key cache)', 2, () => keyring.keyFor('partner@partner.example'));
    await rate('keyFor (no key for the address)', 2, () => keyring.keyFor('nobody@partner.example'));
    const input = {
      recipientKeys: [key],
      signingKey: org,
      outerSubject: 'Secure message from Bench Practice',
    };
    const smallLabel = `buildPgpMime ${(small.length / 1024).toFixed(1)} KB`;
    const largeLabel = `buildPgpMime ${(large.length / 1024 / 1024).toFixed(2)} MB (1 MB attachment)`;
    // OpenPGP.js does X25519 and Ed25519 through WebCrypto (libuv's thread pool), so calls overlap.
    await rate(`${smallLabel}, 1 at a time`, 4, () => buildPgpMime({ raw: small, ...input }));
    await rate(`${smallLabel}, 4 in flight`, 4, () => buildPgpMime({ raw: small, ...input }), 4);
    await rate(`${largeLabel}, 1 at a time`, 6, () => buildPgpMime({ raw: large, ...input }));
    await rate(`${largeLabel}, 4 in flight`, 6, () => buildPgpMime({ raw: large, ...input }), 4);
  } finally {
    await store.close();
    await removeDir(dir);
  }
}

await main();
