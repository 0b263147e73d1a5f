// Identifiers that count with a label (MRN, member ID, claim, prior authorisation, account, licence, dates of birth and
// service, ZIP) and those with a shape of their own (ages over 89, street addresses). Tables per recognizer have at
// least as many negative rows as positive ones: the same numbers without their label, labels that are ordinary words,
// dates that are not birthdays, and the capitalised-word-and-number shapes clinical mail is full of.
import { expect } from 'chai';
import { recognizerTable } from '../support/recognizer-table.js';
import { labelledRecognizers } from '../../dlp/recognizers/labelled.js';
import { isPlausibleDate } from '../../dlp/validators.js';

const { findAll, table } = recognizerTable(labelledRecognizers);

describe('dlp labelled identifiers', () => {
  table(
    'MRN',
    ['MRN'],
    [
      ['MRN:', 'MRN: 9881064 / Name: Noah Lopez', ['MRN 9881064']],
      ['MR#', 'MR# 00123456', ['MRN 00123456']],
      ['a spelled-out label', 'Medical record number 123456 on file', ['MRN 123456']],
      ['a chart number with letters', 'Chart no. A12345', ['MRN A12345']],
      ['a patient ID', 'patient ID PT-884422', ['MRN PT-884422']],
      ['a value a few words after its label', 'MRN/DOB: 1234567 / 01/02/1950', ['MRN 1234567']],
    ],
    [
      ['an order number', 'Your order #1831970 shipped'],
      ['a label and another clause', 'MRN pending, call 5551234567'],
      ['four digits', 'MRN: 1234'],
      ['chart as a verb', 'We chart the progress of 12345 tasks'],
      ['a title', 'Mr. Smith 1234567'],
      ['patient without ID', 'patient 1234567'],
      ['a word starting like a label', 'Accident report 123456'],
      ['a label without a value', 'The MRN field is required.'],
    ],
  );

  table(
    'HEALTH_PLAN_ID',
    ['HEALTH_PLAN_ID'],
    [
      [
        'a member ID',
        'Referring Elijah Thomas. Insurance member ID W552795162.',
        ['HEALTH_PLAN_ID W552795162'],
      ],
      ['a group number', 'Group #: 12345678', ['HEALTH_PLAN_ID 12345678']],
      ['a policy number', 'Policy number is ABC1234567', ['HEALTH_PLAN_ID ABC1234567']],
      ['a Medicaid ID', 'Medicaid ID 123456789A', ['HEALTH_PLAN_ID 123456789A']],
      ['a value after a word', 'Member ID verified: XJH123456789', ['HEALTH_PLAN_ID XJH123456789']],
    ],
    [
      ['a member ID card', 'Member ID card enclosed'],
      ['a short count', 'group number of 12 people'],
      ['plan as a word', 'Our plan is to see 123456 visitors'],
      ['member since a year', 'member since 2019'],
      ['a label without a value', 'Policy #: TBD'],
    ],
  );

  table(
    'CLAIM_NUMBER',
    ['CLAIM_NUMBER'],
    [
      ['claim #', 'Claim # 2023-00012345', ['CLAIM_NUMBER 2023-00012345']],
      ['claim number is', 'claim number is A1234567', ['CLAIM_NUMBER A1234567']],
    ],
    [
      ['claim as a verb', 'claim your refund of 123456'],
      ['a year', 'We will claim 2024 losses'],
      ['a status', 'Claim status: pending'],
    ],
  );

  table(
    'PRIOR_AUTH',
    ['PRIOR_AUTH'],
    [
      ['prior auth #', 'Prior auth # PA123456', ['PRIOR_AUTH PA123456']],
      ['PA number', 'PA number 99887766', ['PRIOR_AUTH 99887766']],
      ['authorization number', 'Authorization number: 55512345', ['PRIOR_AUTH 55512345']],
    ],
    [
      ['PA, the state, in a word', 'Archimandrita Pano, PA 73161'],
      ['PA, the state', 'Pittsburgh, PA 15213'],
      ['an auth token without digits', 'auth token abcdef'],
      ['authorization as a word', 'Authorization required for 3 visits'],
    ],
  );

  table(
    'ACCOUNT_NUMBER',
    ['ACCOUNT_NUMBER'],
    [
      ['account #', 'Account # 12345678', ['ACCOUNT_NUMBER 12345678']],
      ['acct', 'acct 7654321', ['ACCOUNT_NUMBER 7654321']],
    ],
    [
      ['account as a word', 'on account of 123456 items'],
      ['a count', 'Log in to your account 2 times'],
      ['accounting', 'Accounting 2024 report'],
    ],
  );

  table(
    'LICENSE_NUMBER',
    ['LICENSE_NUMBER'],
    [
      ["a driver's license", "Driver's license F162823540116", ['LICENSE_NUMBER F162823540116']],
      ['DL#', 'DL# D1234567', ['LICENSE_NUMBER D1234567']],
      ['a license number', 'License number: A1234567', ['LICENSE_NUMBER A1234567']],
    ],
    [
      ['licensed in a year', 'licensed in 2015'],
      ['deciliters', 'LDL 162 mg/dL 123456'],
      ['a renewal', 'license renewal due 2025'],
    ],
  );

  table(
    'DATE_OF_BIRTH',
    ['DATE_OF_BIRTH'],
    [
      ['DOB 02-12-2008', 'Harper Johnson (DOB 02-12-2008) is booked', ['DATE_OF_BIRTH 02-12-2008']],
      ['born 6/10/98', 'Tx plan for Mia Martin, born 6/10/98: D0210', ['DATE_OF_BIRTH 6/10/98']],
      ['Feb 12, 2008', 'Date of birth: Feb 12, 2008', ['DATE_OF_BIRTH Feb 12, 2008']],
      ['12 February 2008', 'D.O.B. 12 February 2008', ['DATE_OF_BIRTH 12 February 2008']],
      ['February 12th 2008', 'birthdate February 12th 2008', ['DATE_OF_BIRTH February 12th 2008']],
      ['an ISO date', 'DOB: 1943-05-07', ['DATE_OF_BIRTH 1943-05-07']],
      ['b. 2/12/2008', 'Jane Roe, b. 2/12/2008', ['DATE_OF_BIRTH 2/12/2008']],
      ['a format hint before the date', 'DOB (mm/dd/yyyy): 01/02/1950', ['DATE_OF_BIRTH 01/02/1950']],
    ],
    [
      ['a visit date', "Mason Harris's ultrasound on 8/3/2014 shows"],
      ['a day that does not exist', 'DOB 13/45/2008'],
      ['February 30', 'DOB 02/30/2008'],
      ['a year alone', 'Born in 1950 in Ohio'],
      ['a shipping date', 'Your order shipped on 11/8/2026.'],
      ['a label in another sentence', 'DOB unknown. Seen 3/4/2024'],
      ['a year before 1880', 'DOB 1/2/1850'],
      ['a time', 'DOB 10:30'],
    ],
  );

  table(
    'DATE_OF_SERVICE',
    ['DATE_OF_SERVICE'],
    [
      ['DOS', 'DOS 03/04/2024', ['DATE_OF_SERVICE 03/04/2024']],
      ['seen on', 'seen on 3/5/2024 for pain', ['DATE_OF_SERVICE 3/5/2024']],
      ['admitted', 'admitted 01/02/2024', ['DATE_OF_SERVICE 01/02/2024']],
      ['discharged on a written date', 'discharged on Jan 5, 2024', ['DATE_OF_SERVICE Jan 5, 2024']],
      ['date of service', 'Date of service: 2024-03-04', ['DATE_OF_SERVICE 2024-03-04']],
    ],
    [
      ['a shipping date', 'shipped 11/8/2026'],
      ['a meeting date', 'meeting on 3/4/2024'],
      ['an impossible date', 'DOS 13/13/2024'],
      ['a count', 'seen 3 patients today'],
      ['a version and a year', 'Version 2.10.3 released 2024'],
      ['a date without a year', 'visit us by 12/31'],
    ],
  );

  table(
    'AGE_OVER_89',
    ['AGE_OVER_89'],
    [
      ['years old', 'She is 92 years old', ['AGE_OVER_89 92']],
      ['age', 'age 94, lives alone', ['AGE_OVER_89 94']],
      ['a hyphenated age', 'a 94-year-old woman', ['AGE_OVER_89 94']],
      ['aged', 'aged 101', ['AGE_OVER_89 101']],
      ['y/o', '95 y/o male', ['AGE_OVER_89 95']],
    ],
    [
      ['89 (Safe Harbor keeps it)', 'age 89'],
      ['88 years old', '88 years old'],
      ['days', 'aged 90 days'],
      ['over 120', '150 years old'],
      ['a percentage', 'age 95%'],
      ['a word ending in age', 'page 94'],
    ],
  );

  table(
    'STREET_ADDRESS',
    ['STREET_ADDRESS'],
    [
      [
        'a US address with unit, city, state and ZIP',
        'lives at 1420 Oak Avenue, Apt 3B, Springfield, IL 62704.',
        ['STREET_ADDRESS 1420 Oak Avenue, Apt 3B, Springfield, IL 62704'],
      ],
      ['a PO box', 'Send it to PO Box 123 please', ['STREET_ADDRESS PO Box 123']],
      [
        'a direction after the suffix',
        '1600 Pennsylvania Avenue NW, Washington, DC 20500',
        ['STREET_ADDRESS 1600 Pennsylvania Avenue NW, Washington, DC 20500'],
      ],
      ['a house number with a letter', 'at 221B Baker Street', ['STREET_ADDRESS 221B Baker Street']],
      [
        'a military address',
        'PSC 0413, Box 8144, APO AA 42323',
        ['STREET_ADDRESS PSC 0413, Box 8144, APO AA 42323'],
      ],
      [
        'a street and number with an address word',
        'She lives at Puruntie 82, Lappeenranta',
        ['STREET_ADDRESS Puruntie 82'],
      ],
      [
        'a street and number with a unit',
        'William Hughes\n20789 Allika 46\nSuite 501',
        ['STREET_ADDRESS 20789 Allika 46\nSuite 501'],
      ],
      ['a street corner', 'the corner of Main St and 5th Ave', ['STREET_ADDRESS Main St and 5th Ave']],
    ],
    [
      ['a suite alone', 'suite 200'],
      ['a diagnosis', 'Type 2 diabetes since 2019'],
      ['a room', 'Room 12 is closed for cleaning.'],
      ['a dose', 'take 2 tablets every 4 hours'],
      ['a sentence about home', 'She lives at home with 2 daughters.'],
      ['a scan', 'had 2 Head CT scans'],
      ['a chapter', 'Chapter 11 of the handbook'],
      ['a lab value near an address word', 'Address on file. LDL 162, A1c 7.9%'],
    ],
  );

  table(
    'ZIP_CODE',
    ['ZIP_CODE'],
    [
      ['a labelled ZIP', 'zip 12345', ['ZIP_CODE 12345']],
      ['a ZIP+4', 'ZIP code: 90210-1234', ['ZIP_CODE 90210-1234']],
      ['a ZIP after city and state', 'Boise, ID 83702', ['ZIP_CODE 83702']],
    ],
    [
      ['a count', '12345 widgets'],
      ['an invoice number', 'Invoice 90210'],
      ['ID without a city', 'ID 83702'],
      ['a zip file', 'zip file 123'],
    ],
  );

  it('reports the identifier, not its label', () => {
    const text = 'MRN: 9881064';
    const [f] = findAll(text);
    expect(text.slice(f!.start, f!.end)).to.equal('9881064');
    expect(Object.keys(f!).sort()).to.deep.equal([
      'category',
      'end',
      'part',
      'recognizer',
      'score',
      'start',
      'type',
    ]);
  });

  it('uses the categories of the threat model', () => {
    const byType = new Map(
      findAll('MRN 9881064, member ID W552795162, DOB 1/2/1950, age 94').map((f) => [f.type, f.category]),
    );
    expect(Object.fromEntries(byType)).to.deep.equal({
      MRN: 'strong',
      HEALTH_PLAN_ID: 'strong',
      DATE_OF_BIRTH: 'identifier',
      AGE_OVER_89: 'identifier',
    });
  });

  describe('dates', () => {
    it('accepts real dates in the usual forms', () => {
      for (const d of [
        '2/12/2008',
        '02-12-2008',
        '6/10/98',
        '2008-02-12',
        'Feb 12, 2008',
        '12 February 2008',
        'February 12th 2008',
        '29/02/2024',
        '12FEB2008',
      ])
        expect(isPlausibleDate(d, 1880, 2099), d).to.equal(true);
    });
    it('refuses impossible dates and years out of range', () => {
      for (const d of [
        '2/30/2008',
        '13/13/2008',
        '2/29/2023',
        '0/1/2000',
        'Foo 12, 2008',
        '1/2/1850',
        '1/2/2100',
        '2008-13-01',
      ])
        expect(isPlausibleDate(d, 1880, 2099), d).to.equal(false);
    });
  });
});
