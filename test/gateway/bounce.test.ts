// Bounces go back to the sender through the same relay, so they must be well-formed RFC 3464 reports
// that a mail client understands, and they must never quote the original's subject or body (PHI).
import { expect } from 'chai';
import { simpleParser, type ParsedMail } from 'mailparser';
import {
  bounceStatus,
  buildBounce,
  safeOriginalHeaders,
  type BounceInput,
  type BounceRecipient,
} from '../../gateway/bounce.js';

const PHI_SUBJECT = 'Lab results for Jane Roe, DOB 1961-04-02';
const PHI_BODY = 'HIV viral load: undetectable';

function makeOriginal(extraHeaders = ''): Buffer {
  return Buffer.from(
    'Received: from ws1 ([10.0.0.5])\r\n\tby gw.clinic.example with ESMTP id Q1;\r\n\tMon, 1 Jan 2024 10:00:00 +0000\r\n' +
      'Message-ID: <orig-1@clinic.example>\r\n' +
      'Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n' +
      'From: Dr Who <dr.who@clinic.example>\r\n' +
      'To: lab@lab.example\r\n' +
      `Subject: ${PHI_SUBJECT}\r\n` +
      'MIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      extraHeaders +
      '\r\n' +
      `${PHI_BODY}\r\nSubject: not a header, this is the body\r\n`,
    'utf8',
  );
}

function makeRecipient(over: Partial<BounceRecipient> = {}): BounceRecipient {
  return {
    rcpt: 'lab@lab.example',
    status: '5.1.1',
    diagnostic: '550 5.1.1 <lab@lab.example>: no such user',
    action: 'failed',
    ...over,
  };
}

function makeInput(over: Partial<BounceInput> = {}): BounceInput {
  return {
    reportingMta: 'gw.clinic.example',
    queueId: 'Q1ABC',
    sender: 'dr.who@clinic.example',
    recipients: [makeRecipient()],
    arrivalDate: new Date(Date.UTC(2024, 0, 1, 10, 0, 0)),
    originalHeaders: safeOriginalHeaders(makeOriginal()),
    now: new Date(Date.UTC(2024, 0, 6, 10, 0, 0)),
    ...over,
  };
}

interface Report {
  mail: ParsedMail;
  parts: ParsedMail[];
  /** The message/delivery-status part: its per-message group, then one group per recipient. */
  perMessage: Map<string, unknown>;
  perRecipient: Map<string, unknown>[];
}

/** Parses a bounce with mailparser: the whole message, then each MIME part, then the DSN field groups. */
async function parseReport(raw: Buffer): Promise<Report> {
  const mail = await simpleParser(raw);
  const type = mail.headers.get('content-type') as { value: string; params: Record<string, string> };
  const boundary = type.params.boundary;
  if (!boundary) throw new Error('no boundary');
  const text = raw.toString('utf8');
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const sections = body.split(`\r\n--${boundary}`);
  expect(sections.at(-1)!.startsWith('--'), 'closing boundary').to.equal(true);
  const partTexts = sections.slice(1, -1).map((s) => s.replace(/^\r\n/, ''));
  const parts = await Promise.all(partTexts.map((p) => simpleParser(Buffer.from(p, 'utf8'))));
  const dsn = parts.find(
    (p) => (p.headers.get('content-type') as { value: string }).value === 'message/delivery-status',
  );
  if (!dsn || dsn.text === undefined) throw new Error('no message/delivery-status part');
  const groups = dsn.text.split(/\n\s*\n/).filter((g) => g.trim() !== '');
  const parsed = await Promise.all(
    groups.map(async (g) => (await simpleParser(Buffer.from(`${g}\r\n\r\n`))).headers),
  );
  return { mail, parts, perMessage: parsed[0] ?? new Map<string, unknown>(), perRecipient: parsed.slice(1) };
}

describe('gateway/bounce', () => {
  describe('buildBounce', () => {
    it('is a multipart/report of report-type delivery-status, marked as a bounce', async () => {
      const { mail } = await parseReport(buildBounce(makeInput()));
      expect(mail.headers.get('content-type')).to.deep.include({ value: 'multipart/report' });
      expect((mail.headers.get('content-type') as { params: Record<string, string> }).params).to.include({
        'report-type': 'delivery-status',
      });
      expect(mail.headers.get('x-phi-gateway-kind')).to.equal('bounce');
      expect(mail.headers.get('auto-submitted')).to.equal('auto-replied');
      expect(mail.to).to.deep.include({ text: 'dr.who@clinic.example' });
      expect(mail.from?.value[0]?.address).to.equal('MAILER-DAEMON@gw.clinic.example');
      expect(mail.messageId).to.match(/^<Q1ABC\.[0-9a-f]+@gw\.clinic\.example>$/);
      expect(mail.date?.toISOString()).to.equal('2024-01-06T10:00:00.000Z');
    });

    it('has a human part, a delivery-status part and the safe original headers, in that order', async () => {
      const { parts } = await parseReport(buildBounce(makeInput()));
      const types = parts.map((p) => (p.headers.get('content-type') as { value: string }).value);
      expect(types).to.deep.equal(['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
      expect(parts[0]!.text).to.include('lab@lab.example').and.include('Q1ABC');
    });

    it('names the reporting MTA, queue id and arrival date once for the message', async () => {
      const { perMessage } = await parseReport(buildBounce(makeInput()));
      expect(perMessage.get('reporting-mta')).to.equal('dns; gw.clinic.example');
      expect(perMessage.get('x-phi-gateway-queue-id')).to.equal('Q1ABC');
      expect(perMessage.get('arrival-date')).to.equal('Mon, 01 Jan 2024 10:00:00 +0000');
    });

    it('gives each recipient its own Final-Recipient, Action, Status and Diagnostic-Code', async () => {
      const recipients = [
        makeRecipient({
          rcpt: 'a@lab.example',
          status: '5.1.1',
          diagnostic: '550 5.1.1 no such user',
          remoteMta: 'mx.lab.example',
        }),
        makeRecipient({ rcpt: 'b@lab.example', status: '5.0.0', diagnostic: '554 rejected' }),
        makeRecipient({
          rcpt: 'c@lab.example',
          status: '4.4.7',
          diagnostic: 'delivery time expired; last attempt: no answer',
        }),
      ];
      const { perRecipient } = await parseReport(buildBounce(makeInput({ recipients })));
      expect(perRecipient).to.have.length(3);
      expect(Object.fromEntries(perRecipient[0]!)).to.deep.equal({
        'final-recipient': 'rfc822; a@lab.example',
        action: 'failed',
        status: '5.1.1',
        'remote-mta': 'dns; mx.lab.example',
        'diagnostic-code': 'smtp; 550 5.1.1 no such user',
      });
      expect(Object.fromEntries(perRecipient[1]!)).to.deep.equal({
        'final-recipient': 'rfc822; b@lab.example',
        action: 'failed',
        status: '5.0.0',
        'diagnostic-code': 'smtp; 554 rejected',
      });
      expect(perRecipient[2]!.get('status')).to.equal('4.4.7');
      expect(perRecipient[2]!.get('final-recipient')).to.equal('rfc822; c@lab.example');
    });

    it('keeps a multi-line diagnostic inside its own field (no injected DSN fields)', async () => {
      const diagnostic =
        '550 5.7.1 refused\r\nAction: delivered\r\nX-Injected: yes\n\nFinal-Recipient: rfc822; fake@x.example';
      const { perRecipient } = await parseReport(
        buildBounce(makeInput({ recipients: [makeRecipient({ diagnostic })] })),
      );
      expect(perRecipient).to.have.length(1);
      expect(perRecipient[0]!.get('action')).to.equal('failed');
      expect(perRecipient[0]!.has('x-injected')).to.equal(false);
      expect(perRecipient[0]!.get('final-recipient')).to.equal('rfc822; lab@lab.example');
    });

    it('quotes the safe original headers and never the subject or body', async () => {
      const raw = buildBounce(makeInput());
      const { parts } = await parseReport(raw);
      const quoted = parts[2]!;
      const text = (quoted.text ?? '') + quoted.attachments.map((a) => a.content.toString('utf8')).join('');
      expect(text).to.include('Message-ID: <orig-1@clinic.example>');
      expect(text).to.include('From: Dr Who <dr.who@clinic.example>');
      const all = raw.toString('utf8');
      expect(all).not.to.include('Jane Roe');
      expect(all).not.to.include('1961-04-02');
      expect(all).not.to.include(PHI_BODY);
    });

    it('quotes a non-ASCII (UTF-8) header byte for byte', () => {
      const original = makeOriginal().toString('utf8').replace('From: Dr Who', 'From: Dr Zoë Müller');
      const raw = buildBounce(
        makeInput({ originalHeaders: safeOriginalHeaders(Buffer.from(original, 'utf8')) }),
      );
      expect(raw.includes(Buffer.from('From: Dr Zoë Müller <dr.who@clinic.example>', 'utf8'))).to.equal(true);
    });

    it('is well formed with no original headers at all', async () => {
      const { parts, perRecipient } = await parseReport(buildBounce(makeInput({ originalHeaders: '' })));
      expect(parts).to.have.length(3);
      expect(perRecipient).to.have.length(1);
    });

    it('uses a fresh boundary and Message-ID each time', () => {
      const a = buildBounce(makeInput()).toString();
      const b = buildBounce(makeInput()).toString();
      const boundary = (s: string) => /boundary="([^"]+)"/.exec(s)?.[1];
      const messageId = (s: string) => /^Message-ID: (.*)$/m.exec(s)?.[1];
      expect(boundary(a)).to.be.a('string').and.not.equal(boundary(b));
      expect(messageId(a)).to.be.a('string').and.not.equal(messageId(b));
    });
  });

  describe('safeOriginalHeaders', () => {
    const cases: { name: string; extra: string; kept: string[]; dropped: string[] }[] = [
      {
        name: 'a plain message',
        extra: '',
        kept: [
          'Message-ID: <orig-1@clinic.example>',
          'Date: Mon, 1 Jan 2024 10:00:00 +0000',
          'From: Dr Who <dr.who@clinic.example>',
          'To: lab@lab.example',
        ],
        dropped: [
          'Subject',
          'Jane Roe',
          'Received',
          'Content-Type',
          'MIME-Version',
          PHI_BODY,
          'this is the body',
        ],
      },
      {
        name: 'a folded Cc',
        extra: 'Cc: a@lab.example,\r\n\tb@lab.example\r\n',
        kept: ['Cc: a@lab.example, b@lab.example'],
        dropped: ['Subject'],
      },
      {
        name: 'a folded Subject whose continuation holds PHI',
        extra: 'Subject: Re: results\r\n for patient John Q Public\r\n',
        kept: ['To: lab@lab.example'],
        dropped: ['John Q Public', 'Re: results'],
      },
      {
        name: 'a continuation line that looks like a safe header',
        extra: 'X-Note: first\r\n To: sneaky@evil.example\r\n',
        kept: ['To: lab@lab.example'],
        dropped: ['sneaky@evil.example', 'X-Note'],
      },
      {
        name: 'headers whose names only start like a safe one',
        extra:
          'From-Patient: Jane Roe\r\nDate-Of-Birth: 1961-04-02\r\nTo-Do: call Jane\r\nX-From: x\r\nFrom : spaced\r\n',
        kept: ['From: Dr Who <dr.who@clinic.example>'],
        dropped: ['From-Patient', 'Date-Of-Birth', '1961-04-02', 'To-Do', 'X-From', 'From : spaced'],
      },
      {
        name: 'upper- and lower-case header names',
        extra: 'SUBJECT: Jane Roe\r\nthread-topic: Jane Roe\r\nCC: c@lab.example\r\n',
        kept: ['CC: c@lab.example'],
        dropped: ['Jane Roe', 'thread-topic'],
      },
    ];
    for (const c of cases) {
      it(`keeps only the safe headers of ${c.name}`, () => {
        const quoted = safeOriginalHeaders(makeOriginal(c.extra));
        const lines = quoted.split('\r\n');
        for (const k of c.kept) expect(lines, k).to.include(k);
        for (const d of c.dropped) expect(quoted, d).not.to.include(d);
      });
    }

    it('keeps a folded To whole, on one line', () => {
      const raw = Buffer.from(
        'To: a@lab.example,\r\n b@lab.example,\r\n\tc@lab.example\r\nSubject: x\r\n\r\nbody\r\n',
      );
      expect(safeOriginalHeaders(raw)).to.equal('To: a@lab.example, b@lab.example, c@lab.example');
    });

    it('handles a message that is only headers (no blank line)', () => {
      const raw = Buffer.from('Message-ID: <x@y>\r\nSubject: Jane Roe\r\nTo: a@b.example');
      expect(safeOriginalHeaders(raw)).to.equal('Message-ID: <x@y>\r\nTo: a@b.example');
    });

    it('never looks past the header block', () => {
      const raw = Buffer.from('Subject: x\r\n\r\nFrom: body@evil.example\r\nTo: body@evil.example\r\n');
      expect(safeOriginalHeaders(raw)).to.equal('');
    });

    it('cuts over-long lines to 998 characters', () => {
      const raw = Buffer.from(`To: ${'a'.repeat(5000)}@lab.example\r\n\r\nbody`);
      const quoted = safeOriginalHeaders(raw);
      expect(quoted).to.have.length(998);
      expect(quoted.startsWith('To: aaa')).to.equal(true);
    });
  });

  describe('bounceStatus', () => {
    const cases: { code: number | null; response: string; status: string }[] = [
      { code: 550, response: '5.1.1 <lab@lab.example>: Recipient address rejected', status: '5.1.1' },
      { code: 550, response: '550 5.1.1 <lab@lab.example>: Recipient address rejected', status: '5.1.1' },
      { code: 550, response: '550-5.1.1 The email account does not exist', status: '5.1.1' },
      { code: 552, response: '552 5.2.2 Mailbox full', status: '5.2.2' },
      { code: 554, response: '554 5.7.1 Message refused as spam', status: '5.7.1' },
      { code: 550, response: '550 5.100.200 odd but valid', status: '5.100.200' },
      { code: 554, response: '554 Transaction failed', status: '5.0.0' },
      { code: 550, response: '', status: '5.0.0' },
      { code: 550, response: '550 Mailbox unavailable', status: '5.0.0' },
      // A temporary failure that became final (queue lifetime) is still reported as permanent.
      { code: 451, response: '451 4.7.1 Greylisted, try again', status: '5.7.1' },
      { code: 421, response: '421 Service not available', status: '5.0.0' },
      { code: null, response: 'connection refused', status: '5.0.0' },
      { code: null, response: '', status: '5.0.0' },
      // Not enhanced status codes: a success code, a version number, an IP address in the text.
      { code: 550, response: '550 2.0.0 nonsense', status: '5.0.0' },
      { code: 550, response: '550 rejected by filter v5.1.12a', status: '5.0.0' },
      { code: 550, response: '550 Access denied for 10.5.1.1', status: '5.0.0' },
    ];
    for (const c of cases) {
      it(`maps ${c.code} ${JSON.stringify(c.response)} to ${c.status}`, () => {
        expect(bounceStatus(c.code, c.response)).to.equal(c.status);
      });
    }
  });
});
