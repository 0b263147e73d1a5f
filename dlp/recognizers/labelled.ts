// Identifiers that look like any other number until a label says what they are (MRN, member ID, claim, DOB …), plus
// the ones with a shape of their own that a label only confirms (ages over 89, street addresses, ZIP after a state).
// Labelled patterns mark the identifier with a named group `id`; the label is the rest of the match.
import { wordListRegex } from '../engine.js';
import type { CustomRecognizer, Finding, PatternRecognizer, Recognizer } from '../types.js';
import { isPlausibleDate } from '../validators.js';

const DEFAULT_WINDOW = 60;
const DEFAULT_BOOST = 0.35;
/** Characters kept around a searched stretch for lookbehinds and lookaheads (the longest here look at three). */
const LOOKAROUND_MARGIN = 8;

/**
 * Runs a labelled recognizer (requireContext) only around its labels, with the engine's rules: same patterns, scores,
 * validator, window (before the match, half of it after) and boost. The engine would try the patterns over the whole
 * text and then drop every match without a label near; looking only near the labels gives the same findings for a
 * fraction of the work on long texts. `maxMatch` bounds how long a match can be, so that one ending just before a label
 * is still seen.
 */
export function scanNearLabels(spec: PatternRecognizer, maxMatch = 120): CustomRecognizer {
  const labels = wordListRegex(spec.context ?? [], 'gi');
  const window = spec.contextWindow ?? DEFAULT_WINDOW;
  const after = Math.floor(window / 2);
  const boost = spec.contextBoost ?? DEFAULT_BOOST;
  const patterns = spec.patterns.map((p) => ({ score: p.score, regex: new RegExp(p.regex.source, [...new Set(`${p.regex.flags}g`)].join('')) }));
  return {
    id: spec.id,
    analyze(text, ctx) {
      const out: Array<Omit<Finding, 'part'>> = [];
      // Where the labels are, and the stretches of text where a match could have one close enough.
      const starts: number[] = [];
      const ends: number[] = [];
      const spans: Array<[number, number]> = [];
      labels.lastIndex = 0;
      for (let m = labels.exec(ctx.lower); m; m = labels.exec(ctx.lower)) {
        const s = m.index;
        const e = s + m[0].length;
        starts.push(s);
        ends.push(e);
        const from = Math.max(0, s - after - maxMatch);
        const to = Math.min(text.length, e + window);
        const last = spans[spans.length - 1];
        if (last && from <= last[1]) last[1] = Math.max(last[1], to);
        else spans.push([from, to]);
      }
      if (starts.length === 0) return out;
      /** A label lies wholly in [from, to). */
      const labelWithin = (from: number, to: number): boolean => {
        let lo = 0;
        let hi = starts.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (starts[mid]! < from) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < starts.length && starts[i]! < to; i++) if (ends[i]! <= to) return true;
        return false;
      };
      for (const pattern of patterns) {
        const re = pattern.regex;
        let next = 0;
        for (const [from, to] of spans) {
          // A search runs on until it finds a match, wherever that is: search a copy of the stretch, with a few characters
          // before it for lookbehinds and room after it for a match that starts inside and ends outside.
          const base = Math.max(0, from - LOOKAROUND_MARGIN);
          const piece = text.slice(base, Math.min(text.length, to + maxMatch + LOOKAROUND_MARGIN));
          re.lastIndex = Math.max(from, next) - base;
          for (let m = re.exec(piece); m && base + m.index <= to; m = re.exec(piece)) {
            next = base + re.lastIndex;
            if (m[0].length === 0) {
              re.lastIndex++;
              continue;
            }
            const id = m.groups?.id;
            const start = base + m.index + (id !== undefined ? Math.max(m[0].indexOf(id), 0) : 0);
            const end = start + (id ?? m[0]).length;
            let score = pattern.score;
            if (spec.validate) {
              const valid = spec.validate(id ?? m[0]);
              if (valid === false) continue;
              if (valid === true) score = Math.max(score, spec.validScore ?? 0.95);
            }
            if (id === undefined && !labelWithin(Math.max(0, start - window), start) && !labelWithin(end, end + after)) continue;
            out.push({ type: spec.type, category: spec.category, start, end, score: Math.min(1, score + boost), recognizer: spec.id });
          }
        }
      }
      return out;
    },
  };
}

/** Not inside a word or a number. */
const B = String.raw`(?<![\p{L}\p{N}_])`;
/** Not followed by a letter or digit, nor by a separator and a digit. */
const E = String.raw`(?![\p{L}\p{N}_]|[\-./]\p{N})`;
/** Between a label and its value: "MRN: ", "Chart #", "member ID is ", "DOB - ". */
const SEP = String.raw`(?:[ \t]{0,3}[:#=.\-][ \t]{0,3}|[ \t]{1,3})?(?:(?:is|was|of|on|no\.?|number|#)[ \t:#.]{1,3})?`;

/** A label followed by an identifier: case-insensitive, the label on a word boundary. */
function labelled(label: string, id: string): RegExp {
  return new RegExp(String.raw`${B}(?:${label})(?![\p{L}])${SEP}(?<id>${id})${E}`, 'iu');
}

// "number" in its usual abbreviations, with or without a dot.
const NO = String.raw`(?:#|no\.?|nbr\.?|num\.?|number|id)`;

// Identifier shapes. Each has a digit (a lookahead, bounded), so "Member ID verified" is not a member ID.
const HAS_DIGIT = (max: number) => String.raw`(?=[A-Z0-9\-]{0,${max}}\d)`;
const ALNUM_ID = (min: number, max: number) => String.raw`${HAS_DIGIT(max)}[A-Z0-9][A-Z0-9\-]{${min - 2},${max - 2}}[A-Z0-9]`;

// ---------------------------------------------------------------- medical record number

const MRN_LABEL = String.raw`mrn|mr[ \t]?${NO}|medical[ \t]{1,2}record(?:s)?(?:[ \t]{1,2}${NO})?|med\.?[ \t]?rec\.?(?:[ \t]{0,2}${NO})?|chart(?:[ \t]{0,2}${NO})?|(?:patient|pt\.?)[ \t]{0,2}(?:${NO}|identifier)|acc(?:ession)?[ \t]{0,2}${NO}`;
const MRN_ID = String.raw`(?:[A-Z]{1,4}-?)?\d{5,12}(?:-\d{1,4})?`;
const MRN_CONTEXT = ['mrn', 'mr', 'medical record', 'medical records', 'med rec', 'chart', 'patient', 'pt', 'acc', 'accession'];

const mrn: PatternRecognizer = {
  id: 'mrn',
  type: 'MRN',
  category: 'strong',
  patterns: [{ name: 'mrn-labelled', regex: labelled(MRN_LABEL, MRN_ID), score: 0.6 }],
  context: MRN_CONTEXT,
  requireContext: true,
};

/** A number a few words from an MRN label ("MRN/DOB: 1234567 / 01/02/1950"). */
const mrnNear: PatternRecognizer = {
  id: 'mrn-near',
  type: 'MRN',
  category: 'strong',
  patterns: [{ name: 'mrn-near', regex: new RegExp(String.raw`${B}(?:[A-Z]{1,3}-?)?\d{6,12}${E}`, 'u'), score: 0.2 }],
  context: ['mrn', 'mr#', 'medical record', 'medical record number', 'chart number', 'chart no'],
  contextWindow: 30,
  requireContext: true,
};

// ---------------------------------------------------------------- health plan, claim, prior authorisation

const PLAN_LABEL = String.raw`(?:member|subscriber|enrollee|beneficiary|insured|insurance|policy|medicaid|medi-cal|health[ \t]plan|plan|group|grp|chip)[ \t]{0,2}(?:${NO}|identifier|id[ \t]?#)`;
const healthPlanId: PatternRecognizer = {
  id: 'health-plan-id',
  type: 'HEALTH_PLAN_ID',
  category: 'strong',
  patterns: [{ name: 'plan-labelled', regex: labelled(PLAN_LABEL, ALNUM_ID(6, 20)), score: 0.6 }],
  context: ['member', 'subscriber', 'enrollee', 'beneficiary', 'insured', 'insurance', 'policy', 'medicaid', 'medi-cal', 'plan', 'group', 'grp', 'chip'],
  requireContext: true,
};

const claimNumber: PatternRecognizer = {
  id: 'claim-number',
  type: 'CLAIM_NUMBER',
  category: 'strong',
  patterns: [{ name: 'claim-labelled', regex: labelled(String.raw`claim(?:[ \t]{0,2}${NO})?`, ALNUM_ID(6, 20)), score: 0.6 }],
  context: ['claim'],
  requireContext: true,
};

const PRIOR_AUTH_LABEL = String.raw`prior[ \t]{1,2}auth(?:orization|orisation)?\.?(?:[ \t]{0,2}(?:${NO}|code))?|pre-?auth(?:orization|orisation)?\.?(?:[ \t]{0,2}${NO})?|pa[ \t]?(?:#|no\.?|number)|auth(?:orization|orisation)?\.?[ \t]{0,2}(?:#|no\.?|number)`;
const priorAuth: PatternRecognizer = {
  id: 'prior-auth',
  type: 'PRIOR_AUTH',
  category: 'strong',
  patterns: [{ name: 'prior-auth-labelled', regex: labelled(PRIOR_AUTH_LABEL, ALNUM_ID(5, 20)), score: 0.6 }],
  context: ['prior auth', 'prior authorization', 'prior authorisation', 'preauth', 'pre-auth', 'preauthorization', 'pre-authorization', 'pa', 'auth', 'authorization', 'authorisation'],
  requireContext: true,
};

// ---------------------------------------------------------------- account and licence numbers

const accountNumber: PatternRecognizer = {
  id: 'account-number',
  type: 'ACCOUNT_NUMBER',
  category: 'identifier',
  patterns: [
    {
      name: 'account-labelled',
      regex: labelled(String.raw`(?:account|acct\.?|acc't|a/c)(?:[ \t]{0,2}${NO})?`, ALNUM_ID(5, 20)),
      score: 0.5,
    },
  ],
  context: ['account', 'acct', "acc't", 'a/c'],
  requireContext: true,
};

const LICENSE_LABEL = String.raw`driver'?s?[ \t]{1,2}licen[cs]e(?:[ \t]{0,2}${NO})?|licen[cs]e[ \t]{0,2}${NO}|lic\.?[ \t]{0,2}(?:#|no\.?|number)|dl[ \t]?(?:#|no\.?|number|num\.?)|dln`;
const licenseNumber: PatternRecognizer = {
  id: 'license-number',
  type: 'LICENSE_NUMBER',
  category: 'identifier',
  patterns: [{ name: 'license-labelled', regex: labelled(LICENSE_LABEL, ALNUM_ID(5, 20)), score: 0.5 }],
  context: ['driver', "driver's", 'drivers', 'license', 'licence', 'lic', 'dl', 'dln'],
  requireContext: true,
};

// ---------------------------------------------------------------- dates: of birth and of service

const MONTH = String.raw`(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?`;
const ORDINAL = String.raw`(?:st|nd|rd|th)?`;
/** Dates in digits: 2/12/2008, 02-12-2008, 6/10/98, 12.02.2008, 2008-02-12. */
const NUMERIC_DATE = [
  String.raw`\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})`,
  String.raw`\d{1,2}-\d{1,2}-(?:\d{4}|\d{2})`,
  String.raw`\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})`,
  String.raw`\d{4}-\d{1,2}-\d{1,2}`,
  String.raw`\d{4}/\d{1,2}/\d{1,2}`,
].join('|');
/** The ways a date is written; the validator checks that it exists. */
const DATE = [
  NUMERIC_DATE,
  String.raw`${MONTH}[ \t]{0,2}\d{1,2}${ORDINAL},?[ \t]{1,2}\d{4}`,
  String.raw`\d{1,2}${ORDINAL}(?:[ \t]{1,2}of)?[ \t\-]{0,2}${MONTH},?[ \t\-]{0,2}(?:\d{4}|\d{2})`,
].join('|');

const DOB_LABEL = String.raw`dob|d\.o\.b\.?|date[ \t]{1,2}of[ \t]{1,2}birth|birth[ \t]?date|birthday|born(?:[ \t]{1,2}on)?|b\.`;
const dateOfBirth: PatternRecognizer = {
  id: 'date-of-birth',
  type: 'DATE_OF_BIRTH',
  category: 'identifier',
  patterns: [{ name: 'dob-labelled', regex: labelled(DOB_LABEL, DATE), score: 0.55 }],
  context: ['dob', 'd.o.b', 'date of birth', 'birthdate', 'birth date', 'birthday', 'born', 'b'],
  contextBoost: 0.4,
  requireContext: true,
  validate: (m) => (isPlausibleDate(m, 1880, 2099) ? undefined : false),
};

/** A date a few words from a birth label ("DOB (mm/dd/yyyy): …", "01/02/1950 (DOB)"). */
const dateOfBirthNear: PatternRecognizer = {
  id: 'date-of-birth-near',
  type: 'DATE_OF_BIRTH',
  category: 'identifier',
  patterns: [{ name: 'dob-near', regex: new RegExp(String.raw`${B}(?:${NUMERIC_DATE})${E}`, 'u'), score: 0.3 }],
  context: ['dob', 'd.o.b', 'date of birth', 'birthdate', 'birth date', 'birthday'],
  contextWindow: 30,
  requireContext: true,
  validate: (m) => (isPlausibleDate(m, 1880, 2099) ? undefined : false),
};

const DOS_LABEL = String.raw`dos|date[ \t]{1,2}of[ \t]{1,2}(?:service|visit|admission|discharge)|(?:service|visit|admission|discharge)[ \t]{1,2}date|(?:seen|visited?|admitted|discharged|treated)(?:[ \t]{1,2}(?:on|in|at))?`;
const dateOfService: PatternRecognizer = {
  id: 'date-of-service',
  type: 'DATE_OF_SERVICE',
  category: 'identifier',
  patterns: [{ name: 'dos-labelled', regex: labelled(DOS_LABEL, DATE), score: 0.4 }],
  context: ['dos', 'date of service', 'date of visit', 'date of admission', 'date of discharge', 'service date', 'visit date', 'admission date', 'discharge date', 'seen', 'visit', 'visited', 'admitted', 'discharged', 'treated'],
  requireContext: true,
  validate: (m) => (isPlausibleDate(m, 1900, 2099) ? undefined : false),
};

// ---------------------------------------------------------------- ages over 89 (Safe Harbor keeps ages up to 89)

const AGE = String.raw`(?:9\d|1[01]\d|120)`;
const NOT_A_UNIT = String.raw`(?![ \t]{0,2}(?:days?|d|weeks?|wks?|months?|mos?|hours?|hrs?|h|minutes?|mins?|seconds?|secs?|%|percent|kg|lbs?|mg|ml|cm|mm)(?![\p{L}]))`;
const ageOver89: PatternRecognizer = {
  id: 'age-over-89',
  type: 'AGE_OVER_89',
  category: 'identifier',
  patterns: [
    {
      name: 'age-years-old',
      regex: new RegExp(
        String.raw`${B}(?<id>${AGE})(?:[ \t\-]{0,2}(?:years?|yrs?\.?|y\.?)[ \t\-]{1,2}(?:old|of[ \t]age)|[ \t]{0,2}(?:y/o|y\.[ \t]?o\.?|yo|yoa|y\.?r\.?[ \t]?old)(?![\p{L}\p{N}]))`,
        'iu',
      ),
      score: 0.5,
    },
    { name: 'age-labelled', regex: new RegExp(String.raw`${B}(?:age[sd]?|aged)(?:[ \t]{0,2}[:=])?[ \t]{0,2}(?:of[ \t]{1,2}|is[ \t]{1,2}|was[ \t]{1,2})?(?<id>${AGE})(?![\p{L}\p{N}_]|[.,]\d)${NOT_A_UNIT}`, 'iu'), score: 0.5 },
  ],
  contextBoost: 0.35,
};

// ---------------------------------------------------------------- street addresses and ZIP codes

const STATE_CODES =
  'AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI|AS|MP';
const STATE_NAMES = [
  'Alabama', 'Alaska', 'Arizona', 'Arkansas', 'California', 'Colorado', 'Connecticut', 'Delaware', 'Florida', 'Georgia', 'Hawaii', 'Idaho',
  'Illinois', 'Indiana', 'Iowa', 'Kansas', 'Kentucky', 'Louisiana', 'Maine', 'Maryland', 'Massachusetts', 'Michigan', 'Minnesota',
  'Mississippi', 'Missouri', 'Montana', 'Nebraska', 'Nevada', 'New Hampshire', 'New Jersey', 'New Mexico', 'New York', 'North Carolina',
  'North Dakota', 'Ohio', 'Oklahoma', 'Oregon', 'Pennsylvania', 'Rhode Island', 'South Carolina', 'South Dakota', 'Tennessee', 'Texas',
  'Utah', 'Vermont', 'Virginia', 'Washington', 'West Virginia', 'Wisconsin', 'Wyoming', 'District of Columbia', 'Puerto Rico',
].join('|');
const ZIP = String.raw`\d{5}(?:-\d{4})?`;

/**
 * USPS street suffixes (Publication 28, appendix C1) that end a street name and little else. Left out on purpose:
 * words that end ordinary capitalised phrases, some of them clinical ("Gastric Bypass", "Stack Trace", "Test Run",
 * "Medical Center", "Route 66", "Pt" for patient).
 */
const SUFFIXES = [
  'Street', 'St', 'Avenue', 'Ave', 'Av', 'Road', 'Rd', 'Boulevard', 'Blvd', 'Drive', 'Dr', 'Lane', 'Ln', 'Court', 'Ct', 'Way', 'Place', 'Pl',
  'Terrace', 'Ter', 'Parkway', 'Pkwy', 'Highway', 'Hwy', 'Circle', 'Cir', 'Square', 'Sq', 'Trail', 'Trl', 'Alley', 'Aly', 'Crescent',
  'Cres', 'Expressway', 'Expy', 'Freeway', 'Fwy', 'Turnpike', 'Tpke', 'Pike', 'Plaza', 'Plz', 'Crossing', 'Xing', 'Ridge', 'Rdg',
  'Heights', 'Hts', 'Cove', 'Cv', 'Creek', 'Crk', 'Estates', 'Gardens', 'Gdns', 'Glen', 'Grove', 'Harbor', 'Hbr', 'Hollow', 'Holw',
  'Manor', 'Meadows', 'Mews', 'Ranch', 'Valley', 'Vly', 'Village', 'Vlg', 'Vista', 'Causeway', 'Cswy', 'Knoll', 'Bluff', 'Canyon', 'Cyn',
  'Close', 'Streets', 'Avenues', 'Roads', 'Lanes', 'Courts', 'Squares',
];
/** Upper-case abbreviations that are also clinical ones ("Head CT", "DR" for diabetic retinopathy) only count in Title case. */
const TITLE_CASE_ONLY = new Set(['Ct', 'Dr', 'Pl', 'Ter', 'Cv', 'Av']);
/** A suffix as written on envelopes: "Main St", "MAIN ST", "Main street" (lower case only for words, not abbreviations). */
function suffixForms(s: string): string[] {
  const forms = [s];
  if (!TITLE_CASE_ONLY.has(s)) forms.push(s.toUpperCase());
  if (s.length >= 4 || s === 'St' || s === 'Ave' || s === 'Rd') forms.push(s.toLowerCase());
  return forms;
}
// Case is spelled out rather than left to the i flag, so that street names must stay capitalised.
const SUFFIX_ALTERNATIVES = [...new Set(SUFFIXES.flatMap(suffixForms))].sort((a, b) => b.length - a.length).join('|');
const SUFFIX = String.raw`(?:${SUFFIX_ALTERNATIVES})\.?(?![\p{L}\p{N}])`;
const DIRECTION = String.raw`(?:[NSEW]|N[EW]|S[EW]|North|South|East|West|Northeast|Northwest|Southeast|Southwest|NORTH|SOUTH|EAST|WEST)\.?`;
/** A word of a street name: capitalised or upper case in any script, an ordinal ("5th"), or an initial. */
const NAME_WORD = String.raw`(?:\p{Lu}[\p{L}'’\-]{0,24}\.?|\d{1,3}(?:st|nd|rd|th|ST|ND|RD|TH))`;
const STREET_NAME = String.raw`${NAME_WORD}(?:[ \t]{1,2}${NAME_WORD})?(?:[ \t]{1,2}${NAME_WORD})?(?:[ \t]{1,2}${NAME_WORD})?`;
/** A new line, perhaps inside a quoted reply ("> "). */
const NEWLINE = String.raw`(?:\r?\n[ \t>]{0,4})`;
const UNIT = String.raw`(?:,?[ \t]{0,2}${NEWLINE}?[ \t]{0,2}(?:Apt|APT|apt|Apartment|Suite|SUITE|suite|Ste|STE|Unit|UNIT|unit|Bldg|Building|Fl|Floor|Rm|Room|Lot|Trlr|Dept|#)\.?[ \t]{0,2}#?[ \t]{0,2}[A-Z0-9][A-Z0-9\-]{0,6}(?![\p{L}\p{N}]))`;
const CITY = String.raw`\p{Lu}[\p{L}'’.\-]{1,24}(?:[ \t]\p{Lu}[\p{L}'’.\-]{1,24})?(?:[ \t]\p{Lu}[\p{L}'’.\-]{1,24})?`;
const CITY_STATE_ZIP = String.raw`(?:,?[ \t]{0,2}${NEWLINE}?[ \t]{0,2}${CITY},?[ \t]{1,2}(?:${STATE_CODES}|${STATE_NAMES})\.?(?:,?[ \t]{1,2}${ZIP})?(?![\p{L}\p{N}]))`;
const HOUSE_NUMBER = String.raw`\d{1,6}(?:[A-Z]|-\d{1,4}|[ \t]1/2)?`;

// Street name, then house number, as written in most of the world ("Puruntie 82", "Rua do Arenque 1634", "28245 Via
// Franscini 71"). The shape is common in ordinary text ("Type 2", "Room 12", "Sodium 140"), so it counts alone only with a
// unit after it ("Allika 46, Suite 501") and otherwise only with an address word close by.
const NOT_A_STREET = [
  'Apt', 'Apartment', 'Suite', 'Ste', 'Unit', 'Room', 'Rm', 'Floor', 'Box', 'Building', 'Bldg', 'Lot', 'Bed', 'Bay', 'Type', 'Stage', 'Grade',
  'Class', 'Day', 'Days', 'Week', 'Weeks', 'Month', 'Months', 'Year', 'Years', 'Visit', 'Cycle', 'Dose', 'Level', 'Tier', 'Step', 'Phase',
  'Chapter', 'Section', 'Page', 'Figure', 'Fig', 'Table', 'Version', 'Number', 'Item', 'Part', 'Question', 'Option', 'Lead', 'Exam',
  'Patient', 'Zone', 'Area', 'Sector', 'Row', 'Seat', 'Ward', 'Wing', 'Clinic', 'Office', 'Station', 'Terminal', 'Platform', 'Channel',
  'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday', 'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
];
const NOT_A_STREET_WORDS = new Set(NOT_A_STREET);
/** After the capital: the rest of a street name's first word ("uruntie" of "Puruntie"). */
const FIRST_WORD_REST = String.raw`\p{Ll}[\p{L}'’\-]{1,30}\.?`;

/** Drops "Type 2", "Room 12", "3 Days Inn": the first word of the street (after a house number) is on the list above. */
function notOrdinaryWords(match: string): false | undefined {
  const first = /^(?:\d{1,6}[ \t]{1,2})?(\p{L}+)/u.exec(match)?.[1];
  return first !== undefined && NOT_A_STREET_WORDS.has(first) ? false : undefined;
}
const STREET_WORD = String.raw`\p{L}[\p{L}'’\-]{0,30}\.?`;
const NAMED_STREET_REST = String.raw`(?:[ \t]${STREET_WORD})?(?:[ \t]${STREET_WORD})?(?:[ \t]${STREET_WORD})?`;
const NUMBER_AFTER = String.raw`[ \t]{1,2}\d{1,5}[A-Za-z]?\.?(?![\p{L}\p{N}])`;
/** Where such an address ends: punctuation, a line break, the end, or a capitalised word (city, "St."). */
const ADDRESS_END = String.raw`(?=[ \t]{0,2}(?:[,;\n\r]|$|[.!?](?:\s|$)|\p{Lu}|${SUFFIX}))`;
// Written to open with a digit or a capital followed by its boundary check, not with a lookbehind: the regex engine then
// skips straight to digits and capitals instead of trying every position (several times faster on prose).
const HOUSE_NUMBER_FIRST = String.raw`\d(?<![\p{L}\p{N}_]\d)\d{0,5}[ \t]{1,2}`;
const NAMED_STREET_ADDRESS = String.raw`(?:${HOUSE_NUMBER_FIRST}\p{Lu}|\p{Lu}(?<![\p{L}\p{N}_]\p{Lu}))${FIRST_WORD_REST}${NAMED_STREET_REST}${NUMBER_AFTER}`;
/**
 * Up to three lines after the street with the rest of a postal address: city, region, country, postcode
 * ("Riisa\n\n Estonia 62488"). Letters only, each ending its line, so a "Mobile: …" line is never taken.
 */
const PLACE_LINE = String.raw`(?:,?[ \t]{0,2}${NEWLINE}${NEWLINE}?[ \t]{0,3},?[ \t]{0,2}(?:\p{Lu}[\p{L}'’.()\- \t]{0,40}(?:[ \t]\d{4,6})?|\d{4,6})(?=[ \t]{0,2}(?:\r?\n|$|[,.;?!])))`;
const PLACE_LINES = `${PLACE_LINE}?${PLACE_LINE}?${PLACE_LINE}?`;
/** Number first, then a name of two to four words without a suffix we know ("136 Filadelfeos Str.", "31 Rue de la Gare"). */
const NUMBERED_STREET_ADDRESS = String.raw`${HOUSE_NUMBER_FIRST}\p{Lu}${FIRST_WORD_REST}(?:[ \t]${STREET_WORD})?(?:[ \t]${STREET_WORD})?[ \t]\p{Lu}[\p{L}'’\-]{0,30}\.?`;

const ADDRESS_CONTEXT = [
  'address', 'addr', 'home address', 'mailing address', 'street', 'lives at', 'living at', 'lives on', 'resides', 'resides at', 'residing',
  'residence', 'reside', 'home', 'mail to', 'send to', 'sent to', 'ship to', 'shipping', 'billing', 'located at', 'moved to', 'apt',
  'apartment', 'correspondence', 'house',
];

const streetAddress: PatternRecognizer = {
  id: 'street-address',
  type: 'STREET_ADDRESS',
  category: 'identifier',
  patterns: [
    {
      name: 'us-street',
      regex: new RegExp(
        String.raw`${B}${HOUSE_NUMBER}[ \t]{1,2}(?:${DIRECTION}[ \t]{1,2})?${STREET_NAME}[ \t]{1,2}${SUFFIX}(?:[ \t]{1,2}${DIRECTION}(?![\p{L}\p{N}]))?${UNIT}?${UNIT}?${CITY_STATE_ZIP}?`,
        'u',
      ),
      score: 0.7,
    },
    { name: 'named-street-with-unit', regex: new RegExp(String.raw`${NAMED_STREET_ADDRESS}${UNIT}${UNIT}?${PLACE_LINES}`, 'u'), score: 0.6 },
    {
      name: 'po-box',
      regex: new RegExp(String.raw`${B}(?:[Pp]\.?[ \t]?[Oo]\.?[ \t]?|[Pp]ost[ \t][Oo]ffice[ \t])(?:Box|BOX|box)[ \t]{0,2}#?[ \t]{0,2}\d{1,8}${E}${CITY_STATE_ZIP}?`, 'u'),
      score: 0.7,
    },
    {
      name: 'military',
      // USPS military addresses; distinctive enough to match in any case.
      regex: new RegExp(String.raw`${B}(?:(?:PSC|CMR|Unit)[ \t]{1,2}\d{1,5},?[ \t]{1,2}Box[ \t]{1,2}\d{1,5}\s{1,3})?(?:APO|FPO|DPO)[ \t]{1,2}(?:AA|AE|AP)[ \t]{1,2}\d{5}(?:-\d{4})?${E}`, 'iu'),
      score: 0.7,
    },
  ],
  context: ADDRESS_CONTEXT,
  contextBoost: 0.25,
  validate: notOrdinaryWords,
};

/** One side of a street corner: "Main St", "Dalbraut 99", "ul. Jesionowa 127", "159 Eleftheriou Venizelou str". */
const CORNER_WORD = String.raw`(?:${STREET_WORD}|\d{1,3}(?:st|nd|rd|th))`;
const CORNER_SIDE = String.raw`(?:\d{1,6}[ \t]{1,2})?${CORNER_WORD}(?:[ \t]${CORNER_WORD})?(?:[ \t]${CORNER_WORD})?(?:[ \t]${CORNER_WORD})?(?:[ \t]\d{1,5}\.?)?`;
const INTERSECTION = String.raw`${B}(?:[Cc]orner|[Ii]ntersection)[ \t]{1,2}of[ \t]{1,2}(?<id>${CORNER_SIDE}[ \t]{1,2}(?:and|&)[ \t]{1,2}${CORNER_SIDE})(?![\p{L}\p{N}])`;

const STRONG_ADDRESS_CONTEXT = [
  'address', 'addresses', 'addr', 'home address', 'mailing address', 'billing address', 'shipping address', 'lives at', 'lives in', 'lives on',
  'lived at', 'lived in', 'living at', 'living in', 'live at', 'live in', 'resides', 'resides at', 'residing', 'residence', 'located at',
  'mail to', 'send to', 'sent to', 'ship to', 'deliver to', 'delivered to', 'moved to', 'corner of', 'intersection of', 'street', 'apt', 'apartment',
];

const streetAddressLabelled: PatternRecognizer = {
  id: 'street-address-labelled',
  type: 'STREET_ADDRESS',
  category: 'identifier',
  patterns: [
    { name: 'named-street', regex: new RegExp(String.raw`${NAMED_STREET_ADDRESS}(?:${UNIT}${UNIT}?|${ADDRESS_END})${PLACE_LINES}`, 'u'), score: 0.25 },
    { name: 'intersection', regex: new RegExp(INTERSECTION, 'u'), score: 0.25 },
    { name: 'numbered-street', regex: new RegExp(String.raw`${NUMBERED_STREET_ADDRESS}(?:${UNIT}${UNIT}?|${ADDRESS_END})${PLACE_LINES}`, 'u'), score: 0.25 },
  ],
  context: STRONG_ADDRESS_CONTEXT,
  contextWindow: 40,
  contextBoost: 0.4,
  requireContext: true,
  validate: notOrdinaryWords,
};

// ZIP codes: a five-digit number is anything until a ZIP label or a "City, ST" is right before it.
const zipAfterState: PatternRecognizer = {
  id: 'zip-code-after-state',
  type: 'ZIP_CODE',
  category: 'identifier',
  patterns: [{ name: 'zip-after-state', regex: new RegExp(String.raw`\p{L}\.?,[ \t]{0,2}(?:${STATE_CODES})\.?,?[ \t]{1,2}(?<id>${ZIP})${E}`, 'u'), score: 0.4 }],
  contextBoost: 0.35,
};

const zipLabelled: PatternRecognizer = {
  id: 'zip-code',
  type: 'ZIP_CODE',
  category: 'identifier',
  patterns: [
    { name: 'zip-labelled', regex: labelled(String.raw`zip(?:[ \t]?code)?|postal[ \t]code|post[ \t]?code`, ZIP), score: 0.4 },
    { name: 'zip-near', regex: new RegExp(String.raw`${B}${ZIP}${E}`, 'u'), score: 0.2 },
  ],
  context: ['zip', 'zip code', 'zipcode', 'postal code', 'postcode', 'post code'],
  contextWindow: 30,
  contextBoost: 0.35,
  requireContext: true,
};

export const labelledRecognizers: Recognizer[] = [
  scanNearLabels(mrn),
  scanNearLabels(mrnNear),
  scanNearLabels(healthPlanId),
  scanNearLabels(claimNumber),
  scanNearLabels(priorAuth),
  scanNearLabels(accountNumber),
  scanNearLabels(licenseNumber),
  scanNearLabels(dateOfBirth),
  scanNearLabels(dateOfBirthNear),
  scanNearLabels(dateOfService),
  ageOver89,
  streetAddress,
  scanNearLabels(streetAddressLabelled, 400),
  zipAfterState,
  scanNearLabels(zipLabelled),
];
