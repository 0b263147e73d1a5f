// Health signals and care context: medical codes, the vocabulary, lab values and clinical phrases, and the office
// words that must not count (cleaning, crown molding, covid-era policy, staff roles). Tables per recognizer have
// at least as many negative rows as positive ones; speed is measured by the bench (bench/scan.ts), not here.
import { expect } from 'chai';
import { recognizerTable } from '../support/recognizer-table.js';
import {
  careContextRecognizer,
  healthRecognizers,
  healthTermRecognizer,
  plausibleIcd10,
} from '../../dlp/recognizers/health.js';

/**
 * Hostile inputs must complete: catastrophic backtracking takes minutes to hours on a megabyte, linear code tens of
 * milliseconds. The bound is that generous so the test never fails on shared, busy cores; `npm run bench` prints the
 * real timings and flags any above a second.
 */
const HOSTILE_MS = 10_000;

const { findAll, table } = recognizerTable(healthRecognizers);

describe('dlp health signals', () => {
  table(
    'ICD10_CODE',
    ['ICD10_CODE'],
    [
      ['a labelled code', 'Dx F32.9.', ['ICD10_CODE F32.9']],
      ['a dotted code alone', 'Follow-up for E11.65 next week.', ['ICD10_CODE E11.65']],
      ['a pregnancy code', 'Z34.01 supervision', ['ICD10_CODE Z34.01']],
      ['a seven-character code', 'S72.001A hip', ['ICD10_CODE S72.001A']],
      ['a bare code after a label', 'ICD-10: I10', ['ICD10_CODE I10']],
      [
        'a labelled list of bare codes',
        'Dx: I10, E1165 and F329',
        ['ICD10_CODE I10', 'ICD10_CODE E1165', 'ICD10_CODE F329'],
      ],
      ['the COVID-19 code', 'Diagnosis U07.1', ['ICD10_CODE U07.1']],
    ],
    [
      ['a lab name', 'A1c 7.9% and A1C trend'],
      ['vitamin B12', 'Vitamin B12 supplements'],
      ['a product name', 'Microsoft M365 licences'],
      ['a bare category without a label', 'E10 alone and I10 alone'],
      ['business jargon', 'B2B sales in Q3 2025'],
      ['masks', 'N95 masks are in the closet'],
      ['a room number', 'Room B12.3 is free'],
      ['a version number', 'Upgrade to E11.65.2 tonight'],
      ['an unused U code', 'Form U12.3'],
      ['a category beyond its chapter', 'Codes E95.1 and H99.1 and T90.1'],
      ['a gap in a chapter', 'Item B12.1 and E14.9'],
      ['lower-case', 'see f32.9 in the manual'],
    ],
  );

  it('checks ICD-10-CM plausibility by chapter', () => {
    for (const c of [
      'F32.9',
      'E11.65',
      'Z34.01',
      'S72.001A',
      'I10',
      'C4A.0',
      'O9A.1',
      'U07.1',
      'T36.0X1A',
      'K02.52',
      'M1A.00',
    ])
      expect(plausibleIcd10(c), c).to.equal(true);
    for (const c of ['A1C', 'B2B', 'U12.3', 'E95.1', 'F00.1', 'C99', 'D3B', 'E11.6A5', 'T89.1', 'I10.ABC'])
      expect(plausibleIcd10(c), c).to.equal(false);
  });

  table(
    'CPT_CODE and HCPCS_CODE',
    ['CPT_CODE', 'HCPCS_CODE'],
    [
      ['a CPT label', 'CPT 99213 office visit', ['CPT_CODE 99213']],
      ['"billed as"', 'It was billed as 99214.', ['CPT_CODE 99214']],
      ['a category II code', 'procedure code: 0001F', ['CPT_CODE 0001F']],
      [
        'a labelled list',
        'CPT codes 99213, 99214 and 90837',
        ['CPT_CODE 99213', 'CPT_CODE 99214', 'CPT_CODE 90837'],
      ],
      ['a category III code', 'CPT 0042T', ['CPT_CODE 0042T']],
      ['an HCPCS label', 'HCPCS J1100 dexamethasone', ['HCPCS_CODE J1100']],
      ['a J-code', 'J-code J3301', ['HCPCS_CODE J3301']],
    ],
    [
      ['a ZIP code', 'zip code 12345'],
      ['a promo code', 'Use promo code 55555 at checkout.'],
      ['an order number', 'Order #99213 shipped.'],
      ['an amount', 'The invoice total is 12500.'],
      ['a meeting code', 'Zoom meeting code 84512 at 3pm'],
      ['a CPT out of range', 'CPT 00050 and CPT 99999'],
      ['a plain number near no label', 'Suite 99213, Springfield'],
      ['HCPCS without a label', 'Part G0101 is in stock.'],
      ['a lower-case code after a label', 'hcpcs j1100'],
      ['a dental code after a billing label (CDT, not HCPCS)', 'code D2740'],
    ],
  );

  table(
    'CDT_CODE',
    ['CDT_CODE'],
    [
      ['a code alone', 'Balance for D7210 surgical extraction.', ['CDT_CODE D7210']],
      ['a labelled code', 'CDT D2950 core buildup', ['CDT_CODE D2950']],
      ['two codes', 'D0210 full-mouth x-rays and D1110 prophylaxis', ['CDT_CODE D0210', 'CDT_CODE D1110']],
      ['after "tx:"', 'tx: D4341', ['CDT_CODE D4341']],
    ],
    [
      ['an unused low number', 'D0050'],
      ['five digits', 'D12345'],
      ['a building wing', 'Building D-2740'],
      ['lower-case', 'd2740'],
      ['inside a part number', 'AD2740X'],
      ['a decimal', 'D2740.5'],
    ],
  );

  table(
    'NDC_CODE',
    ['NDC_CODE'],
    [
      ['a labelled 4-4-2 code', 'NDC 0093-7150-01', ['NDC_CODE 0093-7150-01']],
      ['a 5-3-2 code near "Rx"', 'Rx: 50580-506-02', ['NDC_CODE 50580-506-02']],
      ['an 11-digit code after "NDC"', 'NDC# 00093715001', ['NDC_CODE 00093715001']],
    ],
    [
      ['a phone number', 'Call 555-123-4567'],
      ['a dashed number without a label', 'Ticket 1234-5678-90'],
      ['a date', 'Due 2025-11-24'],
      ['a long number without a label', 'Tracking 00093715001'],
    ],
  );

  table(
    'CONDITION',
    ['CONDITION'],
    [
      ['hypertension', 'booked Tuesday for hypertension follow-up', ['CONDITION hypertension']],
      ['a multi-word condition', 'Referring her for type 2 diabetes.', ['CONDITION type 2 diabetes']],
      ['a long condition', 'generalized anxiety disorder', ['CONDITION generalized anxiety disorder']],
      [
        'dental conditions',
        'gingivitis and dental caries',
        ['CONDITION gingivitis', 'CONDITION dental caries'],
      ],
      ['a plural', 'prevents most cavities', ['CONDITION cavities']],
      ['a possessive name', "Crohn's disease", ["CONDITION Crohn's disease"]],
      [
        'an everyday word next to a clinical one',
        'Patient has the flu and a fever.',
        ['CONDITION the flu', 'CONDITION fever'],
      ],
    ],
    [
      ['covid-era policy (generic)', 'Is the covid-era policy still in force?'],
      ['awareness month', 'Diabetes Awareness Month starts Monday.'],
      ['a cold drink', 'Cold brew in the break room.'],
      ['flu season', 'Flu season signage is up.'],
      ['positive feedback', 'Thanks for the positive feedback!'],
      ['a computer virus', 'The virus scan found nothing.'],
      ['stress at work', 'Lots of stress before the audit.'],
      [
        'staff roles',
        'Please welcome Sophia Lee, our new hygienist. The nurse and the dentist will train her.',
      ],
      ['HIPAA training', 'HIPAA training covers PHI handling.'],
      ['a pain in the neck', 'The new printer is a pain.'],
    ],
  );

  table(
    'MEDICATION',
    ['MEDICATION'],
    [
      ['a drug with a dose', 'lisinopril 10 mg daily', ['MEDICATION lisinopril 10 mg']],
      ['two drugs', 'metformin and atorvastatin', ['MEDICATION metformin', 'MEDICATION atorvastatin']],
      ['prenatal vitamins', 'She takes prenatal vitamins.', ['MEDICATION prenatal vitamins']],
      ['a dose without a space', 'amoxicillin 500mg', ['MEDICATION amoxicillin 500mg']],
      ['vitamin B12 (a medication)', 'vitamin B12', ['MEDICATION vitamin B12']],
      ['an everyday word with a dose', 'iron 65 mg', ['MEDICATION iron 65 mg']],
    ],
    [
      ['lithium batteries', 'Order lithium batteries for the remote.'],
      ['a shot of espresso', 'A shot of espresso, please.'],
      ['ironing', 'Iron the table cloths.'],
      ['a software patch', 'Patch Tuesday updates tonight.'],
      ['an injection attack', 'The pen test found an SQL injection.'],
      ['pills as in pillows', 'Refill the coffee machine.'],
    ],
  );

  table(
    'PROCEDURE',
    ['PROCEDURE'],
    [
      ['a root canal', 'a root canal on #19', ['PROCEDURE root canal']],
      ['full-mouth x-rays', 'D0210 full-mouth x-rays', ['PROCEDURE full-mouth x-rays']],
      ['imaging', 'MRI and colonoscopy', ['PROCEDURE MRI', 'PROCEDURE colonoscopy']],
      ['a crown with a tooth number', 'crown on #14', ['PROCEDURE crown']],
      ['two dental words together', 'a crown and two fillings', ['PROCEDURE crown', 'PROCEDURE fillings']],
      ['scaling and root planing', 'scaling and root planing UR', ['PROCEDURE scaling and root planing']],
    ],
    [
      ['crown molding', 'The crown molding in the lobby is done.'],
      ['the office will be cleaned', 'The office will be cleaned on Saturday.'],
      ['a cleaning crew', 'The cleaning crew arrives at 6.'],
      ['bridging a gap', 'Let us bridge the gap between teams.'],
      ['data extraction', 'Data extraction from the old server.'],
      ['a screening of a film', 'Movie screening on Friday.'],
      ['a treatment of data', 'The treatment of expenses changed.'],
    ],
  );

  table(
    'LAB_RESULT',
    ['LAB_RESULT'],
    [
      ['A1c and LDL', 'A1c 7.9%, LDL 162.', ['LAB_RESULT A1c 7.9%', 'LAB_RESULT LDL 162']],
      ['glucose with a unit', 'glucose 140 mg/dL', ['LAB_RESULT glucose 140 mg/dL']],
      ['blood pressure', 'BP 140/90', ['LAB_RESULT BP 140/90']],
      ['a phrase before the value', 'blood pressure was 150/95', ['LAB_RESULT blood pressure was 150/95']],
      ['"of"', 'INR of 2.5', ['LAB_RESULT INR of 2.5']],
    ],
    [
      ['a BP gas station', 'Meet at the BP station on 5th.'],
      ['a year after a lab name', 'LDL guidelines 2025'],
      ['a lab name alone', 'Glucose meters are on sale.'],
      ['the pulse of the market', 'the pulse of the market'],
      ['a blood pressure without a reading', 'BP 2024 report'],
    ],
  );

  table(
    'HEALTH_PHRASE',
    ['HEALTH_PHRASE'],
    [
      ['"diagnosed with"', 'She is diagnosed with asthma.', ['HEALTH_PHRASE diagnosed with']],
      ['"tested positive for"', 'He tested positive for covid.', ['HEALTH_PHRASE tested positive for']],
      ['"weeks pregnant"', 'She is 12 weeks pregnant.', ['HEALTH_PHRASE weeks pregnant']],
      ['"allergic to"', 'Allergic to penicillin.', ['HEALTH_PHRASE Allergic to']],
      ['"history of" next to a condition', 'history of hypertension', ['HEALTH_PHRASE history of']],
      ['"presenting with"', 'presenting with chest pain', ['HEALTH_PHRASE presenting with']],
    ],
    [
      ['company history', 'The history of the company goes back to 1920.'],
      ['a meeting follow-up', 'Follow-up for the meeting is on Monday.'],
      ['survey results', 'The survey results came back today.'],
      ['"prescribed" format', 'Use the prescribed format for expense reports.'],
      ['a side effect of a policy', 'Side effects of the new parking policy.'],
      ['a reaction to news', 'Her reaction to the news was calm.'],
    ],
  );

  table(
    'CARE_CONTEXT',
    ['CARE_CONTEXT'],
    [
      ['a patient', 'The patient called.', ['CARE_CONTEXT patient']],
      ['billing words (merged when close)', 'Your copay and the claim', ['CARE_CONTEXT copay and the claim']],
      ['a treatment plan', 'Treatment plan attached.', ['CARE_CONTEXT Treatment plan']],
      ['a referral', 'Referral letter enclosed.', ['CARE_CONTEXT Referral']],
    ],
    [
      ['staff roles', 'Our new hygienist, nurse and dentist start Monday.'],
      ['HIPAA training', 'HIPAA training covers PHI handling.'],
      ['a team meeting', 'Staff meeting moved to 3pm Thursday.'],
      ['a password notice', 'Your network password expires in 5 days.'],
    ],
  );

  it('scores care context high enough for the strong-identifier rule (minScore 0.6)', () => {
    const [care] = findAll('Patient SSN on file').filter((f) => f.category === 'care');
    expect(care!.score).to.be.at.least(0.6);
  });

  it('keeps everyday words below the rules unless a second signal is near', () => {
    const lone = healthTermRecognizer.analyze(
      'Flu shots for staff on Friday.',
      ctx('Flu shots for staff on Friday.'),
    );
    expect(lone.filter((f) => f.score >= 0.5)).to.deep.equal([]);
    const supported = findAll('Patient got a flu shot; on metformin.').filter((f) => f.type === 'MEDICATION');
    expect(supported.map((f) => f.score >= 0.5)).to.deep.equal([true, true]);
  });

  it('reports positions, never text, in the right categories', () => {
    for (const f of findAll('Patient Ava: D7210 surgical extraction, Dx K02.9, lisinopril 10 mg')) {
      expect(Object.keys(f).sort()).to.deep.equal([
        'category',
        'end',
        'part',
        'recognizer',
        'score',
        'start',
        'type',
      ]);
      expect(f.category).to.equal(f.type === 'CARE_CONTEXT' ? 'care' : 'health');
    }
  });

  describe('hostile input (each completes; the bench times them)', () => {
    const cases: Array<[string, string]> = [
      ['one huge word', 'diabetes'.repeat(125_000)],
      ["'Dr. ' repeated", 'Dr. '.repeat(250_000)],
      ["'A' repeated", 'A'.repeat(1_000_000)],
      ["'Aa ' repeated", 'Aa '.repeat(333_333)],
      ['digits and dashes', '1234-'.repeat(200_000)],
      ['almost-codes', 'D123 '.repeat(200_000)],
      ['labels without codes', 'CPT code '.repeat(110_000)],
      ['plural-looking words', 'crownss '.repeat(125_000)],
    ];
    for (const [label, text] of cases) {
      it(`handles ${label}`, () => {
        const started = performance.now();
        findAll(text);
        expect(performance.now() - started).to.be.below(HOSTILE_MS);
      });
    }

    it('handles a megabyte of weak words in the recognizer itself', () => {
      const text = 'pain crown cleaning '.repeat(50_000);
      const started = performance.now();
      healthTermRecognizer.analyze(text, ctx(text));
      careContextRecognizer.analyze(text, ctx(text));
      expect(performance.now() - started).to.be.below(HOSTILE_MS);
    });
  });
});

function ctx(text: string) {
  return { part: { id: 'text', text, kind: 'body' as const }, lower: text.toLowerCase(), headerNames: [] };
}
