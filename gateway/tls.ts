// STARTTLS material: the configured PEM files, or a self-signed pair generated once into the data dir.
// Reloading never installs a pair that does not load: a bad renewal keeps the old certificate in service.
import { readFile, writeFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import path from 'node:path';
import { generate } from 'selfsigned';
import type { SmtpConfig } from '../config/schema.js';

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
}

/** Throws (with OpenSSL's reason) unless key and certificate parse and belong together. */
export function checkTls(material: TlsMaterial): void {
  createSecureContext({ key: material.key, cert: material.cert });
}

export async function loadTls(smtp: SmtpConfig, dataDir: string, hostname: string): Promise<TlsMaterial> {
  if (smtp.tlsCert || smtp.tlsKey) {
    if (!smtp.tlsCert || !smtp.tlsKey) throw new Error('smtp.tlsCert and smtp.tlsKey must be set together');
    return { cert: await readFile(smtp.tlsCert), key: await readFile(smtp.tlsKey) };
  }
  const certPath = path.join(dataDir, 'tls-cert.pem');
  const keyPath = path.join(dataDir, 'tls-key.pem');
  try {
    return { cert: await readFile(certPath), key: await readFile(keyPath) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const notAfter = new Date(Date.now() + 5 * 365 * 24 * 3600 * 1000);
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: hostname },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  await writeFile(certPath, pems.cert, { mode: 0o644 });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) };
}
