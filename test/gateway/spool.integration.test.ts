// The spool's promises: a local failure answers 451 (never 250), torn or tampered sealed content (a file, or
// the database copy of a small message) is found and held instead of delivered, and an unacknowledged file left by a crash is discarded.
import { readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { SHARED_LEFTOVER_AGE_MS } from '../../store/store.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { makeMessage, sendMessage } from '../support/smtp-client.js';

function send(port: number, body = makeMessage()): Promise<string> {
  return sendMessage(port, 'staff@clinic.example', 'p@partner.example', body);
}

describe('spool (integration)', function () {
  this.timeout(30000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;
  let dir: string;

  beforeEach(async () => {
    capture = new CaptureServer();
    await capture.start();
    dir = await tempDir();
  });

  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await capture.stop();
    await removeDir(dir);
  });

  /** With the next hop down, `body` is spooled and its delivery deferred; then the gateway is stopped. */
  async function spoolDeferred(body: string): Promise<{ id: string; port: number }> {
    const port = capture.port;
    await capture.stop();
    gw = await startGateway({
      relayUrl: `smtp://127.0.0.1:${port}`,
      dataDir: dir,
      overrides: { queue: { retryInitialDelay: 60000 } },
    });
    const id = /queued as ([0-9A-Z]+)/.exec(await send(gw.smtpPort, body))![1]!;
    const end = Date.now() + 10000;
    while (Date.now() < end && !(await gw.store.db('envelopes').where({ state: 'deferred' }).first()))
      await new Promise((r) => setTimeout(r, 50));
    await gw.stop();
    return { id, port };
  }

  /** The next hop back on `port`, the gateway restarted: the damaged message is held, never delivered. */
  async function expectHeldCorrupt(port: number): Promise<void> {
    capture = new CaptureServer();
    await capture.start(port);
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    await gw.store.db('envelopes').update({ next_attempt_at: 0 }); // due now
    const held = async () =>
      (await gw!.store.db('envelopes').where({ state: 'held' }).first()) as
        { last_response: string } | undefined;
    const end = Date.now() + 10000;
    while (Date.now() < end && !(await held())) await new Promise((r) => setTimeout(r, 50));
    expect((await held())?.last_response).to.equal('SPOOL_CORRUPT');
    expect(capture.count).to.equal(0);
  }

  // Above INLINE_MAX a message is sealed to a file in spool/; below it, into the database with its row.
  const large = () => makeMessage({ body: `${'0123456789abcdef '.repeat(64)}\r\n`.repeat(300) });

  it('answers 451 when a large message cannot be written to the spool, and keeps serving', async () => {
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    const spool = path.join(dir, 'spool');
    await rm(spool, { recursive: true });
    await writeFile(spool, 'not a directory'); // every write into the spool now fails, as on a broken disk
    expect(await send(gw.smtpPort, large())).to.match(/^451 4\.3\.0/);
    const [row] = (await gw.store.db('messages').count({ n: '*' })) as Array<{ n: number }>;
    expect(Number(row!.n)).to.equal(0);
    await rm(spool);
    await import('node:fs/promises').then((fs) => fs.mkdir(spool, { mode: 0o700 }));
    expect(await send(gw.smtpPort, large())).to.match(/^250/);
    await capture.waitFor(1);
  });

  it('answers 451 when a small message cannot be stored with its row, leaving neither behind', async () => {
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    // The sealed content and the row commit together: without the content table the row must not commit.
    await gw.store.db.schema.renameTable('sealed_inline', 'sealed_inline_away');
    expect(await send(gw.smtpPort)).to.match(/^451 4\.3\.0/);
    const [row] = (await gw.store.db('messages').count({ n: '*' })) as Array<{ n: number }>;
    expect(Number(row!.n)).to.equal(0);
    expect(await readdir(path.join(dir, 'spool'))).to.deep.equal([]);
    await gw.store.db.schema.renameTable('sealed_inline_away', 'sealed_inline');
    expect(await send(gw.smtpPort)).to.match(/^250/);
    await capture.waitFor(1);
  });

  it('holds a small message whose sealed copy in the database was edited, and never delivers it', async () => {
    const { id, port } = await spoolDeferred(makeMessage());
    gw = await startGateway({ relayUrl: `smtp://127.0.0.1:${port}`, dataDir: dir });
    const [stored] = (await gw.store
      .db('sealed_inline')
      .where({ area: 'spool', id })
      .select('data')) as Array<{
      data: Buffer;
    }>;
    const edited = Buffer.from(stored!.data);
    edited[edited.length - 40]! ^= 1;
    await gw.store.db('sealed_inline').where({ area: 'spool', id }).update({ data: edited });
    await gw.stop();
    await expectHeldCorrupt(port);
  });

  it('holds a large message whose spool file was torn or edited, and never delivers it', async () => {
    // Next hop down so the message waits in the spool; then damage the file while the gateway is stopped.
    const { id, port } = await spoolDeferred(large());
    await truncate(path.join(dir, 'spool', id), 100);
    // A crash mid-write also leaves a temp file, and a sealed file whose row never committed.
    await writeFile(path.join(dir, 'spool', 'TORN.tmp'), 'partial');
    await writeFile(path.join(dir, 'spool', 'UNACKNOWLEDGED'), 'never answered 250');
    if (gw!.store.sharedDataDir) {
      // PostgreSQL: the data dir may be shared by nodes, so only leftovers older than any intake are removed.
      const old = new Date(Date.now() - SHARED_LEFTOVER_AGE_MS - 60_000);
      for (const name of ['TORN.tmp', 'UNACKNOWLEDGED'])
        await utimes(path.join(dir, 'spool', name), old, old);
    }
    await expectHeldCorrupt(port);
    const left = await readdir(path.join(dir, 'spool'));
    expect(left).to.deep.equal([id]);
  });
});
