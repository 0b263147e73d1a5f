// Runs PGP/MIME building in a worker thread (pgp-worker.ts). Fails closed: an error, a dead thread or a
// closed pool makes the build fail (the message is deferred), never pass in clear. The thread starts on
// first use and is replaced after it dies; keys are sent armored and parsed once there.
import { Worker } from 'node:worker_threads';
import type * as openpgp from 'openpgp';
import { GatewayError } from '../config/errors.js';
import type { PgpMimeInput } from './pgp-mime.js';
import type { PgpJob, PgpReply } from './pgp-worker.js';

interface Pending {
  resolve: (out: Buffer) => void;
  reject: (err: Error) => void;
}

export class PgpThread {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  /** Armored text of each key object, made once per key. */
  private readonly armored = new WeakMap<object, string>();

  private armor(key: openpgp.PublicKey | openpgp.PrivateKey): string {
    let text = this.armored.get(key);
    if (text === undefined) {
      text = key.armor();
      this.armored.set(key, text);
    }
    return text;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./pgp-worker.js', import.meta.url));
    // An idle thread never keeps the process alive; pending builds hold their own promises.
    worker.unref();
    const lost = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new GatewayError('PGP_FAILED', `PGP thread ${why}`));
      this.pending.clear();
    };
    worker.on('message', (msg: PgpReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if ('error' in msg) p.reject(new GatewayError('PGP_FAILED', `OpenPGP: ${msg.error}`));
      else p.resolve(Buffer.from(msg.out.buffer, msg.out.byteOffset, msg.out.byteLength));
    });
    worker.on('error', () => lost('failed'));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.worker = worker;
    return worker;
  }

  build(input: PgpMimeInput): Promise<Buffer> {
    if (this.closed) return Promise.reject(new GatewayError('PGP_FAILED', 'PGP thread closed'));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const raw = new Uint8Array(input.raw);
      const job: PgpJob = {
        id,
        raw,
        recipients: input.recipientKeys.map((k) => this.armor(k.key)),
        signing: this.armor(input.signingKey.privateKey),
        outerSubject: input.outerSubject,
        ...(input.innerSubject !== undefined ? { innerSubject: input.innerSubject } : {}),
        ...(input.extraHeaders !== undefined ? { extraHeaders: input.extraHeaders } : {}),
      };
      worker.postMessage(job, [raw.buffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    for (const p of this.pending.values()) p.reject(new GatewayError('PGP_FAILED', 'PGP thread closed'));
    this.pending.clear();
  }
}
