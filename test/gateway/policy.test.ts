// Routing policy: triggers (subject tag, protect header) and the per-recipient ladder.
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { policySchema, type PolicyConfig } from '../../config/schema.js';
import type { Verdict } from '../../dlp/types.js';
import {
  decideRoutes,
  domainListed,
  findTriggers,
  subjectHoldsPhi,
  type Triggers,
} from '../../gateway/policy.js';

function makeVerdict(over: Partial<Verdict> = {}): Verdict {
  return {
    phi: false,
    score: 0,
    action: 'clean',
    findings: [],
    rules: [],
    monitored: [],
    explanation: [],
    ...over,
  };
}

const phiVerdict = makeVerdict({
  phi: true,
  score: 0.9,
  action: 'protect',
  rules: ['identifier-near-health'],
  findings: [
    {
      type: 'PERSON',
      category: 'identifier',
      part: 'text',
      start: 0,
      end: 5,
      score: 0.8,
      recognizer: 'x',
      rule: 'r',
    },
  ],
  explanation: [
    {
      rule: 'identifier-near-health',
      action: 'protect',
      monitorOnly: false,
      reason: 'x',
      findingTypes: ['PERSON', 'DIAGNOSIS'],
      parts: ['text'],
    },
  ],
});

const noTriggers: Triggers = { tag: null, subjectWithoutTag: null, header: null };

function policy(over: Partial<PolicyConfig> = {}): PolicyConfig {
  return { ...policySchema.parse({}), ...over };
}

async function triggersOf(headers: string): Promise<Triggers> {
  const parsed = await simpleParser(Buffer.from(`${headers}\r\n\r\nbody\r\n`));
  return findTriggers(parsed, policy());
}

describe('gateway/policy', () => {
  describe('subject tags and headers', () => {
    const positive: Array<[string, string, string]> = [
      ['Subject: [secure] lab results', 'secure', 'lab results'],
      ['Subject: [SECURE] lab results', 'secure', 'lab results'],
      ['Subject: lab results [ Secure ]', 'secure', 'lab results'],
      ['Subject: Re: [encrypt] x-ray', 'encrypt', 'Re: x-ray'],
      ['Subject: =?utf-8?Q?[secure]_r=C3=A9sultats?=', 'secure', 'résultats'],
    ];
    const negative: string[] = [
      'Subject: secure lab results',
      'Subject: (secure) lab results',
      'Subject: [insecure] lab results',
      'Subject: [secured] lab results',
      'Subject: encrypt this please',
      'Subject: ',
    ];
    for (const [header, tag, rest] of positive) {
      it(`finds the tag in "${header}"`, async () => {
        const t = await triggersOf(header);
        expect(t.tag).to.equal(tag);
        expect(t.subjectWithoutTag).to.equal(rest);
      });
    }
    for (const header of negative) {
      it(`finds no tag in "${header}"`, async () => {
        const t = await triggersOf(header);
        expect(t.tag).to.equal(null);
        expect(t.subjectWithoutTag).to.equal(null);
      });
    }
    it('takes Sensitivity: Company-Confidential (any case) as a trigger, other values not', async () => {
      expect((await triggersOf('Subject: x\r\nSensitivity: company-confidential')).header).to.equal(
        'Sensitivity',
      );
      expect((await triggersOf('Subject: x\r\nSensitivity: Personal')).header).to.equal(null);
      expect((await triggersOf('Subject: x')).header).to.equal(null);
    });
  });

  describe('domain lists', () => {
    const rows: Array<[string, string[], boolean]> = [
      ['clinic.example', ['clinic.example'], true],
      ['CLINIC.example', ['clinic.example'], true],
      ['mail.clinic.example', ['*.clinic.example'], true],
      ['clinic.example', ['*.clinic.example'], true],
      ['evilclinic.example', ['*.clinic.example'], false],
      ['clinic.example.evil', ['clinic.example'], false],
      ['mail.clinic.example', ['clinic.example'], false],
      ['other.example', [], false],
    ];
    for (const [domain, list, want] of rows) {
      it(`${domain} in [${list.join(', ')}] → ${want}`, () =>
        expect(domainListed(domain, list)).to.equal(want));
    }
  });

  describe('the ladder', () => {
    const keyed = new Set(['partner@lab.example']);
    const hasKey = (a: string) => Promise.resolve(keyed.has(a));

    it('sends PHI as PGP to a keyed partner, as a pickup to a patient and in clear to a colleague', async () => {
      const d = await decideRoutes({
        verdict: phiVerdict,
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['partner@lab.example', 'patient@mail.example', 'colleague@clinic.example'],
        policy: policy({ internalDomains: ['clinic.example'] }),
        hasKey,
      });
      expect(d.kind).to.equal('per-recipient');
      if (d.kind !== 'per-recipient') return;
      expect(d.routes.map((r) => [r.rcpt, r.action, r.reason])).to.deep.equal([
        ['partner@lab.example', 'pgp', 'PGP_KEY'],
        ['patient@mail.example', 'pickup', 'NO_KEY'],
        ['colleague@clinic.example', 'clean', 'INTERNAL'],
      ]);
      expect(d.triggers).to.deep.equal(['dlp']);
    });

    it('leaves clean mail in clear for everyone', async () => {
      const d = await decideRoutes({
        verdict: makeVerdict(),
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['partner@lab.example', 'patient@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(d.kind === 'per-recipient' && d.routes.every((r) => r.action === 'clean')).to.equal(true);
    });

    it('protects clean mail when the sender tags it, or the domain always protects', async () => {
      const tagged = await decideRoutes({
        verdict: makeVerdict(),
        triggers: { tag: 'secure', subjectWithoutTag: 'x', header: null },
        encrypted: null,
        rcptTo: ['patient@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(tagged.kind === 'per-recipient' && tagged.routes[0]!.action).to.equal('pickup');
      const always = await decideRoutes({
        verdict: makeVerdict(),
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['a@insurer.example', 'b@other.example'],
        policy: policy({ alwaysProtectDomains: ['insurer.example'] }),
        hasKey,
      });
      expect(always.kind === 'per-recipient' && always.routes.map((r) => r.action)).to.deep.equal([
        'pickup',
        'clean',
      ]);
    });

    it('holds instead of a pickup where PGP is required or pickups are forbidden', async () => {
      const d = await decideRoutes({
        verdict: phiVerdict,
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['a@bank.example', 'b@hospital.example', 'partner@lab.example'],
        policy: policy({
          requirePgpDomains: ['bank.example'],
          noPickupDomains: ['hospital.example', 'lab.example'],
        }),
        hasKey,
      });
      expect(d.kind === 'per-recipient' && d.routes.map((r) => `${r.action}:${r.reason}`)).to.deep.equal([
        'hold:PGP_KEY_REQUIRED',
        'hold:PICKUP_NOT_ALLOWED',
        'pgp:PGP_KEY',
      ]);
    });

    it('exempts allow-listed recipients and passes already encrypted mail through', async () => {
      const exempt = await decideRoutes({
        verdict: phiVerdict,
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['billing@partner.example', 'x@partner.example'],
        policy: policy({ exemptRecipients: ['billing@partner.example'] }),
        hasKey,
      });
      expect(exempt.kind === 'per-recipient' && exempt.routes.map((r) => r.action)).to.deep.equal([
        'clean',
        'pickup',
      ]);
      const enc = await decideRoutes({
        verdict: phiVerdict,
        triggers: noTriggers,
        encrypted: 'pgp-mime',
        rcptTo: ['patient@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(enc.kind === 'per-recipient' && enc.routes[0]).to.deep.equal({
        rcpt: 'patient@mail.example',
        action: 'clean',
        reason: 'ALREADY_ENCRYPTED',
      });
    });

    it('quarantines or blocks by rule; a tag turns a block into protection', async () => {
      const q = await decideRoutes({
        verdict: { ...phiVerdict, action: 'quarantine' },
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['p@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(q).to.deep.equal({ kind: 'quarantine', reason: 'QUARANTINED_BY_RULE' });
      const blockVerdict: Verdict = {
        ...phiVerdict,
        action: 'block',
        explanation: [{ ...phiVerdict.explanation[0]!, rule: 'ssn-block', action: 'block' }],
      };
      const b = await decideRoutes({
        verdict: blockVerdict,
        triggers: noTriggers,
        encrypted: null,
        rcptTo: ['p@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(b).to.deep.equal({ kind: 'block', rules: ['ssn-block'], types: ['DIAGNOSIS', 'PERSON'] });
      const tagged = await decideRoutes({
        verdict: blockVerdict,
        triggers: { tag: 'secure', subjectWithoutTag: 'x', header: null },
        encrypted: null,
        rcptTo: ['p@mail.example'],
        policy: policy(),
        hasKey,
      });
      expect(tagged.kind === 'per-recipient' && tagged.routes[0]!.action).to.equal('pickup');
    });
  });

  it('says whether the subject holds counted PHI', () => {
    expect(subjectHoldsPhi(phiVerdict)).to.equal(false);
    const inSubject = makeVerdict({
      findings: [{ ...phiVerdict.findings[0]!, part: 'subject' }],
    });
    expect(subjectHoldsPhi(inSubject)).to.equal(true);
    expect(
      subjectHoldsPhi(
        makeVerdict({ findings: [{ ...phiVerdict.findings[0]!, part: 'subject', rule: null }] }),
      ),
    ).to.equal(false);
  });
});
