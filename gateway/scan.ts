// The scan stage's scanner: decodes a parsed message into text parts (extract.ts) and runs the DLP
// analyzer with the rules in force. The verdict carries type names and positions, never matched text.
import type { AddressObject, ParsedMail } from 'mailparser';
import type { Analyzer } from '../dlp/analyzer.js';
import type { Finding, Verdict } from '../dlp/types.js';
import { extractParts, type AttachmentFlag, type ExtractLimits } from './extract.js';

export type { Verdict };

export interface Scanner {
  /** `raw`: the message as received, for scanners that parse it themselves (scan threads). */
  scan(parsed: ParsedMail, signal?: AbortSignal, raw?: Buffer): Promise<Verdict>;
  /**
   * Scanners that parse the message themselves (scan threads) also hand back what routing needs of its
   * header, so the pipeline parses the whole message only when it protects it.
   */
  scanRaw?(raw: Buffer, signal?: AbortSignal): Promise<ScanResult>;
  /**
   * Like scanRaw, reading the message as it arrives (a large message streamed from the sealed spool). Resolves
   * only after `source` ended without error; a failing source (a spool that fails its tag check) fails the scan.
   */
  scanStream?(source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<ScanResult>;
}

/** What routing reads of a message's header: the decoded subject, and each field that is plain text. */
export interface Headline {
  subject: string;
  /** Lower-case field name → its text (repeated fields joined with ','); structured fields are left out. */
  headers: Map<string, string>;
}

export interface ScanResult {
  verdict: Verdict;
  headline: Headline;
}

export function headlineOf(parsed: ParsedMail): Headline {
  const headers = new Map<string, string>();
  for (const [name, value] of parsed.headers) {
    if (typeof value === 'string') headers.set(name, value);
    else if (Array.isArray(value)) headers.set(name, value.map((v) => String(v as string)).join(','));
  }
  return { subject: parsed.subject ?? '', headers };
}

/** Display names of the recipients: a recipient named in the text near health facts is PHI. */
export function recipientNames(parsed: ParsedMail): string[] {
  const lists: Array<AddressObject | AddressObject[] | undefined> = [parsed.to, parsed.cc];
  const names = new Set<string>();
  for (const list of lists) {
    for (const obj of Array.isArray(list) ? list : list ? [list] : []) {
      for (const addr of obj.value) {
        const name = addr.name?.trim();
        if (name && /\p{L}{2,}/u.test(name) && !name.includes('@')) names.add(name);
      }
    }
  }
  return [...names];
}

export function flagFindings(flags: readonly AttachmentFlag[]): Finding[] {
  return flags.map((f) => ({
    type: f.kind === 'image' ? 'IMAGE_ATTACHMENT' : 'UNREADABLE_ATTACHMENT',
    category: 'attachment' as const,
    part: f.part,
    start: 0,
    end: 0,
    score: 1,
    recognizer: `extract:${f.reason}`,
  }));
}

export class DlpScanner implements Scanner {
  /**
   * `findings`: 'verdict' for the pipeline, which keeps only the findings that made a rule fire (verdictSummary):
   * the scan stops once no rule can fire. 'all' (the CLI, evaluation) lists every finding.
   */
  constructor(
    private readonly rules: { readonly analyzer: Analyzer },
    private readonly limits: Partial<ExtractLimits> = {},
    private readonly findings: 'all' | 'verdict' = 'all',
  ) {}

  async scan(parsed: ParsedMail, signal?: AbortSignal): Promise<Verdict> {
    const { parts, flags } = await extractParts(parsed, this.limits, signal);
    return this.rules.analyzer.analyze(parts, {
      headerNames: recipientNames(parsed),
      extraFindings: flagFindings(flags),
      findings: this.findings,
    });
  }
}
