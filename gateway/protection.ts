// Builds the gateway's Protection from the real parts: the recipient keyring, the organisation's signing
// key, the PGP/MIME builder and the pickup store (with escrow for password re-issue). Keys are loaded
// lazily, once, on first use.
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { createPickups } from '../store/pickups.js';
import { escrowRecipientsFor } from '../store/user-keys.js';
import type { Store } from '../store/store.js';
import { loadOrgKey, type OrgKey } from '../store/org-key.js';
import { Keyring } from '../store/pgp-keyring.js';
import { detectEncrypted } from './pgp-mime.js';
import { PgpThread } from './pgp-thread.js';
import type { Protection } from './protect.js';
import { GatewayError } from '../config/errors.js';
import { redactable, type ImageRedactor } from './image-redaction.js';

export function createProtection(
  store: Store,
  config: ResolvedConfig,
  log: Logger,
  hostname: string,
  images?: ImageRedactor,
  // OpenPGP runs in its own thread: a PGP message costs milliseconds of CPU that intake must not wait for.
  pgp: PgpThread = new PgpThread(),
): Protection {
  const keyring = new Keyring(store, config.pgp);
  let orgKey: Promise<OrgKey> | undefined;
  const signingKey = (): Promise<OrgKey> => {
    if (!orgKey) {
      orgKey = loadOrgKey(store, { practiceName: config.practiceName, hostname });
      // A failed load (e.g. a disk error) is retried by the next message, not cached.
      orgKey.catch(() => {
        orgKey = undefined;
      });
    }
    return orgKey;
  };
  const keysFor = async (rcpts: string[]) => {
    const keys = [];
    for (const rcpt of rcpts) {
      const key = await keyring.keyFor(rcpt);
      // The key was valid when routing chose PGP; if it is gone now, defer rather than guess.
      if (!key) throw new GatewayError('STAGE_FAILED', 'recipient key no longer valid');
      keys.push(key);
    }
    return keys;
  };
  return {
    detectEncrypted: (raw) => detectEncrypted(raw),
    hasKey: async (address) => (await keyring.keyFor(address)) !== null,
    async encrypt({ raw, rcpts, outerSubject, extraHeaders }) {
      const keys = await keysFor(rcpts);
      const out = await pgp.build({
        raw,
        recipientKeys: keys,
        signingKey: await signingKey(),
        outerSubject,
        extraHeaders,
      });
      log.debug({ evt: 'PGP_ENCRYPTED', rcpts: rcpts.length }, 'encrypted');
      return out;
    },
    async encryptStream({ source, rcpts, outerSubject, extraHeaders }, signal) {
      const keys = await keysFor(rcpts);
      const out = pgp.buildStream(
        { source, recipientKeys: keys, signingKey: await signingKey(), outerSubject, extraHeaders },
        signal,
      );
      out.once('end', () =>
        log.debug({ evt: 'PGP_ENCRYPTED', rcpts: rcpts.length, streamed: true }, 'encrypted'),
      );
      return out;
    },
    // The data key is also sealed to the sender's and the admins' keys, so they can re-issue the password.
    createPickups: async (input) =>
      createPickups(store, {
        ...input,
        escrow: await escrowRecipientsFor(store.db, { messageId: input.messageId, sender: input.sender }),
      }),
    ...(images
      ? { redact: (content, signal) => images.redact(content, signal), redactable: (a) => redactable(a) }
      : {}),
    close: () => pgp.close(),
  };
}
