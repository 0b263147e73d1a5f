// Routing policy: what happens to a message for each recipient (clear, PGP/MIME, secure pickup, held),
// from the DLP verdict, the sender's triggers (subject tag, Sensitivity header) and the domain policy.
// It decides only; it never builds or sends mail. When nothing safe is possible it holds, never clears.
import type { PolicyConfig } from '../config/schema.js';
import type { Verdict } from './scan.js';

export type EncryptedKind = 'pgp-mime' | 'pgp-inline' | 'smime';

export type RecipientAction = 'clean' | 'pgp' | 'pickup' | 'hold';

export interface RecipientRoute {
  rcpt: string;
  action: RecipientAction;
  /** Why: a stable code (INTERNAL, EXEMPT, NOT_SENSITIVE, ALREADY_ENCRYPTED, PGP_KEY, NO_KEY, PGP_KEY_REQUIRED, PICKUP_NOT_ALLOWED). */
  reason: string;
}

export type MessageDecision =
  | { kind: 'per-recipient'; protect: boolean; triggers: string[]; routes: RecipientRoute[] }
  | { kind: 'quarantine'; reason: string }
  | { kind: 'block'; rules: string[]; types: string[] };

export interface Triggers {
  /** The subject tag found ([secure], [encrypt]), if any. */
  tag: string | null;
  /** The subject without the tag (decoded), when a tag was found. */
  subjectWithoutTag: string | null;
  /** A header that forces protection (e.g. Sensitivity: Company-Confidential). */
  header: string | null;
}

function tagPattern(tags: readonly string[]): RegExp | null {
  const names = tags
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s*'));
  if (names.length === 0) return null;
  return new RegExp(`\\[\\s*(${names.join('|')})\\s*\\]`, 'i');
}

/** What trigger detection reads of a message: its decoded subject and its header fields by lower-case name. */
export interface HeaderView {
  subject?: string | undefined;
  headers: ReadonlyMap<string, unknown>;
}

/** Finds the sender's triggers: a subject tag (any case, spaces tolerated) or a protect header. */
export function findTriggers(parsed: HeaderView, policy: PolicyConfig): Triggers {
  const subject = parsed.subject ?? '';
  const re = tagPattern(policy.subjectTags);
  const m = re ? re.exec(subject) : null;
  let header: string | null = null;
  for (const spec of policy.protectHeaders) {
    const colon = spec.indexOf(':');
    if (colon <= 0) continue;
    const name = spec.slice(0, colon).trim().toLowerCase();
    const want = spec
      .slice(colon + 1)
      .trim()
      .toLowerCase();
    const value = parsed.headers.get(name);
    const text = (
      typeof value === 'string'
        ? value
        : Array.isArray(value)
          ? value.map((v) => String(v as string)).join(',')
          : ''
    )
      .trim()
      .toLowerCase();
    if (text && (want === '' || text === want)) {
      header = spec.slice(0, colon).trim();
      break;
    }
  }
  return {
    tag: m ? m[1]!.toLowerCase().replace(/\s+/g, '') : null,
    subjectWithoutTag: m
      ? (subject.slice(0, m.index) + ' ' + subject.slice(m.index + m[0].length)).replace(/\s+/g, ' ').trim()
      : null,
    header,
  };
}

/** True when `domain` is listed: exact, or under a `*.parent` entry. */
export function domainListed(domain: string, list: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return list.some((entry) => {
    const e = entry.toLowerCase();
    if (e.startsWith('*.')) return d === e.slice(2) || d.endsWith(e.slice(1));
    return d === e;
  });
}

/** True when the address or its domain is listed. */
export function addressListed(address: string, list: readonly string[]): boolean {
  const a = address.toLowerCase();
  if (list.includes(a)) return true;
  return domainListed(
    domainOf(a),
    list.filter((e) => !e.includes('@')),
  );
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

export interface DecideInput {
  verdict: Verdict;
  triggers: Triggers;
  encrypted: EncryptedKind | null;
  rcptTo: readonly string[];
  policy: PolicyConfig;
  /** Whether a valid OpenPGP key exists for the address now. */
  hasKey(address: string): Promise<boolean>;
  /** An admin released this message from quarantine: as protected (rules' quarantine/block set aside) or in clear. */
  release?: 'protect' | 'clear' | null;
}

/**
 * The decision. Order matters and is the policy:
 * 1. already encrypted mail passes through unchanged (it cannot be read, so it cannot leak);
 * 2. a rule that quarantines holds the whole message; a rule that blocks bounces it — unless the
 *    sender asked for protection with a tag, which is exactly what the bounce tells them to do;
 * 3. per recipient: internal domains and exempt recipients get it in clear; otherwise, when the
 *    message needs protection, a valid key gives PGP/MIME, else a pickup — or a hold where the
 *    recipient's domain requires PGP or forbids pickups.
 */
export async function decideRoutes(input: DecideInput): Promise<MessageDecision> {
  const { verdict, triggers, encrypted, rcptTo, policy, release } = input;
  if (release === 'clear') {
    return {
      kind: 'per-recipient',
      protect: false,
      triggers: ['released-clear'],
      routes: rcptTo.map((rcpt) => ({ rcpt, action: 'clean', reason: 'RELEASED_CLEAR' })),
    };
  }
  if (encrypted) {
    return {
      kind: 'per-recipient',
      protect: false,
      triggers: [],
      routes: rcptTo.map((rcpt) => ({ rcpt, action: 'clean', reason: 'ALREADY_ENCRYPTED' })),
    };
  }
  const senderAsked = triggers.tag !== null || triggers.header !== null || release === 'protect';
  if (verdict.action === 'quarantine' && release !== 'protect')
    return { kind: 'quarantine', reason: 'QUARANTINED_BY_RULE' };
  if (verdict.action === 'block' && !senderAsked) {
    const blocking = new Set(
      verdict.explanation.filter((e) => e.action === 'block' && !e.monitorOnly).map((e) => e.rule),
    );
    const types = new Set<string>();
    for (const e of verdict.explanation)
      if (blocking.has(e.rule)) e.findingTypes.forEach((t) => types.add(t));
    return { kind: 'block', rules: [...blocking].sort(), types: [...types].sort() };
  }
  const triggerList: string[] = [];
  if (verdict.phi || verdict.action === 'protect' || verdict.action === 'block') triggerList.push('dlp');
  if (triggers.tag) triggerList.push('subject-tag');
  if (triggers.header) triggerList.push('header');
  if (release === 'protect') triggerList.push('released-protect');
  const routes: RecipientRoute[] = [];
  for (const rcpt of rcptTo) {
    const domain = domainOf(rcpt);
    if (domainListed(domain, policy.internalDomains)) {
      routes.push({ rcpt, action: 'clean', reason: 'INTERNAL' });
      continue;
    }
    if (addressListed(rcpt, policy.exemptRecipients)) {
      routes.push({ rcpt, action: 'clean', reason: 'EXEMPT' });
      continue;
    }
    const forced = domainListed(domain, policy.alwaysProtectDomains);
    if (triggerList.length === 0 && !forced) {
      routes.push({ rcpt, action: 'clean', reason: 'NOT_SENSITIVE' });
      continue;
    }
    if (await input.hasKey(rcpt)) {
      routes.push({ rcpt, action: 'pgp', reason: 'PGP_KEY' });
    } else if (domainListed(domain, policy.requirePgpDomains)) {
      routes.push({ rcpt, action: 'hold', reason: 'PGP_KEY_REQUIRED' });
    } else if (domainListed(domain, policy.noPickupDomains)) {
      routes.push({ rcpt, action: 'hold', reason: 'PICKUP_NOT_ALLOWED' });
    } else {
      routes.push({ rcpt, action: 'pickup', reason: 'NO_KEY' });
    }
  }
  const protect = routes.some((r) => r.action === 'pgp' || r.action === 'pickup' || r.action === 'hold');
  return { kind: 'per-recipient', protect, triggers: triggerList, routes };
}

/** True when a finding of a counted rule sits in the subject: the subject then never goes outside. */
export function subjectHoldsPhi(verdict: Verdict): boolean {
  return verdict.findings.some((f) => f.part === 'subject' && f.rule !== null);
}
