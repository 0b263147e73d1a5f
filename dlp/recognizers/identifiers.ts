// Identifiers with a format or a checksum of their own: SSN, ITIN, NPI, DEA, MBI, payment card, e-mail, phone and
// fax, URL, IP address, VIN. Every pattern is bounded and anchored on a boundary, so a scan is linear in the text.
import { wordListRegex } from '../engine.js';
import type { CustomRecognizer, Finding, PatternRecognizer, Recognizer } from '../types.js';
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
} from '../validators.js';
import { labelScanner, type LabelledKind } from './labelled.js';

/** Not inside a word or a number, and not the tail of a number written with separators ("12-345-67-8901"). */
const START = String.raw`(?<![\p{L}\p{N}_]|\p{N}[\-./])`;
/**
 * The same as START, written after a pattern's first character: a pattern that opens with a character class lets the
 * regex engine skip ahead to where that class matches, where one that opens with a lookbehind is tried at every position.
 */
const AFTER_FIRST_CHAR = String.raw`(?<![\p{L}\p{N}_].|\p{N}[\-./].)`;
/** Not followed by a letter or digit, nor by a separator and a digit (the number goes on). */
const END = String.raw`(?![\p{L}\p{N}_]|[\-./]\p{N})`;
/** The end of a phone number: not followed by a separator and a letter or digit either ("555-123-4567-B2" is a product code). */
const PHONE_END = String.raw`(?![\p{L}\p{N}_]|[\-./][\p{L}\p{N}])`;

/** A range check says "impossible", never "certain": it drops a match or leaves its score alone. */
function rangeCheck(check: (match: string) => boolean): (match: string) => boolean | undefined {
  return (match) => (check(match) ? undefined : false);
}

// prettier-ignore
const SSN_CONTEXT = ['ssn', 'ssn#', 'ss#', 'ss #', 'social security', 'social security number', 'social security no', 'social sec', 'soc sec', 'ssa'];

const ssn: PatternRecognizer = {
  id: 'us-ssn',
  type: 'US_SSN',
  category: 'strong',
  patterns: [
    // 123-45-6789 or 123 45 6789, the same separator twice.
    {
      name: 'ssn-grouped',
      regex: new RegExp(String.raw`${START}\d{3}(?:-\d{2}-| \d{2} )\d{4}${END}`, 'u'),
      score: 0.5,
      tokens: { minLength: 3, maxLength: 3, first: 'digit' },
    },
  ],
  context: SSN_CONTEXT,
  validate: rangeCheck(isValidSsn),
};

/** Nine bare digits are an SSN only right after its label ("SSN: 123456789", "social security number is 123456789"). */
const ssnLabelled: LabelledKind = {
  id: 'us-ssn-labelled',
  type: 'US_SSN',
  category: 'strong',
  label: String.raw`ssn|ss#|ss[ \t]#|social[ \t]{1,2}security(?:[ \t]{1,2}(?:number|no\.?|#))?|soc\.?[ \t]sec\.?(?:[ \t]{1,2}(?:number|no\.?|#))?`,
  value: String.raw`\d{9}`,
  score: 0.7,
  validate: isValidSsn,
};

// prettier-ignore
const ITIN_CONTEXT = ['itin', 'individual taxpayer', 'taxpayer identification', 'taxpayer id', 'tin', 'tax id', 'tax identification'];

const itin: PatternRecognizer = {
  id: 'us-itin',
  type: 'US_ITIN',
  category: 'strong',
  patterns: [
    {
      name: 'itin-grouped',
      regex: new RegExp(String.raw`${START}9\d{2}(?:-\d{2}-| \d{2} )\d{4}${END}`, 'u'),
      score: 0.5,
      tokens: { minLength: 3, maxLength: 3, first: 'digit' },
    },
  ],
  context: ITIN_CONTEXT,
  validate: rangeCheck(isValidItin),
};

const itinLabelled: LabelledKind = {
  id: 'us-itin-labelled',
  type: 'US_ITIN',
  category: 'strong',
  label: String.raw`itin|(?:individual[ \t])?taxpayer[ \t]id(?:entification)?(?:[ \t]number|[ \t]no\.?|[ \t]#)?`,
  value: String.raw`9\d{8}`,
  score: 0.7,
  validate: isValidItin,
};
/** "TIN" and "tax ID" are short or ordinary: the number must follow at once. */
const tinLabelled: LabelledKind = {
  ...itinLabelled,
  label: String.raw`tin|tax[ \t]id`,
  gap: String.raw`[ \t]{0,3}[:#]?[ \t]{0,3}`,
};

/**
 * A provider's NPI says the message is about care; it is not the patient's. One random 10-digit number in ten passes
 * the check, so alone it stays below the usual 0.5 threshold and needs a label to count.
 */
const npi: PatternRecognizer = {
  id: 'npi',
  type: 'NPI',
  category: 'care',
  patterns: [
    {
      name: 'npi',
      regex: new RegExp(String.raw`${START}[12]\d{9}${END}`, 'u'),
      score: 0.1,
      tokens: { minLength: 10, maxLength: 10, first: 'digit' },
    },
  ],
  context: [
    'npi',
    'npi#',
    'national provider',
    'national provider identifier',
    'provider',
    'prescriber',
    'physician',
    'rendering',
    'referring',
    'billing provider',
  ],
  contextBoost: 0.5,
  validate: isValidNpi,
  validScore: 0.4,
};

/** DEA registration: registrant type, a letter or 9, seven digits with the DEA check digit. */
const dea: PatternRecognizer = {
  id: 'dea-number',
  type: 'DEA_NUMBER',
  category: 'care',
  patterns: [
    {
      name: 'dea',
      regex: new RegExp(String.raw`[ABCDEFGHJKLMPRSTUX]${AFTER_FIRST_CHAR}[A-Z9]\d{7}${END}`, 'u'),
      score: 0.3,
      tokens: { minLength: 9, maxLength: 9, first: 'upper-digit' },
    },
  ],
  context: [
    'dea',
    'dea#',
    'dea number',
    'dea no',
    'dea registration',
    'prescriber',
    'controlled substance',
    'schedule ii',
  ],
  validate: isValidDea,
  validScore: 0.6,
};

// CMS Medicare Beneficiary Identifier: C A AN N A AN N A A N N, letters without S L O I B Z.
const MBI_ALPHA = '[AC-HJKMNP-RT-Y]';
const MBI_ALNUM = '[AC-HJKMNP-RT-Y0-9]';
const mbi: PatternRecognizer = {
  id: 'medicare-mbi',
  type: 'MEDICARE_MBI',
  category: 'strong',
  patterns: [
    {
      name: 'mbi',
      // Dashes after the 4th and 7th characters are optional ("1EG4-TE5-MK73", "1EG4TE5MK73").
      regex: new RegExp(
        String.raw`${START}[1-9]${MBI_ALPHA}${MBI_ALNUM}\d-?${MBI_ALPHA}${MBI_ALNUM}\d-?${MBI_ALPHA}{2}\d{2}${END}`,
        'u',
      ),
      score: 0.5,
      // Its first token: 1EG4 of 1EG4-TE5-MK73, 1EG4TE5 of 1EG4TE5-MK73, all of 1EG4TE5MK73.
      tokens: { minLength: 4, maxLength: 11, first: 'digit' },
    },
  ],
  context: [
    'medicare',
    'mbi',
    'medicare beneficiary',
    'beneficiary',
    'medicare id',
    'medicare number',
    'medicare no',
    'hicn',
    'cms',
  ],
};

const card: PatternRecognizer = {
  id: 'credit-card',
  type: 'CREDIT_CARD',
  category: 'identifier',
  patterns: [
    {
      name: 'card',
      // Bare, or in the groups printed on cards: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4. One pass over the text.
      regex: new RegExp(
        String.raw`${START}(?:\d{13,19}|\d{4}-\d{4}-\d{4}-\d{1,4}(?:-\d{1,3})?|\d{4} \d{4} \d{4} \d{1,4}(?: \d{1,3})?|\d{4}[ \-]\d{6}[ \-]\d{4,5})${END}`,
        'u',
      ),
      score: 0.3,
      // Its first token: all digits, or the first group of four.
      tokens: { minLength: 4, maxLength: 19, first: 'digit' },
    },
  ],
  context: [
    'card',
    'credit card',
    'debit card',
    'card number',
    'card no',
    'cc',
    'visa',
    'mastercard',
    'amex',
    'american express',
    'discover',
    'payment',
  ],
  contextBoost: 0.15,
  validate: isValidCardNumber,
  validScore: 0.8,
};

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
/** Characters of an e-mail address's local part (dot-atom, as people write them): letters, digits and . _ % + - */
function isLocalChar(c: number): boolean {
  return isAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}
/** One address read forwards from where its local part starts (sticky); the domain backtracks to its last ".tld". */
const EMAIL_FROM_START =
  /[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}\.[A-Za-z]{2,24}(?![\p{L}\p{N}_-]|\.[\p{L}\p{N}])/uy;
const EMAIL_SCORE = 0.9;

/**
 * E-mail addresses, found from each "@" rather than by a pattern tried at every word: the same bounded pattern, run
 * only where an address can start, which keeps prose fast (a pattern tried at every word start scans every word).
 */
const email: CustomRecognizer = {
  id: 'email-address',
  emits: [['EMAIL_ADDRESS', 'identifier']],
  analyze(text) {
    const out: Array<Omit<Finding, 'part'>> = [];
    let from = 0;
    for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
      if (at < from) continue;
      let start = at;
      while (start > from && at - start < 64 && isLocalChar(text.charCodeAt(start - 1))) start--;
      // Not an address when the local part runs on past 64 characters, is glued to another letter, or starts with a symbol.
      const before = start > 0 ? text.charCodeAt(start - 1) : 32;
      if (isLocalChar(before) || (before > 127 && /[\p{L}\p{N}]/u.test(text[start - 1] ?? ''))) continue;
      if (!isAlnum(text.charCodeAt(start))) continue;
      EMAIL_FROM_START.lastIndex = start;
      const m = EMAIL_FROM_START.exec(text);
      if (!m) continue;
      const end = start + m[0].length;
      out.push({
        type: 'EMAIL_ADDRESS',
        category: 'identifier',
        start,
        end,
        score: EMAIL_SCORE,
        recognizer: 'email-address',
      });
      from = end;
    }
    return out;
  },
};

// North American numbers: optional country code (+1, 1-, 001), an area code that starts 2–9, an exchange and a line.
const US_COUNTRY = String.raw`(?:\+1[\-. ]?|1[\-. ]|001[\-. ])?`;
const US_LOCAL = String.raw`(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}[\-. ])\d{3}[\-. ]\d{4}`;
const EXTENSION = String.raw`(?:[ ]{0,2}(?:x|ext\.?|extension)[ ]{0,2}\d{1,6})?`;
// Numbers elsewhere, always written with the + of an international prefix: "+46 (0)8 928 571 38", "+447700 921 916".
const INTERNATIONAL = String.raw`\+[1-9]\d{0,3}(?:[ .\-]?\(0\))?[ .\-]?\d{1,10}(?:[ .\-]\d{2,6})?(?:[ .\-]\d{2,4})?(?:[ .\-]\d{2,4})?(?:[ .\-]\d{2,4})?`;
// Digit groups in any local style ("0490 75 40 81", "(08) 8747 6301", "03.93.92.16.85", "9498777106"): only right after
// a phone word or right before a line word ("-Office"). Seven digits in a row or two groups at least.
const LOOSE_PHONE = String.raw`(?:\+\d{1,3}[ .\-]?)?(?:\(\d{1,5}\)[ .\-]?)?(?:\d{7,15}|\d{2,8}[ .\-]\d{2,8}(?:[ .\-]\d{2,5})?(?:[ .\-]\d{2,5})?(?:[ .\-]\d{2,5})?)`;

/** Words that say the number after them is a phone number ("Phone:", "call me at", "messages to", "Mobile"). */
const PHONE_LABEL = String.raw`telephone|phone|tel\.?|ph\.?|cell(?:[ \t]?phone)?|mobile|mob\.?|call(?:ed|ing)?(?:[ \t]?back)?|callback|texte?d?|sms|messages?|voice[ \t]?mail|whatsapp|contact|reach|pager|landline|answer(?:ing)?`;
/**
 * Between a phone word and its number: a few words, one line break, no digits, no parentheses (so that in
 * "555 0100 (fax) 555 0199" the word belongs to the number before it).
 */
const PHONE_GAP = String.raw`[^\d.;!?()]{0,20}?`;
// prettier-ignore
const PHONE_CONTEXT = [
  'phone', 'telephone', 'tel', 'ph', 'cell', 'cellphone', 'cell phone', 'mobile', 'mob', 'call', 'called', 'calling', 'callback',
  'call back', 'text', 'texted', 'sms', 'message', 'messages', 'voicemail', 'voice mail', 'whatsapp', 'contact', 'reach', 'pager',
  'landline', 'dial', 'ring', 'answer', 'answering', 'home', 'work', 'office', 'desk', 'direct',
];

const phone: PatternRecognizer = {
  id: 'phone-number',
  type: 'PHONE_NUMBER',
  category: 'identifier',
  patterns: [
    {
      name: 'phone-us',
      regex: new RegExp(String.raw`${START}${US_COUNTRY}${US_LOCAL}${EXTENSION}${PHONE_END}`, 'iu'),
      score: 0.6,
    },
    // Anything written with a country code: "+1 555 123 4567", "+15551234567", "+46 (0)8 928 571 38".
    {
      name: 'phone-international',
      regex: new RegExp(String.raw`(?<![\p{L}\p{N}_+])${INTERNATIONAL}${EXTENSION}${PHONE_END}`, 'iu'),
      score: 0.6,
      triggers: ['+'],
    },
  ],
  context: PHONE_CONTEXT,
  validate: rangeCheck((m) => isPlausiblePhone(m, 8, 15)),
};

/**
 * Local and bare forms ("9498777106", "467 3395", "(08) 8747 6301") are phone numbers only after a phone word. Numbers
 * the phone patterns above find anyway are left to them (one finding per number, not two).
 */
const phoneLabelled: LabelledKind = {
  id: 'phone-number-labelled',
  type: 'PHONE_NUMBER',
  category: 'identifier',
  label: PHONE_LABEL,
  value: String.raw`(?!${US_COUNTRY}${US_LOCAL}${EXTENSION}${PHONE_END}|\+)${LOOSE_PHONE}${EXTENSION}`,
  gap: PHONE_GAP,
  score: 0.6,
  validate: (number) => isPlausiblePhone(number, 7, 15),
};

// A fax number is a phone number with "fax" written right before or after it. It scores above any phone finding
// (1.0 against 0.95), so the overlap resolution keeps FAX_NUMBER for the same span.
const FAX_LABEL = String.raw`fax|facsimile|telefax`;
const faxLabelled: LabelledKind = {
  id: 'fax-number',
  type: 'FAX_NUMBER',
  category: 'identifier',
  label: FAX_LABEL,
  value: String.raw`${LOOSE_PHONE}${EXTENSION}`,
  gap: PHONE_GAP,
  score: 1,
  validate: (number) => isPlausiblePhone(number, 7, 15),
};

/** Numbers named by the word before them, all kinds in one search for the words. */
export const NUMBER_KINDS: readonly LabelledKind[] = [
  ssnLabelled,
  itinLabelled,
  tinLabelled,
  phoneLabelled,
  faxLabelled,
];
export const labelledNumbers = labelScanner('labelled-numbers', NUMBER_KINDS);

/** Words written after a number to say what line it is: "555 0100 (mobile)", "085 175 7641-Office", "07700 063 966-Fax". */
const LINE_WORDS = [
  'fax',
  'facsimile',
  'phone',
  'tel',
  'cell',
  'mobile',
  'home',
  'work',
  'office',
  'desk',
  'landline',
  'direct',
];
const LINE_AFTER = new RegExp(
  String.raw`${START}(${LOOSE_PHONE}${EXTENSION})[ \t]{0,2}[\-(/]?[ \t]{0,2}(?:(fax|facsimile)|${LINE_WORDS.slice(2).join('|')})(?![\p{L}])`,
  'giu',
);
const LINE_AFTER_SCORE = { fax: 1, phone: 0.6 };

/**
 * Numbers with their line written after them, phone or fax. One pass over the numbers of the text for both types,
 * where two pattern recognizers would each try every number; scored as the labelled patterns above score.
 */
const lineAfter: CustomRecognizer = {
  id: 'phone-line-after',
  emits: [
    ['PHONE_NUMBER', 'identifier'],
    ['FAX_NUMBER', 'identifier'],
  ],
  analyze(text, ctx) {
    const out: Array<Omit<Finding, 'part'>> = [];
    // No line word in the part, whole or right after a number ("5550100fax"): no match, and no search of the part for
    // one (the search tries every number of the part: 2% of the scan of mixed office and clinical text).
    const mayHaveWord = ctx.mayHaveWord;
    if (mayHaveWord && !LINE_WORDS.some(mayHaveWord)) return out;
    LINE_AFTER.lastIndex = 0;
    for (let m = LINE_AFTER.exec(text); m; m = LINE_AFTER.exec(text)) {
      const number = m[1] ?? '';
      if (!isPlausiblePhone(number, 7, 15)) continue;
      const fax = m[2] !== undefined;
      out.push({
        type: fax ? 'FAX_NUMBER' : 'PHONE_NUMBER',
        category: 'identifier',
        start: m.index,
        end: m.index + number.length,
        score: fax ? LINE_AFTER_SCORE.fax : LINE_AFTER_SCORE.phone,
        recognizer: 'phone-line-after',
      });
    }
    return out;
  },
};

/** URLs rarely identify a person (most are the practice's or a vendor's), so they score low. */
const url: PatternRecognizer = {
  id: 'url',
  type: 'URL',
  category: 'identifier',
  patterns: [
    {
      name: 'url',
      regex: new RegExp(
        String.raw`[hw](?<![\p{L}\p{N}_].)(?:(?<=h)ttps?://|(?<=w)ww\.)[^\s<>"'{}|\\^\x60]{0,2047}[^\s<>"'{}|\\^\x60.,;:!?)\]]`,
        'iu',
      ),
      score: 0.3,
      triggers: ['http', 'www.'],
      // A match starts a word: "http" or "https" before its ":", "www" before its ".".
      triggerWords: ['http', 'https', 'www'],
    },
  ],
};

// prettier-ignore
const IP_CONTEXT = ['ip', 'ip address', 'ipv4', 'ipv6', 'host', 'server', 'client', 'logged in', 'login', 'connection', 'source address'];
const IP_SCORE = 0.5;

const ipv4: PatternRecognizer = {
  id: 'ip-address',
  type: 'IP_ADDRESS',
  category: 'identifier',
  patterns: [
    {
      name: 'ipv4',
      regex: new RegExp(
        String.raw`\d(?<![\p{L}\p{N}_.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\p{L}\p{N}_]|\.\p{N})`,
        'u',
      ),
      score: IP_SCORE,
      // The first number is a whole token ("10" of "10.0.0.1"): tried at tokens of one to three digits.
      tokens: { minLength: 1, maxLength: 3, first: 'digit' },
    },
  ],
  context: IP_CONTEXT,
  validate: rangeCheck(isValidIpv4),
};

const HEX = '[0-9A-Fa-f]{1,4}';
/** Up to eight groups joined by ":" or one "::"; the validator counts the groups and the "::". Three at least, so "10:30:45" may be read but "10:30" never is. */
const SEP_HEX = `(?::{1,2}${HEX})?`;
const IPV6_FROM_START = new RegExp(
  String.raw`${HEX}:{1,2}${HEX}:{1,2}${HEX}${SEP_HEX.repeat(5)}(?:::)?(?![\p{L}\p{N}_:])`,
  'uy',
);
const IP_WORDS = wordListRegex(IP_CONTEXT);

function isHexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * IPv6 addresses, read from each ":" back to the start of its group: a pattern would be tried at every letter a–f
 * of the text, and colons are far fewer.
 */
const ipv6: CustomRecognizer = {
  id: 'ipv6-address',
  emits: [['IP_ADDRESS', 'identifier']],
  analyze(text, ctx) {
    const out: Array<Omit<Finding, 'part'>> = [];
    let from = 0;
    for (let colon = text.indexOf(':'); colon >= 0; colon = text.indexOf(':', Math.max(colon + 1, from))) {
      let start = colon;
      while (start > from && colon - start < 4 && isHexDigit(text.charCodeAt(start - 1))) start--;
      if (start === colon) continue;
      // Not inside a word, a number or another address.
      const before = text[start - 1] ?? ' ';
      if (/[\p{L}\p{N}_:.]/u.test(before)) continue;
      IPV6_FROM_START.lastIndex = start;
      const m = IPV6_FROM_START.exec(text);
      if (!m || !isValidIpv6(m[0])) continue;
      const end = start + m[0].length;
      const near =
        IP_WORDS.test(ctx.lower.slice(Math.max(0, start - 60), start)) ||
        IP_WORDS.test(ctx.lower.slice(end, end + 30));
      out.push({
        type: 'IP_ADDRESS',
        category: 'identifier',
        start,
        end,
        score: near ? IP_SCORE + 0.35 : IP_SCORE,
        recognizer: 'ipv6-address',
      });
      from = end;
    }
    return out;
  },
};

const vin: PatternRecognizer = {
  id: 'vin',
  type: 'VIN',
  category: 'identifier',
  patterns: [
    {
      name: 'vin',
      regex: new RegExp(
        String.raw`[A-HJ-NPR-Z0-9]${AFTER_FIRST_CHAR}[A-HJ-NPR-Z0-9]{16}(?![\p{L}\p{N}_])`,
        'u',
      ),
      score: 0.3,
      tokens: { minLength: 17, maxLength: 17, first: 'any' },
    },
  ],
  context: ['vin', 'vehicle', 'vehicle identification', 'car', 'auto', 'automobile', 'truck', 'chassis'],
  validate: isValidVin,
  validScore: 0.55,
};

export const identifierRecognizers: Recognizer[] = [
  ssn,
  itin,
  npi,
  dea,
  mbi,
  card,
  email,
  phone,
  labelledNumbers,
  lineAfter,
  url,
  ipv4,
  ipv6,
  vin,
];
