// Queue claims with several nodes: two stores on one PostgreSQL database (two nodes) claim the same due
// messages and envelopes at once; each row goes to exactly one of them. On SQLite there is one node by design.
import { expect } from 'chai';
import type { ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { configSchema } from '../../config/schema.js';
import { Delivery } from '../../gateway/delivery.js';
import type { Transport } from '../../gateway/transport.js';
import { MessageWorkers } from '../../gateway/workers.js';
import { Store } from '../../store/store.js';
import { removeDir, startGateway, tempDir } from '../support/gateway.js';

const COUNT = 300;

describe('gateway claims with two nodes on one database', function () {
  this.timeout(60_000);
  let dir: string;
  let stores: Store[];

  beforeEach(async () => {
    dir = await tempDir('phigw-claims-');
    const first = await Store.open({ dataDir: dir, databaseUrl: undefined, nodeId: 'node-a' }, {});
    stores = [
      first,
      first.engine === 'postgres'
        ? await Store.open({ dataDir: dir, databaseUrl: undefined, nodeId: 'node-b' }, {})
        : first,
    ];
  });

  afterEach(async () => {
    for (const store of new Set(stores)) await store.close();
    await removeDir(dir);
  });

  const config = { ...configSchema.parse({ dataDir: '/unused' }), publicUrl: 'http://127.0.0.1' };
  const log = createLogger('silent');

  /** Claims in a loop on every node at once until nothing is due; returns the ids each node got. */
  async function drain(claimers: Array<(n: number) => Promise<string[]>>): Promise<string[][]> {
    return Promise.all(
      claimers.map(async (claim) => {
        const got: string[] = [];
        for (let empty = 0; empty < 3;) {
          const ids = await claim(7);
          if (ids.length === 0) empty++;
          got.push(...ids);
        }
        return got;
      }),
    );
  }

  it('gives each due message to exactly one node, leased under its node id', async () => {
    const now = Date.now();
    await stores[0]!.write((trx) =>
      trx('messages').insert(
        Array.from({ length: COUNT }, (_, i) => ({
          id: `M${String(i).padStart(5, '0')}`,
          state: 'queued',
          created_at: now,
          updated_at: now,
          next_attempt_at: now - 1000,
          size: 1,
          mail_from: 'a@clinic.example',
          rcpt_to: '["b@partner.example"]',
          trace: '',
        })),
      ),
    );
    const workers = stores.map(
      (s) => new MessageWorkers(s, config as ResolvedConfig, log, [], () => undefined),
    );
    const got = await drain(workers.map((w) => async (n) => (await w.claim(n)).map((r) => r.id)));
    const all = got.flat();
    expect(all.length, 'claims in total').to.equal(COUNT);
    expect(new Set(all).size, 'distinct').to.equal(COUNT);
    const owners = (await stores[0]!.db('messages').select('id', 'lease_owner', 'state')) as Array<{
      id: string;
      lease_owner: string;
      state: string;
    }>;
    expect(owners.every((o) => o.state === 'processing')).to.equal(true);
    const byOwner = new Map(owners.map((o) => [o.id, o.lease_owner]));
    got.forEach((ids, i) => {
      for (const id of ids) expect(byOwner.get(id)).to.equal(stores[i]!.nodeId);
    });
  });

  it("resumes only the starting node's own leases on PostgreSQL (all of them on SQLite: one node)", async () => {
    const now = Date.now();
    const farLease = now + 24 * 3600_000;
    const row = (id: string, owner: string) => ({
      id,
      state: 'processing',
      lease_until: farLease,
      lease_owner: owner,
      created_at: now,
      updated_at: now,
      next_attempt_at: now,
      size: 1,
      mail_from: 'a@clinic.example',
      rcpt_to: '["b@partner.example"]',
      trace: '',
    });
    await stores[0]!.write((trx) =>
      trx('messages').insert([row('OTHER1', 'node-a'), row('OTHER2', 'node-a'), row('MINE1', 'node-b')]),
    );
    // node-b comes back after a crash: same database and data directory, its own node id.
    const b = await startGateway({ dataDir: dir, overrides: { nodeId: 'node-b' } });
    try {
      const leases = new Map(
        (
          (await b.store.db('messages').select('id', 'lease_until', 'lease_owner')) as Array<{
            id: string;
            lease_until: number | null;
            lease_owner: string | null;
          }>
        ).map((r) => [r.id, r]),
      );
      // Its own in-flight message was resumed at once (and possibly taken up again, with a new lease).
      expect(leases.get('MINE1')!.lease_until).to.not.equal(farLease);
      for (const id of ['OTHER1', 'OTHER2']) {
        if (b.store.engine === 'postgres') {
          // Another node's work is left to that node, or to lease expiry.
          expect(leases.get(id), id).to.deep.include({ lease_until: farLease, lease_owner: 'node-a' });
        } else expect(leases.get(id)!.lease_until, id).to.not.equal(farLease);
      }
    } finally {
      await b.stop();
    }
  });

  it("returns a lost node's work to the queue once its lease has expired, for any node to take", async () => {
    const now = Date.now();
    await stores[0]!.write((trx) =>
      trx('messages').insert({
        id: 'LOST1',
        state: 'processing',
        lease_until: now - 1,
        lease_owner: 'node-gone',
        created_at: now,
        updated_at: now,
        next_attempt_at: now,
        size: 1,
        mail_from: 'a@clinic.example',
        rcpt_to: '["b@partner.example"]',
        trace: '',
      }),
    );
    const survivor = new MessageWorkers(stores[1]!, config as ResolvedConfig, log, [], () => undefined);
    expect(await survivor.reclaimExpired()).to.equal(1);
    expect((await survivor.claim(5)).map((r) => r.id)).to.deep.equal(['LOST1']);
    expect(await stores[0]!.db('messages').where({ id: 'LOST1' }).first('lease_owner')).to.deep.equal({
      lease_owner: stores[1]!.nodeId,
    });
  });

  it('gives each due envelope to exactly one node', async () => {
    const now = Date.now();
    await stores[0]!.write((trx) =>
      trx('envelopes').insert(
        Array.from({ length: COUNT }, (_, i) => ({
          message_id: null,
          group_key: `g${i % 100}`,
          kind: 'relay',
          mail_from: 'a@clinic.example',
          rcpt: `r${i}@partner.example`,
          content: 'blob',
          blob_id: 'none',
          state: 'queued',
          created_at: now,
          updated_at: now,
          next_attempt_at: now - 1000,
        })),
      ),
    );
    const transport = { name: 'none' } as unknown as Transport;
    const deliveries = stores.map(
      (s) => new Delivery(s, config as ResolvedConfig, log, transport, () => undefined),
    );
    const got = await drain(
      deliveries.map((d) => async (n) => (await d.claim(n)).flat().map((e) => String(e.id))),
    );
    const all = got.flat();
    expect(all.length, 'claims in total').to.equal(COUNT);
    expect(new Set(all).size, 'distinct').to.equal(COUNT);
  });
});
