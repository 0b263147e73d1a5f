// Scan benchmark (part of `npm run bench`): DLP throughput on one core, scan time per message for 5 KB and 1 MB
// messages, the recognizer groups' own speed, and hostile inputs. Measures, reports and flags what misses its budget;
// it does not fail (timed budgets live here, not in the tests: shared cores make timed tests flaky).
import { simpleParser } from 'mailparser';
import { analyzePart, compileRecognizers } from '../dlp/engine.js';
import { builtinRecognizers } from '../dlp/recognizers/index.js';
import { healthRecognizers } from '../dlp/recognizers/health.js';
import { identifierRecognizers } from '../dlp/recognizers/identifiers.js';
import { labelledRecognizers } from '../dlp/recognizers/labelled.js';
import { nameRecognizers } from '../dlp/recognizers/names.js';
import { PARSE_OPTIONS } from '../gateway/pipeline.js';
import { RulesSource } from '../gateway/rules.js';
import { DlpScanner } from '../gateway/scan.js';
import { makeMail, makeMailCorpus } from './dlp-mail.js';
import { makeMessage } from './message.js';

const PARAGRAPHS = [
  'Hi team, the quarterly supply order went out on Tuesday; the invoice number is INV-20931 and the total was $4,210.55.',
  'Dr. Patel asked whether the new sterilizer can be installed before the 15th. Call the vendor at (555) 201-3344 ext. 12.',
  'Reminder: staff meeting moves to 3pm Thursday in room 4B. Parking on Elm Street is closed for repaving next week.',
  'Maria Gonzalez (DOB 04/12/1961) was seen today for hypertension follow-up; continue lisinopril 10 mg and recheck A1c 7.9%.',
  'The shared drive will be offline Saturday from 8am to noon while IT upgrades the backup system to version 2.10.3.',
];

/**
 * The same paragraphs as Word and Outlook write them: a typographic apostrophe, quotes and a dash. One such character
 * makes the whole part a two-byte string, which every search reads more slowly than ASCII.
 */
const TYPOGRAPHIC = PARAGRAPHS.map((p) =>
  p
    .replace('the quarterly', 'the practice’s quarterly')
    .replace('4B. Parking', '4B – parking')
    .replace('follow-up', '“follow-up”'),
);

/** The paragraphs in turn; `variant` starts the turn elsewhere, so each variant is a text of its own, alike in mix. */
function makeText(bytes: number, variant = 0, paragraphs = PARAGRAPHS): string {
  let out = '';
  for (let i = variant; out.length < bytes; i++)
    out += paragraphs[i % paragraphs.length] + (i % 3 === 2 ? '\n\n' : ' ');
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
    const mail = await simpleParser(raw, PARSE_OPTIONS);
    const t1 = performance.now();
    await scanner.scan(mail);
    const t2 = performance.now();
    parsed.push(t2 - t0);
    scanOnly.push(t2 - t1);
  }
  return { parsed: parsed.sort((a, b) => a - b), scanOnly: scanOnly.sort((a, b) => a - b) };
}

/** Milliseconds of this process's CPU for f, best of `runs` (waiting for a core shared with other work is not ours). */
function bestCpuMs(f: () => unknown, runs: number): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = process.cpuUsage();
    f();
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best;
}

function verdict(ok: boolean): string {
  return ok ? 'ok' : 'OVER BUDGET';
}

/** The recognizer groups on a megabyte of generated practice mail in message-sized parts (budget 60 ms each). */
function groupSpeeds(): void {
  const groups: Array<[string, string, number, ReturnType<typeof compileRecognizers>]> = [
    [
      'names + health',
      makeMailCorpus(1_000_000),
      3000,
      compileRecognizers([...nameRecognizers, ...healthRecognizers]),
    ],
    [
      'identifiers + labelled',
      makeMail(1_000_000),
      5000,
      compileRecognizers([...identifierRecognizers, ...labelledRecognizers]),
    ],
  ];
  for (const [name, text, size, compiled] of groups) {
    const parts: string[] = [];
    for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
    const run = () => {
      for (const p of parts) analyzePart(compiled, { id: 'text', text: p, kind: 'body' }, ['Sophia Johnson']);
    };
    run();
    const ms = bestCpuMs(run, 7);
    console.log(
      `1 MB in ${String(size / 1000).padEnd(1)} KB parts, ${name.padEnd(24)} ${ms.toFixed(1).padStart(6)} ms CPU   (budget 60 ms) ${verdict(ms <= 60)}`,
    );
  }
}

/** Inputs built to make patterns backtrack: each megabyte must finish in well under a second (budget 1000 ms). */
function hostileInputs(): void {
  const compiled = compileRecognizers(builtinRecognizers());
  const cases: Array<[string, string]> = [
    ['one long number', '1'.repeat(1_000_000)],
    ['one long word', 'a'.repeat(1_000_000)],
    ['one huge capitalised word', 'Abc'.repeat(350_000)],
    ["'A' repeated", 'A'.repeat(1_000_000)],
    ["'Aa ' repeated", 'Aa '.repeat(333_333)],
    ["'Dr. ' repeated", 'Dr. '.repeat(250_000)],
    ["'Mr. X' repeated", 'Mr. X '.repeat(160_000)],
    ['apostrophes and hyphens', "a'-".repeat(333_333)],
    ["'1-' repeated", '1-'.repeat(500_000)],
    ["'a@' repeated", 'a@'.repeat(500_000)],
    ['an MRN label and a long number', 'MRN ' + '1'.repeat(1_000_000)],
    ['almost street addresses', '1 Main '.repeat(142_857)],
    ['almost international addresses', '1 Via Aa '.repeat(111_111)],
    ['street words and numbers', 'ul. 1 Rua 2 strasse 3 '.repeat(45_454)],
    ['units without streets', 'Suite 1 '.repeat(125_000)],
    ['address words and short numbers', 'address Aa 1 '.repeat(76_923)],
    ['labels without dates', 'DOB '.repeat(250_000)],
    ['link prefixes', 'http://'.repeat(142_857)],
    ['plus signs', '+1 '.repeat(333_333)],
    ['labels without codes', 'CPT code '.repeat(110_000)],
    ['plural-looking words', 'crownss '.repeat(125_000)],
    ['weak health words', 'pain crown cleaning '.repeat(50_000)],
    ['a megabyte of names', 'Sophia Johnson, '.repeat(62_500)],
    ['line breaks only', '\r\n'.repeat(500_000)],
  ];
  let worst = 0;
  let worstName = '';
  const slow: string[] = [];
  for (const [name, text] of cases) {
    const started = performance.now();
    analyzePart(compiled, { id: 'text', text, kind: 'body' }, ['Sophia Johnson']);
    const ms = performance.now() - started;
    if (ms > worst) {
      worst = ms;
      worstName = name;
    }
    if (ms > 1000) slow.push(`${name} ${ms.toFixed(0)} ms`);
  }
  console.log(
    `hostile inputs, 1 MB each (${cases.length}), all recognizers: slowest ${worst.toFixed(0)} ms (${worstName})   (budget 1000 ms) ${verdict(slow.length === 0)}`,
  );
  for (const s of slow) console.log(`  over budget: ${s}`);
}

async function main(): Promise<void> {
  const rules = new RulesSource();
  const scanner = new DlpScanner(rules);
  const analyzer = rules.analyzer;
  // A text of its own for every run: the engine keeps the last part's tokens and such, and a run over the very text
  // of the run before would find them made already, which no message in a gateway does.
  const texts = Array.from({ length: 15 }, (_, v) => makeText(2 * 1024 * 1024, v));
  let next = 0;
  const scanNext = () =>
    analyzer.analyze([{ id: 'text', text: texts[next++ % texts.length]!, kind: 'body' }]);
  const bytes = texts[0]!.length;
  analyzer.analyze([{ id: 'text', text: makeText(200_000, 1), kind: 'body' }]);
  // The first full run, cold: what a gateway that just started pays once.
  const t = performance.now();
  scanNext();
  const mbps = bytes / 1e6 / ((performance.now() - t) / 1000);
  // Then the steady state, as a running gateway scans: more runs let V8 finish optimising (its compiler
  // threads count in the process's CPU time), then the best CPU time of 10 runs, the figure that does not
  // depend on what else the machine is doing. Twelve: the CPU time per run, printed run by run, was still
  // falling past the fourth (740, 370, 287, 147, 142, 151, 131, … 110 ms) and settled by about the twelfth.
  for (let i = 0; i < 12; i++) scanNext();
  const cpuMbps = bytes / 1e6 / (bestCpuMs(scanNext, 10) / 1000);
  const typographic = Array.from({ length: 15 }, (_, v) => makeText(2 * 1024 * 1024, v, TYPOGRAPHIC));
  const scanTypographic = () =>
    analyzer.analyze([{ id: 'text', text: typographic[next++ % typographic.length]!, kind: 'body' }]);
  for (let i = 0; i < 4; i++) scanTypographic();
  const typographicMbps = typographic[0]!.length / 1e6 / (bestCpuMs(scanTypographic, 10) / 1000);
  // The office mail that bench:peers sends (clean text, few findings), 1 MB of bodies at a time, each run its own.
  const office = Array.from({ length: 12 }, (_, v) =>
    Array.from({ length: 10 }, (_, k) => makeMessage(v * 10 + k, 'scan', 100_000))
      .map((m) => m.wire.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n'))
      .join('\r\n\r\n'),
  );
  let nextOffice = 0;
  const scanOffice = () =>
    analyzer.analyze([{ id: 'text', text: office[nextOffice++ % office.length]!, kind: 'body' }]);
  for (let i = 0; i < 2; i++) scanOffice();
  const officeMbps = office[0]!.length / 1e6 / (bestCpuMs(scanOffice, 10) / 1000);
  // The same as the pipeline scans it: recognizers in phases, stopping once no rule can fire (a clean verdict).
  const scanOfficeVerdict = () =>
    analyzer.analyze([{ id: 'text', text: office[nextOffice++ % office.length]!, kind: 'body' }], {
      findings: 'verdict',
    });
  for (let i = 0; i < 2; i++) scanOfficeVerdict();
  const officeVerdictMbps = office[0]!.length / 1e6 / (bestCpuMs(scanOfficeVerdict, 10) / 1000);

  const small = makeEml(5 * 1024);
  const large = makeEml(1024 * 1024);
  await timeScans(scanner, small, 200);
  const s = await timeScans(scanner, small, 1000);
  const l = await timeScans(scanner, large, 20);
  console.log('\nDLP scan (one core, default rule pack)');
  console.log(
    `throughput on 2 MB of mixed office/clinical text   ${mbps.toFixed(1)} MB/s cold; warm, best of 10 by CPU time ${cpuMbps.toFixed(1)} MB/s   (target ≥ 20 MB/s) ${verdict(cpuMbps >= 20)}`,
  );
  console.log(
    `  the same text as Word writes it (’ “ ” –)       warm, best of 10 by CPU time ${typographicMbps.toFixed(1)} MB/s   (${(typographicMbps / cpuMbps).toFixed(2)}×)`,
  );
  console.log(
    `throughput on 1 MB of office mail (bench:peers)   warm, best of 10 by CPU time ${officeMbps.toFixed(1)} MB/s`,
  );
  console.log(
    `  the same, as the pipeline scans (stops once no rule can fire)   ${officeVerdictMbps.toFixed(1)} MB/s   (${(officeVerdictMbps / officeMbps).toFixed(2)}×)`,
  );
  console.log(
    `5 KB message, scan only  p50 / p99                 ${pct(s.scanOnly, 0.5).toFixed(2)} / ${pct(s.scanOnly, 0.99).toFixed(2)} ms   (target p99 ≤ 5 ms) ${verdict(pct(s.scanOnly, 0.99) <= 5)}`,
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
groupSpeeds();
hostileInputs();
