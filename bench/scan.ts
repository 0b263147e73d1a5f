// Scan benchmark (part of `npm run bench`): DLP throughput on one core, and scan time per message for
// 5 KB and 1 MB messages, parse included and not. Measures and reports; it does not pass or fail.
import { simpleParser } from 'mailparser';
import { RulesSource } from '../gateway/rules.js';
import { DlpScanner } from '../gateway/scan.js';

const PARAGRAPHS = [
  'Hi team, the quarterly supply order went out on Tuesday; the invoice number is INV-20931 and the total was $4,210.55.',
  'Dr. Patel asked whether the new sterilizer can be installed before the 15th. Call the vendor at (555) 201-3344 ext. 12.',
  'Reminder: staff meeting moves to 3pm Thursday in room 4B. Parking on Elm Street is closed for repaving next week.',
  'Maria Gonzalez (DOB 04/12/1961) was seen today for hypertension follow-up; continue lisinopril 10 mg and recheck A1c 7.9%.',
  'The shared drive will be offline Saturday from 8am to noon while IT upgrades the backup system to version 2.10.3.',
];

function makeText(bytes: number): string {
  let out = '';
  for (let i = 0; out.length < bytes; i++)
    out += PARAGRAPHS[i % PARAGRAPHS.length] + (i % 3 === 2 ? '\n\n' : ' ');
  return out.slice(0, bytes);
}

function makeEml(bytes: number): Buffer {
  return Buffer.from(
    `From: staff@clinic.example\r\nTo: partner@example.org\r\nSubject: Weekly notes\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n\r\n${makeText(bytes).replace(/\n/g, '\r\n')}\r\n`,
  );
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

async function timeScans(
  scanner: DlpScanner,
  raw: Buffer,
  runs: number,
): Promise<{ parsed: number[]; scanOnly: number[] }> {
  const parsed: number[] = [];
  const scanOnly: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const mail = await simpleParser(raw);
    const t1 = performance.now();
    await scanner.scan(mail);
    const t2 = performance.now();
    parsed.push(t2 - t0);
    scanOnly.push(t2 - t1);
  }
  return { parsed: parsed.sort((a, b) => a - b), scanOnly: scanOnly.sort((a, b) => a - b) };
}

async function main(): Promise<void> {
  const rules = new RulesSource();
  const scanner = new DlpScanner(rules);
  const analyzer = rules.analyzer;
  const text = makeText(2 * 1024 * 1024);
  analyzer.analyze([{ id: 'text', text: text.slice(0, 200_000), kind: 'body' }]); // warm up
  const t = performance.now();
  analyzer.analyze([{ id: 'text', text, kind: 'body' }]);
  const mbps = text.length / 1e6 / ((performance.now() - t) / 1000);

  const small = makeEml(5 * 1024);
  const large = makeEml(1024 * 1024);
  await timeScans(scanner, small, 200);
  const s = await timeScans(scanner, small, 1000);
  const l = await timeScans(scanner, large, 20);
  console.log('\nDLP scan (one core, default rule pack)');
  console.log(
    `throughput on 2 MB of mixed office/clinical text   ${mbps.toFixed(1)} MB/s   (target ≥ 20 MB/s)`,
  );
  console.log(
    `5 KB message, scan only  p50 / p99                 ${pct(s.scanOnly, 0.5).toFixed(2)} / ${pct(s.scanOnly, 0.99).toFixed(2)} ms   (target p99 ≤ 5 ms)`,
  );
  console.log(
    `5 KB message, parse+scan p50 / p99                 ${pct(s.parsed, 0.5).toFixed(2)} / ${pct(s.parsed, 0.99).toFixed(2)} ms`,
  );
  console.log(
    `1 MB message, scan only  p50 / p99                 ${pct(l.scanOnly, 0.5).toFixed(1)} / ${pct(l.scanOnly, 0.99).toFixed(1)} ms`,
  );
  console.log(
    `1 MB message, parse+scan p50 / p99                 ${pct(l.parsed, 0.5).toFixed(1)} / ${pct(l.parsed, 0.99).toFixed(1)} ms`,
  );
}

await main();
