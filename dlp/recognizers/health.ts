// Health signals (category health) and care context (category care): medical codes as pattern recognizers,
// and the vocabulary of dlp/data/medical-terms.ts as one token pass with Map look-ups (never a giant alternation).
// A word with an everyday meaning must never make a message PHI by itself: it is reported only with a second
// signal near (another health term within 100 characters; a clinical word like "patient" or "dx" within 60; for
// dental words also a tooth, a tooth number, a CDT code). "covid-era policy", "cancer awareness" are generic: a
// condition followed by such a word is not reported. Care words close together are merged into one finding.
//
// Types (category health unless noted):
//   ICD10_CODE    ICD-10-CM code: "F32.9" 0.55 alone, 0.9 with a label (Dx, diagnosis, ICD); "I10", "E1165" only labelled
//   CPT_CODE      CPT code (5 digits, or 4 digits + F/T), only with a label (CPT, procedure code, billed, code): 0.85
//   HCPCS_CODE    HCPCS Level II code (letter + 4 digits, not D), only with a label: 0.85
//   CDT_CODE      CDT dental procedure code D0100–D9999: 0.6 alone, 0.9 with CDT, procedure, tx, treatment …
//   NDC_CODE      National Drug Code 4-4-2, 5-3-2, 5-4-1 (or 11 digits after "NDC"): 0.4 alone, 0.85 with NDC, Rx, drug …
//   CONDITION     diagnoses, symptoms, dental conditions, allergies ("hypertension" 0.75, "fever" 0.6, "the flu" weak)
//   MEDICATION    drugs ("metformin" 0.7, "ibuprofen" 0.5), with a dose 0.85 ("lisinopril 10 mg"); "shot", "iron" weak
//   PROCEDURE     procedures, imaging, dental treatment ("root canal" 0.75, "crown" weak), lab tests named without a
//                 value ("A1c" 0.55, "glucose" 0.35)
//   LAB_RESULT    a lab test or vital sign with its value ("A1c 7.9%", "LDL 162", "BP 140/90"): 0.85
//   HEALTH_PHRASE clinical phrasing ("diagnosed with", "tested positive for", "weeks pregnant", "allergic to")
//   CARE_CONTEXT  (category care) the message is about care: patient, appointment, chart, copay, claim, referral … 0.65
import {
  FILTER_BITS,
  filteredTokens,
  filterSlot,
  hashWord,
  isWordChar,
  pairHash,
  tokenFilterId,
  tokenizeWords,
  wordTokens,
  type WordTokens as Tokens,
} from '../engine.js';
import { DENTAL_CUES, GENERIC_AFTER, TERM_GROUPS, type TermGroup } from '../data/medical-terms.js';
import type {
  AnalyzeContext,
  Category,
  CustomRecognizer,
  Finding,
  PatternRecognizer,
  Recognizer,
} from '../types.js';

type Out = Omit<Finding, 'part'>;

// ── Codes ───────────────────────────────────────────────────────────────────────────────────────────────────

/** ICD-10-CM chapters: the highest category number per first letter (U only for its few assigned codes). */
const ICD_MAX: Record<string, number> = {
  A: 99,
  B: 99,
  C: 96,
  D: 89,
  E: 89,
  F: 99,
  G: 99,
  H: 95,
  I: 99,
  J: 99,
  K: 95,
  L: 99,
  M: 99,
  N: 99,
  O: 99,
  P: 96,
  Q: 99,
  R: 99,
  S: 99,
  T: 88,
  V: 99,
  W: 99,
  X: 99,
  Y: 99,
  Z: 99,
};
/**
 * Category numbers that no ICD-10-CM chapter uses (gaps between blocks of the tabular list), per first letter.
 * Generous on purpose: a gap listed here must really be empty, or a real code would be dropped.
 */
const ICD_GAPS: Record<string, Array<[number, number]>> = {
  B: [
    [11, 14],
    [21, 24],
  ],
  E: [
    [14, 14],
    [17, 19],
    [37, 39],
    [47, 49],
  ],
  G: [
    [15, 19],
    [27, 29],
    [33, 34],
    [38, 39],
    [48, 49],
    [66, 69],
    [74, 79],
    [84, 88],
  ],
  H: [
    [6, 9],
    [12, 14],
    [23, 24],
    [29, 29],
    [37, 39],
    [45, 45],
    [48, 48],
    [58, 58],
    [63, 64],
    [76, 79],
    [84, 89],
  ],
  I: [
    [3, 4],
    [29, 29],
    [58, 59],
    [90, 94],
  ],
  J: [
    [7, 8],
    [19, 19],
    [23, 29],
    [48, 59],
    [71, 79],
    [87, 89],
  ],
  K: [
    [15, 19],
    [32, 34],
    [39, 39],
    [47, 49],
    [53, 54],
    [69, 69],
    [78, 79],
    [88, 89],
  ],
  L: [
    [9, 9],
    [15, 19],
    [31, 39],
    [46, 48],
  ],
  M: [
    [3, 3],
    [37, 39],
    [44, 44],
    [55, 59],
    [64, 64],
    [68, 69],
    [98, 98],
  ],
  N: [
    [9, 9],
    [24, 24],
    [54, 59],
    [66, 69],
    [78, 79],
  ],
  O: [
    [17, 19],
    [49, 59],
    [78, 79],
    [83, 84],
    [93, 93],
  ],
  P: [
    [16, 18],
    [30, 34],
    [40, 49],
    [62, 69],
    [75, 75],
    [79, 79],
    [85, 89],
  ],
  R: [
    [24, 24],
    [95, 96],
    [98, 98],
  ],
  T: [
    [0, 6],
    [8, 13],
  ],
  Z: [[54, 54]],
};

/** Categories whose third character is a letter. */
const ICD_LETTER_CATEGORIES = new Set(['C4A', 'C7A', 'C7B', 'D3A', 'M1A', 'O9A', 'Z3A']);
const ICD_U_CODES = new Set(['U070', 'U071', 'U099']);

/** Plausibility of an ICD-10-CM code without the full code list: chapter ranges and the shape after the category. */
export function plausibleIcd10(code: string): boolean {
  const c = code.replace('.', '');
  if (c.length < 3 || c.length > 7 || !/^[A-Z][0-9][0-9A-Z][0-9A-Z]*$/.test(c)) return false;
  const letter = c[0]!;
  const category = c.slice(0, 3);
  if (letter === 'U') return ICD_U_CODES.has(c.slice(0, 4));
  const max = ICD_MAX[letter];
  if (max === undefined) return false;
  if (/[A-Z]/.test(category[2]!)) {
    if (!ICD_LETTER_CATEGORIES.has(category)) return false;
  } else {
    const n = Number(category.slice(1));
    if (n > max || (letter === 'F' && n < 1)) return false;
    if (ICD_GAPS[letter]?.some(([lo, hi]) => n >= lo && n <= hi)) return false;
  }
  // After the category: 4th to 6th characters are digits or the placeholder X; a 7th may be a letter (A, D, S …).
  const rest = c.slice(3);
  if (rest.length === 0) return true;
  if (rest.length < 4) return /^[0-9X]+$/.test(rest);
  return /^[0-9X]{3}[0-9A-Z]$/.test(rest);
}

const ICD_LABELS = [
  'dx',
  'diagnosis',
  'diagnoses',
  'diagnosis code',
  'diagnosis codes',
  'icd',
  'icd-10',
  'icd10',
  'icd-10-cm',
  'icd code',
  'icd codes',
  'dx code',
  'dx codes',
  'assessment',
  'impression',
];

const icd10Dotted: PatternRecognizer = {
  id: 'icd10-dotted',
  type: 'ICD10_CODE',
  category: 'health',
  // "F32.9", "E11.65", "S72.001A"; not inside words, version numbers ("E11.65.2") or ids ("AB-F32.9").
  patterns: [
    {
      name: 'icd10-dotted',
      regex: /(?<![\p{L}\p{N}.\-/])[A-Z][0-9][0-9A-Z]\.[0-9A-Z]{1,4}(?![\p{L}\p{N}]|\.[\p{L}\p{N}])/u,
      score: 0.55,
      tokens: { minLength: 3, maxLength: 3, first: 'upper-digit' },
    },
  ],
  context: ICD_LABELS,
  contextBoost: 0.35,
  validate: (m) => (plausibleIcd10(m) ? undefined : false),
};

/** A word matched in any case without the i flag ("cpt" → "[cC][pP][tT]"): the i flag slows these patterns tenfold. */
function ci(words: string): string {
  return words.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
}

/**
 * Code patterns put the code first and check its label in a look-behind that ends with the code: the engine then
 * tries the label only where a code stands, which keeps a megabyte of mail under a millisecond per pattern.
 */
const labelled = (code: string, label: string, notAfter?: string) =>
  `(?<![\\p{L}\\p{N}.\\-/])(?<id>${code})(?![\\p{L}\\p{N}]|\\.[\\p{L}\\p{N}])` +
  `(?<=(?<![\\p{L}\\p{N}])${label}[\\s:#=-]{0,4}${code})` +
  (notAfter ? `(?<!${notAfter}[\\s:#=-]{0,4}${code})` : '');

/** A code right after another code in a list ("Dx: I10, E11.65 and F32.9"), so one label covers the list. */
const listed = (code: string, previous: string) =>
  `(?<![\\p{L}\\p{N}.\\-/$,])${code}(?![\\p{L}\\p{N}]|[.,]\\p{N})(?<=${previous}(?:,\\s?|;\\s?|\\s?/\\s?|,?\\s(?:and|or|&)\\s|\\s{1,3})${code})`;
const ICD_SHAPE = '[A-Z][0-9][0-9A-Z](?:\\.?[0-9A-Z]{1,4})?';

const ICD_LABEL = `(?:${ci('dx')}|${ci('diagnos')}[iIeE][sS]|${ci('diagnosis')}[ -]${ci('code')}[sS]?|${ci('dx')}[ -]${ci('code')}[sS]?|${ci('icd')}(?:[ -]?10)?(?:[ -]?${ci('cm')})?(?:[ -]?${ci('code')}[sS]?)?)`;
const ICD_BARE = '[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}';
/** A bare code is a word token of its own (see PatternSpec.tokens), as are CPT and HCPCS codes. */
const ICD_TOKEN = { minLength: 3, maxLength: 7, first: 'upper-digit' } as const;
const CPT_TOKEN = { minLength: 5, maxLength: 5, first: 'digit' } as const;
const HCPCS_TOKEN = { minLength: 5, maxLength: 5, first: 'upper-digit' } as const;

const icd10Bare: PatternRecognizer = {
  id: 'icd10-labelled',
  type: 'ICD10_CODE',
  category: 'health',
  // "Dx: I10", "ICD-10 E1165" and further codes in the list ("Dx: I10, E1165 and F329"): bare codes look too much
  // like product codes and room numbers ("N95", "M365") to count without a label.
  patterns: [
    {
      name: 'icd10-after-label',
      regex: new RegExp(labelled(ICD_BARE, ICD_LABEL), 'u'),
      score: 0.5,
      tokens: ICD_TOKEN,
    },
    {
      name: 'icd10-in-list',
      regex: new RegExp(listed(ICD_BARE, ICD_SHAPE), 'u'),
      score: 0.5,
      tokens: ICD_TOKEN,
    },
  ],
  context: ICD_LABELS,
  contextWindow: 120,
  requireContext: true,
  validate: (m) => (plausibleIcd10(m) ? undefined : false),
};

/** A billing label right before a code ("CPT 99213", "billed as J1100", "procedure code: 0001F"). */
const BILLING_LABEL = `(?:${ci('cpt')}®?(?:[ -]?${ci('code')}[sS]?)?|${ci('hcpcs')}(?:[ -]?${ci('code')}[sS]?)?|${ci('procedure')}[ -]${ci('code')}[sS]?|${ci('billing')}[ -]${ci('code')}[sS]?|${ci('billed')}(?:\\s(?:as|under|with|using))?|[jJ]-?${ci('code')}[sS]?|${ci('supply')}[ -]${ci('code')}[sS]?|${ci('code')}[sS]?)`;
/** "code" that is a ZIP code, promo code … is no billing label. */
const NOT_BILLING = `(?:${ci('zip|postal|post|area|promo|promotional|discount|coupon|access|door|gate|alarm|security|verification|confirmation|country|source|dress|tax|product|item|sku|error|status|reference|booking|voucher|gift|pin|lock|sort|swift|bank|routing|qr|bar|zoom|meeting|invite|invitation|auth|authentication|login|otp|backup|recovery|reset|activation|license|serial')})[\\s-]${ci('code')}[sS]?`;

const CPT = '\\d{4}[0-9FT]';

const BILLING_CONTEXT = [
  'cpt',
  'cpt code',
  'cpt codes',
  'procedure code',
  'procedure codes',
  'hcpcs',
  'billed',
  'billing code',
  'billing codes',
  'code',
  'codes',
  'j-code',
  'j-codes',
  'supply code',
];

const cpt: PatternRecognizer = {
  id: 'cpt-code',
  type: 'CPT_CODE',
  category: 'health',
  // After a billing label, and further codes in its list ("CPT 99213, 99214 and 90837").
  patterns: [
    {
      name: 'cpt-after-label',
      regex: new RegExp(labelled(CPT, BILLING_LABEL, NOT_BILLING), 'u'),
      score: 0.5,
      tokens: CPT_TOKEN,
    },
    { name: 'cpt-in-list', regex: new RegExp(listed(CPT, CPT), 'u'), score: 0.5, tokens: CPT_TOKEN },
  ],
  context: BILLING_CONTEXT,
  contextWindow: 120,
  requireContext: true,
  validate: (m) => validCpt(m),
};

function validCpt(m: string): boolean | undefined {
  if (/[FT]$/i.test(m)) return /[FT]$/.test(m) ? undefined : false;
  const n = Number(m);
  return n >= 100 && n <= 99607 ? undefined : false;
}

const HCPCS = '[A-CEGHJ-MP-V]\\d{4}';
const hcpcs: PatternRecognizer = {
  id: 'hcpcs-code',
  type: 'HCPCS_CODE',
  category: 'health',
  patterns: [
    {
      name: 'hcpcs-after-label',
      regex: new RegExp(labelled(HCPCS, BILLING_LABEL, NOT_BILLING), 'u'),
      score: 0.5,
      tokens: HCPCS_TOKEN,
    },
    { name: 'hcpcs-in-list', regex: new RegExp(listed(HCPCS, HCPCS), 'u'), score: 0.5, tokens: HCPCS_TOKEN },
  ],
  context: BILLING_CONTEXT,
  contextWindow: 120,
  requireContext: true,
};

const cdt: PatternRecognizer = {
  id: 'cdt-code',
  type: 'CDT_CODE',
  category: 'health',
  patterns: [
    {
      name: 'cdt',
      regex: /(?<![\p{L}\p{N}.\-/])D\d{4}(?![\p{L}\p{N}]|\.\d)/u,
      score: 0.6,
      tokens: { minLength: 5, maxLength: 5, first: 'upper-digit' },
    },
  ],
  context: [
    'cdt',
    'cdt code',
    'procedure',
    'procedures',
    'tx',
    'treatment',
    'code',
    'codes',
    'dental',
    'billed',
    'claim',
    'ada',
    'tooth',
    'teeth',
    'fee',
    'plan',
  ],
  contextBoost: 0.3,
  validate: (m) => (Number(m.slice(1)) >= 100 ? undefined : false),
};

const ndc: PatternRecognizer = {
  id: 'ndc-code',
  type: 'NDC_CODE',
  category: 'health',
  patterns: [
    {
      name: 'ndc-dashed',
      // The first digit, then the look-behind at it: a search that tries the look-behind at every character first
      // was as costly as every other health recognizer on mail with no code at all.
      regex: /\d(?<![\p{N}-]\d)(?:\d{3}-\d{4}-\d{2}|\d{4}-\d{3}-\d{2}|\d{4}-\d{4}-\d{1,2})(?![\p{N}]|-\d)/u,
      score: 0.4,
      // Tried only where a run of 4 or 5 digits starts (with tokens): on office mail the search of every character
      // for a digit was the costliest pattern of the health set.
      digitRun: { minLength: 4, maxLength: 5 },
    },
    {
      name: 'ndc-labelled',
      regex: new RegExp(
        labelled('\\d{10,11}', `${ci('ndc')}(?:\\s?(?:${ci('code')}|${ci('number')}|${ci('no')}\\.?|#))?`),
        'u',
      ),
      score: 0.5,
      triggers: ['ndc'],
      // The label opens a token: "NDC", "NDC#", "NDCcode", "ndc12345678901" (the label's letters, then digits).
      triggerWords: ['ndc', 'ndccode', 'ndcnumber', 'ndcno'],
    },
  ],
  context: [
    'ndc',
    'national drug code',
    'drug',
    'medication',
    'rx',
    'dispense',
    'dispensed',
    'pharmacy',
    'prescription',
  ],
  contextBoost: 0.45,
};

// ── Vocabulary ──────────────────────────────────────────────────────────────────────────────────────────────

interface Term {
  tokens: string[];
  group: TermGroup;
}

/** Health and care both look at the same part's terms, one after the other: keep the last part's term starts. */
let cached: { tokens: Tokens; starts: TermStarts | null } | null = null;

function tokensOf(lower: string): Tokens {
  const tokens = wordTokens(lower);
  if (cached?.tokens !== tokens) cached = { tokens, starts: null };
  return tokens;
}

/** The tokens that may start a term of either vocabulary, in text order (a buffer reused from part to part). */
interface TermStarts {
  count: number;
  index: Int32Array;
}

let startsBuffer = new Int32Array(1024);

/**
 * The tokens that may start a term of either vocabulary: every other token fails both look-ups, so health and care
 * words are looked for at these only, found in one loop over the hashes instead of a call per word per vocabulary.
 * A first word of terms of several words counts only with a second word of one of them after it: common words open
 * such terms ("the", "from", "follow"), and without the pair test they were a tenth of the words of office mail.
 */
function termStartsOf(lower: string): TermStarts {
  const t = tokensOf(lower);
  if (cached!.starts) return cached!.starts;
  let index = startsBuffer;
  let count = 0;
  const hash = t.hash;
  const n = t.count;
  // The tokens in START_SINGLE or START_SEVERAL (every token when that filter has no id).
  const listed = START_EITHER >= 0 ? filteredTokens(t, START_EITHER) : null;
  const m = listed ? listed.length : n;
  for (let j = 0; j < m; j++) {
    const k = listed ? listed[j]! : j;
    const slot = filterSlot(hash[k]!);
    const bit = 1 << (slot & 31);
    if ((START_SINGLE[slot >>> 5]! & bit) === 0) {
      if ((START_SEVERAL[slot >>> 5]! & bit) === 0 || k + 1 === n) continue;
      const pair = filterSlot(pairHash(hash[k]!, hash[k + 1]!));
      if ((START_PAIRS[pair >>> 5]! & (1 << (pair & 31))) === 0) continue;
    }
    if (count === index.length) {
      const bigger = new Int32Array(count * 2);
      bigger.set(index);
      index = bigger;
    }
    index[count++] = k;
  }
  startsBuffer = index;
  cached!.starts = { count, index };
  return cached!.starts;
}

function termTokens(term: string): string[] {
  const lower = term.toLowerCase();
  const t = tokenizeWords(lower);
  const out: string[] = [];
  for (let k = 0; k < t.count; k++) out.push(lower.slice(t.start[k], t.end[k]));
  return out;
}

/** Whether token k of the text is `word`. */
function is(lower: string, t: Tokens, k: number, word: string): boolean {
  const start = t.start[k]!;
  if (t.end[k]! - start !== word.length) return false;
  // Compared by character codes: a startsWith call per word cost more than the few comparisons themselves.
  for (let j = 0; j < word.length; j++) if (lower.charCodeAt(start + j) !== word.charCodeAt(j)) return false;
  return true;
}

/** Whether token k is the plural of `word` ("crowns", "x-rays", "cavities"). */
function isPlural(lower: string, t: Tokens, k: number, word: string): boolean {
  const s = t.start[k]!;
  const len = t.end[k]! - s;
  if (len === word.length + 1) return lower.charCodeAt(s + len - 1) === 115 && lower.startsWith(word, s);
  if (len === word.length + 2) {
    if (word.endsWith('y'))
      return lower.startsWith(word.slice(0, -1), s) && lower.startsWith('ies', s + len - 3);
    return lower.startsWith(word, s) && lower.startsWith('es', s + len - 2);
  }
  return false;
}

/**
 * Lists by word hash, in an open-addressed table of typed arrays: a Map keyed by hashes boxes half of them (those
 * beyond the small-integer range), and its look-up was most of the cost of asking tens of thousands of words.
 */
class HashLists<T> {
  private keys = new Int32Array(0);
  /** 1 + the index of the slot's list in `lists`; 0 for an empty slot. */
  private slots = new Int32Array(0);
  private lists: T[][] = [];

  /** The list for hash `h`, made empty on first use. */
  listFor(h: number): T[] {
    const found = this.get(h);
    if (found) return found;
    if ((this.lists.length + 1) * 2 > this.slots.length) this.grow();
    const list: T[] = [];
    this.lists.push(list);
    this.place(h, this.lists.length);
    return list;
  }

  get(h: number): T[] | undefined {
    const mask = this.slots.length - 1;
    if (mask < 0) return undefined;
    for (let s = (h ^ (h >>> 15)) & mask; ; s = (s + 1) & mask) {
      const slot = this.slots[s]!;
      if (slot === 0) return undefined;
      if (this.keys[s] === h) return this.lists[slot - 1];
    }
  }

  /** Every list, in the order they were made. */
  all(): readonly T[][] {
    return this.lists;
  }

  private place(h: number, slot: number): void {
    const mask = this.slots.length - 1;
    let s = (h ^ (h >>> 15)) & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.keys[s] = h;
    this.slots[s] = slot;
  }

  private grow(): void {
    const keys = this.keys;
    const slots = this.slots;
    this.keys = new Int32Array(Math.max(16, slots.length * 2));
    this.slots = new Int32Array(this.keys.length);
    for (let s = 0; s < slots.length; s++) if (slots[s] !== 0) this.place(keys[s]!, slots[s]!);
  }
}

/** A set of words looked up by a token's hash, checked against the text (no strings made). */
class WordSet {
  private readonly byHash = new HashLists<string>();

  constructor(words: Iterable<string>) {
    for (const w of words) this.byHash.listFor(hashWord(w)).push(w);
  }

  has(lower: string, t: Tokens, k: number): boolean {
    const list = this.byHash.get(t.hash[k]!);
    if (list === undefined) return false;
    for (const w of list) if (is(lower, t, k, w)) return true;
    return false;
  }
}

/** Text between two words of one term: spaces, a hyphen, slash, ampersand, dot or "#" ("x-ray", "d&c", "tylenol #3"). */
function joins(lower: string, from: number, to: number): boolean {
  // A possessive "'s" sits between the words of "crohn's disease".
  const a = lower.charCodeAt(from);
  if ((a === 39 || a === 0x2019) && lower.charCodeAt(from + 1) === 115) from += 2;
  if (to - from < 1 || to - from > 3) return false;
  let newlines = 0;
  for (let i = from; i < to; i++) {
    const c = lower.charCodeAt(i);
    if (c === 10) newlines++;
    else if (c === 46) {
      // A dot only after an initial ("c. diff"), never at the end of a sentence.
      if (from >= 2 && isWordChar(lower.charCodeAt(from - 2))) return false;
    } else if (!(
      c === 32 ||
      c === 9 ||
      c === 13 ||
      c === 45 ||
      c === 47 ||
      c === 38 ||
      c === 35 ||
      c === 0x2013
    ))
      return false;
  }
  return newlines <= 1;
}

interface Entry {
  /** The word as it stands in the text (a term's first word, or its plural). */
  word: string;
  term: Term;
  /**
   * For a term of several words, the hashes of the tokens that can be its second word (the word, and its plurals when
   * it ends the term): most tokens after a first word are none of them, and the term is left without reading the text.
   */
  second: readonly number[] | null;
}

/** The hashes of the tokens a term's second word may stand as (see Entry.second). */
function secondHashes(term: Term): number[] | null {
  const word = term.tokens[1];
  if (word === undefined) return null;
  const forms = [word];
  if (term.tokens.length === 2)
    forms.push(`${word}s`, word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}es`);
  return forms.map(hashWord);
}

/** A word right after a term that modifies it ("covid-era", "cancer awareness"): a space or hyphen between, nothing else. */
function modifies(lower: string, from: number, to: number): boolean {
  if (to - from < 1 || to - from > 2) return false;
  for (let i = from; i < to; i++) {
    const c = lower.charCodeAt(i);
    if (c !== 32 && c !== 45) return false;
  }
  return true;
}

class Vocabulary {
  /** First words of terms, and plurals of one-word terms ("crowns", "cavities"), by hash. */
  private readonly byFirst = new HashLists<Entry>();
  /**
   * A bit set where some first word's hash falls: most words of a text are no term's first word, and a typed-array read turns
   * them away before a Map look-up (this runs for every word of every part).
   */
  readonly filter = new Uint32Array((1 << FILTER_BITS) >>> 5);
  /** Where the hash of a first word of a term of one word (or its plural) falls (`filter` is this and `several`). */
  readonly single = new Uint32Array((1 << FILTER_BITS) >>> 5);
  /** The first words of terms of several words ("the" of "the flu", "follow" of "follow-up visit"). */
  readonly several = new Uint32Array((1 << FILTER_BITS) >>> 5);
  /** Such a first word with a form of its term's second word (pairHash; the forms `match` accepts there). */
  readonly pairs = new Uint32Array((1 << FILTER_BITS) >>> 5);

  constructor(groups: readonly TermGroup[]) {
    const seen = new Set<string>();
    for (const group of groups) {
      for (const raw of group.terms.split('|')) {
        const tokens = termTokens(raw.trim());
        const first = tokens[0];
        const key = tokens.join(' ');
        if (first === undefined || seen.has(key)) continue;
        seen.add(key);
        const term = { tokens, group };
        this.add(first, term);
        if (tokens.length === 1 && first.length > 2 && /[a-z]$/.test(first)) {
          for (const plural of first.endsWith('y')
            ? [`${first}s`, `${first.slice(0, -1)}ies`]
            : [`${first}s`, `${first}es`]) {
            if (!seen.has(plural)) this.add(plural, term);
          }
        }
      }
    }
    // Longest first; an exact word before a plural form.
    for (const list of this.byFirst.all())
      list.sort((a, b) => b.term.tokens.length - a.term.tokens.length || a.word.length - b.word.length);
  }

  private add(word: string, term: Term): void {
    const h = hashWord(word);
    const set = (filter: Uint32Array, hash: number): void => {
      const slot = filterSlot(hash);
      filter[slot >>> 5]! |= 1 << (slot & 31);
    };
    set(this.filter, h);
    const second = secondHashes(term);
    if (second === null) set(this.single, h);
    else {
      set(this.several, h);
      for (const h2 of second) set(this.pairs, pairHash(h, h2));
    }
    this.byFirst.listFor(h).push({ word, term, second });
  }

  /** The longest term starting at token i. */
  match(t: Tokens, lower: string, i: number): Term | null {
    const h = t.hash[i]!;
    const slot = filterSlot(h);
    if ((this.filter[slot >>> 5]! & (1 << (slot & 31))) === 0) return null;
    const list = this.byFirst.get(h);
    if (!list) return null;
    const next = i + 1 < t.count ? t.hash[i + 1]! : 0;
    for (const e of list) {
      if (e.second !== null && (i + 1 >= t.count || !e.second.includes(next))) continue;
      if (is(lower, t, i, e.word) && this.rest(t, lower, i, e.term)) return e.term;
    }
    return null;
  }

  private rest(t: Tokens, lower: string, i: number, term: Term): boolean {
    const n = term.tokens.length;
    if (i + n > t.count) return false;
    for (let k = 1; k < n; k++) {
      if (!joins(lower, t.end[i + k - 1]!, t.start[i + k]!)) return false;
      const termWord = term.tokens[k]!;
      if (!is(lower, t, i + k, termWord) && !(k === n - 1 && isPlural(lower, t, i + k, termWord)))
        return false;
    }
    return true;
  }
}

const HEALTH_GROUPS = TERM_GROUPS.filter((g) => g.type !== 'CARE_CONTEXT');
const CARE_GROUPS = TERM_GROUPS.filter((g) => g.type === 'CARE_CONTEXT');
const healthVocabulary = new Vocabulary(HEALTH_GROUPS);
const careVocabulary = new Vocabulary(CARE_GROUPS);
/**
 * Both vocabularies' filters in one: a token starts a term of either only if its hash is in START_SINGLE, or in
 * START_SEVERAL with the next token's making a pair in START_PAIRS.
 */
const START_SINGLE = healthVocabulary.single.map((bits, k) => bits | careVocabulary.single[k]!);
const START_SEVERAL = healthVocabulary.several.map((bits, k) => bits | careVocabulary.several[k]!);
const START_PAIRS = healthVocabulary.pairs.map((bits, k) => bits | careVocabulary.pairs[k]!);
/** The tokenFilterId of START_SINGLE and START_SEVERAL together. */
const START_EITHER = tokenFilterId(
  START_SINGLE.map((bits, k) => bits | START_SEVERAL[k]!),
  START_SINGLE,
);
const GENERIC = new WordSet(GENERIC_AFTER);
const DENTAL = new WordSet(DENTAL_CUES.flatMap((c) => termTokens(c)));
/** Care words that make an everyday health word clinical ("patient has the flu"). */
const CLINICAL = new WordSet([
  'patient',
  'patients',
  'pt',
  'dx',
  'diagnosis',
  'diagnosed',
  'symptoms',
  'chart',
  'rx',
  'prescription',
  'prescribed',
  'tx',
]);

/** A lab value right after a test name: "A1c 7.9%", "LDL of 162", "glucose was 140 mg/dL". */
const LAB_VALUE =
  /[\s:=(-]{0,3}(?:(?:of|was|is|at|now|today|level|levels|reading|result|value|measured|came back|came in at|=)[\s:=]{1,3}){0,3}(?:[<>≤≥~]\s?)?(?<v>\d{1,4}(?:[.,]\d{1,2})?)(?![\d/:])\s?(?:%|mg\/dl|mmol\/l|mmol\/mol|g\/dl|mg\/l|ng\/ml|pg\/ml|miu\/l|µiu\/ml|uiu\/ml|iu\/l|u\/l|meq\/l|k\/ul|x10|bpm|mm|cm|lbs?|kg|°f|°c|f\b|c\b)?/y;
const PRESSURE_VALUE =
  /[\s:=(-]{0,3}(?:(?:of|was|is|at|now|today|reading|=)[\s:=]{1,3}){0,3}\d{2,3}\s?\/\s?\d{2,3}(?!\d)(?:\s?mm\s?hg)?/y;
/** A dose after a medication: "lisinopril 10 mg", "metformin 500mg", "insulin 20 units". */
const DOSE =
  /[\s:,(-]{0,3}\d{1,5}(?:[.,]\d{1,3})?\s?(?:mg|mcg|µg|g|ml|units?|iu|%|meq|puffs?|tabs?|tablets?|caps?|capsules?)(?![\p{L}])/uy;
/** Signs of a coded or numbered clinical context near a weak term: a CDT code, an ICD-10 code, a tooth number. */
const CODE_NEAR =
  /(?:^|[^\p{L}\p{N}])(?:D\d{4}|[A-TV-Z]\d\d\.\d{1,4}|#\s?\d{1,2}(?!\d))(?![\p{L}\p{N}])|\b(?:tooth|teeth)\s#?\d{1,2}\b/u;

interface Hit {
  start: number;
  end: number;
  first: number;
  last: number;
  type: string;
  score: number;
  weak?: TermGroup['weak'];
  supportedScore: number;
  term: Term;
}

function stickyExec(re: RegExp, text: string, at: number): RegExpExecArray | null {
  re.lastIndex = at;
  return re.exec(text);
}

function findHealthTerms(text: string, lower: string): Out[] {
  const t = tokensOf(lower);
  const starts = termStartsOf(lower);
  const hits: Hit[] = [];
  const n = t.count;
  // The next token a term may start at (one term's words are not read again as the start of another).
  let from = 0;
  for (let c = 0; c < starts.count; c++) {
    const i = starts.index[c]!;
    if (i < from) continue;
    const term = healthVocabulary.match(t, lower, i);
    if (!term) continue;
    const last = i + term.tokens.length - 1;
    const g = term.group;
    const next = last + 1;
    // "covid-era policy", "cancer awareness month": a condition word used generically.
    if (
      (g.type === 'CONDITION' || g.weak) &&
      next < n &&
      GENERIC.has(lower, t, next) &&
      modifies(lower, t.end[last]!, t.start[next]!)
    ) {
      from = next + 1;
      continue;
    }
    const start = t.start[i]!;
    let end = t.end[last]!;
    let type: string = g.type;
    let score = g.score;
    let weak = g.weak;
    if (g.type === 'LAB') {
      const m = stickyExec(g.value === 'pressure' ? PRESSURE_VALUE : LAB_VALUE, lower, end);
      const value = m && (g.value === 'pressure' || !/^(?:19|20)\d\d$/.test(m.groups?.v ?? '')) ? m : null;
      if (value && value[0].length > 0) {
        type = 'LAB_RESULT';
        score = 0.85;
        end += value[0].length;
        while (end > start && /\s/.test(lower[end - 1]!)) end--;
      } else type = 'PROCEDURE';
    } else if (g.type === 'MEDICATION') {
      const m = stickyExec(DOSE, lower, end);
      if (m && m[0].length > 0) {
        score = Math.max(score, g.weak ? 0.6 : 0.85);
        weak = undefined;
        end += m[0].length;
      }
    }
    hits.push({
      start,
      end,
      first: i,
      last,
      type,
      score,
      weak,
      supportedScore: g.supportedScore ?? 0.6,
      term,
    });
    from = last + 1;
  }
  // Weak words count only with a second signal near; alone they are not reported at all.
  const out: Out[] = [];
  for (let h = 0; h < hits.length; h++) {
    const hit = hits[h]!;
    if (hit.weak) {
      if (!supported(hits, h, t, text, lower)) continue;
      hit.score = Math.max(hit.score, hit.supportedScore);
    }
    out.push({
      type: hit.type,
      category: 'health' as Category,
      start: hit.start,
      end: hit.end,
      score: hit.score,
      recognizer: 'health-terms',
    });
  }
  return out;
}

const STRONG_WINDOW = 100;
const CUE_WINDOW = 60;

function supported(hits: readonly Hit[], h: number, t: Tokens, text: string, lower: string): boolean {
  const hit = hits[h]!;
  // Another health term that counts by itself, or for dental words another dental word (different term).
  for (const dir of [-1, 1]) {
    for (let k = h + dir; k >= 0 && k < hits.length; k += dir) {
      const other = hits[k]!;
      const gap = dir < 0 ? hit.start - other.end : other.start - hit.end;
      if (gap > STRONG_WINDOW) break;
      if (!other.weak && other.score >= 0.5) return true;
      if (hit.weak === 'dental' && other.weak === 'dental' && other.term !== hit.term && gap <= CUE_WINDOW)
        return true;
    }
  }
  // Cue words near: clinical care words, and for dental words tooth names and numbers.
  for (const dir of [-1, 1]) {
    for (let k = dir < 0 ? hit.first - 1 : hit.last + 1; k >= 0 && k < t.count; k += dir) {
      const gap = dir < 0 ? hit.start - t.end[k]! : t.start[k]! - hit.end;
      if (gap > CUE_WINDOW) break;
      if (CLINICAL.has(lower, t, k) || (hit.weak === 'dental' && DENTAL.has(lower, t, k))) return true;
    }
  }
  const from = Math.max(0, hit.start - CUE_WINDOW);
  return CODE_NEAR.test(text.slice(from, Math.min(text.length, hit.end + CUE_WINDOW)));
}

/** Care words close together make one finding: the rules only need to know that care is near. */
const CARE_MERGE = 80;

function findCareTerms(lower: string): Out[] {
  const t = tokensOf(lower);
  const starts = termStartsOf(lower);
  const out: Out[] = [];
  let open: Out | null = null;
  let from = 0;
  for (let c = 0; c < starts.count; c++) {
    const i = starts.index[c]!;
    if (i < from) continue;
    const term = careVocabulary.match(t, lower, i);
    if (!term) continue;
    const last = i + term.tokens.length - 1;
    const start = t.start[i]!;
    const end = t.end[last]!;
    if (open && start - open.end <= CARE_MERGE) {
      open.end = end;
      open.score = Math.max(open.score, term.group.score);
    } else {
      open = {
        type: 'CARE_CONTEXT',
        category: 'care',
        start,
        end,
        score: term.group.score,
        recognizer: 'care-context',
      };
      out.push(open);
    }
    from = last + 1;
  }
  return out;
}

export const healthTermRecognizer: CustomRecognizer = {
  id: 'health-terms',
  usesWordTokens: true,
  emits: (['CONDITION', 'MEDICATION', 'PROCEDURE', 'HEALTH_PHRASE', 'LAB_RESULT'] as const).map(
    (type) => [type, 'health'] as const,
  ),
  analyze: (text: string, ctx: AnalyzeContext) => findHealthTerms(text, ctx.lower),
};

export const careContextRecognizer: CustomRecognizer = {
  id: 'care-context',
  usesWordTokens: true,
  emits: [['CARE_CONTEXT', 'care']],
  analyze: (text: string, ctx: AnalyzeContext) => findCareTerms(ctx.lower),
};

export const healthRecognizers: Recognizer[] = [
  icd10Dotted,
  icd10Bare,
  cpt,
  hcpcs,
  cdt,
  ndc,
  healthTermRecognizer,
  careContextRecognizer,
];

/** For tests: where the tokens start that the vocabularies are asked about (offsets into the lower-cased text). */
export function termStartOffsets(lower: string): number[] {
  const t = tokensOf(lower);
  const starts = termStartsOf(lower);
  const out: number[] = [];
  for (let c = 0; c < starts.count; c++) out.push(t.start[starts.index[c]!]!);
  return out;
}
