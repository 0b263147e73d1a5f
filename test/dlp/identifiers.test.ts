// Identifiers with a format or checksum of their own (SSN, ITIN, NPI, DEA, MBI, card, e-mail, phone, fax, URL, IP, VIN).
// Tables per recognizer have at least as many negative rows as positive ones: wrong checksums, sample numbers, and the
// numbers ordinary mail is full of (orders, prices, times, versions, ISBNs, tracking numbers). Both groups together must
// survive a megabyte of hostile input (their speed is measured by the bench, bench/scan.ts).
import { expect } from 'chai';
import { recognizerTable } from '../support/recognizer-table.js';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { identifierRecognizers } from '../../dlp/recognizers/identifiers.js';
import { labelledRecognizers } from '../../dlp/recognizers/labelled.js';
import {
  isPlausiblePhone,
  isValidCardNumber,
  isValidDea,
  isValidIpv4,
  isValidIpv6,
  isValidItin,
  isValidNpi,
  isValidSsn,
  isValidVin,
  luhnValid,
} from '../../dlp/validators.js';

/**
 * Hostile inputs must complete: catastrophic backtracking takes minutes to hours on a megabyte, linear code tens of
 * milliseconds. The bound is that generous so the test never fails on shared, busy cores; `npm run bench` prints the
 * real timings and flags any above a second.
 */
const HOSTILE_MS = 10_000;

const { findAll, table } = recognizerTable(identifierRecognizers);

describe('dlp identifiers', () => {
  table(
    'US_SSN',
    ['US_SSN'],
    [
      [
        'a labelled dashed SSN',
        'Patient Ava Anderson SSN 247-79-2929 has a balance.',
        ['US_SSN 247-79-2929'],
      ],
      ['a dashed SSN without a label', 'Balance for 364-61-3447 is due.', ['US_SSN 364-61-3447']],
      ['a spaced SSN', 'Social security number: 489 39 3472', ['US_SSN 489 39 3472']],
      ['nine bare digits after the label', 'SSN: 247792929', ['US_SSN 247792929']],
      [
        'nine bare digits a few words after the label',
        'social security no. is 436806300',
        ['US_SSN 436806300'],
      ],
    ],
    [
      ['the Woolworth wallet number', 'SSN 078-05-1120'],
      ['the pamphlet number', 'SSN 219-09-9999'],
      ['the 123-45-6789 sample', 'SSN 123-45-6789'],
      ['a repeated digit', 'SSN 111-11-1111'],
      ['area 000', 'SSN 000-12-3456'],
      ['area 666', 'SSN 666-12-3456'],
      ['area 9xx', 'SSN 912-34-5678'],
      ['group 00', 'SSN 123-00-4567'],
      ['serial 0000', 'SSN 123-45-0000'],
      ['a nine-digit invoice number without SSN context', 'Invoice 247792929 is due on receipt.'],
      ['mixed separators', 'Ref 247-79 2929'],
      ['the middle of a longer number', 'Part 1247-79-2929-01'],
      ['a phone number', 'Call 555-123-4567'],
    ],
  );

  table(
    'US_ITIN',
    ['US_ITIN'],
    [
      ['a dashed ITIN', 'ITIN 912-70-1234', ['US_ITIN 912-70-1234']],
      ['a spaced ITIN', 'taxpayer 978 94 1234', ['US_ITIN 978 94 1234']],
      [
        'a bare ITIN after its label',
        'Individual taxpayer identification number 900701234',
        ['US_ITIN 900701234'],
      ],
    ],
    [
      ['group 93 (not issued)', 'ITIN 912-93-1234'],
      ['group 49 (not issued)', 'ITIN 912-49-1234'],
      ['an SSN-range number', 'ITIN 812-70-1234'],
      ['nine bare digits without a label', 'Order 912701234 shipped'],
      ['tin as a word, far from the number', 'The tin can holds 912701234 beads'],
    ],
  );

  table(
    'NPI',
    ['NPI'],
    [
      ['the CMS example after its label', 'NPI 1234567893', ['NPI 1234567893']],
      ['a provider NPI', 'Rendering provider: Dr. Lee, NPI# 1093817462', ['NPI 1093817462']],
    ],
    [
      ['a wrong check digit', 'NPI 1234567890'],
      ['a valid number without a provider label', 'Account 1234567893 is closed.'],
      ['a number starting with 3', 'NPI 3234567891'],
      ['eleven digits', 'NPI 12345678931'],
    ],
  );

  table(
    'DEA_NUMBER',
    ['DEA_NUMBER'],
    [
      ['a labelled DEA number', 'DEA AB1234563', ['DEA_NUMBER AB1234563']],
      [
        'a DEA number alone (checksum holds)',
        'Prescribed by Dr. Mills, FM3141594.',
        ['DEA_NUMBER FM3141594'],
      ],
    ],
    [
      ['a wrong check digit', 'DEA AB1234567'],
      ['an unknown registrant type', 'DEA ZB1234563'],
      ['eight digits', 'DEA AB12345630'],
      ['a part number', 'Part no. AB123456'],
    ],
  );

  table(
    'MEDICARE_MBI',
    ['MEDICARE_MBI'],
    [
      ['the CMS example with dashes', 'Medicare MBI 1EG4-TE5-MK73', ['MEDICARE_MBI 1EG4-TE5-MK73']],
      ['an MBI without dashes', 'Beneficiary 1EG4TE5MK73 enrolled', ['MEDICARE_MBI 1EG4TE5MK73']],
    ],
    [
      ['an excluded letter (S)', 'MBI 1SG4-TE5-MK73'],
      ['a leading zero', 'MBI 0EG4-TE5-MK73'],
      ['a letter where a digit belongs', 'MBI 1EGA-TE5-MK73'],
      ['one character short', 'MBI 1EG4-TE5-MK7'],
      ['lower case (hashes, tokens)', 'token 1eg4te5mk73'],
    ],
  );

  table(
    'CREDIT_CARD',
    ['CREDIT_CARD'],
    [
      [
        'a Visa number in groups',
        'Card 4111 1111 1111 1111 expires 12/27',
        ['CREDIT_CARD 4111 1111 1111 1111'],
      ],
      ['an American Express number', 'Amex 378282246310005', ['CREDIT_CARD 378282246310005']],
      ['a Mastercard number with dashes', '5555-5555-5555-4444', ['CREDIT_CARD 5555-5555-5555-4444']],
      ['a Discover number', 'paid with 6011111111111117', ['CREDIT_CARD 6011111111111117']],
    ],
    [
      ['a wrong Luhn digit', 'Card 4111 1111 1111 1112'],
      ['an order number with no issuer prefix', 'Order 1234567812345678'],
      ['an ISBN', 'ISBN 978-0-306-40615-7'],
      ['a UPS tracking number', 'Tracking 1Z999AA10123456784'],
      ['a USPS tracking number', 'Tracking 9400111899223197428490'],
      ['zeros', 'Card 0000 0000 0000 0000'],
    ],
  );

  table(
    'EMAIL_ADDRESS',
    ['EMAIL_ADDRESS'],
    [
      [
        'a plain address',
        'Email harper.johnson@example.com today',
        ['EMAIL_ADDRESS harper.johnson@example.com'],
      ],
      [
        'an address in angle brackets with a tag',
        '<a.b+tag@sub.example.co.uk>',
        ['EMAIL_ADDRESS a.b+tag@sub.example.co.uk'],
      ],
      [
        'an address ending a sentence',
        'Write to UtaKortig@jourrapide.com.',
        ['EMAIL_ADDRESS UtaKortig@jourrapide.com'],
      ],
    ],
    [
      ['a host without a domain', 'root@localhost'],
      ['a space after the @', 'name@ example.com'],
      ['a social-media handle', 'follow @oakwood_dental'],
      ['a one-letter top-level domain', 'a@b.c'],
      ['a local part of 70 characters', `${'x'.repeat(70)}@example.com`],
    ],
  );

  table(
    'PHONE_NUMBER',
    ['PHONE_NUMBER'],
    [
      ['(555) 123-4567', 'Call (555) 123-4567 today', ['PHONE_NUMBER (555) 123-4567']],
      ['555-123-4567', 'Phone 608-608-7457.', ['PHONE_NUMBER 608-608-7457']],
      ['555.123.4567', 'cell 555.123.4567', ['PHONE_NUMBER 555.123.4567']],
      ['+1 555 123 4567', 'Call Sophia at +1 272 446 2486 if you', ['PHONE_NUMBER +1 272 446 2486']],
      ['1-555-123-4567', 'toll free 1-800-555-0199', ['PHONE_NUMBER 1-800-555-0199']],
      ['an x extension', '345-899-3560x4587', ['PHONE_NUMBER 345-899-3560x4587']],
      ['an ext. extension', '555-123-4567 ext. 123', ['PHONE_NUMBER 555-123-4567 ext. 123']],
      ['an international number', 'Desk: +41 (0)96 471 07 95', ['PHONE_NUMBER +41 (0)96 471 07 95']],
      ['a local number after a phone word', 'Phone:\n0490 75 40 81', ['PHONE_NUMBER 0490 75 40 81']],
      ['ten bare digits after a phone word', 'call me at 9498777106', ['PHONE_NUMBER 9498777106']],
      ['a number with its line written after it', '085 175 7641-Office', ['PHONE_NUMBER 085 175 7641']],
    ],
    [
      ['a time range', 'Meeting 10:30-11:45 in room 4'],
      ['a price', 'Total $1,234.56 due'],
      ['a version number', 'Upgrade to v2.10.3 tonight'],
      ['an ISBN', 'ISBN 978-0-306-40615-7'],
      ['a product code around a phone-like number', 'SKU 555-123-4567-B2'],
      ['a part number with a trailing group', 'Part 555-123-4567-01'],
      ['an extension alone', 'Please welcome Sophia Lee. Extension 796.'],
      ['a year range', 'Budget 2019-2024'],
      ['an SSN', 'SSN 247-79-2929'],
      ['a ZIP+4', 'Springfield 62704-1234'],
      ['a date', 'Seen 02/12/2008'],
      ['an order number without a phone word', 'Your order #1831970 shipped'],
      ['an area code starting with 1', 'Ref 155-123-4567'],
    ],
  );

  table(
    'FAX_NUMBER',
    ['PHONE_NUMBER', 'FAX_NUMBER'],
    [
      ['a labelled fax number (not also a phone)', 'Fax: 555-123-4568', ['FAX_NUMBER 555-123-4568']],
      ['a fax number with the word after it', '07700 063 966-Fax', ['FAX_NUMBER 07700 063 966']],
      [
        'fax next to phone',
        'Phone 555-123-4567 | Fax 555-123-4568',
        ['PHONE_NUMBER 555-123-4567', 'FAX_NUMBER 555-123-4568'],
      ],
    ],
    [
      ['fax as a verb', 'Please fax the signed form to the office.'],
      ['a fax count', 'Faxed 3 pages on 11/8'],
      ['fax words without a number', 'Our fax machine is broken; use e-fax.'],
    ],
  );

  table(
    'URL (low score: most links are the practice’s or a vendor’s)',
    ['URL'],
    [
      ['an https link', 'See https://example.com/a?b=1).', ['URL https://example.com/a?b=1']],
      ['a www link', 'visit www.example.org for hours', ['URL www.example.org']],
    ],
    [
      ['a bare domain', 'Visit example.com for hours'],
      ['an e-mail address', 'Write to info@example.com'],
      ['a word with http inside', 'xhttp://nothing'],
    ],
    0.3,
  );

  table(
    'IP_ADDRESS',
    ['IP_ADDRESS'],
    [
      ['an IPv4 address', 'Login from 192.168.1.20 failed', ['IP_ADDRESS 192.168.1.20']],
      [
        'a full IPv6 address',
        'host 2001:0db8:85a3:0000:0000:8a2e:0370:7334',
        ['IP_ADDRESS 2001:0db8:85a3:0000:0000:8a2e:0370:7334'],
      ],
      [
        'a compressed IPv6 address',
        'client fe80::1ff:fe23:4567:890a',
        ['IP_ADDRESS fe80::1ff:fe23:4567:890a'],
      ],
    ],
    [
      ['an octet over 255', 'Server 256.1.1.1'],
      ['five groups', 'Version 1.2.3.4.5'],
      ['a three-part version', 'version 2.10.3'],
      ['leading zeros (a date-like string)', 'Code 01.02.03.04'],
      ['a time with seconds', 'at 10:30:45 today'],
      ['a MAC address', 'MAC 00:1A:2B:3C:4D:5E'],
      ['C++ scope operators', 'std::vector and a::b::c'],
    ],
  );

  table(
    'VIN',
    ['VIN'],
    [
      ['a labelled VIN', 'VIN 1HGCM82633A004352', ['VIN 1HGCM82633A004352']],
      ['a VIN with the check digit X', 'vehicle 1M8GDM9AXKP042788', ['VIN 1M8GDM9AXKP042788']],
    ],
    [
      ['a wrong check digit', 'VIN 1HGCM82633A004353'],
      ['sixteen characters', 'VIN 1HGCM82633A00435'],
      ['a forbidden letter (I)', 'VIN IHGCM82633A004352'],
      ['seventeen digits', 'VIN 12345678901234567'],
    ],
  );

  it('reports positions and scores, never the matched text', () => {
    for (const f of findAll(
      'SSN 247-79-2929, call 555-123-4567, mail a@example.com, VIN 1HGCM82633A004352',
    )) {
      expect(Object.keys(f).sort()).to.deep.equal([
        'category',
        'end',
        'part',
        'recognizer',
        'score',
        'start',
        'type',
      ]);
    }
  });

  it('uses the categories of the threat model', () => {
    const byType = new Map(
      findAll('SSN 247-79-2929 NPI 1234567893 DEA AB1234563 MBI 1EG4-TE5-MK73 call 555-123-4567').map((f) => [
        f.type,
        f.category,
      ]),
    );
    expect(Object.fromEntries(byType)).to.deep.equal({
      US_SSN: 'strong',
      NPI: 'care',
      DEA_NUMBER: 'care',
      MEDICARE_MBI: 'strong',
      PHONE_NUMBER: 'identifier',
    });
  });

  describe('validators', () => {
    it('computes Luhn', () => {
      expect(luhnValid('79927398713')).to.equal(true);
      expect(luhnValid('79927398710')).to.equal(false);
      expect(luhnValid('')).to.equal(false);
    });
    it('checks SSN ranges and sample numbers', () => {
      expect(isValidSsn('247-79-2929')).to.equal(true);
      for (const bad of [
        '078-05-1120',
        '219-09-9999',
        '123-45-6789',
        '000-12-3456',
        '666-12-3456',
        '900-12-3456',
        '123-00-4567',
        '123-45-0000',
        '111111111',
        '12345678',
      ])
        expect(isValidSsn(bad), bad).to.equal(false);
    });
    it('checks ITIN group ranges', () => {
      for (const ok of [
        '900-50-0000',
        '900-65-0000',
        '900-70-0000',
        '900-88-0000',
        '900-90-0000',
        '900-92-0000',
        '900-94-0000',
        '900-99-0000',
      ])
        expect(isValidItin(ok), ok).to.equal(true);
      for (const bad of [
        '900-49-0000',
        '900-66-0000',
        '900-69-0000',
        '900-89-0000',
        '900-93-0000',
        '800-70-0000',
      ])
        expect(isValidItin(bad), bad).to.equal(false);
    });
    it('checks NPI with the 80840 prefix', () => {
      expect(isValidNpi('1234567893')).to.equal(true);
      expect(isValidNpi('1234567890')).to.equal(false);
      expect(isValidNpi('3234567893')).to.equal(false);
    });
    it('checks the DEA check digit', () => {
      expect(isValidDea('AB1234563')).to.equal(true);
      expect(isValidDea('AB1234564')).to.equal(false);
      expect(isValidDea('A1234563')).to.equal(false);
    });
    it('checks card prefixes and lengths with Luhn', () => {
      expect(isValidCardNumber('4111111111111111')).to.equal(true);
      expect(isValidCardNumber('378282246310005')).to.equal(true);
      expect(isValidCardNumber('37828224631000')).to.equal(false);
      expect(isValidCardNumber('9111111111111111')).to.equal(false);
    });
    it('checks IP addresses', () => {
      expect(isValidIpv4('10.0.0.255')).to.equal(true);
      expect(isValidIpv4('10.0.0.256')).to.equal(false);
      expect(isValidIpv4('10.00.0.1')).to.equal(false);
      expect(isValidIpv6('2001:db8::1')).to.equal(true);
      expect(isValidIpv6('a::b')).to.equal(false);
      expect(isValidIpv6('1::2::3')).to.equal(false);
    });
    it('checks the VIN check digit', () => {
      expect(isValidVin('1HGCM82633A004352')).to.equal(true);
      expect(isValidVin('1HGCM82633A004353')).to.equal(false);
    });
    it('counts phone digits without the extension and refuses date shapes', () => {
      expect(isPlausiblePhone('555-123-4567 x12345', 10, 10)).to.equal(true);
      expect(isPlausiblePhone('2008-02-12', 7, 15)).to.equal(false);
      expect(isPlausiblePhone('123 45', 7, 15)).to.equal(false);
    });
  });
});

describe('dlp identifiers and labelled identifiers together', () => {
  const both = compileRecognizers([...identifierRecognizers, ...labelledRecognizers]);
  const scan = (text: string) => analyzePart(both, { id: 'text', text, kind: 'body' });

  describe('hostile input (each megabyte completes; the bench times them)', () => {
    const cases: Array<[string, string]> = [
      ['one long number', '1'.repeat(1_000_000)],
      ["'1-' repeated", '1-'.repeat(500_000)],
      ["'a@' repeated", 'a@'.repeat(500_000)],
      ["'1 ' repeated, then a letter", '1 '.repeat(500_000) + 'x'],
      ['an MRN label and a long number', 'MRN ' + '1'.repeat(1_000_000)],
      ['one long word', 'a'.repeat(1_000_000)],
      ["'1.' repeated", '1.'.repeat(500_000)],
      ["'a:' repeated", 'a:'.repeat(500_000)],
      ["'ab:' repeated", 'ab:'.repeat(333_333)],
      ['capitalised words', 'Aa '.repeat(333_333)],
      ['almost street addresses', '1 Main '.repeat(142_857)],
      ['labels without dates', 'DOB '.repeat(250_000)],
      ['link prefixes', 'http://'.repeat(142_857)],
      ['almost SSNs', 'SSN 123-45-678 '.repeat(66_666)],
      ['plus signs', '+1 '.repeat(333_333)],
      ['almost ages', 'age 9'.repeat(200_000)],
      ['units without streets', 'Suite 1 '.repeat(125_000)],
      ['address words and short numbers', 'address Aa 1 '.repeat(76_923)],
      ['phone words and short numbers', 'call 12 '.repeat(125_000)],
    ];
    for (const [label, text] of cases) {
      it(`handles ${label}`, () => {
        const started = performance.now();
        scan(text);
        expect(performance.now() - started).to.be.below(HOSTILE_MS);
      });
    }
  });
});
