// Clinical payloads (HL7 v2, FHIR, C-CDA, X12) are PHI by themselves, so a miss lets a whole patient record
// out in clear, and a false hit on an ordinary CSV, invoice or API document protects mail that needs none.
// Hostile parts must not make the scan slow: every recognizer has to stay linear on a 1 MB part.
import { expect } from 'chai';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { builtinRecognizers } from '../../dlp/recognizers/index.js';
import { payloadRecognizers } from '../../dlp/recognizers/payloads.js';
import type { Finding, TextPart } from '../../dlp/types.js';

/**
 * Hostile inputs must complete: catastrophic backtracking takes minutes to hours on a megabyte, linear code tens of
 * milliseconds. The bound is that generous so the test never fails on shared, busy cores; `npm run bench` prints the
 * real timings and flags any above a second.
 */
const HOSTILE_MS = 10_000;

const compiled = compileRecognizers(payloadRecognizers);

function scan(text: string, kind: TextPart['kind'] = 'body'): Finding[] {
  return analyzePart(compiled, { id: 'text', text, kind });
}

// ---- fixtures ------------------------------------------------------------------------------------------

function makeHl7(opts: { eol?: string; fs?: string; type?: string; segments?: string[] } = {}): string {
  const fs = opts.fs ?? '|';
  const eol = opts.eol ?? '\r';
  const segments = opts.segments ?? [
    'EVN|A01|20240501083000',
    'PID|1||4455667^^^GENHOSP^MR||DOE^JANE^Q||19610412|F|||12 ELM ST^^SPRINGFIELD^IL^62701||(217)555-0142',
    'PV1|1|I|4W^412^1^GENHOSP||||1234^SMITH^ALAN^^^DR|||MED',
  ];
  const msh = [
    'MSH',
    '^~\\&',
    'ADT',
    'GENHOSP',
    'RCV',
    'CLINIC',
    '20240501083000',
    '',
    opts.type ?? 'ADT^A01^ADT_A01',
    'MSG00001',
    'P',
    '2.5.1',
  ].join(fs);
  return [msh, ...segments.map((s) => s.split('|').join(fs))].join(eol) + eol;
}

function makeFhirPatient(): string {
  return JSON.stringify(
    {
      resourceType: 'Patient',
      id: 'pat-1',
      identifier: [{ system: 'urn:oid:2.16.840.1.113883.4.1', value: '000-12-3456' }],
      name: [{ family: 'Doe', given: ['Jane'] }],
      telecom: [{ system: 'phone', value: '217-555-0142' }],
      gender: 'female',
      birthDate: '1961-04-12',
      address: [{ line: ['12 Elm St'], city: 'Springfield', state: 'IL' }],
    },
    null,
    2,
  );
}

function makeFhirBundle(): string {
  const obs = (code: string, value: number) => ({
    fullUrl: `urn:uuid:obs-${code}`,
    resource: {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code }] },
      subject: { reference: 'Patient/pat-1' },
      valueQuantity: { value, unit: 'mg/dL' },
    },
  });
  return JSON.stringify({
    resourceType: 'Bundle',
    type: 'collection',
    entry: [obs('2345-7', 182), obs('4548-4', 9)],
  });
}

function makeCcda(prefix = ''): string {
  const p = prefix ? `${prefix}:` : '';
  const ns = prefix ? `xmlns:${prefix}="urn:hl7-org:v3"` : 'xmlns="urn:hl7-org:v3"';
  return `<?xml version="1.0" encoding="UTF-8"?>
<${p}ClinicalDocument ${ns} xmlns:sdtc="urn:hl7-org:sdtc">
  <${p}realmCode code="US"/>
  <${p}templateId root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01"/>
  <${p}templateId root="2.16.840.1.113883.10.20.22.1.2" extension="2015-08-01"/>
  <${p}title>Continuity of Care Document</${p}title>
  <${p}recordTarget>
    <${p}patientRole>
      <${p}id root="2.16.840.1.113883.19.5" extension="4455667"/>
      <${p}patient><${p}name><${p}given>Jane</${p}given><${p}family>Doe</${p}family></${p}name>
        <${p}birthTime value="19610412"/></${p}patient>
    </${p}patientRole>
  </${p}recordTarget>
</${p}ClinicalDocument>`;
}

function makeX12(
  opts: {
    set?: string;
    gs?: string;
    es?: string;
    term?: string;
    comp?: string;
    envelope?: boolean;
    body?: string[];
  } = {},
): string {
  const es = opts.es ?? '*';
  const term = opts.term ?? '~\n';
  const comp = opts.comp ?? ':';
  const set = opts.set ?? '837';
  const body = opts.body ?? [
    'BHT*0019*00*0123*20240501*1023*CH',
    'NM1*41*2*PREMIER BILLING*****46*TGJ23',
    'HL*1**20*1',
    'NM1*85*2*GENHOSP*****XX*1234567893',
    'HL*2*1*22*0',
    'SBR*P*18*******CI',
    'NM1*IL*1*DOE*JANE****MI*XYZ123456789',
    'DMG*D8*19610412*F',
    `CLM*26463774*100***11${comp}B${comp}1*Y*A*Y*I`,
    `HI*ABK${comp}E119`,
  ];
  const segs = [`ST*${set}*0021*005010X222A1`, ...body, `SE*${body.length + 2}*0021`];
  const isa = `ISA*00*          *00*          *ZZ*SUBMITTERID    *ZZ*RECEIVERID     *240501*1023*^*00501*000000021*0*P*${comp}`;
  const all =
    opts.envelope === false
      ? segs
      : [
          isa,
          `GS*${opts.gs ?? 'HC'}*SENDER*RECEIVER*20240501*1023*21*X*005010X222A1`,
          ...segs,
          'GE*1*21',
          'IEA*1*000000021',
        ];
  return all.map((s) => s.split('*').join(es)).join(term) + term;
}

function make835(): string {
  return makeX12({
    set: '835',
    gs: 'HP',
    body: [
      'BPR*I*132*C*ACH*CTX*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240501',
      'TRN*1*12345*1512345678',
      'N1*PR*INSURANCE COMPANY',
      'CLP*7722337*1*226*132**12*119932404007801',
      'NM1*QC*1*DOE*JANE****MI*XYZ123456789',
    ],
  });
}

// ---- positive rows ---------------------------------------------------------------------------------------

const positives: Array<{ name: string; text: string; type: string; minScore: number }> = [
  { name: 'HL7 ADT^A01 with \\r segment separators', text: makeHl7(), type: 'HL7_V2', minScore: 0.95 },
  {
    name: 'HL7 ADT with \\n separators inside prose',
    text: `Hi, here is the feed that failed:\n\n${makeHl7({ eol: '\n' })}\nThanks`,
    type: 'HL7_V2',
    minScore: 0.95,
  },
  {
    name: 'HL7 ORU^R01 results without PID (OBR/OBX only)',
    text: makeHl7({
      eol: '\r\n',
      type: 'ORU^R01',
      segments: ['OBR|1||5566|2345-7^GLUCOSE', 'OBX|1|NM|2345-7^GLUCOSE||182|mg/dL|70-99|H'],
    }),
    type: 'HL7_V2',
    minScore: 0.85,
  },
  {
    name: 'HL7 quoted in a reply ("> ")',
    text: makeHl7({ eol: '\n' })
      .split('\n')
      .map((l) => `> ${l}`)
      .join('\n'),
    type: 'HL7_V2',
    minScore: 0.95,
  },
  { name: 'HL7 in MLLP framing', text: `\u000b${makeHl7()}\u001c\r`, type: 'HL7_V2', minScore: 0.95 },
  {
    name: 'HL7 with segments run together on one line',
    text: makeHl7({ eol: ' ' }),
    type: 'HL7_V2',
    minScore: 0.95,
  },
  {
    name: 'HL7 with a non-default field separator',
    text: makeHl7({ fs: '#' }),
    type: 'HL7_V2',
    minScore: 0.95,
  },
  { name: 'FHIR Patient (pretty JSON)', text: makeFhirPatient(), type: 'FHIR_JSON', minScore: 0.95 },
  {
    name: 'FHIR Bundle of Observations pointing at a patient',
    text: makeFhirBundle(),
    type: 'FHIR_JSON',
    minScore: 0.85,
  },
  {
    name: 'FHIR bulk export (ndjson)',
    text: [
      '{"resourceType":"Patient","id":"1","name":[{"family":"Doe"}],"birthDate":"1961-04-12"}',
      '{"resourceType":"Patient","id":"2","name":[{"family":"Roe"}],"birthDate":"1970-01-02"}',
    ].join('\n'),
    type: 'FHIR_JSON',
    minScore: 0.95,
  },
  {
    name: 'FHIR Patient (XML)',
    text: '<Patient xmlns="http://hl7.org/fhir"><identifier><value value="4455667"/></identifier><name><family value="Doe"/><given value="Jane"/></name><birthDate value="1961-04-12"/></Patient>',
    type: 'FHIR_XML',
    minScore: 0.95,
  },
  { name: 'C-CDA CCD with default namespace', text: makeCcda(), type: 'CCDA_XML', minScore: 0.95 },
  { name: 'C-CDA with a namespace prefix', text: makeCcda('cda'), type: 'CCDA_XML', minScore: 0.95 },
  { name: 'X12 837P (* ~ :) with line breaks', text: makeX12(), type: 'X12_837', minScore: 0.95 },
  {
    name: 'X12 837 with | elements, ^ components and \\n terminators',
    text: makeX12({ es: '|', term: '\n', comp: '^' }),
    type: 'X12_837',
    minScore: 0.95,
  },
  {
    name: 'X12 837 on one line (no line breaks)',
    text: makeX12({ term: '~' }),
    type: 'X12_837',
    minScore: 0.95,
  },
  { name: 'X12 835 remittance', text: make835(), type: 'X12_835', minScore: 0.95 },
  {
    name: 'X12 837 fragment pasted without its ISA envelope',
    text: `Claim below:\n${makeX12({ envelope: false })}`,
    type: 'X12_837',
    minScore: 0.9,
  },
  {
    name: 'X12 270 eligibility inquiry (another HIPAA transaction)',
    text: makeX12({
      set: '270',
      gs: 'HS',
      body: [
        'BHT*0022*13*10001234*20240501*1319',
        'HL*1**20*1',
        'NM1*PR*2*ABC COMPANY*****PI*842610001',
        'HL*3*2*22*0',
        'NM1*IL*1*DOE*JANE****MI*123456789A',
        'DMG*D8*19610412',
      ],
    }),
    type: 'X12_HIPAA',
    minScore: 0.9,
  },
];

// ---- negative rows ---------------------------------------------------------------------------------------

const negatives: Array<{ name: string; text: string }> = [
  {
    name: 'pipe-delimited CSV export',
    text: 'id|name|dob|balance\n1|Acme Corp|2020-01-01|100.00\n2|Widget Ltd|2019-05-05|55.10\n',
  },
  { name: 'pipe table whose first column is "MSH"', text: 'MSH|count|notes\nMSH|12|fine\nPID|3|also fine\n' },
  { name: 'Markdown table', text: '| Segment | Meaning |\n|---|---|\n| MSH | header |\n| PID | patient |\n' },
  {
    name: 'prose mentioning HL7 and the MSH header',
    text: 'Our HL7 v2 interface expects every message to start with MSH|^~\\&| and we map PID-3 to the MRN.',
  },
  {
    name: 'prose naming MSH-9 and a message type',
    text: 'MSH-9 carries the message type, e.g. ADT^A01, and PV1-2 the patient class.',
  },
  {
    name: 'HL7 acknowledgement (MSH + MSA only)',
    text: makeHl7({ type: 'ACK^A01', segments: ['MSA|AA|MSG00001'] }),
  },
  {
    name: 'JSON with "resourceType" in prose',
    text: '{"comment": "set \\"resourceType\\": \\"Patient\\" before posting", "name": "build notes", "identifier": 7, "address": "n/a"}',
  },
  {
    name: 'prose explaining FHIR fields',
    text: 'A FHIR "resourceType": "Patient" resource has name, birthDate and address fields; see the spec.',
  },
  { name: 'FHIR Patient stub with only an id', text: '{"resourceType": "Patient", "id": "example"}' },
  {
    name: 'FHIR conformance resources (CapabilityStatement, ValueSet)',
    text: JSON.stringify({
      resourceType: 'Bundle',
      entry: [
        {
          resource: {
            resourceType: 'CapabilityStatement',
            name: 'Server',
            identifier: [{ value: 'x' }],
            telecom: [{ value: 'ops@example.org' }],
          },
        },
        { resource: { resourceType: 'ValueSet', name: 'Codes' } },
      ],
    }),
  },
  {
    name: 'FHIR OperationOutcome',
    text: '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"birthDate is required"}]}',
  },
  {
    name: 'XML invoice (UBL)',
    text: '<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><cbc:ID>INV-1</cbc:ID><cac:AccountingCustomerParty><cac:Party><cbc:Name>Jane Doe</cbc:Name><cac:PostalAddress><cbc:StreetName>12 Elm St</cbc:StreetName></cac:PostalAddress></cac:Party></cac:AccountingCustomerParty></Invoice>',
  },
  {
    name: 'XSL stylesheet for CDA (names ClinicalDocument and recordTarget in XPath)',
    text: '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:n1="urn:hl7-org:v3"><xsl:template match="/n1:ClinicalDocument"><xsl:value-of select="n1:recordTarget/n1:patientRole/n1:patient/n1:name"/></xsl:template></xsl:stylesheet>',
  },
  {
    name: 'prose about C-CDA',
    text: 'The C-CDA ClinicalDocument root must carry templateId 2.16.840.1.113883.10.20.22.1.1 and a recordTarget.',
  },
  {
    name: 'X12 850 purchase order',
    text: makeX12({
      set: '850',
      gs: 'PO',
      body: [
        'BEG*00*SA*PO12345**20240501',
        'N1*ST*JANE DOE',
        'N3*12 ELM ST',
        'PO1*1*10*EA*9.99**VP*GLOVES-M',
      ],
    }),
  },
  {
    name: 'prose mentioning X12 837 and 835',
    text: 'We submit X12 837P claims and read 835 remittances; the ST*837* segment opens a claim. ISA*00 is the envelope.',
  },
  { name: 'ISA in prose', text: 'ISA*00*: please see the ISA segment spec, and ask Isa about it.' },
  {
    name: 'EDIFACT invoice',
    text: "UNA:+.? 'UNB+UNOC:3+SENDER+RECEIVER+240501:1023+1'UNH+1+INVOIC:D:96A:UN'NAD+BY+++JANE DOE'UNT+3+1'UNZ+1+1'",
  },
  {
    name: 'ordinary clinic mail',
    text: 'Hi team, the HL7 interface and the FHIR server are down for maintenance tonight; X12 claims will be batched tomorrow.',
  },
  {
    name: 'log lines with pipes and MSH',
    text: 'INFO|2024-05-01|MSH|parser started\nWARN|2024-05-01|PID|not found\n',
  },
];

describe('dlp/recognizers/payloads', () => {
  it('has at least as many negative rows as positive ones', () => {
    expect(negatives.length).to.be.at.least(positives.length);
  });

  describe('finds clinical payloads', () => {
    for (const row of positives) {
      it(row.name, () => {
        const found = scan(row.text);
        const hit = found.find((f) => f.type === row.type);
        expect(hit, JSON.stringify(found)).to.exist;
        expect(hit!.category).to.equal('payload');
        expect(hit!.score).to.be.at.least(row.minScore);
        expect(hit!.start).to.be.at.least(0);
        expect(hit!.end).to.be.above(hit!.start);
        expect(hit!.end).to.be.at.most(row.text.length);
      });
    }
  });

  describe('leaves look-alikes alone', () => {
    for (const row of negatives) {
      it(row.name, () => {
        expect(scan(row.text)).to.deep.equal([]);
      });
    }
  });

  describe('positions', () => {
    it('spans the HL7 message from MSH to its last segment', () => {
      const hl7 = makeHl7({ eol: '\n' });
      const text = `Before.\n\n${hl7}\nAfter the message.`;
      const [hit] = scan(text);
      expect(text.slice(hit!.start, hit!.start + 4)).to.equal('MSH|');
      expect(text.slice(hit!.start, hit!.end)).to.equal(hl7.trimEnd());
    });

    it("finds the C-CDA documents alike when the part's word tokens are at hand (with every recognizer)", () => {
      // With tokens, the recognizer asks them first whether "ClinicalDocument" can be in the part at all.
      const all = compileRecognizers(builtinRecognizers());
      const ccda = (text: string) =>
        analyzePart(all, { id: 'text', text, kind: 'body' }).filter((f) => f.type === 'CCDA_XML').length;
      for (const doc of [makeCcda(), makeCcda('cda'), `Please see:\n${makeCcda('v3')}\nThanks`]) {
        expect(ccda(doc)).to.equal(1);
        expect(scan(doc).filter((f) => f.type === 'CCDA_XML')).to.have.length(1);
      }
      expect(ccda(makeCcda().replaceAll('ClinicalDocument', 'ClinicalNote'))).to.equal(0);
    });

    it('spans the C-CDA document to its closing tag', () => {
      const doc = makeCcda();
      const text = `see attached\n${doc}\nregards`;
      const [hit] = scan(text);
      expect(text.slice(hit!.start, hit!.end)).to.equal(doc.slice(doc.indexOf('<ClinicalDocument')));
    });

    it('reports two separate HL7 messages separated by prose as two findings', () => {
      const text = `${makeHl7({ eol: '\n' })}\nand the second one:\n\n${makeHl7({ eol: '\n' })}`;
      expect(scan(text).filter((f) => f.type === 'HL7_V2')).to.have.length(2);
    });

    it('caps findings per part instead of reporting every message of a batch file', () => {
      const text = Array.from({ length: 200 }, () => `${makeHl7({ eol: '\n' })}note\n`).join('');
      const hits = scan(text).filter((f) => f.type === 'HL7_V2');
      expect(hits.length).to.be.within(1, 50);
    });
  });

  describe('cost on ordinary and hostile parts', () => {
    const MB = 1024 * 1024;
    const fill = (unit: string) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
    const hostile: Array<{ name: string; text: string }> = [
      { name: 'ordinary prose', text: fill('The patient portal is down; please call the front desk. ') },
      { name: '"MSH" over and over', text: fill('MSH') },
      { name: 'MSH headers with nothing after them', text: fill('MSH|^~\\&|') },
      { name: 'MSH headers on one endless line', text: fill('MSH|^~\\&|a|b|c|d|e||ADT^A01|') },
      {
        name: 'a valid header followed by 1 MB of one segment line',
        text: makeHl7({ segments: [] }) + 'PID|' + 'x'.repeat(MB),
      },
      {
        name: 'ACK messages (valid headers, no patient) one after another',
        text: fill(makeHl7({ type: 'ACK', segments: ['MSA|AA|1'], eol: '\n' })),
      },
      { name: '"resourceType" keys without values', text: fill('"resourceType"') },
      { name: 'Patient resources with no fields', text: fill('{"resourceType":"Patient"},') },
      {
        name: 'one Patient then 1 MB of identifying keys',
        text: '{"resourceType":"Patient",' + fill('"birthDate":1,'),
      },
      { name: 'FHIR namespaces without elements', text: fill('"http://hl7.org/fhir"') },
      { name: '<resource> openings padded with spaces', text: fill('<resource>' + ' '.repeat(190)) },
      { name: 'ClinicalDocument openings that never close', text: fill('<ClinicalDocument ') },
      {
        name: 'prefixed ClinicalDocument with long prefixes',
        text: fill('<' + 'a'.repeat(30) + ':ClinicalDocument '),
      },
      { name: 'ISA openings', text: fill('ISA*') },
      {
        name: 'ISA headers of 15 elements that never end',
        text: fill('ISA*00*0*00*0*ZZ*0*ZZ*0*240501*1023*^*00501*1*0*'),
      },
      { name: 'ST*837 fragments with no terminator', text: fill('ST*837*') },
      {
        name: 'an 837 fragment followed by 1 MB without a terminator',
        text: 'ST*837*0001*005010X222A1~NM1*IL*1*' + 'x'.repeat(MB),
      },
      { name: 'tildes and stars', text: fill('*~') },
      { name: 'line breaks only', text: fill('\r\n') },
    ];
    for (const row of hostile) {
      it(`scans 1 MB of ${row.name} to the end`, () => {
        const started = process.hrtime.bigint();
        scan(row.text);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        expect(ms).to.be.below(HOSTILE_MS);
      });
    }
  });
});
