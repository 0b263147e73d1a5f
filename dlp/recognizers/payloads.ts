// Recognizers for clinical data payloads pasted into or attached to mail: HL7 v2 messages, FHIR resources
// (JSON and XML), C-CDA documents and X12 837/835 (and other HIPAA) transactions, each PHI by itself.
// Each one first looks for a cheap marker with indexOf, so ordinary mail costs a few string searches. Past that,
// every scan moves forward through the text and never returns, so a hostile 1 MB part stays linear.
import type { CustomRecognizer, Finding, Recognizer } from '../types.js';

type Found = Omit<Finding, 'part'>;

/** A part holding thousands of payloads needs one finding to be PHI, not thousands: the rest adds nothing. */
const MAX_FINDINGS = 50;

function isAlnum(c: string | undefined): boolean {
  if (c === undefined) return false;
  const code = c.charCodeAt(0);
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** A delimiter an EDI format may choose: printable, not a letter, digit or space. */
function isDelimiter(c: string | undefined): c is string {
  return c !== undefined && c.length === 1 && c > ' ' && c !== '\u007f' && !isAlnum(c);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------------------
// HL7 v2: MSH|^~\&|SENDER|FAC|RECEIVER|FAC|20240101||ADT^A01|… then PID, PV1, OBX … segments, one a line
// (\r in the standard, \n or \r\n once it has passed through mail).

/** Segments that name the patient (or a relative, guarantor, insured): the message identifies a person. */
const HL7_PATIENT = ['PID', 'PD1', 'NK1', 'GT1', 'IN1', 'IN2', 'IN3', 'MRG', 'QRD'];
/** Segments with clinical, visit or billing facts about the message's patient. */
const HL7_CLINICAL = [
  'PV1',
  'PV2',
  'OBX',
  'OBR',
  'ORC',
  'DG1',
  'DRG',
  'PR1',
  'AL1',
  'IAM',
  'RXA',
  'RXE',
  'RXO',
  'RXD',
  'RXG',
  'RXR',
  'SCH',
  'AIS',
  'AIG',
  'TXA',
  'SPM',
  'FT1',
  'ACC',
  'UB1',
  'UB2',
  'PRB',
  'GOL',
  'PTH',
  'TQ1',
];
const HL7_PATIENT_SET = new Set(HL7_PATIENT);
const HL7_CLINICAL_SET = new Set(HL7_CLINICAL);
/** Blank lines tolerated inside one message (\r\r\n endings make one after every segment). */
const HL7_MAX_BLANK = 2;
/** MSH-3 … MSH-8 are short; a header whose message type is further away than this is not one. */
const HL7_HEADER_LIMIT = 512;

const LINE = /[^\r\n]*/y;
const inlineSegmentRegexes = new Map<string, RegExp>();

/** Segments run together on one line (line breaks lost on the way): " PID|" inside a line starts a segment too. */
function inlineSegmentRegex(fs: string): RegExp {
  let re = inlineSegmentRegexes.get(fs);
  if (!re) {
    re = new RegExp(
      `[\\s\\u000b\\u001c](${[...HL7_PATIENT, ...HL7_CLINICAL].join('|')})${escapeRegex(fs)}`,
      'g',
    );
    inlineSegmentRegexes.set(fs, re);
  }
  return re;
}

/** Returns the field separator when an MSH header starts at i (MSH, separator, encoding characters, MSH-9 message type). */
function parseMshHeader(text: string, i: number): string | null {
  if (i > 0 && isAlnum(text[i - 1])) return null;
  const fs = text[i + 3];
  if (!isDelimiter(fs)) return null;
  // MSH-2: two to five distinct encoding characters (component, repetition, escape, subcomponent, truncation).
  const encoding: string[] = [];
  let j = i + 4;
  while (j < text.length && text[j] !== fs) {
    const c = text[j];
    if (!isDelimiter(c) || encoding.includes(c) || encoding.length >= 5) return null;
    encoding.push(c);
    j++;
  }
  if (text[j] !== fs || encoding.length < 2) return null;
  // Six more separators lead to MSH-9; all on the header line and close by.
  const limit = Math.min(text.length, i + HL7_HEADER_LIMIT);
  let separators = 0;
  let k = j + 1;
  while (k < limit && separators < 6) {
    const c = text[k];
    if (c === '\r' || c === '\n') return null;
    if (c === fs) separators++;
    k++;
  }
  if (separators < 6) return null;
  const type = text.slice(k, k + 3);
  const after = text[k + 3];
  if (!/^[A-Z][A-Z0-9]{2}$/.test(type)) return null;
  if (after !== undefined && after !== fs && after !== encoding[0] && after !== '\r' && after !== '\n')
    return null;
  return fs;
}

/** Where an HL7 segment line's content begins, past quoting ("> ") and MLLP framing characters. */
function segmentContentStart(line: string): number {
  let s = 0;
  while (s < line.length && s < 16 && ' \t>\u000b\u001c'.includes(line[s]!)) s++;
  return s;
}

interface Hl7Block {
  end: number;
  patient: boolean;
  clinical: boolean;
}

/** Walks the segment lines that follow an MSH header, up to the first line that is not a segment. */
function scanHl7Block(text: string, start: number, fs: string): Hl7Block {
  const block: Hl7Block = { end: start, patient: false, clinical: false };
  const inline = inlineSegmentRegex(fs);
  let p = start;
  let blanks = 0;
  while (p < text.length) {
    LINE.lastIndex = p;
    const line = LINE.exec(text)?.[0] ?? '';
    const lineEnd = p + line.length;
    let next = lineEnd;
    if (text[next] === '\r') next++;
    if (text[next] === '\n') next++;
    const s = segmentContentStart(line);
    if (s === line.length) {
      if (++blanks > HL7_MAX_BLANK || next === lineEnd) break;
      p = next;
      continue;
    }
    const id = line.slice(s, s + 3);
    if (!/^[A-Z][A-Z0-9]{2}$/.test(id) || line[s + 3] !== fs) break;
    blanks = 0;
    if (HL7_PATIENT_SET.has(id)) block.patient = true;
    if (HL7_CLINICAL_SET.has(id)) block.clinical = true;
    inline.lastIndex = 0;
    for (let m = inline.exec(line); m; m = inline.exec(line)) {
      if (HL7_PATIENT_SET.has(m[1]!)) block.patient = true;
      else block.clinical = true;
    }
    block.end = lineEnd;
    if (next === lineEnd) break;
    p = next;
  }
  return block;
}

export const hl7v2Recognizer: CustomRecognizer = {
  id: 'payload-hl7v2',
  emits: [['HL7_V2', 'payload']],
  analyze(text) {
    const out: Found[] = [];
    let pos = 0;
    for (
      let i = text.indexOf('MSH', pos);
      i !== -1 && out.length < MAX_FINDINGS;
      i = text.indexOf('MSH', pos)
    ) {
      const fs = parseMshHeader(text, i);
      if (fs === null) {
        pos = i + 3;
        continue;
      }
      // A block may be a batch of messages: every MSH inside it is covered by this one walk.
      const block = scanHl7Block(text, i, fs);
      pos = Math.max(block.end, i + 3);
      // An MSH with only MSA/ERR/EVN (an acknowledgement) names nobody.
      if (block.patient || block.clinical) {
        out.push({
          type: 'HL7_V2',
          category: 'payload',
          start: i,
          end: block.end,
          score: block.patient ? 0.95 : 0.85,
          recognizer: 'payload-hl7v2',
        });
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------
// FHIR: {"resourceType": "Patient", "name": [...], "birthDate": ...} or <Patient xmlns="http://hl7.org/fhir">.

/** Resources about one person, identifying by their own fields. */
const FHIR_PERSON = new Set(['Patient', 'RelatedPerson', 'Person']);
/** Resources recording care, coverage or payment for a patient they point at. */
const FHIR_CLINICAL = new Set([
  'Observation',
  'Condition',
  'Encounter',
  'Procedure',
  'DiagnosticReport',
  'MedicationRequest',
  'MedicationStatement',
  'MedicationAdministration',
  'MedicationDispense',
  'AllergyIntolerance',
  'Immunization',
  'CarePlan',
  'CareTeam',
  'Goal',
  'ServiceRequest',
  'Appointment',
  'AppointmentResponse',
  'Composition',
  'DocumentReference',
  'QuestionnaireResponse',
  'Specimen',
  'ImagingStudy',
  'EpisodeOfCare',
  'FamilyMemberHistory',
  'ClinicalImpression',
  'RiskAssessment',
  'NutritionOrder',
  'DeviceRequest',
  'DeviceUseStatement',
  'Consent',
  'Communication',
  'Flag',
  'DetectedIssue',
  'Claim',
  'ClaimResponse',
  'ExplanationOfBenefit',
  'Coverage',
  'CoverageEligibilityRequest',
  'CoverageEligibilityResponse',
  'Account',
  'Invoice',
  'ChargeItem',
  'MolecularSequence',
  'BodyStructure',
  'AdverseEvent',
  'VisionPrescription',
]);
/** Fields that identify a person (family and given are parts of a name, so they count as one). */
const FHIR_PERSON_FIELDS = new Map([
  ['birthDate', 'birthDate'],
  ['family', 'name'],
  ['given', 'name'],
  ['identifier', 'identifier'],
  ['telecom', 'telecom'],
  ['address', 'address'],
  ['deceasedDateTime', 'deceased'],
  ['multipleBirthInteger', 'multipleBirth'],
]);
/** Fields that tie a clinical resource to its patient. */
const FHIR_LINK_FIELDS = new Set(['subject', 'patient', 'beneficiary']);
/** Resources and fields further apart than this belong to different payloads. */
const FHIR_WINDOW = 4000;

const FHIR_JSON_RESOURCE = /"resourceType"\s{0,20}:\s{0,20}"([A-Za-z]{2,64})"/y;
const FHIR_JSON_FIELD =
  /"(birthDate|family|given|identifier|telecom|address|deceasedDateTime|multipleBirthInteger|subject|patient|beneficiary)"\s{0,20}:/g;
const FHIR_XML_NAMESPACE = '"http://hl7.org/fhir"';
const FHIR_XML_ROOT = /^<([A-Z][A-Za-z]{1,63})\s/;
const FHIR_XML_INNER = /<resource>\s{0,200}<([A-Z][A-Za-z]{1,63})[\s>]/g;
const FHIR_XML_FIELD =
  /<(birthDate|family|given|identifier|telecom|address|deceasedDateTime|multipleBirthInteger|subject|patient|beneficiary)[\s>/]/g;

interface Mark {
  start: number;
  end: number;
  name: string;
}

/** Scores groups of nearby resources by the identifying and linking fields around them. */
function scoreFhir(resources: Mark[], fields: Mark[], type: string): Found[] {
  const out: Found[] = [];
  let f = 0;
  let r = 0;
  while (r < resources.length && out.length < MAX_FINDINGS) {
    // A block: resources each within the window of the one before.
    let last = r;
    while (last + 1 < resources.length && resources[last + 1]!.start - resources[last]!.end <= FHIR_WINDOW)
      last++;
    const first = resources[r]!;
    const final = resources[last]!;
    let person = false;
    let clinical = false;
    for (let k = r; k <= last; k++) {
      person ||= FHIR_PERSON.has(resources[k]!.name);
      clinical ||= FHIR_CLINICAL.has(resources[k]!.name);
    }
    const lo = first.start - FHIR_WINDOW;
    const hi = final.end + FHIR_WINDOW;
    while (f < fields.length && fields[f]!.start < lo) f++;
    const identifying = new Set<string>();
    let linked = false;
    let end = final.end;
    for (let k = f; k < fields.length && fields[k]!.start < hi; k++) {
      const name = fields[k]!.name;
      const kind = FHIR_PERSON_FIELDS.get(name);
      if (kind) identifying.add(kind);
      if (FHIR_LINK_FIELDS.has(name)) linked = true;
      end = Math.max(end, fields[k]!.end);
    }
    let score = 0;
    if (person && identifying.size >= 2) score = 0.95;
    else if (clinical && linked) score = 0.85;
    else if (person && identifying.size === 1) score = 0.75;
    else if (clinical && identifying.size >= 2) score = 0.75;
    if (score > 0)
      out.push({ type, category: 'payload', start: first.start, end, score, recognizer: 'payload-fhir' });
    r = last + 1;
  }
  return out;
}

function collect(re: RegExp, text: string): Mark[] {
  const marks: Mark[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text))
    marks.push({ start: m.index, end: m.index + m[0].length, name: m[1]! });
  return marks;
}

function fhirJson(text: string): Found[] {
  if (text.indexOf('"resourceType"') === -1) return [];
  const resources: Mark[] = [];
  let pos = 0;
  for (let i = text.indexOf('"resourceType"', pos); i !== -1; i = text.indexOf('"resourceType"', pos)) {
    FHIR_JSON_RESOURCE.lastIndex = i;
    const m = FHIR_JSON_RESOURCE.exec(text);
    if (m) resources.push({ start: i, end: i + m[0].length, name: m[1]! });
    pos = i + 14;
  }
  if (!resources.some((r) => FHIR_PERSON.has(r.name) || FHIR_CLINICAL.has(r.name))) return [];
  return scoreFhir(resources, collect(FHIR_JSON_FIELD, text), 'FHIR_JSON');
}

function fhirXml(text: string): Found[] {
  if (text.indexOf(FHIR_XML_NAMESPACE) === -1) return [];
  const resources: Mark[] = [];
  let pos = 0;
  for (let i = text.indexOf(FHIR_XML_NAMESPACE, pos); i !== -1; i = text.indexOf(FHIR_XML_NAMESPACE, pos)) {
    pos = i + FHIR_XML_NAMESPACE.length;
    // Only the opening tag of this element is looked at: a bounded look back, never a search to the start.
    const from = Math.max(0, i - 300);
    const back = text.slice(from, i).lastIndexOf('<');
    if (back === -1) continue;
    const lt = from + back;
    const m = FHIR_XML_ROOT.exec(text.slice(lt, lt + 80));
    if (m) resources.push({ start: lt, end: pos, name: m[1]! });
  }
  // Resources inside a Bundle do not repeat the namespace.
  resources.push(...collect(FHIR_XML_INNER, text));
  resources.sort((a, b) => a.start - b.start);
  if (!resources.some((r) => FHIR_PERSON.has(r.name) || FHIR_CLINICAL.has(r.name))) return [];
  return scoreFhir(resources, collect(FHIR_XML_FIELD, text), 'FHIR_XML');
}

export const fhirRecognizer: CustomRecognizer = {
  id: 'payload-fhir',
  emits: [
    ['FHIR_JSON', 'payload'],
    ['FHIR_XML', 'payload'],
  ],
  analyze(text) {
    return [...fhirJson(text), ...fhirXml(text)];
  },
};

// ---------------------------------------------------------------------------------------------------------
// C-CDA: <ClinicalDocument xmlns="urn:hl7-org:v3"> with templateId 2.16.840.1.113883.10.20.22.… and a recordTarget.

const CDA_OPEN = /<(?:[A-Za-z_][\w.-]{0,30}:)?ClinicalDocument(?=[\s>/])/g;
const CDA_PATIENT = /<(?:[A-Za-z_][\w.-]{0,30}:)?(?:recordTarget|patientRole)[\s>]/;

export const ccdaRecognizer: CustomRecognizer = {
  id: 'payload-ccda',
  emits: [['CCDA_XML', 'payload']],
  analyze(text, ctx) {
    // The element's name is a word token of its own ("<ClinicalDocument", "<cda:ClinicalDocument "): the part's tokens
    // tell at once when it is not there, where a search of the part took 37 µs per 100 KB.
    if (ctx.mayHaveWord?.('clinicaldocument') === false || text.indexOf('ClinicalDocument') === -1) return [];
    const out: Found[] = [];
    CDA_OPEN.lastIndex = 0;
    for (let m = CDA_OPEN.exec(text); m && out.length < MAX_FINDINGS; m = CDA_OPEN.exec(text)) {
      const start = m.index;
      const close = text.indexOf('ClinicalDocument>', start + m[0].length);
      const end = close === -1 ? text.length : close + 'ClinicalDocument>'.length;
      // Documents do not overlap, so each character is looked at by one document's checks only.
      const doc = text.slice(start, end);
      const namespace = doc.includes('urn:hl7-org:v3');
      const template =
        doc.includes('2.16.840.1.113883.10.20.22') || doc.includes('2.16.840.1.113883.3.27.1776');
      const patient = CDA_PATIENT.test(doc);
      let score = 0;
      if ((namespace || template) && patient) score = 0.95;
      else if (namespace && template) score = 0.8;
      if (score > 0)
        out.push({ type: 'CCDA_XML', category: 'payload', start, end, score, recognizer: 'payload-ccda' });
      CDA_OPEN.lastIndex = end;
    }
    return out;
  },
};

// ---------------------------------------------------------------------------------------------------------
// X12: ISA*00*…*00501*000000001*0*P*:~GS*HC*…~ST*837*0001*005010X222A1~ … NM1*IL … DMG … CLM …~SE~GE~IEA~

/** Segments naming a member, patient or dependent, or their claim. */
const X12_MEMBER_SEGMENTS = new Set([
  'DMG',
  'PAT',
  'INS',
  'CLM',
  'CLP',
  'SBR',
  'HI',
  'EB',
  'SV1',
  'SV2',
  'SV3',
]);
/** Entity codes in NM1 for the insured (IL), the patient (QC) and a dependent (03). */
const X12_MEMBER_ENTITIES = new Set(['IL', 'QC', '03']);
/** HIPAA transactions other than 837/835 that carry member data: eligibility, status, authorisation, enrolment. */
const X12_OTHER_HIPAA = new Set(['270', '271', '275', '276', '277', '278', '820', '834']);
const X12_SEGMENT_ID = /^[A-Z][A-Z0-9]{1,2}$/;
/** An ISA segment is 106 characters; one with trimmed padding is shorter, never much longer. */
const X12_ISA_LIMIT = 200;

interface X12Envelope {
  es: string;
  term: string;
}

/** Reads the ISA header at i: its element separator and the segment terminator after ISA16. */
function parseIsa(text: string, i: number): X12Envelope | null {
  if (i > 0 && isAlnum(text[i - 1])) return null;
  const es = text[i + 3];
  if (!isDelimiter(es)) return null;
  const limit = Math.min(text.length, i + X12_ISA_LIMIT);
  const elements: string[] = [];
  let from = i + 4;
  for (let k = from; k < limit && elements.length < 15; k++) {
    const c = text[k];
    if (c === '\r' || c === '\n') return null;
    if (c === es) {
      elements.push(text.slice(from, k));
      from = k + 1;
      // ISA01 (authorisation qualifier) is two digits: most look-alikes fail here, before reading further.
      if (elements.length === 1 && !/^\d{2}$/.test(elements[0]!)) return null;
    }
  }
  if (elements.length < 15) return null;
  // ISA16 (component separator) is one character, the segment terminator follows it.
  const term = text[from + 1];
  if (!isDelimiter(text[from])) return null;
  if (term === undefined || isAlnum(term) || term === es || term === ' ') return null;
  const [isa01, , , , , , , , isa09, , , isa12, isa13] = elements.map((e) => e.trim());
  if (
    !/^\d{2}$/.test(isa01 ?? '') ||
    !/^\d{6}$/.test(isa09 ?? '') ||
    !/^\d{5}$/.test(isa12 ?? '') ||
    !/^\d{1,9}$/.test(isa13 ?? '')
  )
    return null;
  return { es, term };
}

interface X12Block {
  end: number;
  sets: Set<string>;
  member: boolean;
}

/** Walks segments from start to IEA or to the first piece of text that is not a segment. */
function scanX12(text: string, start: number, env: X12Envelope): X12Block {
  const block: X12Block = { end: start, sets: new Set(), member: false };
  let p = start;
  while (p < text.length) {
    while (p < text.length && (text[p] === '\r' || text[p] === '\n' || text[p] === ' ' || text[p] === '\t'))
      p++;
    const q = text.indexOf(env.term, p);
    const segEnd = q === -1 ? text.length : q;
    // Only the first elements matter; a segment may be long.
    const head = text.slice(p, Math.min(segEnd, p + 64)).split(env.es);
    const id = head[0] ?? '';
    if (!X12_SEGMENT_ID.test(id) || head.length < 2) break;
    if (id === 'ST' && head[1]) block.sets.add(head[1].trim());
    if (id === 'NM1' && X12_MEMBER_ENTITIES.has((head[1] ?? '').trim())) block.member = true;
    if (X12_MEMBER_SEGMENTS.has(id)) block.member = true;
    block.end = q === -1 ? text.length : q + 1;
    if (q === -1 || id === 'IEA') break;
    p = q + 1;
  }
  return block;
}

function x12Finding(block: X12Block, start: number, envelope: boolean): Found | null {
  const sets = block.sets;
  const type = sets.has('837')
    ? 'X12_837'
    : sets.has('835')
      ? 'X12_835'
      : [...sets].some((s) => X12_OTHER_HIPAA.has(s))
        ? 'X12_HIPAA'
        : null;
  if (!type) return null;
  let score = 0;
  if (block.member) score = type === 'X12_HIPAA' ? 0.9 : 0.95;
  else if (envelope && type !== 'X12_HIPAA') score = 0.7;
  if (score === 0) return null;
  return { type, category: 'payload', start, end: block.end, score, recognizer: 'payload-x12' };
}

/** An 837/835 pasted without its ISA envelope: ST*837*… at a segment start. */
const X12_FRAGMENT = /(?<![A-Za-z0-9])ST([*|^:!])(83[57])\1/g;
/** How far past "ST*837*" the ST segment's terminator may be (control number and implementation reference). */
const X12_ST_LIMIT = 80;

/** The terminator of a fragment's ST segment: the first character past its elements that is not part of one. */
function fragmentTerminator(text: string, from: number, es: string): string {
  const limit = Math.min(text.length, from + X12_ST_LIMIT);
  for (let k = from; k < limit; k++) {
    const c = text[k]!;
    if (c !== es && c !== ' ' && c !== '.' && c !== '-' && !isAlnum(c)) return c;
  }
  return '~';
}

export const x12Recognizer: CustomRecognizer = {
  id: 'payload-x12',
  emits: (['X12_837', 'X12_835', 'X12_HIPAA'] as const).map((type) => [type, 'payload'] as const),
  analyze(text) {
    const out: Found[] = [];
    const envelopes: Array<[number, number]> = [];
    if (text.indexOf('ISA') !== -1) {
      let pos = 0;
      for (
        let i = text.indexOf('ISA', pos);
        i !== -1 && out.length < MAX_FINDINGS;
        i = text.indexOf('ISA', pos)
      ) {
        const env = parseIsa(text, i);
        if (!env) {
          pos = i + 3;
          continue;
        }
        const block = scanX12(text, i, env);
        pos = Math.max(block.end, i + 3);
        envelopes.push([i, pos]);
        const found = x12Finding(block, i, true);
        if (found) out.push(found);
      }
    }
    if (text.indexOf('837') === -1 && text.indexOf('835') === -1) return out;
    let e = 0;
    X12_FRAGMENT.lastIndex = 0;
    for (let m = X12_FRAGMENT.exec(text); m && out.length < MAX_FINDINGS; m = X12_FRAGMENT.exec(text)) {
      // Transactions inside an interchange were judged with it.
      while (e < envelopes.length && envelopes[e]![1] <= m.index) e++;
      const envelope = envelopes[e];
      if (envelope && envelope[0] <= m.index) {
        X12_FRAGMENT.lastIndex = envelope[1];
        continue;
      }
      const es = m[1]!;
      const block = scanX12(text, m.index, { es, term: fragmentTerminator(text, m.index + m[0].length, es) });
      const found = x12Finding(block, m.index, false);
      if (found) out.push(found);
      X12_FRAGMENT.lastIndex = Math.max(block.end, m.index + 1);
    }
    return out;
  },
};

export const payloadRecognizers: Recognizer[] = [
  hl7v2Recognizer,
  fhirRecognizer,
  ccdaRecognizer,
  x12Recognizer,
];
