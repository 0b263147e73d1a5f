// A PGP thread: builds PGP/MIME messages (encrypt to the recipients' keys, sign with the organisation's)
// off the main thread, so SMTP intake and delivery never wait behind OpenPGP. Keys arrive armored and are
// parsed once. It answers with the message or an error code; it never logs, stores or sends anything.
import { parentPort } from 'node:worker_threads';
import * as openpgp from 'openpgp';
import { errorCode } from '../config/errors.js';
import { buildPgpMime } from './pgp-mime.js';

export interface PgpJob {
  id: number;
  raw: Uint8Array;
  /** Armored public keys, one per recipient. */
  recipients: string[];
  /** The organisation's signing key, armored and already decrypted (it never leaves this process). */
  signing: string;
  outerSubject: string;
  innerSubject?: string;
  extraHeaders?: string;
}

export type PgpReply = { id: number; out: Uint8Array } | { id: number; error: string };

const port = parentPort!;
/** Parsed keys by their armored text; bounded (keys are few, but re-imports make new texts). */
const publicKeys = new Map<string, Promise<openpgp.PublicKey>>();
const privateKeys = new Map<string, Promise<openpgp.PrivateKey>>();

function cached<T>(map: Map<string, Promise<T>>, text: string, parse: (t: string) => Promise<T>): Promise<T> {
  let hit = map.get(text);
  if (!hit) {
    if (map.size >= 512) map.delete(map.keys().next().value!);
    hit = parse(text);
    hit.catch(() => map.delete(text));
    map.set(text, hit);
  }
  return hit;
}

port.on('message', (job: PgpJob) => {
  void (async () => {
    try {
      const recipientKeys = await Promise.all(
        job.recipients.map(async (armoredKey) => ({
          key: await cached(publicKeys, armoredKey, (t) => openpgp.readKey({ armoredKey: t })),
        })),
      );
      const privateKey = await cached(privateKeys, job.signing, (t) =>
        openpgp.readPrivateKey({ armoredKey: t }),
      );
      const out = await buildPgpMime({
        raw: Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength),
        recipientKeys,
        signingKey: { privateKey },
        outerSubject: job.outerSubject,
        ...(job.innerSubject !== undefined ? { innerSubject: job.innerSubject } : {}),
        ...(job.extraHeaders !== undefined ? { extraHeaders: job.extraHeaders } : {}),
      });
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      const own = bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      port.postMessage({ id: job.id, out: own } satisfies PgpReply, [own.buffer as ArrayBuffer]);
    } catch (err) {
      // A code only: library messages may quote the input they choked on.
      port.postMessage({ id: job.id, error: errorCode(err) } satisfies PgpReply);
    }
  })();
});
