// `npm run bench:large`: memory of a real gateway process while mail with a 25 MB attachment goes through
// it: its resident set before, and its peak while the messages pass (one at a time, then several at once),
// against the size of what passed. The gateway keeps what it sends in its outbox; a run is over when the
// database says every message was processed and every envelope delivered (a binary attachment cannot be
// read as text, so by default such mail goes out as a secure pickup; with BENCH_LARGE_PATH=pgp every message
// goes to a partner whose key is in the gateway's keyring, so it leaves as PGP/MIME). Measures; asserts nothing.
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../config/load.js';
import { queueSchema } from '../config/schema.js';
import { Keyring } from '../store/pgp-keyring.js';
import { Store } from '../store/store.js';
import { removeDir, spawnGateway, tempDir } from '../test/support/gateway.js';
import { makeKey } from '../test/support/pgp.js';
import { makeMessages, type BenchMessage } from './message.js';
import { readMemory } from './proc-stats.js';
import { runLoad } from './smtp-load.js';

const ATTACHMENT = Number(process.env.BENCH_ATTACHMENT_MB ?? 25) * 1024 * 1024;
const AT_ONCE = Number(process.env.BENCH_LARGE_CONCURRENT ?? 3);
const MB = 1024 * 1024;
/** 'pickup' (default): the recipients have no key; 'pgp': one partner whose key the gateway holds. */
const PATH = process.env.BENCH_LARGE_PATH === 'pgp' ? 'pgp' : 'pickup';
const PARTNER = 'partner@lab.example';

interface SqliteDb {
  prepare(sql: string): { get(): unknown; all(): unknown[] };
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  file: string,
  opts: { readonly: boolean; fileMustExist: boolean },
) => SqliteDb;

/** A clean message (office text) with a binary attachment of `bytes`, base64 in 76-column lines. */
function largeMessage(seq: number, run: string, bytes: number): BenchMessage {
  const mailFrom = 'frontdesk@practice.example';
  const rcptTo = PATH === 'pgp' ? PARTNER : `orders${seq}@vendor.example`;
  const b64 = randomBytes(bytes).toString('base64').replace(/.{76}/g, '$&\r\n');
  const body =
    '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe supply catalogue is attached.\r\n' +
    '--b1\r\nContent-Type: application/octet-stream; name="catalogue.bin"\r\n' +
    'Content-Disposition: attachment; filename="catalogue.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${b64}\r\n--b1--\r\n`;
  const bodySha256 = createHash('sha256').update(body, 'latin1').digest('hex');
  const head = [
    `From: "Front Desk" <${mailFrom}>`,
    `To: <${rcptTo}>`,
    `Subject: Catalogue ${seq}`,
    `Message-ID: <${run}.${seq}@bench.practice.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    `X-Bench-Run: ${run}`,
    `X-Bench-Seq: ${seq}`,
    `X-Bench-Body-Sha256: ${bodySha256}`,
  ].join('\r\n');
  const message = Buffer.from(`${head}\r\n\r\n${body}`, 'latin1');
  // No line starts with a dot (base64 and our text), so no dot-stuffing is needed.
  return {
    seq,
    mailFrom,
    rcptTo,
    size: message.length,
    wire: Buffer.concat([message, Buffer.from('.\r\n')]),
    bodySha256,
  };
}

async function main(): Promise<void> {
  console.log(
    `phi-gateway large-mail memory: messages with a ${(ATTACHMENT / MB).toFixed(0)} MB attachment, ` +
      `one at a time and ${AT_ONCE} at once, ${PATH === 'pgp' ? 'to a keyed partner (PGP/MIME)' : 'as pickups'}; ` +
      `Node ${process.version}, ${os.cpus().length} CPUs`,
  );
  const dataDir = await tempDir('phigw-large-');
  if (PATH === 'pgp') {
    // The partner's key goes into the keyring before the gateway starts, as `keys import` would put it.
    const config = loadConfig({ PHIGW_DATA_DIR: dataDir });
    const store = await Store.open(config);
    const partner = await makeKey(PARTNER, { name: 'Lab Partner' });
    await new Keyring(store, config.pgp).importArmored(partner.publicArmored, 'bench');
    await store.close();
  }
  const run = `large-${process.pid}`;
  const gw = await spawnGateway({
    dataDir,
    overrides: {
      logLevel: 'info',
      queue: queueSchema.parse({}),
      redaction: { gateway: 'off' },
      pickup: { passwordDelay: 0 },
      // Room for the attachment asked for (base64 on the wire is 4/3 of it), above the 35 MB default.
      smtp: { maxMessageSize: Math.max(35 * MB, Math.ceil(ATTACHMENT * 1.5)) },
    },
  });
  const db = new Database(path.join(dataDir, 'phi-gateway.sqlite'), { readonly: true, fileMustExist: true });
  const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
  /** Every message received so far processed, and every envelope made for them delivered. */
  const settled = async (messages: number, deadline: number): Promise<boolean> => {
    while (Date.now() < deadline) {
      const done =
        count('select count(*) as n from messages') >= messages &&
        count(`select count(*) as n from messages where state in ('queued', 'processing', 'deferred')`) ===
          0 &&
        count(
          `select count(*) as n from envelopes where state not in ('delivered', 'bounced', 'cancelled', 'held')`,
        ) === 0;
      if (done) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };
  const pid = gw.child.pid!;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, readMemory(pid)?.rss ?? 0);
  }, 10);
  try {
    // Warm: small mail first, so the baseline is the running gateway, not a cold one.
    await runLoad({
      host: '127.0.0.1',
      port: gw.smtpPort,
      connections: 2,
      messages: makeMessages(200, `${run}w`, 5 * 1024),
      signal: AbortSignal.timeout(120_000),
    });
    await settled(200, Date.now() + 120_000);
    await new Promise((r) => setTimeout(r, 2000));
    const baseline = readMemory(pid)?.rss ?? 0;
    const rows: Array<[string, number, number, number]> = [];
    let sent = 0;
    let received = 200;
    for (const [label, count] of [
      ['one at a time', 1],
      [`${AT_ONCE} at once`, AT_ONCE],
    ] as const) {
      // runLoad reports by seq (0…count-1); each batch has its own run tag.
      const messages = Array.from({ length: count }, (_, i) => largeMessage(i, `${run}-${sent}`, ATTACHMENT));
      sent += count;
      const before = readMemory(pid)?.rss ?? 0;
      peak = before;
      const t0 = performance.now();
      const load = await runLoad({
        host: '127.0.0.1',
        port: gw.smtpPort,
        connections: count,
        messages,
        signal: AbortSignal.timeout(300_000),
      });
      const accepted = load.accepted.filter(Number.isFinite).length;
      for (const f of load.failures) console.log(`refused: ${f.step} ${f.reply}`);
      for (const e of load.connectionErrors) console.log(`connection: ${e}`);
      received += accepted;
      const finished = await settled(received, Date.now() + 300_000);
      const seconds = (performance.now() - t0) / 1000;
      rows.push([
        `${label} (${accepted}/${count} accepted${finished ? '' : ', NOT finished'})`,
        messages[0]!.size * count,
        peak - before,
        seconds,
      ]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`\nbaseline RSS after 200 small messages: ${(baseline / MB).toFixed(0)} MB`);
    console.log('run                         mail in flight   RSS growth at peak   growth / mail   time');
    for (const [label, bytes, growth, seconds] of rows)
      console.log(
        `${label.padEnd(27)} ${`${(bytes / MB).toFixed(0)} MB`.padStart(14)}   ${`${(growth / MB).toFixed(0)} MB`.padStart(18)}   ` +
          `${(growth / bytes).toFixed(2).padStart(13)}   ${seconds.toFixed(1)} s`,
      );
    const kinds = db
      .prepare('select kind, count(*) as n from outbox group by kind order by kind')
      .all() as Array<{ kind: string; n: number }>;
    console.log(
      `\noutbox: ${kinds.map((k) => `${k.kind} ${k.n}`).join(', ')} (200 small warm-up messages included)`,
    );
  } finally {
    clearInterval(sampler);
    db.close();
    await gw.kill('SIGTERM');
    await removeDir(dataDir);
  }
}

await main();
