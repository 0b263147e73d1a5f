// Evaluates PHI detection on labelled data (not a test): `npm run eval:dlp -- PATH [PATH…]`.
// - a folder of .eml files with manifest.json ([{file, label: phi|clean, kind}]): message-level recall and
//   false-positive rate, misses and false positives listed by kind with the rules and types involved;
// - Presidio's synthetic PII set (a folder holding synth_dataset_v2.json, or the file): span-level recall
//   per entity type for the types the gateway maps.
// Prints figures only; it never prints message text.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { PARSE_OPTIONS } from '../gateway/pipeline.js';
import { RulesSource } from '../gateway/rules.js';
import { DlpScanner } from '../gateway/scan.js';

interface ManifestEntry {
  file: string;
  label: 'phi' | 'clean';
  kind?: string;
}

async function evalEmails(dir: string, rules: RulesSource): Promise<void> {
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as ManifestEntry[];
  const scanner = new DlpScanner(rules);
  let tp = 0;
  let fn = 0;
  let fp = 0;
  let tn = 0;
  const misses: string[] = [];
  const falsePositives: string[] = [];
  const times: number[] = [];
  for (const entry of manifest) {
    const raw = readFileSync(path.join(dir, entry.file));
    const started = performance.now();
    const verdict = await scanner.scan(await simpleParser(raw, PARSE_OPTIONS));
    times.push(performance.now() - started);
    const kind = entry.kind ?? '-';
    if (entry.label === 'phi') {
      if (verdict.phi) tp++;
      else {
        fn++;
        const types = [...new Set(verdict.findings.map((f) => f.type))].sort().join(',') || 'nothing';
        misses.push(`  ${entry.file} (${kind}): found ${types}`);
      }
    } else if (verdict.phi) {
      fp++;
      falsePositives.push(
        `  ${entry.file} (${kind}): ${verdict.explanation
          .filter((e) => !e.monitorOnly)
          .map((e) => `${e.rule}[${e.findingTypes.join(',')}]`)
          .join('; ')}`,
      );
    } else tn++;
  }
  times.sort((a, b) => a - b);
  console.log(`\n== ${dir}: ${manifest.length} messages (${tp + fn} PHI, ${fp + tn} clean)`);
  console.log(
    `message recall        ${(tp / Math.max(1, tp + fn)).toFixed(3)}  (${tp}/${tp + fn})   target ≥ 0.99`,
  );
  console.log(
    `false-positive rate   ${(fp / Math.max(1, fp + tn)).toFixed(3)}  (${fp}/${fp + tn})   target ≤ 0.05`,
  );
  console.log(
    `scan time per message p50 ${times[Math.floor(times.length / 2)]?.toFixed(2)} ms, p99 ${times[Math.floor(times.length * 0.99)]?.toFixed(2)} ms (parse not included)`,
  );
  if (misses.length) console.log(`missed PHI:\n${misses.join('\n')}`);
  if (falsePositives.length) console.log(`false positives:\n${falsePositives.join('\n')}`);
}

interface SynthSample {
  full_text: string;
  template_id?: number;
  spans: Array<{ entity_type: string; start_position: number; end_position: number }>;
}

/** Presidio entity types → the finding types that count as catching them. */
const SYNTH_MAP: Record<string, string[]> = {
  PERSON: ['PERSON'],
  STREET_ADDRESS: ['STREET_ADDRESS'],
  PHONE_NUMBER: ['PHONE_NUMBER', 'FAX_NUMBER'],
  EMAIL_ADDRESS: ['EMAIL_ADDRESS'],
  US_SSN: ['US_SSN'],
  CREDIT_CARD: ['CREDIT_CARD'],
  IP_ADDRESS: ['IP_ADDRESS'],
  ZIP_CODE: ['ZIP_CODE', 'STREET_ADDRESS'],
  US_DRIVER_LICENSE: ['LICENSE_NUMBER'],
};
const TARGETS: Record<string, number> = {
  PERSON: 0.9,
  PHONE_NUMBER: 0.9,
  EMAIL_ADDRESS: 0.9,
  US_SSN: 0.9,
  STREET_ADDRESS: 0.9,
};

function evalSynth(file: string, rules: RulesSource): void {
  const samples = JSON.parse(readFileSync(file, 'utf8')) as SynthSample[];
  const stats = new Map<string, { total: number; hit: number; counted: number }>();
  // Halves, to show the rules are not fitted to the set: by sample index, and by template (a template's samples share
  // their wording, so the template split is the stricter one). Rules are tuned on the even halves only.
  const halves = new Map<string, Map<string, { total: number; hit: number; counted: number }>>();
  const halfNames = [
    'even samples (dev)',
    'odd samples (held out)',
    'even templates (dev)',
    'odd templates (held out)',
  ];
  for (const name of halfNames) halves.set(name, new Map());
  let extra = 0;
  let chars = 0;
  const started = performance.now();
  for (const [index, s] of samples.entries()) {
    chars += s.full_text.length;
    const inHalves = [halfNames[index % 2]!, halfNames[2 + (Math.abs(s.template_id ?? index) % 2)]!].map(
      (name) => halves.get(name)!,
    );
    const findings = rules.analyzer.findings({ id: 'text', text: s.full_text, kind: 'body' });
    for (const span of s.spans) {
      const wanted = SYNTH_MAP[span.entity_type];
      if (!wanted) continue;
      const st = stats.get(span.entity_type) ?? { total: 0, hit: 0, counted: 0 };
      st.total++;
      const overlapping = findings.filter(
        (f) => wanted.includes(f.type) && f.start < span.end_position && f.end > span.start_position,
      );
      if (overlapping.length > 0) st.hit++;
      // Rules ignore findings below their minScore (0.5 in the default pack): only these can make a verdict.
      const counted = overlapping.some((f) => f.score >= 0.5);
      if (counted) st.counted++;
      stats.set(span.entity_type, st);
      for (const half of inHalves) {
        const h = half.get(span.entity_type) ?? { total: 0, hit: 0, counted: 0 };
        h.total++;
        if (overlapping.length > 0) h.hit++;
        if (counted) h.counted++;
        half.set(span.entity_type, h);
      }
    }
    const mapped = new Set(Object.values(SYNTH_MAP).flat());
    extra += findings.filter(
      (f) =>
        mapped.has(f.type) &&
        !s.spans.some((span) => f.start < span.end_position && f.end > span.start_position),
    ).length;
  }
  const ms = performance.now() - started;
  console.log(
    `\n== ${file}: ${samples.length} samples, span recall by entity type (any score | score ≥ 0.5)`,
  );
  for (const [type, st] of [...stats.entries()].sort()) {
    const target = TARGETS[type];
    console.log(
      `${type.padEnd(18)} ${(st.hit / st.total).toFixed(3)} | ${(st.counted / st.total).toFixed(3)}  (${st.hit}, ${st.counted} of ${st.total})${target ? `   target ≥ ${target}` : ''}`,
    );
  }
  for (const [name, half] of halves) {
    const row = Object.keys(TARGETS)
      .map((type) => {
        const h = half.get(type);
        return h ? `${type} ${(h.hit / h.total).toFixed(3)}|${(h.counted / h.total).toFixed(3)}` : '';
      })
      .filter(Boolean)
      .join('  ');
    console.log(`  ${name.padEnd(26)} ${row}`);
  }
  console.log(
    `findings of these types outside any labelled span: ${extra} (not all are wrong: the set labels only some entities)`,
  );
  console.log(
    `analysis speed: ${(chars / 1e6 / (ms / 1000)).toFixed(1)} MB/s over ${(chars / 1e6).toFixed(2)} MB`,
  );
}

async function main(): Promise<number> {
  const paths = process.argv.slice(2);
  if (paths.length === 0) {
    console.error(
      'usage: npm run eval:dlp -- PATH [PATH…]   (a folder of .eml with manifest.json, or presidio-synth-pii)',
    );
    return 2;
  }
  const rules = new RulesSource(process.env.PHIGW_RULES_FILE || undefined);
  for (const p of paths) {
    if (!existsSync(p)) {
      console.error(`eval:dlp: ${p} does not exist`);
      return 2;
    }
    const isDir = statSync(p).isDirectory();
    if (isDir && existsSync(path.join(p, 'manifest.json'))) await evalEmails(p, rules);
    else if (isDir && existsSync(path.join(p, 'synth_dataset_v2.json')))
      evalSynth(path.join(p, 'synth_dataset_v2.json'), rules);
    else if (!isDir && p.endsWith('.json')) evalSynth(p, rules);
    else {
      console.error(
        `eval:dlp: ${p}: expected a folder with manifest.json, or Presidio's synth_dataset_v2.json`,
      );
      return 2;
    }
  }
  return 0;
}

process.exitCode = await main();
