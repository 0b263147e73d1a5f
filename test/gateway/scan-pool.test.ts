// Scan threads: the same verdicts as a scan on the main thread, the rules in force on the main thread from
// the moment they change, and a thread that dies fails its scans (never passes them) and is replaced.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { parse, stringify } from 'yaml';
import { GatewayError } from '../../config/errors.js';
import { createLogger } from '../../config/log.js';
import { PARSE_OPTIONS } from '../../gateway/pipeline.js';
import { DEFAULT_RULES_FILE, RulesSource } from '../../gateway/rules.js';
import { ScanPool } from '../../gateway/scan-pool.js';
import { DlpScanner } from '../../gateway/scan.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { makeMessage } from '../support/smtp-client.js';

const log = createLogger('silent');

const MESSAGES = {
  phi: makeMessage({
    subject: 'Follow-up',
    body: 'Patient Maria Gonzalez, DOB 04/12/1961, MRN 4471023, was diagnosed with type 2 diabetes (E11.9).',
  }),
  clean: makeMessage({ subject: 'Lunch', body: 'The team lunch moves to Thursday at noon. Bring a dish.' }),
  codename: makeMessage({ subject: 'Status', body: 'Notes on Project Bluebird for the board.' }),
};

describe('scan threads (ScanPool)', function () {
  this.timeout(30000);
  let dir: string;
  let rules: RulesSource;
  let pool: ScanPool;
  let file: string;
  let pack: { deny: string[] };

  beforeEach(async () => {
    dir = await tempDir();
    file = path.join(dir, 'rules.yaml');
    pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as { deny: string[] };
    await writeFile(file, stringify(pack));
    rules = new RulesSource(file);
    pool = new ScanPool(rules, 2, log);
    await pool.start();
  });

  afterEach(async () => {
    await pool.close();
    rules.close();
    await removeDir(dir);
  });

  const scanBoth = async (text: string) => {
    const raw = Buffer.from(text);
    const parsed = await simpleParser(raw, PARSE_OPTIONS);
    return {
      thread: await pool.scan(parsed, undefined, raw),
      main: await new DlpScanner(rules, {}, 'verdict').scan(parsed),
    };
  };

  it('gives the verdict a scan on the main thread gives, PHI and clean alike', async () => {
    for (const [name, text] of Object.entries(MESSAGES)) {
      const { thread, main } = await scanBoth(text);
      expect(thread, name).to.deep.equal(main);
    }
    expect((await scanBoth(MESSAGES.phi)).thread.phi).to.equal(true);
    expect((await scanBoth(MESSAGES.clean)).thread.phi).to.equal(false);
  });

  it('scans with the new rules as soon as the main thread puts them in force', async () => {
    expect((await scanBoth(MESSAGES.codename)).thread.phi).to.equal(false);
    pack.deny = ['Project Bluebird'];
    await writeFile(file, stringify(pack));
    expect(rules.reload()).to.equal(null);
    const { thread, main } = await scanBoth(MESSAGES.codename);
    expect(main.phi).to.equal(true);
    expect(thread.phi).to.equal(true);
    // A refused edit changes nothing in the threads either.
    await writeFile(file, 'rules: [not a rule]\n');
    expect(rules.reload()).to.be.a('string');
    expect((await scanBoth(MESSAGES.codename)).thread.phi).to.equal(true);
  });

  it('fails the scans of a thread that dies, then works again with a new thread', async () => {
    const raw = Buffer.from(MESSAGES.phi.repeat(1));
    const parsed = await simpleParser(raw, PARSE_OPTIONS);
    const threads = (pool as unknown as { threads: Array<{ worker?: { terminate(): Promise<number> } }> })
      .threads;
    // Settled as they end (a caller awaits its scan at once): no rejection is left unhandled while threads stop.
    const inflight = Promise.allSettled([
      pool.scan(parsed, undefined, raw),
      pool.scan(parsed, undefined, raw),
    ]);
    for (const t of threads) await t.worker?.terminate();
    const settled = await inflight;
    for (const s of settled) {
      // Either it finished before the thread died, or it failed: never a clean pass of a PHI message.
      if (s.status === 'fulfilled') expect(s.value.phi).to.equal(true);
      else expect((s.reason as GatewayError).code).to.equal('STAGE_FAILED');
    }
    const end = Date.now() + 10000;
    let verdict;
    while (Date.now() < end && !verdict) {
      verdict = await pool.scan(parsed, undefined, raw).catch(() => undefined);
      if (!verdict) await new Promise((r) => setTimeout(r, 100));
    }
    expect(verdict?.phi).to.equal(true);
  });

  /** A message as the spool streams it: in chunks of `size` bytes, each handed over when asked for. */
  async function* chunksOf(raw: Buffer, size: number, between?: (i: number) => Promise<void>) {
    for (let at = 0, i = 0; at < raw.length; at += size, i++) {
      if (between) await between(i);
      yield raw.subarray(at, at + size);
    }
  }

  it('streamed in small chunks, gives the verdict a scan of the whole message gives', async () => {
    for (const [name, text] of Object.entries(MESSAGES)) {
      const raw = Buffer.from(text);
      const { main } = await scanBoth(text);
      const streamed = await pool.scanStream(chunksOf(raw, 7));
      expect(streamed.verdict, name).to.deep.equal(main);
    }
  });

  it('fails a streamed scan whose source fails part way (a spool that fails its tag), and scans on', async () => {
    const raw = Buffer.from(MESSAGES.phi);
    const broken = chunksOf(raw, 16, (i) =>
      i === 3 ? Promise.reject(new GatewayError('SPOOL_CORRUPT', 'tag check failed')) : Promise.resolve(),
    );
    const err = await pool.scanStream(broken).catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('SPOOL_CORRUPT');
    expect((await pool.scanStream(chunksOf(raw, 16))).verdict.phi).to.equal(true);
  });

  it('fails a streamed scan whose thread dies part way, never passes it', async () => {
    const raw = Buffer.from(MESSAGES.phi);
    const threads = (pool as unknown as { threads: Array<{ worker?: { terminate(): Promise<number> } }> })
      .threads;
    const dying = chunksOf(raw, 16, async (i) => {
      if (i === 2) for (const t of threads) await t.worker?.terminate();
    });
    const err = await pool.scanStream(dying).catch((e: unknown) => e);
    expect(err, 'a streamed scan must not pass when its thread died').to.be.instanceOf(Error);
    expect((err as GatewayError).code).to.equal('STAGE_FAILED');
  });

  it('refuses to scan without the raw message rather than pass it', async () => {
    const parsed = await simpleParser(Buffer.from(MESSAGES.phi), PARSE_OPTIONS);
    const err = await pool.scan(parsed).catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('STAGE_FAILED');
  });
});
