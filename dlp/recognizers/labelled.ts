// Identifiers that look like any other number until a label says what they are (MRN, member ID, claim, DOB …), plus
// the ones with a shape of their own that a label only confirms (ages over 89, street addresses, ZIP after a state).
// A labelled identifier is found with its label in the match, so it counts only with its label by construction.
import {
  CHAR_LETTER,
  CHAR_NUMBER,
  CHAR_UPPER,
  charClass,
  filteredTokens,
  filterSlot,
  hashWord,
  HOUSE_NUMBER_ANCHOR,
  labelPairs,
  LETTERS_THEN_DIGIT,
  leadingLetters,
  letterRunHash,
  pairHash,
  tokenFilterId,
  tokenListOf,
  wordHashFilter,
  wordListRegex,
} from '../engine.js';
import type { Category, CustomRecognizer, Finding, PatternRecognizer, Recognizer } from '../types.js';
import { isPlausibleDate } from '../validators.js';

/** Not followed by a letter or digit, nor by a separator and a digit. */
const E = String.raw`(?![\p{L}\p{N}_]|[\-./]\p{N})`;
/**
 * Between a distinctive label and its value: separators and a few words, without digits, commas or sentence ends
 * ("MRN: ", "member ID is ", "DOB (mm/dd/yyyy): "). Lazy, so the value is the first one after the label.
 */
const WORDS_GAP = String.raw`[^\d.,;!?]{0,20}?`;
/** Between a label that is also an ordinary word ("chart", "claim", "account") and its value: separators and one filler word. */
const SHORT_GAP = String.raw`[ \t]{0,3}[:#=\-]?[ \t]{0,3}(?:(?:is|no\.?|number|#)[ \t:#]{1,3})?`;

/** Whether text[from, to) is one or more spaces and tabs, nothing else. */
function onlyBlanks(text: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}

/** A filter of word pairs (pairHash of the two words' hashes). */
function pairFilter(pairs: ReadonlyArray<readonly [string, string]>): Uint32Array {
  const filter = new Uint32Array(wordHashFilter([]).length);
  for (const [first, second] of pairs) {
    const slot = filterSlot(pairHash(hashWord(first), hashWord(second)));
    filter[slot >>> 5]! |= 1 << (slot & 31);
  }
  return filter;
}

/** One kind of labelled identifier: a label, a gap, the value. */
export interface LabelledKind {
  /** Recognizer id on its findings. */
  id: string;
  type: string;
  category: Category;
  /** The label, a regular expression (case-insensitive, on a word boundary) without capturing groups. */
  label: string;
  /** The value, a regular expression without capturing groups. */
  value: string;
  /** What may stand between the label and the value; WORDS_GAP when not given. */
  gap?: string;
  /** What must not follow the value; not a letter or digit when not given. */
  end?: string;
  /** The score of a value found with its label. */
  score: number;
  /** A range check on the value: false drops it. */
  validate?: (value: string) => boolean;
}

/**
 * Finds labelled identifiers of several kinds in one pass: one search for all their labels, then each kind's pattern
 * tried where its label is. A pattern per kind over the whole text would read it once per kind, and a label-first
 * pattern cannot be skipped to quickly, so the search is the cost. Labels of different kinds must not start the same
 * way: where one kind's label is found, only that kind is tried.
 */
export function labelScanner(id: string, kinds: readonly LabelledKind[]): CustomRecognizer {
  // Searched in the lower-cased copy (no i flag), as "a character that is no letter or digit, then a label": the
  // engine then looks for the rare pair (space or punctuation, then a label's first letter) instead of trying every
  // position against a leading lookbehind. A label at the very start of the text is tried on its own.
  const alternatives = kinds.map((k) => `(${k.label})`).join('|');
  const labels = new RegExp(String.raw`[^\p{L}\p{N}_](?:${alternatives})(?![\p{L}])`, 'gu');
  const atStart = new RegExp(String.raw`(?:${alternatives})(?![\p{L}])`, 'uy');
  const values = kinds.map(
    (k) =>
      new RegExp(String.raw`(?:${k.label})(?![\p{L}])${k.gap ?? WORDS_GAP}(${k.value})${k.end ?? E}`, 'iuy'),
  );
  // In text with tokens (AnalyzeContext.tokens) a label starts a word token, with the letters of one of its words ("call" of "callback"): when the
  // part's tokens are at hand, the labels are tried at tokens with such letters only, not searched for at every word.
  // A lone "s" is no token after an apostrophe ("crohn's"), so no label may start so.
  const labelSource = kinds.map((k) => `(?:${k.label})`).join('|');
  const letters = leadingLetters(labelSource);
  const firstWords = letters && !letters.includes('s') ? wordHashFilter(letters) : null;
  // Many labels open with an ordinary word that is no label alone ("service" of "service date", "policy" of "policy
  // no", "a" of "a/c"): at such a word followed by blanks and a token, the labels are tried only when the two words
  // make a pair some label starts with (labelPairs). On office mail 8 of ~560 tries per 100 KB are left.
  const pairing = firstWords ? labelPairs(labelSource) : null;
  const alone = pairing ? wordHashFilter(pairing.alone) : null;
  const pairs = pairing ? pairFilter(pairing.pairs) : null;
  const after = pairing ? pairFilter(pairing.after.map(([word, c]) => [word, String.fromCharCode(c)])) : null;
  const firstWordsId = firstWords ? tokenFilterId(firstWords, firstWords) : -1;
  return {
    id,
    emits: kinds.map((k) => [k.type, k.category] as const),
    // The labels are tried at the tokens that may start one: the search over every word costs more than the tokens.
    usesWordTokens: firstWords !== null,
    analyze(text, ctx) {
      const out: Array<Omit<Finding, 'part'>> = [];
      const taken = kinds.map(() => 0);
      const lower = ctx.lower;
      const found = (m: RegExpExecArray, start: number): void => {
        let k = 0;
        while (k < kinds.length && m[k + 1] === undefined) k++;
        const kind = kinds[k];
        const re = values[k];
        if (!kind || !re || start < taken[k]!) return;
        re.lastIndex = start;
        const v = re.exec(text);
        const value = v?.[1];
        if (!v || value === undefined || (kind.validate && !kind.validate(value))) return;
        const end = start + v[0].length;
        taken[k] = end;
        out.push({
          type: kind.type,
          category: kind.category,
          start: end - value.length,
          end,
          score: kind.score,
          recognizer: kind.id,
        });
      };
      atStart.lastIndex = 0;
      const first = atStart.exec(lower);
      if (first) found(first, 0);
      const tokens = firstWords ? (ctx.tokens?.() ?? null) : null;
      if (firstWords && tokens) {
        // The search below finds, from where its last match ended, the next label after a character that is no
        // letter, digit or "_": the same labels, tried at the tokens that may start one.
        const { count, start: starts, end: ends, hash, digits, withDigit } = tokens;
        // The tokens in firstWords, and those of letters then digits ("dob1985": they start with letters the hash of
        // the whole token does not tell), in order; every token when firstWords has no id.
        const listed = firstWordsId >= 0 ? filteredTokens(tokens, firstWordsId) : null;
        let i = 0;
        let d = 0;
        let searchFrom = 0;
        // With the lists, each turn takes the next token of either (j only bounds the turns: at most every token).
        for (let j = 0; j < count; j++) {
          let k = j;
          if (listed) {
            while (d < withDigit.length && (digits[withDigit[d]!]! & LETTERS_THEN_DIGIT) === 0) d++;
            const fromList = i < listed.length ? listed[i]! : count;
            const fromDigits = d < withDigit.length ? withDigit[d]! : count;
            k = Math.min(fromList, fromDigits);
            if (k === count) break;
            if (fromList === k) i++;
            if (fromDigits === k) d++;
          }
          const slot = filterSlot(hash[k]!);
          const lettersThenDigit = (digits[k]! & LETTERS_THEN_DIGIT) !== 0;
          if ((firstWords[slot >>> 5]! & (1 << (slot & 31))) === 0 && !lettersThenDigit) continue;
          const at = starts[k]!;
          if (at === 0 || at <= searchFrom || lower.charCodeAt(at - 1) === 95) continue;
          if (
            alone &&
            pairs &&
            after &&
            !lettersThenDigit &&
            (alone[slot >>> 5]! & (1 << (slot & 31))) === 0
          ) {
            // A first word that is no label alone: the character after it must be one a label goes on with, and
            // after blanks, the next token must make a pair with it.
            const end = ends[k]!;
            if (end >= lower.length) continue;
            const next = filterSlot(pairHash(hash[k]!, hashWord(lower[end]!)));
            if ((after[next >>> 5]! & (1 << (next & 31))) === 0) continue;
            if (k + 1 < count && onlyBlanks(lower, end, starts[k + 1]!)) {
              const pair = filterSlot(pairHash(hash[k]!, letterRunHash(lower, starts[k + 1]!)));
              if ((pairs[pair >>> 5]! & (1 << (pair & 31))) === 0) continue;
            }
          }
          atStart.lastIndex = at;
          const m = atStart.exec(lower);
          if (!m) continue;
          found(m, at);
          searchFrom = at + m[0].length;
        }
        return out;
      }
      labels.lastIndex = 0;
      for (let m = labels.exec(lower); m; m = labels.exec(lower)) found(m, m.index + 1);
      return out;
    },
  };
}

// "number" in its usual abbreviations, with or without a dot.
const NO = String.raw`(?:#|no\.?|nbr\.?|num\.?|number|id)`;
/** A short abbreviation and its number sign, kept apart so that words are not read as labels ("PA no" but not "Pano"). */
const ABBREV_NO = (abbrev: string) => String.raw`${abbrev}(?:[ \t]{0,2}#|\.?[ \t]{1,2}${NO})`;

// Identifier shapes. Each has a digit (a lookahead, bounded), so "Member ID verified" is not a member ID.
const HAS_DIGIT = (max: number) => String.raw`(?=[A-Z0-9\-]{0,${max}}\d)`;
const ALNUM_ID = (min: number, max: number) =>
  String.raw`${HAS_DIGIT(max)}[A-Z0-9][A-Z0-9\-]{${min - 2},${max - 2}}[A-Z0-9]`;

// ---------------------------------------------------------------- medical record number

const MRN_LABEL = String.raw`mrn|${ABBREV_NO('mr')}|medical[ \t]{1,2}records?(?:[ \t]{1,2}${NO})?|med\.?[ \t]?rec\.?(?:[ \t]{0,2}${NO})?|patient[ \t]{0,2}(?:${NO}|identifier)|${ABBREV_NO('pt')}|accession[ \t]{0,2}${NO}|${ABBREV_NO('acc')}`;
const MRN_ID = String.raw`(?:[A-Z]{1,4}-?)?\d{5,12}(?:-\d{1,4})?`;

const mrn: LabelledKind = {
  id: 'mrn',
  type: 'MRN',
  category: 'strong',
  label: MRN_LABEL,
  value: MRN_ID,
  score: 0.95,
};
/** "Chart" is an ordinary word too ("chart the progress of 12345 tasks"): the value must follow at once. */
const chartNumber: LabelledKind = { ...mrn, label: String.raw`chart(?:[ \t]{0,2}${NO})?`, gap: SHORT_GAP };

// ---------------------------------------------------------------- health plan, claim, prior authorisation

const PLAN_LABEL = String.raw`(?:member|subscriber|enrollee|beneficiary|insured|insurance|policy|medicaid|medi-cal|health[ \t]plan|plan|group|grp|chip)[ \t]{0,2}(?:${NO}|identifier|id[ \t]?#)`;
const healthPlanId: LabelledKind = {
  id: 'health-plan-id',
  type: 'HEALTH_PLAN_ID',
  category: 'strong',
  label: PLAN_LABEL,
  value: ALNUM_ID(6, 20),
  score: 0.95,
};

/** "Claim # 2023-00012345", "claim number is A1234567"; "claim" is an ordinary word, so the value must follow at once. */
const claimNumber: LabelledKind = {
  id: 'claim-number',
  type: 'CLAIM_NUMBER',
  category: 'strong',
  label: String.raw`claim(?:[ \t]{0,2}${NO})?`,
  value: ALNUM_ID(6, 20),
  gap: SHORT_GAP,
  score: 0.95,
};

const PRIOR_AUTH_LABEL = String.raw`prior[ \t]{1,2}auth(?:orization|orisation)?\.?(?:[ \t]{0,2}(?:${NO}|code))?|pre-?auth(?:orization|orisation)?\.?(?:[ \t]{0,2}${NO})?|${ABBREV_NO('pa')}|auth(?:orization|orisation)?\.?[ \t]{0,2}(?:#|no\.?|number)`;
const priorAuth: LabelledKind = {
  id: 'prior-auth',
  type: 'PRIOR_AUTH',
  category: 'strong',
  label: PRIOR_AUTH_LABEL,
  value: ALNUM_ID(5, 20),
  score: 0.95,
};

// ---------------------------------------------------------------- account and licence numbers

const accountNumber: LabelledKind = {
  id: 'account-number',
  type: 'ACCOUNT_NUMBER',
  category: 'identifier',
  label: String.raw`(?:account|acct\.?|acc't|a/c)(?:[ \t]{0,2}${NO})?`,
  value: ALNUM_ID(5, 20),
  gap: SHORT_GAP,
  score: 0.85,
};

const LICENSE_LABEL = String.raw`driver'?s?[ \t]{1,2}licen[cs]e(?:[ \t]{0,2}${NO})?|licen[cs]e[ \t]{0,2}${NO}|${ABBREV_NO('lic')}|${ABBREV_NO('dl')}|dln`;
const licenseNumber: LabelledKind = {
  id: 'license-number',
  type: 'LICENSE_NUMBER',
  category: 'identifier',
  label: LICENSE_LABEL,
  value: ALNUM_ID(5, 20),
  score: 0.85,
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

const dateOfBirth: LabelledKind = {
  id: 'date-of-birth',
  type: 'DATE_OF_BIRTH',
  category: 'identifier',
  label: String.raw`dob|d\.o\.b\.?|date[ \t]{1,2}of[ \t]{1,2}birth|birth[ \t]?date|birthday|born`,
  value: DATE,
  score: 0.95,
  validate: (date) => isPlausibleDate(date, 1880, 2099),
};
/** "b. 6/10/1998", as in a chart; the label is too short to allow words in between. */
const dateOfBirthAbbreviated: LabelledKind = {
  ...dateOfBirth,
  label: String.raw`b\.`,
  gap: String.raw`[ \t]{0,2}`,
};

// Dates of service are PHI as well; without a label a date is too common to count.
const dateOfService: LabelledKind = {
  id: 'date-of-service',
  type: 'DATE_OF_SERVICE',
  category: 'identifier',
  label: String.raw`dos|date[ \t]{1,2}of[ \t]{1,2}(?:service|visit|admission|discharge)|(?:service|visit|admission|discharge)[ \t]{1,2}date|(?:seen|visited?|admitted|discharged|treated)(?:[ \t]{1,2}(?:on|in|at))?`,
  value: DATE,
  score: 0.75,
  validate: (date) => isPlausibleDate(date, 1900, 2099),
};

// ---------------------------------------------------------------- ages over 89 (Safe Harbor keeps ages up to 89)

const AGE = String.raw`(?:9\d|1[01]\d|120)`;
const NOT_A_UNIT = String.raw`(?![ \t]{0,2}(?:days?|d|weeks?|wks?|months?|mos?|hours?|hrs?|h|minutes?|mins?|seconds?|secs?|%|percent|kg|lbs?|mg|ml|cm|mm)(?![\p{L}]))`;
/** "age 94", "aged 101", "age: 92" (but not "aged 90 days"). */
const ageLabelled: LabelledKind = {
  id: 'age-over-89',
  type: 'AGE_OVER_89',
  category: 'identifier',
  label: String.raw`age[sd]?`,
  value: AGE,
  gap: String.raw`(?:[ \t]{0,2}[:=])?[ \t]{0,2}(?:(?:of|is|was)[ \t]{1,2})?`,
  end: String.raw`(?![\p{L}\p{N}_]|[.,]\d)${NOT_A_UNIT}`,
  score: 0.85,
};

/** "92 years old", "a 94-year-old", "95 y/o". */
const ageOver89: PatternRecognizer = {
  id: 'age-over-89',
  type: 'AGE_OVER_89',
  category: 'identifier',
  patterns: [
    {
      name: 'age-years-old',
      regex: new RegExp(
        String.raw`(?<id>9(?<![\p{L}\p{N}_]9)\d|1(?<![\p{L}\p{N}_]1)(?:[01]\d|20))(?:[ \t\-]{0,2}(?:years?|yrs?\.?|y\.?)[ \t\-]{1,2}(?:old|of[ \t]age)|[ \t]{0,2}(?:y/o|y\.[ \t]?o\.?|yo|yoa|y\.?r\.?[ \t]?old)(?![\p{L}\p{N}]))`,
        'iu',
      ),
      score: 0.5,
      // "9x" or "1xx", a space, hyphen or "y" after it: a run of 2 or 3 digits.
      digitRun: { minLength: 2, maxLength: 3 },
    },
  ],
  contextBoost: 0.35,
};

// ---------------------------------------------------------------- street addresses and ZIP codes

const STATE_CODES =
  'AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR|GU|VI|AS|MP';
// prettier-ignore
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
// prettier-ignore
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
const SUFFIX_ALTERNATIVES = [...new Set(SUFFIXES.flatMap(suffixForms))]
  .sort((a, b) => b.length - a.length)
  .join('|');
const SUFFIX = String.raw`(?:${SUFFIX_ALTERNATIVES})\.?(?![\p{L}\p{N}])`;
const DIRECTION = String.raw`(?:[NSEW]|N[EW]|S[EW]|North|South|East|West|Northeast|Northwest|Southeast|Southwest|NORTH|SOUTH|EAST|WEST)\.?`;
/** A word of a street name: capitalised or upper case in any script, an ordinal ("5th"), or an initial. */
const NAME_WORD = String.raw`(?:\p{Lu}[\p{L}'’\-]{0,24}\.?|\d{1,3}(?:st|nd|rd|th|ST|ND|RD|TH))`;
const STREET_NAME = String.raw`${NAME_WORD}(?:[ \t]{1,2}${NAME_WORD})?(?:[ \t]{1,2}${NAME_WORD})?(?:[ \t]{1,2}${NAME_WORD})?`;
/** A new line, perhaps inside a quoted reply ("> ") or after a bullet ("• ", "- "). */
const NEWLINE = String.raw`(?:\r?\n[ \t>*•·?\-]{0,4})`;
const UNIT = String.raw`(?:,?[ \t]{0,2}${NEWLINE}?[ \t]{0,2}(?:Apt|APT|apt|Apartment|Suite|SUITE|suite|Ste|STE|Unit|UNIT|unit|Bldg|Building|Fl|Floor|Rm|Room|Lot|Trlr|Dept|#)\.?[ \t]{0,2}#?[ \t]{0,2}[A-Z0-9][A-Z0-9\-]{0,6}(?![\p{L}\p{N}]))`;
const CITY = String.raw`\p{Lu}[\p{L}'’.\-]{1,24}(?:[ \t]\p{Lu}[\p{L}'’.\-]{1,24})?(?:[ \t]\p{Lu}[\p{L}'’.\-]{1,24})?`;
const CITY_STATE_ZIP = String.raw`(?:,?[ \t]{0,2}${NEWLINE}?[ \t]{0,2}${CITY},?[ \t]{1,2}(?:${STATE_CODES}|${STATE_NAMES})\.?(?:,?[ \t]{1,2}${ZIP})?(?![\p{L}\p{N}]))`;

// Street name, then house number, as written in most of the world ("Puruntie 82", "Rua do Arenque 1634", "28245 Via
// Franscini 71"). The shape is common in ordinary text ("Type 2", "Room 12", "Sodium 140"), so it counts alone only with a
// unit after it ("Allika 46, Suite 501") and otherwise only with an address word close by.
// prettier-ignore
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

/** Words that are never part of a street name: "She lives at 1420" is a sentence, not a street. */
// prettier-ignore
const NOT_IN_A_STREET = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'been', 'by', 'for', 'from', 'had', 'has', 'have', 'he', 'her', 'his', 'i', 'in', 'is', 'it',
  'its', 'live', 'lived', 'lives', 'living', 'my', 'on', 'or', 'our', 'she', 'the', 'their', 'they', 'to', 'was', 'we', 'were', 'with',
  'you', 'your',
]);

/** Drops "Type 2", "Room 12", "3 Days Inn": shapes of an address whose first word is on the list above. */
function notOrdinaryWords(match: string): false | undefined {
  const first = /^(?:\d{1,6}[ \t]{1,2})?(\p{L}+)/u.exec(match)?.[1];
  if (first === undefined || !NOT_A_STREET_WORDS.has(first)) return undefined;
  // "Unit 1293 Box 4311, DPO AE 01708" is a military address.
  return /(?:APO|FPO|DPO)[ \t]{1,2}A[AEP]/i.test(match) ? undefined : false;
}
const STREET_WORD = String.raw`(?!(?:${[...NOT_IN_A_STREET].join('|')})(?![\p{L}]))\p{L}[\p{L}'’\-]{0,30}\.?`;
const NAMED_STREET_REST = String.raw`(?:[ \t]${STREET_WORD})?(?:[ \t]${STREET_WORD})?`;
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
const NUMBERED_STREET_ADDRESS = String.raw`${HOUSE_NUMBER_FIRST}\p{Lu}${FIRST_WORD_REST}(?:[ \t]${STREET_WORD})?(?:[ \t]${STREET_WORD})?[ \t](?!${SUFFIX})\p{Lu}[\p{L}'’\-]{0,30}\.?`;

/** Words that say an address is near: they raise an address's score, and make a street name and number count. */
// prettier-ignore
const ADDRESS_CONTEXT = [
  'address', 'addresses', 'addr', 'home address', 'mailing address', 'billing address', 'shipping address', 'lives at', 'lives in', 'lives on',
  'lived at', 'lived in', 'living at', 'living in', 'live at', 'live in', 'resides', 'resides at', 'residing', 'residence', 'located at',
  'mail to', 'send to', 'sent to', 'ship to', 'deliver to', 'delivered to', 'moved to', 'corner of', 'intersection of', 'street', 'apt', 'apartment',
];

// Patterns below open with a character (a digit, a capital) and check the boundary right after it: a pattern that
// opens with a lookbehind is tried at every position of the text, one that opens with a class only where it matches.
const US_STREET = String.raw`\d(?<![\p{L}\p{N}_]\d)\d{0,5}(?:[A-Z]|-\d{1,4}|[ \t]1/2)?[ \t]{1,2}(?:${DIRECTION}[ \t]{1,2})?${STREET_NAME}[ \t]{1,2}${SUFFIX}(?:[ \t]{1,2}${DIRECTION}(?![\p{L}\p{N}]))?${UNIT}?${UNIT}?(?:${CITY_STATE_ZIP}|${PLACE_LINES})`;
const PO_BOX = String.raw`[Pp](?<![\p{L}\p{N}_][Pp])(?:\.?[ \t]?[Oo]\.?[ \t]?|ost[ \t][Oo]ffice[ \t])(?:Box|BOX|box)[ \t]{0,2}#?[ \t]{0,2}\d{1,8}${E}${CITY_STATE_ZIP}?`;
/** A word on a boundary, the boundary checked after the word. */
const wordsAtBoundary = (words: string[]) =>
  words.map((w) => String.raw`${w}(?<![\p{L}\p{N}_]${w})`).join('|');
/** USPS military addresses, in any case: they are distinctive ("PSC 0413, Box 8144, APO AA 42323", "FPO AE 09001"). */
const MILITARY_POST_OFFICE = ['APO', 'FPO', 'DPO', 'apo', 'fpo', 'dpo'];
const MILITARY_UNIT = String.raw`(?:${wordsAtBoundary(['PSC', 'psc', 'CMR', 'cmr', 'Unit', 'UNIT', 'unit'])})[ \t]{1,2}\d{1,5},?[ \t]{1,2}(?:Box|BOX|box)[ \t]{1,2}\d{1,5},?\s{1,3}(?:${MILITARY_POST_OFFICE.join('|')})`;
const MILITARY = String.raw`(?:${MILITARY_UNIT}|${wordsAtBoundary(MILITARY_POST_OFFICE)})[ \t]{1,2}(?:AA|AE|AP|aa|ae|ap)[ \t]{1,2}\d{5}(?:-\d{4})?${E}`;

const streetAddress: PatternRecognizer = {
  id: 'street-address',
  type: 'STREET_ADDRESS',
  category: 'identifier',
  patterns: [
    // "1420 N Oak Avenue, Apt 3B, Springfield, IL 62704"
    { name: 'us-street', regex: new RegExp(US_STREET, 'u'), score: 0.7, anchor: HOUSE_NUMBER_ANCHOR },
    // "PO Box 123", "PSC 0413, Box 8144, APO AA 42323"
    {
      name: 'po-box',
      regex: new RegExp(String.raw`${PO_BOX}|${MILITARY}`, 'u'),
      score: 0.7,
      // "Box" in one of its cases, or a military post office.
      triggers: ['box', 'apo', 'fpo', 'dpo'],
      // The same as words: "box", or "pobox" or "obox" ("POBox 12", "P.OBox 12"), or a military post office.
      triggerWords: ['box', 'pobox', 'obox', 'apo', 'fpo', 'dpo'],
    },
  ],
  context: ADDRESS_CONTEXT,
  validate: notOrdinaryWords,
};

/** Score of a street name and number: with a unit after it, or with an address word near, or both. */
const NAMED_STREET_SCORE = { unit: 0.6, near: 0.6, both: 0.95 };
const NAMED_STREET_WINDOW = 40;
const NAMED_STREET = new RegExp(
  String.raw`${NAMED_STREET_ADDRESS}(?:(${UNIT}${UNIT}?)|${ADDRESS_END})${PLACE_LINES}`,
  'gu',
);
const NAMED_STREET_AT = new RegExp(NAMED_STREET.source, 'uy');
const ADDRESS_WORDS = wordListRegex(ADDRESS_CONTEXT);

/** What a word of a street name is made of ([\p{L}'’\-] in NAMED_STREET). */
function isNameChar(c: number): boolean {
  return c === 39 || c === 0x2019 || c === 45 || (charClass(c) & CHAR_LETTER) !== 0;
}

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Every place where NAMED_STREET can start in text with tokens, in order (some cannot): read back from each house number
 * instead of trying the pattern at every capital and digit, which cost a tenth of all scanning on capitalised prose.
 * A match is at most three words, one blank apart, then one or two blanks and the number; it starts at a capital of its
 * first word not preceded by a letter, digit or "_", or at the house number before that word. `digitTokens` are the
 * indices of the tokens that start with a digit, `tokenStarts` the tokens' starts.
 */
function namedStreetStarts(text: string, digitTokens: Int32Array, tokenStarts: Int32Array): Int32Array {
  let found = new Int32Array(256);
  let n = 0;
  const add = (at: number): void => {
    if (n === found.length) {
      const bigger = new Int32Array(n * 2);
      bigger.set(found);
      found = bigger;
    }
    found[n++] = at;
  };
  // A word is at most 32 letters and a dot (FIRST_WORD_REST, STREET_WORD): a longer run is read this far back only.
  const WORD = 34;
  for (let j = 0; j < digitTokens.length; j++) {
    const d = tokenStarts[digitTokens[j]!]!;
    if (d < 2 || !isBlank(text.charCodeAt(d - 1))) continue;
    let e = d - 2;
    if (isBlank(text.charCodeAt(e))) e--;
    // Up to three words back from the number, the first of them (from the start) being where a match may open.
    for (let word = 0; word < 3 && e >= 0; word++) {
      if (text.charCodeAt(e) === 46) e--;
      const last = e;
      // Read back over the word; a capital opens a word when what precedes it is no letter, digit or "_" (an
      // apostrophe, a hyphen, whatever is before the word).
      let c = e >= 0 ? text.charCodeAt(e) : 0;
      while (e >= 0 && last - e < WORD && isNameChar(c)) {
        const b = e > 0 ? text.charCodeAt(e - 1) : 32;
        if (
          (charClass(c) & CHAR_UPPER) !== 0 &&
          (charClass(b) & (CHAR_LETTER | CHAR_NUMBER)) === 0 &&
          b !== 95
        ) {
          add(e);
          // A house number before the word: "28245 Via Franscini 71".
          let q = e - 1;
          if (q >= 0 && isBlank(b)) {
            q--;
            if (q >= 0 && isBlank(text.charCodeAt(q))) q--;
            const numberEnd = q;
            while (q >= 0 && numberEnd - q < 7 && isDigitCode(text.charCodeAt(q))) q--;
            if (q < numberEnd) add(q + 1);
          }
        }
        e--;
        c = b;
      }
      if (e === last) break;
      // The word before is one blank before this one.
      if (e < 1 || !isBlank(text.charCodeAt(e))) break;
      e--;
    }
  }
  return found.slice(0, n).sort();
}

/**
 * "Puruntie 82, Apt 595", "Rua do Arenque 1634": a street name and house number counts with a unit after it or an
 * address word near it. One pass decides both, where two pattern recognizers (one requiring the unit, one the word)
 * would run this, the most expensive pattern here, twice.
 */
const namedStreet: CustomRecognizer = {
  id: 'street-address-named',
  emits: [['STREET_ADDRESS', 'identifier']],
  analyze(text, ctx) {
    const out: Array<Omit<Finding, 'part'>> = [];
    // Tokens are made only for text without surrogates, marks or digits beyond ASCII (the engine's TOKEN_UNSAFE).
    const tokens = ctx.tokens?.() ?? null;
    const starts = tokens ? namedStreetStarts(text, tokenListOf(text, tokens, 'digit'), tokens.start) : null;
    const sticky = NAMED_STREET_AT;
    const re = NAMED_STREET;
    re.lastIndex = 0;
    let k = 0;
    let from = 0;
    // With candidate starts, each tried in order from where the last match ended: the matches of the search below.
    const next = (): RegExpExecArray | null => {
      if (!starts) return re.exec(text);
      for (; k < starts.length; k++) {
        const at = starts[k]!;
        if (at < from) continue;
        sticky.lastIndex = at;
        const m = sticky.exec(text);
        if (m) {
          from = at + m[0].length;
          return m;
        }
      }
      return null;
    };
    for (let m = next(); m; m = next()) {
      if (notOrdinaryWords(m[0]) === false) continue;
      const start = m.index;
      const end = start + m[0].length;
      const before = ctx.lower.slice(Math.max(0, start - NAMED_STREET_WINDOW), start);
      const after = ctx.lower.slice(end, end + NAMED_STREET_WINDOW / 2);
      const near = ADDRESS_WORDS.test(before) || ADDRESS_WORDS.test(after);
      const unit = m[1] !== undefined;
      if (!unit && !near) continue;
      const score =
        unit && near ? NAMED_STREET_SCORE.both : unit ? NAMED_STREET_SCORE.unit : NAMED_STREET_SCORE.near;
      out.push({
        type: 'STREET_ADDRESS',
        category: 'identifier',
        start,
        end,
        score,
        recognizer: 'street-address-named',
      });
    }
    return out;
  },
};

/** One side of a street corner: "Main St", "Dalbraut 99", "ul. Jesionowa 127", "159 Eleftheriou Venizelou str". */
const CORNER_WORD = String.raw`(?:${STREET_WORD}|\d{1,3}(?:st|nd|rd|th))`;
const CORNER_SIDE = String.raw`(?:\d{1,6}[ \t]{1,2})?${CORNER_WORD}(?:[ \t]${CORNER_WORD})?(?:[ \t]${CORNER_WORD})?(?:[ \t]${CORNER_WORD})?(?:[ \t]\d{1,5}\.?)?`;
const CORNERS = String.raw`${CORNER_SIDE}[ \t]{1,2}(?:and|&)[ \t]{1,2}${CORNER_SIDE}`;

const streetAddressLabelled: PatternRecognizer = {
  id: 'street-address-labelled',
  type: 'STREET_ADDRESS',
  category: 'identifier',
  patterns: [
    {
      name: 'numbered-street',
      regex: new RegExp(
        String.raw`${NUMBERED_STREET_ADDRESS}(?:${UNIT}${UNIT}?|${ADDRESS_END})${PLACE_LINES}`,
        'u',
      ),
      score: 0.25,
      anchor: HOUSE_NUMBER_ANCHOR,
    },
  ],
  context: ADDRESS_CONTEXT,
  contextWindow: 40,
  contextBoost: 0.4,
  requireContext: true,
  validate: notOrdinaryWords,
};

/** "the corner of Main St and 5th Ave": a street corner, said to be one. */
const streetIntersection: LabelledKind = {
  id: 'street-intersection',
  type: 'STREET_ADDRESS',
  category: 'identifier',
  label: String.raw`corner[ \t]{1,2}of|intersection[ \t]{1,2}of`,
  value: CORNERS,
  gap: String.raw`[ \t]{1,2}`,
  end: String.raw`(?![\p{L}\p{N}])`,
  score: 0.65,
};

// ZIP codes: a five-digit number is anything until a ZIP label or a "City, ST" is right before it.
const zipAfterState: PatternRecognizer = {
  id: 'zip-code-after-state',
  type: 'ZIP_CODE',
  category: 'identifier',
  // Opens with the comma (then looks back for the city's last letter): a pattern opening with a letter class is tried at every letter.
  patterns: [
    {
      name: 'zip-after-state',
      regex: new RegExp(
        String.raw`,(?<=\p{L}\.?,)[ \t]{0,2}(?:${STATE_CODES})\.?,?[ \t]{1,2}(?<id>${ZIP})${E}`,
        'u',
      ),
      score: 0.3,
    },
  ],
  contextBoost: 0.35,
};

const zipLabelled: LabelledKind = {
  id: 'zip-code',
  type: 'ZIP_CODE',
  category: 'identifier',
  label: String.raw`zip(?:[ \t]?code)?|postal[ \t]code|post[ \t]?code`,
  value: ZIP,
  gap: SHORT_GAP,
  score: 0.75,
};

/** All labelled kinds of this file (builtinRecognizers searches them with the labelled numbers in one pass). */
export const LABELLED_KINDS: readonly LabelledKind[] = [
  mrn,
  chartNumber,
  healthPlanId,
  claimNumber,
  priorAuth,
  accountNumber,
  licenseNumber,
  dateOfBirth,
  dateOfBirthAbbreviated,
  dateOfService,
  ageLabelled,
  streetIntersection,
  zipLabelled,
];

/** All labelled kinds, found in one search for their labels. */
export const labelledIdentifiers = labelScanner('labelled-identifiers', LABELLED_KINDS);

export const labelledRecognizers: Recognizer[] = [
  labelledIdentifiers,
  ageOver89,
  streetAddress,
  namedStreet,
  streetAddressLabelled,
  zipAfterState,
];
