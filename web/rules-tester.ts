// The live rule tester: runs an admin's pasted text or .eml through the DLP analyzer (rules in force or a
// draft) and the real routing policy and keyring, and renders the findings in place in the admin's own
// input. It stores nothing and logs nothing of the input. It imports gateway/scan.js, gateway/extract.js,
// gateway/policy.js and gateway/pgp-mime.js (detectEncrypted): a deliberate, read-only exception to the
// usual import direction, so the tester decides exactly as the gateway would.
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { PARSE_OPTIONS } from '../gateway/pipeline.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Analyzer } from '../dlp/analyzer.js';
import type { TextPart, Verdict } from '../dlp/types.js';
import { extractParts } from '../gateway/extract.js';
import { detectEncrypted } from '../gateway/pgp-mime.js';
import { decideRoutes, findTriggers, type MessageDecision } from '../gateway/policy.js';
import { flagFindings, recipientNames } from '../gateway/scan.js';
import type { Keyring } from '../store/pgp-keyring.js';
import { html, type SafeHtml } from './html.js';

export interface TesterInput {
  text?: string;
  subject?: string;
  eml?: Buffer;
  recipients: string[];
}

export interface TesterRoute {
  rcpt: string;
  action: 'clean' | 'pgp' | 'pickup' | 'hold' | 'quarantine' | 'block';
  reason: string;
  /** The key that would be used, for PGP. */
  fingerprint?: string;
}

export interface TesterResult {
  verdict: Verdict;
  parts: TextPart[];
  decision: MessageDecision;
  routes: TesterRoute[];
  recipients: string[];
}

export const MAX_TEST_TEXT = 1024 * 1024;
export const MAX_TEST_EML = 10 * 1024 * 1024;
const MAX_RECIPIENTS = 50;

/** Recipients from a free-text field: commas, semicolons, spaces or lines between addresses. */
export function parseRecipients(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map((a) => a.trim().replace(/^<|>$/g, '').toLowerCase())
        .filter((a) => /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(a)),
    ),
  ].slice(0, MAX_RECIPIENTS);
}

function addresses(parsed: ParsedMail): string[] {
  const out: string[] = [];
  for (const list of [parsed.to, parsed.cc] as Array<AddressObject | AddressObject[] | undefined>)
    for (const obj of Array.isArray(list) ? list : list ? [list] : [])
      for (const a of obj.value) if (a.address) out.push(a.address.toLowerCase());
  return [...new Set(out)].slice(0, MAX_RECIPIENTS);
}

/** Runs the test. Throws only on an .eml that cannot be parsed at all. */
export async function runTest(
  input: TesterInput,
  analyzer: Analyzer,
  config: ResolvedConfig,
  keyring: Pick<Keyring, 'keyFor'>,
): Promise<TesterResult> {
  let parsed: ParsedMail;
  let parts: TextPart[];
  let verdict: Verdict;
  let encrypted: ReturnType<typeof detectEncrypted> = null;
  let recipients = input.recipients;
  if (input.eml) {
    parsed = await simpleParser(input.eml, PARSE_OPTIONS);
    const extracted = await extractParts(parsed);
    parts = extracted.parts;
    verdict = analyzer.analyze(parts, {
      headerNames: recipientNames(parsed),
      extraFindings: flagFindings(extracted.flags),
    });
    encrypted = detectEncrypted(input.eml);
    if (recipients.length === 0) recipients = addresses(parsed);
  } else {
    const subject = (input.subject ?? '').replace(/[\r\n]+/g, ' ').trim();
    // The subject header is only built to read triggers ([secure], protect headers) as the gateway does.
    parsed = await simpleParser(Buffer.from(`Subject: ${subject}\r\n\r\n`));
    parts = [
      ...(subject ? [{ id: 'subject', kind: 'subject' as const, text: subject }] : []),
      { id: 'text', kind: 'body' as const, text: (input.text ?? '').replace(/\r\n/g, '\n') },
    ];
    verdict = analyzer.analyze(parts);
  }
  const keys = new Map<string, string>();
  const decision = await decideRoutes({
    verdict,
    triggers: findTriggers(parsed, config.policy),
    encrypted,
    rcptTo: recipients,
    policy: config.policy,
    hasKey: async (a) => {
      const key = await keyring.keyFor(a);
      if (key) keys.set(a, key.fingerprint);
      return key !== null;
    },
  });
  const routes: TesterRoute[] =
    decision.kind === 'per-recipient'
      ? decision.routes.map((r) => ({
          ...r,
          ...(r.action === 'pgp' && keys.get(r.rcpt) ? { fingerprint: keys.get(r.rcpt) } : {}),
        }))
      : recipients.map((rcpt) => ({
          rcpt,
          action: decision.kind,
          reason: decision.kind === 'quarantine' ? decision.reason : 'BLOCKED_BY_RULE',
        }));
  return { verdict, parts, decision, routes, recipients };
}

/**
 * A part's text with its findings wrapped in <mark>, everything escaped; the types are visible labels.
 * Overlapping findings (a deny term that is also a name) share one mark listing every type.
 */
export function highlight(part: TextPart, findings: Verdict['findings']): SafeHtml {
  const spans = findings
    .filter((f) => f.part === part.id && f.end > f.start)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const clusters: Array<{ start: number; end: number; items: typeof spans }> = [];
  for (const f of spans) {
    const last = clusters[clusters.length - 1];
    if (last && f.start < last.end) {
      last.end = Math.max(last.end, f.end);
      last.items.push(f);
    } else clusters.push({ start: f.start, end: f.end, items: [f] });
  }
  const out: SafeHtml[] = [];
  let pos = 0;
  for (const c of clusters) {
    out.push(html`${part.text.slice(pos, c.start)}`);
    const items = [...c.items].sort((a, b) => Number(b.rule !== null) - Number(a.rule !== null));
    const counted = items.some((f) => f.rule !== null);
    const types = [...new Set(items.map((f) => f.type))];
    const title = items
      .map((f) => `${f.type}${f.rule !== null ? ` (rule ${f.rule})` : ' (no rule counted it)'}`)
      .join(', ');
    out.push(
      html`<mark class="${counted ? 'finding counted' : 'finding'}" title="${title}"><span class="finding-type">${types.join(' · ')}</span>${part.text.slice(c.start, c.end)}</mark>`,
    );
    pos = c.end;
  }
  out.push(html`${part.text.slice(pos)}`);
  return html`${out}`;
}

/** What an admin reads for a route: "PGP (key 1A2B 3C4D …)", "pickup", "clear". */
export function describeRoute(r: TesterRoute): string {
  switch (r.action) {
    case 'clean':
      return r.reason === 'NOT_SENSITIVE' ? 'clear' : `clear (${r.reason.toLowerCase().replace(/_/g, ' ')})`;
    case 'pgp':
      return `PGP (key ${(r.fingerprint ?? '')
        .slice(0, 16)
        .replace(/(.{4})/g, '$1 ')
        .trim()}…)`;
    case 'pickup':
      return 'secure pickup';
    case 'hold':
      return `held (${r.reason === 'PGP_KEY_REQUIRED' ? 'domain requires PGP and no key' : 'pickup not allowed for this domain'})`;
    case 'quarantine':
      return 'quarantined (whole message)';
    case 'block':
      return 'blocked, bounced to the sender';
  }
}

/** The JSON the API returns: verdict, parts' ids and kinds (the caller has the text), routes. */
export function resultJson(r: TesterResult): Record<string, unknown> {
  return {
    verdict: {
      phi: r.verdict.phi,
      action: r.verdict.action,
      score: r.verdict.score,
      rules: r.verdict.rules,
      monitored: r.verdict.monitored,
      explanation: r.verdict.explanation,
      findings: r.verdict.findings.map(({ type, category, part, start, end, score, rule }) => ({
        type,
        category,
        part,
        start,
        end,
        score,
        rule,
      })),
    },
    parts: r.parts.map((p) => ({ id: p.id, kind: p.kind, length: p.text.length })),
    decision: r.decision.kind,
    routes: r.routes.map((x) => ({ ...x, summary: describeRoute(x) })),
  };
}
