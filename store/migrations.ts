// Database schema, as knex migrations kept in code (no files to find at run time). Append only:
// never edit a migration that has shipped; add a new one.
import type { Knex } from 'knex';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const migrations: Record<string, Migration> = {
  '0001_core': {
    async up(knex) {
      await knex.schema.createTable('messages', (t) => {
        t.string('id', 32).primary();
        // queued → processing → routed (envelopes made) | deferred (retry) | held (quarantine)
        t.string('state', 16).notNullable();
        t.bigInteger('created_at').notNullable();
        t.bigInteger('updated_at').notNullable();
        t.bigInteger('next_attempt_at').notNullable();
        t.bigInteger('lease_until');
        t.integer('attempts').notNullable().defaultTo(0);
        t.integer('size').notNullable();
        t.string('mail_from', 512).notNullable();
        t.text('rcpt_to').notNullable(); // JSON array of envelope recipients
        t.string('client_ip', 64);
        t.string('client_helo', 255);
        t.string('auth_user', 255);
        t.boolean('tls').notNullable().defaultTo(false);
        t.text('trace').notNullable(); // the Received header added at intake
        t.string('reason', 64); // error code when deferred or held
        t.text('verdict'); // JSON: scan result (type names and scores only)
        t.boolean('spool_removed').notNullable().defaultTo(false);
        t.index(['state', 'next_attempt_at']);
      });
      await knex.schema.createTable('envelopes', (t) => {
        t.increments('id');
        t.string('message_id', 32).references('messages.id');
        t.string('group_key', 64).notNullable(); // envelopes sharing content and sender go out in one transaction
        t.string('kind', 24).notNullable(); // relay | bounce (X-PHI-Gateway-Kind for generated mail)
        t.string('mail_from', 512).notNullable();
        t.string('rcpt', 512).notNullable();
        t.string('content', 8).notNullable(); // spool (original + prefix) | blob
        t.string('blob_id', 32);
        t.text('prefix').notNullable().defaultTo(''); // trace headers prepended to the original
        // queued → sending → delivered | deferred → … | bounced | held
        t.string('state', 16).notNullable();
        t.integer('attempts').notNullable().defaultTo(0);
        t.bigInteger('created_at').notNullable();
        t.bigInteger('updated_at').notNullable();
        t.bigInteger('next_attempt_at').notNullable();
        t.bigInteger('lease_until');
        t.integer('last_code');
        t.text('last_response');
        t.bigInteger('delivered_at');
        t.index(['state', 'next_attempt_at']);
        t.index(['message_id']);
        t.index(['group_key']);
      });
      await knex.schema.createTable('delivery_attempts', (t) => {
        t.increments('id');
        t.integer('envelope_id').notNullable().references('envelopes.id');
        t.bigInteger('at').notNullable();
        t.integer('duration_ms').notNullable();
        t.string('outcome', 16).notNullable(); // delivered | deferred | bounced
        t.integer('code');
        t.text('response');
        t.index(['envelope_id']);
      });
      await knex.schema.createTable('audit_events', (t) => {
        t.increments('seq');
        t.bigInteger('at').notNullable();
        t.string('type', 48).notNullable();
        t.string('message_id', 32);
        t.string('actor', 255);
        t.text('detail').notNullable(); // JSON of codes and ids, never content
        t.string('prev_hash', 64).notNullable();
        t.string('hash', 64).notNullable();
        t.index(['message_id']);
      });
      await knex.schema.createTable('users', (t) => {
        t.increments('id');
        t.string('email', 320).notNullable().unique();
        t.string('role', 16).notNullable();
        t.text('password_hash').notNullable();
        t.bigInteger('created_at').notNullable();
        t.boolean('disabled').notNullable().defaultTo(false);
      });
      await knex.schema.createTable('outbox', (t) => {
        t.string('id', 32).primary();
        t.bigInteger('created_at').notNullable();
        t.string('kind', 24).notNullable();
        t.string('mail_from', 512).notNullable();
        t.text('rcpt_to').notNullable(); // JSON array
        t.integer('size').notNullable();
        t.index(['created_at']);
      });
    },
    async down(knex) {
      for (const table of ['outbox', 'users', 'audit_events', 'delivery_attempts', 'envelopes', 'messages']) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  '0004_protection': {
    async up(knex) {
      await knex.schema.alterTable('envelopes', (t) => {
        // A pickup password waits for its notice: released `after_delay` ms after envelope `after_id` is delivered.
        t.integer('after_id');
        t.integer('after_delay');
        // Why a recipient's copy is held for an admin (PGP_KEY_REQUIRED, PICKUP_NOT_ALLOWED …).
        t.string('hold_reason', 64);
        t.index(['after_id']);
      });
    },
    async down(knex) {
      await knex.schema.alterTable('envelopes', (t) => {
        t.dropIndex(['after_id']);
        t.dropColumn('after_id');
        t.dropColumn('after_delay');
        t.dropColumn('hold_reason');
      });
    },
  },
  '0005_web_auth': {
    async up(knex) {
      await knex.schema.alterTable('users', (t) => {
        t.text('totp_secret'); // encrypted with the master key (Store.encryptValue), never in clear
        t.bigInteger('totp_enrolled_at');
        t.bigInteger('totp_last_step'); // a code is accepted once (no replay within its window)
        t.integer('failed_logins').notNullable().defaultTo(0);
        t.bigInteger('locked_until');
        t.bigInteger('password_changed_at');
      });
      await knex.schema.createTable('web_sessions', (t) => {
        t.string('id_hash', 64).primary(); // SHA-256 of the cookie value; the value itself is never stored
        t.integer('user_id').notNullable().references('users.id');
        t.string('stage', 16).notNullable(); // totp | enrol | active
        t.string('csrf', 64).notNullable();
        t.text('pending_secret'); // TOTP seed being enrolled, encrypted
        t.bigInteger('created_at').notNullable();
        t.bigInteger('last_seen_at').notNullable();
        t.string('ip', 64);
        t.index(['user_id']);
      });
      await knex.schema.createTable('rate_limits', (t) => {
        t.string('key', 128).primary(); // e.g. login-ip:203.0.113.9
        t.bigInteger('window_start').notNullable();
        t.integer('count').notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('rate_limits');
      await knex.schema.dropTableIfExists('web_sessions');
      await knex.schema.alterTable('users', (t) => {
        for (const c of [
          'totp_secret',
          'totp_enrolled_at',
          'totp_last_step',
          'failed_logins',
          'locked_until',
          'password_changed_at',
        ])
          t.dropColumn(c);
      });
    },
  },
  '0002_pgp_keys': {
    async up(knex) {
      // The recipient keyring: public keys only (a secret key given on import is cut to its public part).
      await knex.schema.createTable('pgp_keys', (t) => {
        t.string('fingerprint', 64).primary(); // uppercase hex, no spaces
        t.text('armored').notNullable(); // ASCII-armoured public key (merged with every re-import)
        t.text('emails').notNullable(); // JSON array, lowercased
        t.text('user_ids').notNullable(); // JSON array of the user ID strings
        t.bigInteger('created_at').notNullable(); // the key's creation time
        t.bigInteger('expires_at'); // null: does not expire
        t.boolean('revoked').notNullable().defaultTo(false);
        t.boolean('can_encrypt').notNullable().defaultTo(false);
        t.string('source', 255).notNullable(); // import:<file name> | wkd:<domain> | api
        t.bigInteger('imported_at').notNullable(); // last import or update; parsed-key caches key on it
      });
      // Lookup by recipient address on the hot path, without scanning the JSON column.
      await knex.schema.createTable('pgp_key_emails', (t) => {
        t.string('email', 320).notNullable();
        t.string('fingerprint', 64).notNullable().references('pgp_keys.fingerprint').onDelete('CASCADE');
        t.primary(['email', 'fingerprint']);
      });
      // The organisation's own key pair: which sealed blob holds it. One row; the insert decides a race.
      await knex.schema.createTable('org_keys', (t) => {
        t.string('name', 32).primary(); // 'pgp'
        t.string('fingerprint', 64).notNullable();
        t.string('blob_id', 96).notNullable();
        t.bigInteger('created_at').notNullable();
      });
    },
    async down(knex) {
      for (const table of ['org_keys', 'pgp_key_emails', 'pgp_keys']) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  // Secure pickup (store/pickups.ts): sealed contents, one pickup per recipient, brute-force counters,
  // recipient sessions, secure replies and the notices the gateway side sends to senders.
  '0003_pickups': {
    async up(knex) {
      await knex.schema.createTable('pickup_contents', (t) => {
        t.string('id', 32).primary(); // file name under data/pickups/
        t.string('message_id', 32).notNullable();
        t.bigInteger('created_at').notNullable();
        t.bigInteger('size').notNullable(); // sealed plaintext bytes
        t.bigInteger('purged_at'); // file deleted (no live pickup needs it)
        t.index(['message_id']);
        t.index(['purged_at']);
      });
      await knex.schema.createTable('pickups', (t) => {
        t.string('id', 32).primary();
        t.string('content_id', 32).notNullable().references('pickup_contents.id');
        t.string('message_id', 32).notNullable();
        t.string('sender', 512).notNullable();
        t.string('rcpt', 512).notNullable();
        t.string('token_hash', 64).notNullable().unique(); // SHA-256 of the link token; the token is never stored
        t.string('reference', 16).notNullable(); // short code for phone support, not secret
        // salt(16) iv(12) wrapped data key(32) tag(16), base64; NULL once revoked or expired (crypto-shredding)
        t.text('wrapped_key');
        t.string('status', 16).notNullable(); // active | revoked | expired
        t.bigInteger('created_at').notNullable();
        t.bigInteger('expires_at').notNullable();
        t.bigInteger('fetched_at');
        t.bigInteger('opened_at');
        t.bigInteger('downloaded_at');
        t.bigInteger('ended_at'); // revoked or expired at
        t.string('ended_by', 255);
        t.integer('failures').notNullable().defaultTo(0); // wrong passwords since the last success or unlock
        t.bigInteger('locked_until');
        t.boolean('hard_locked').notNullable().defaultTo(false);
        t.index(['message_id']);
        t.index(['content_id']);
        t.index(['status', 'expires_at']);
        t.index(['sender']);
        t.index(['reference']);
      });
      await knex.schema.createTable('pickup_ip_limits', (t) => {
        t.string('ip', 64).primary();
        t.integer('failures').notNullable().defaultTo(0);
        t.bigInteger('window_started_at').notNullable();
        t.bigInteger('locked_until');
      });
      await knex.schema.createTable('pickup_sessions', (t) => {
        t.string('id', 64).primary(); // SHA-256 of the session id in the cookie
        t.string('pickup_id', 32).notNullable().references('pickups.id');
        t.text('sealed_key').notNullable(); // the pickup's data key under the key held only in the cookie
        t.bigInteger('created_at').notNullable();
        t.bigInteger('last_seen_at').notNullable();
        t.index(['pickup_id']);
      });
      await knex.schema.createTable('pickup_replies', (t) => {
        t.string('id', 32).primary(); // sealed (master key) as blobs/reply-<id>
        t.string('pickup_id', 32).notNullable().references('pickups.id');
        t.string('message_id', 32).notNullable();
        t.string('sender', 512).notNullable(); // the original sender, who receives the reply
        t.string('rcpt', 512).notNullable(); // the pickup recipient, who wrote it
        t.string('delivery', 16).notNullable(); // sealed | direct
        t.integer('size').notNullable();
        t.integer('attachments').notNullable();
        t.bigInteger('created_at').notNullable();
        t.bigInteger('read_at');
        t.index(['sender']);
        t.index(['pickup_id']);
      });
      await knex.schema.createTable('pickup_notices', (t) => {
        t.increments('id');
        t.string('kind', 16).notNullable(); // opened | reply
        t.string('pickup_id', 32).notNullable();
        t.string('reply_id', 32);
        t.string('message_id', 32).notNullable();
        t.string('sender', 512).notNullable();
        t.string('rcpt', 512).notNullable();
        t.string('reference', 16).notNullable();
        t.bigInteger('created_at').notNullable();
        t.bigInteger('sent_at'); // NULL: the gateway side still has to send it
        t.index(['sent_at']);
      });
    },
    async down(knex) {
      for (const table of [
        'pickup_notices',
        'pickup_replies',
        'pickup_sessions',
        'pickup_ip_limits',
        'pickups',
        'pickup_contents',
      ]) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  '0007_quarantine': {
    async up(knex) {
      await knex.schema.alterTable('messages', (t) => {
        // An admin's decision on a held message, carried out by the gateway: protect | clear | delete.
        t.string('release', 8);
        t.string('released_by', 320);
      });
    },
    async down(knex) {
      await knex.schema.alterTable('messages', (t) => {
        t.dropColumn('release');
        t.dropColumn('released_by');
      });
    },
  },
  '0006_rule_versions': {
    async up(knex) {
      // Every published DLP rule set, append-only; the highest id is in force (web/rules-service.ts).
      await knex.schema.createTable('rule_versions', (t) => {
        t.increments('id');
        t.text('yaml').notNullable();
        t.string('author', 512).notNullable(); // an admin's email, or 'system' for the first import
        t.text('reason').notNullable();
        t.string('kind', 16).notNullable(); // import | publish | rollback
        t.integer('parent_id'); // the version in force when this one was published
        t.integer('rollback_of'); // for kind rollback: the version copied
        t.bigInteger('created_at').notNullable();
      });
      // One working draft per admin: tested in the live tester, never in force.
      await knex.schema.createTable('rule_drafts', (t) => {
        t.string('author', 512).primary();
        t.text('yaml').notNullable();
        t.text('reason').notNullable();
        t.integer('base_version');
        t.bigInteger('updated_at').notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('rule_drafts');
      await knex.schema.dropTableIfExists('rule_versions');
    },
  },
  '0008_passkeys': {
    async up(knex) {
      // WebAuthn credentials of staff and admins: public keys only (the private key never leaves the device).
      await knex.schema.createTable('passkeys', (t) => {
        t.increments('id');
        t.integer('user_id').notNullable().references('users.id');
        t.string('credential_id', 1024).notNullable().unique(); // base64url, as the authenticator gave it
        t.text('public_key').notNullable(); // COSE public key, base64url
        t.bigInteger('counter').notNullable().defaultTo(0); // signature counter: a clone shows as a step back
        t.text('transports').notNullable(); // JSON array, e.g. ["internal","hybrid"]
        t.string('name', 100).notNullable(); // the user's own label ("Work laptop")
        t.bigInteger('created_at').notNullable();
        t.bigInteger('last_used_at');
        t.index(['user_id']);
      });
      // A challenge lives between the options call and the answer: in the database, so any node can finish it.
      await knex.schema.createTable('webauthn_challenges', (t) => {
        t.string('id_hash', 64).primary(); // SHA-256 of the cookie or session it belongs to
        t.string('purpose', 16).notNullable(); // register | login
        t.integer('user_id'); // for register: who is adding a passkey
        t.string('challenge', 128).notNullable();
        t.bigInteger('expires_at').notNullable();
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('webauthn_challenges');
      await knex.schema.dropTableIfExists('passkeys');
    },
  },
  '0008_lease_owner': {
    async up(knex) {
      // Which node holds a lease (scale-out on PostgreSQL): a restarted node resumes its own in-flight work at
      // once and leaves other nodes' leases to expire.
      for (const table of ['messages', 'envelopes']) {
        await knex.schema.alterTable(table, (t) => {
          t.string('lease_owner', 64);
        });
      }
    },
    async down(knex) {
      for (const table of ['messages', 'envelopes']) {
        await knex.schema.alterTable(table, (t) => {
          t.dropColumn('lease_owner');
        });
      }
    },
  },
  '0009_sealed_inline': {
    async up(knex) {
      // Small sealed objects (a spooled message of a few KB) live in the database, committed with their row:
      // one WAL fsync for both, and no file to create, sync, rename and unlink. Same sealed format as a file.
      await knex.schema.createTable('sealed_inline', (t) => {
        t.string('area', 16).notNullable(); // spool
        t.string('id', 64).notNullable();
        t.binary('data').notNullable();
        t.primary(['area', 'id']);
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('sealed_inline');
    },
  },
  '0009_ui_settings': {
    async up(knex) {
      // Settings an admin changed in the web UI (store/settings.ts): one row, overrides of the config file as
      // JSON, the logo (base64, already re-encoded), and a version every node compares to refresh its cache.
      await knex.schema.createTable('ui_settings', (t) => {
        t.integer('id').primary(); // always 1
        t.integer('version').notNullable().defaultTo(0);
        t.text('data').notNullable(); // JSON: {practiceName?, pickupExpiryDays?, passwordDelivery?, internalDomains?}
        t.text('logo'); // base64 PNG or JPEG, at most 200 KB
        t.string('logo_type', 32);
        t.bigInteger('updated_at');
        t.string('updated_by', 255);
      });
      await knex('ui_settings').insert({ id: 1, version: 0, data: '{}' });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('ui_settings');
    },
  },
  '0009_pickup_escrow': {
    async up(knex) {
      // Password re-issue for pickups (store/user-keys.ts): each staff/admin account's X25519 key pair, the
      // private key wrapped by scrypt of the account's own password (then sealed under the master key).
      await knex.schema.createTable('user_keys', (t) => {
        t.integer('user_id').primary().references('users.id');
        t.string('key_id', 32).notNullable(); // first 128 bits of SHA-256 of the public key
        t.string('public_key', 64).notNullable(); // raw X25519 public key, base64
        t.text('wrapped_private').notNullable(); // never in clear; opens only with the user's password
        t.bigInteger('created_at').notNullable();
        t.bigInteger('updated_at').notNullable();
      });
      // A pickup's data key sealed to the sender's and the admins' public keys (ECIES); deleted with the
      // pickup's wrapped key when it is revoked or expires.
      await knex.schema.createTable('pickup_escrow', (t) => {
        t.string('pickup_id', 32).notNullable().references('pickups.id');
        t.integer('user_id').notNullable();
        t.string('key_id', 32).notNullable();
        t.text('wrapped').notNullable();
        t.bigInteger('created_at').notNullable();
        t.primary(['pickup_id', 'user_id']);
        t.index(['user_id']);
      });
    },
    async down(knex) {
      await knex.schema.dropTableIfExists('pickup_escrow');
      await knex.schema.dropTableIfExists('user_keys');
    },
  },
  '0010_envelope_blob_index': {
    async up(knex) {
      // Delivery asks, after each envelope of generated content (PGP messages, pickup notices, passwords),
      // whether another still needs that blob: without an index that scanned every envelope ever sent, on
      // the event loop (9.6 ms per delivery at 100,000 envelopes).
      await knex.schema.alterTable('envelopes', (t) => {
        t.index(['blob_id']);
      });
    },
    async down(knex) {
      await knex.schema.alterTable('envelopes', (t) => {
        t.dropIndex(['blob_id']);
      });
    },
  },
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve(Object.keys(migrations).sort()),
  getMigrationName: (name) => name,
  getMigration: (name) => Promise.resolve(migrations[name]!),
};
