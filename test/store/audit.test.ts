// The audit log is hash-chained so that tampering with the database is found. Each row of the table below
// is one way an attacker with write access to the SQLite file could try to rewrite history.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import { appendAudit, verifyAudit, type AuditEvent, type AuditRow } from '../../store/audit.js';
import { Store } from '../../store/store.js';

const T0 = Date.UTC(2024, 0, 1);

function makeEvent(i: number): AuditEvent {
  return {
    type: 'message.accepted',
    messageId: `msg${i}`,
    actor: i % 2 ? 'smtp' : null,
    detail: { rcpts: i, code: 'OK' },
  };
}

/** The chain hash as an attacker who read the source would compute it, to forge a "consistent" row. */
function forgeHash(
  prev: string,
  row: Pick<AuditRow, 'at' | 'type' | 'message_id' | 'actor' | 'detail'>,
): string {
  return createHash('sha256')
    .update(JSON.stringify([prev, Number(row.at), row.type, row.message_id, row.actor, row.detail]))
    .digest('hex');
}

async function rowAt(db: Knex, seq: number): Promise<AuditRow> {
  return (await db('audit_events').where({ seq }).first()) as AuditRow;
}

describe('store/audit', () => {
  let dataDir: string;
  let store: Store;

  async function appendEvents(count: number): Promise<void> {
    for (let i = 1; i <= count; i++) await store.write((trx) => appendAudit(trx, makeEvent(i), T0 + i));
  }

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'phigw-audit-'));
    store = await Store.open({ dataDir, databaseUrl: undefined }, {});
  });

  afterEach(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('verifies an empty log', async () => {
    expect(await verifyAudit(store.db)).to.deep.equal({ ok: true, events: 0 });
  });

  it('keeps one chain when two nodes append at the same time', async () => {
    // PostgreSQL: a second Store on the same database is a second node, each with its own connections, so
    // without the advisory lock both would read the same head and fork the chain. SQLite has one node.
    const other =
      store.engine === 'postgres' ? await Store.open({ dataDir, databaseUrl: undefined }, {}) : store;
    try {
      await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          (i % 2 ? other : store).write(async (trx) => {
            await appendAudit(trx, makeEvent(i), T0 + i);
            // Hold the transaction a moment so the other node's appends overlap with it.
            await new Promise((r) => setTimeout(r, i % 3));
            await appendAudit(trx, makeEvent(i + 100), T0 + i);
          }),
        ),
      );
    } finally {
      if (other !== store) await other.close();
    }
    expect(await verifyAudit(store.db)).to.deep.equal({ ok: true, events: 120 });
  });

  it('verifies an untouched chain', async () => {
    await appendEvents(5);
    expect(await verifyAudit(store.db)).to.deep.equal({ ok: true, events: 5 });
  });

  it('chains each row to the one before it, starting from the genesis hash', async () => {
    await appendEvents(3);
    const rows = (await store.db('audit_events').orderBy('seq')) as AuditRow[];
    expect(rows[0]!.prev_hash).to.equal('0'.repeat(64));
    expect(rows[1]!.prev_hash).to.equal(rows[0]!.hash);
    expect(rows[2]!.prev_hash).to.equal(rows[1]!.hash);
    expect(new Set(rows.map((r) => r.hash)).size).to.equal(3);
  });

  it('keeps one unbroken chain when many writers append concurrently (group commit)', async () => {
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => store.write((trx) => appendAudit(trx, makeEvent(i)))),
    );
    expect(await verifyAudit(store.db)).to.deep.equal({ ok: true, events: 60 });
  });

  it('stores the detail as given, so it can be read back', async () => {
    await store.write((trx) =>
      appendAudit(
        trx,
        { type: 'user.login', actor: 'admin@example.org', detail: { ok: true, ids: ['a', 'b'] } },
        T0,
      ),
    );
    const row = await rowAt(store.db, 1);
    expect(row).to.include({ type: 'user.login', actor: 'admin@example.org', message_id: null });
    expect(JSON.parse(row.detail)).to.deep.equal({ ok: true, ids: ['a', 'b'] });
    expect(Number(row.at)).to.equal(T0);
  });

  const tamperings: {
    name: string;
    tamper: (db: Knex) => Promise<unknown>;
    brokenAt: number;
    events: number;
  }[] = [
    {
      name: "editing a middle row's detail",
      tamper: (db) =>
        db('audit_events')
          .where({ seq: 3 })
          .update({ detail: JSON.stringify({ rcpts: 0, code: 'OK' }) }),
      brokenAt: 3,
      events: 2,
    },
    {
      name: "editing the first row's type",
      tamper: (db) => db('audit_events').where({ seq: 1 }).update({ type: 'message.deleted' }),
      brokenAt: 1,
      events: 0,
    },
    {
      name: "editing a row's actor",
      tamper: (db) => db('audit_events').where({ seq: 2 }).update({ actor: 'someone-else' }),
      brokenAt: 2,
      events: 1,
    },
    {
      name: "editing a row's message id",
      tamper: (db) => db('audit_events').where({ seq: 4 }).update({ message_id: 'msgX' }),
      brokenAt: 4,
      events: 3,
    },
    {
      name: "editing a row's time",
      tamper: (db) => db('audit_events').where({ seq: 5 }).update({ at: T0 }),
      brokenAt: 5,
      events: 4,
    },
    {
      name: 'deleting a middle row',
      tamper: (db) => db('audit_events').where({ seq: 3 }).delete(),
      brokenAt: 4,
      events: 2,
    },
    {
      name: 'deleting the first row',
      tamper: (db) => db('audit_events').where({ seq: 1 }).delete(),
      brokenAt: 2,
      events: 0,
    },
    {
      name: "changing a row's hash",
      tamper: (db) =>
        db('audit_events')
          .where({ seq: 3 })
          .update({ hash: 'f'.repeat(64) }),
      brokenAt: 3,
      events: 2,
    },
    {
      name: "changing a row's prev_hash",
      tamper: (db) =>
        db('audit_events')
          .where({ seq: 2 })
          .update({ prev_hash: '0'.repeat(64) }),
      brokenAt: 2,
      events: 1,
    },
    {
      name: 'editing a row and recomputing its own hash (the next row still points at the old one)',
      tamper: async (db) => {
        const row = await rowAt(db, 3);
        const detail = JSON.stringify({ rcpts: 0, code: 'OK' });
        await db('audit_events')
          .where({ seq: 3 })
          .update({ detail, hash: forgeHash(row.prev_hash, { ...row, detail }) });
      },
      brokenAt: 4,
      events: 3,
    },
    {
      name: 'appending a row that does not chain to the last one',
      tamper: async (db) => {
        const row = {
          at: T0 + 99,
          type: 'message.accepted',
          message_id: 'forged',
          actor: null,
          detail: '{}',
        };
        await db('audit_events').insert({
          ...row,
          prev_hash: '0'.repeat(64),
          hash: forgeHash('0'.repeat(64), row),
        });
      },
      brokenAt: 6,
      events: 5,
    },
  ];
  for (const t of tamperings) {
    it(`detects ${t.name}`, async () => {
      await appendEvents(5);
      await t.tamper(store.db);
      const result = await verifyAudit(store.db);
      expect(result.ok).to.equal(false);
      expect(result.brokenAt).to.equal(t.brokenAt);
      expect(result.events).to.equal(t.events);
      expect(result.problem).to.be.a('string');
    });
  }
});
