// Street addresses as written outside the US: a street-type word in one of many languages ("ul. Chrzanowska 61",
// "Rua do Arenque 1634", "Magasinsgatan 7", "hegyalja út 98", "33 avenue de Provence"), or a house number on both
// sides of a name ("4923 Parmova 109"), then units and place lines. Must never count a street name without a number.
import { COMMON_WORDS } from '../data/common-words.js';
import { vocabularyWords } from '../data/medical-terms.js';
import {
  anchorStarts,
  digitRunsOf,
  HOUSE_NUMBER_ANCHOR,
  isAscii,
  isLetterOrDigit,
  trieSource,
  type WordTokens,
} from '../engine.js';
import type { AnalyzeContext, CustomRecognizer, Finding } from '../types.js';

type Out = Omit<Finding, 'part'>;

function wordSet(list: string): Set<string> {
  return new Set(list.split(/\s+/).filter(Boolean));
}

/** Street-type words that stand alone, before or after the street's name ("Via Roma", "Kossuth Lajos utca"). */
const STREET_TYPES = wordSet(`
rue rua rúa via viale vicolo piazza piazzale corso largo calle carrer avenida avda avenue boulevard blvd chemin allée
allee impasse quai route strada calea aleea bulevardul odos leoforos praça praca travessa estrada alameda camino paseo
plaza ronda carretera plein straat laan weg gasse strasse straße str platz vej gade gata gatan vägen väg veien vegen
katu kuja tänav iela gatvė sokak sokağı caddesi ul ulica ulitsa trg cesta ulice náměstí utca út útja tér
road street lane drive close crescent grove gardens terrace court square mews parade wharf quay
`);
/** Endings that make a word a street name by themselves, in languages that write them as one word ("Nybyvägen"). */
const COMPOUND_ENDINGS = [
  'strasse',
  'straße',
  'gasse',
  'weg',
  'allee',
  'platz',
  'damm',
  'ufer',
  'gatan',
  'gata',
  'vägen',
  'väg',
  'gränd',
  'vej',
  'gade',
  'veien',
  'vegen',
  'gate',
  'katu',
  'tie',
  'kuja',
  'straat',
  'laan',
  'gracht',
  'kade',
  'singel',
  'plein',
  'utca',
  'útja',
  'ulica',
  'cesta',
];
/** Type words that are everyday English words: they need a name between them and the number ("5 square feet"). */
const ENGLISH_TYPES = wordSet(
  'road street lane drive close crescent grove gardens terrace court square parade wharf quay',
);
/** Small words inside street names ("Rue de la Gare", "Via delle Coste", "Rua Vinte e Cinco de Setembro"). */
const PARTICLES = wordSet(
  'de du des da das do dos di del della delle dei degli la le les el los van von der den het ter e y i u na pod nad',
);
/** Words that end a street name: a sentence goes on after them ("Via Roma 131 to the station"). */
const NOT_IN_A_STREET = wordSet(
  'a an and are as at be been by for from had has have he her his i in is it its my on or our she the their they to was we were with you your',
);
const COMMON = wordSet(COMMON_WORDS);
const MEDICAL = new Set(vocabularyWords());
// prettier-ignore
const NOT_A_STREET = wordSet(`
apt apartment suite ste unit room rm floor box building bldg lot bed bay type stage grade class day days week weeks month
months year years visit cycle dose level tier step phase chapter section page figure fig table version number item part
question option lead exam patient zone area sector row seat ward wing clinic office station terminal platform channel
monday tuesday wednesday thursday friday saturday sunday january february march april may june july august september
october november december
`);

/** Every type word and compound ending, found without a left boundary (checked here): one search for all. */
const TYPE_SEARCH = new RegExp(
  `(?:${trieSource(new Set([...STREET_TYPES, ...COMPOUND_ENDINGS]))})\\.?(?![\\p{L}\\p{N}])`,
  'gu',
);

/**
 * The type words and endings as a trie read backwards from a word's end: in text with word tokens a type word ends a
 * token (it is letters, and TYPE_SEARCH wants no letter or number after it), and the search finds in each token its
 * longest ending that is one. Its alphabet is the words' letters (a–z first, then those beyond ASCII: "ß", "ä", "ú" …),
 * each a number in `letter` (-1 for every other code unit). Null when some word is not all letters, or when there
 * are more than 127 letters.
 */
const REVERSED = ((): {
  letter: Int8Array;
  size: number;
  next: Int32Array;
  end: Uint8Array;
  lastTwo: Uint8Array;
} | null => {
  const words = [...new Set([...STREET_TYPES, ...COMPOUND_ENDINGS])];
  if (words.some((w) => !/^\p{L}{2,}$/u.test(w))) return null;
  const letter = new Int8Array(0x10000).fill(-1);
  for (let c = 97; c <= 122; c++) letter[c] = c - 97;
  let size = 26;
  for (const w of words)
    for (let i = 0; i < w.length; i++) if (letter[w.charCodeAt(i)] === -1) letter[w.charCodeAt(i)] = size++;
  // A letter's number must fit the table (Int8Array): more letters than that, and the search does the work.
  if (size > 127) return null;
  const next: number[] = new Array<number>(size).fill(0);
  const end: number[] = [0];
  for (const w of words) {
    let node = 0;
    for (let i = w.length - 1; i >= 0; i--) {
      const c = letter[w.charCodeAt(i)]!;
      let child = next[node * size + c]!;
      if (child === 0) {
        child = end.length;
        end.push(0);
        for (let k = 0; k < size; k++) next.push(0);
        next[node * size + c] = child;
      }
      node = child;
    }
    end[node] = 1;
  }
  // The last two letters of every word (all have two or more): most tokens end with no such pair and are left at once.
  const lastTwo = new Uint8Array(size * size);
  for (const w of words)
    lastTwo[letter[w.charCodeAt(w.length - 1)]! * size + letter[w.charCodeAt(w.length - 2)]!] = 1;
  return { letter, size, next: Int32Array.from(next), end: Uint8Array.from(end), lastTwo };
})();

/**
 * A search for type words from a position on: the match (its index and text, a final dot included as TYPE_SEARCH
 * includes it) or null. With the part's word tokens, read from the tokens' ends instead of tried at every letter:
 * where the engine makes tokens, a word character is a letter or a digit 0–9 (no mark, no other number), as for
 * TYPE_SEARCH's [\p{L}\p{N}].
 */
function typeWordFinder(
  lower: string,
  tokens: WordTokens | null,
): (from: number) => { index: number; 0: string } | null {
  const reversed = REVERSED;
  if (!tokens || !reversed) {
    return (from) => {
      TYPE_SEARCH.lastIndex = from;
      return TYPE_SEARCH.exec(lower);
    };
  }
  /** The first token not yet passed, kept between searches. */
  let next = 0;
  return (from) => {
    // Everything in locals, written back when the search ends: the loop reads every token of the part, and one
    // variable of the closure's context written per token (as `next` was) cost five times the rest of the loop.
    const { count, start: starts, end: ends } = tokens;
    const { letter, size, next: trie, end: isEnd, lastTwo } = reversed;
    const text = lower;
    let k = next;
    while (k < count && ends[k]! <= from) k++;
    for (; k < count; k++) {
      const end = ends[k]!;
      const low = Math.max(from, starts[k]!);
      if (end - low < 2) continue;
      const c1 = letter[text.charCodeAt(end - 1)]!;
      const c2 = letter[text.charCodeAt(end - 2)]!;
      if (c1 < 0 || c2 < 0 || lastTwo[c1 * size + c2] === 0) continue;
      // The leftmost start at or after `low` of a type word that ends the token: its longest such ending.
      let node = 0;
      let best = -1;
      for (let i = end - 1; i >= low; i--) {
        const c = letter[text.charCodeAt(i)]!;
        if (c < 0) break;
        node = trie[node * size + c]!;
        if (node === 0) break;
        if (isEnd[node] === 1) best = i;
      }
      if (best < 0) continue;
      next = k;
      // "str." takes its dot unless a letter or digit follows the dot.
      const dot = text.charCodeAt(end) === 46 && !isLetterOrDigit(text.charCodeAt(end + 1));
      return { index: best, 0: text.slice(best, dot ? end + 1 : end) };
    }
    next = k;
    return null;
  };
}

const WORD = String.raw`[\p{L}][\p{L}'’\-]{0,30}\.?`;
const HOUSE = String.raw`\d{1,5}[A-Za-z]?(?:[\-/]\d{1,4}[A-Za-z]?)?`;
/** After the type word: up to five words of the name, then the house number. */
const NAME_THEN_NUMBER = new RegExp(
  String.raw`((?:[ \t]{1,2}${WORD}){0,5}?)[ \t]{1,2},?[ \t]?(${HOUSE})\.?(?![\p{L}\p{N}]|[.,]\d)`,
  'uy',
);
/** After the type word: up to four words of the name (the number came first: "33 avenue de Provence"). */
const NAME_AFTER = new RegExp(String.raw`(?:[ \t]{1,2}${WORD}){0,4}`, 'uy');
/** Before the type word, without a number: the name in languages that put the type last ("Árpád fejedelem útja 62"). */
/** Post-office boxes in several languages, with a number: the rest of the address follows on its lines. */
const PO_BOX =
  /(?:p(?:\.?[ \t]?o\.?[ \t]?box|ost[ \t]office[ \t]box|ostfach)|apartado|caixa[ \t]postal|boîte[ \t]postale|skrytka[ \t]pocztowa)[ \t]{0,2}#?[ \t]{0,2}\d{1,8}(?![\p{L}\p{N}])/gu;
/**
 * Words one of which every match of PO_BOX contains, as one search: a search of the text per word cost six times as
 * much (4.8 against 0.7 ms for 2 MB).
 */
const PO_BOX_WORDS = /box|postfach|apartado|postal|pocztowa/;
/**
 * The same as the part's words: a box starts a word (the search below keeps only those), and its last word before
 * the number is one of these, whole or before the number's digits ("pobox12"; "p.obox 12" has "obox").
 */
const PO_BOX_TOKENS = ['box', 'pobox', 'obox', 'postfach', 'apartado', 'postal', 'postale', 'pocztowa'];
/** A house number or postcode right before a box ("45818 P.O. Box 242"). */
const NUMBER_BEFORE = /(?:^|[^\p{L}\p{N}])(\d{1,6}[ \t]{1,2})$/u;
/**
 * A house number on both sides of one to three capitalised words ("4923 Parmova 109", "5850 Jana Nerudy 894"), tried
 * where a house number starts (HOUSE_NUMBER_ANCHOR) rather than searched for: most text has no such start at all.
 */
const NUMBER_NAME_NUMBER = new RegExp(
  String.raw`\d(?<![\p{L}\p{N}_]\d)\d{0,5}[ \t]{1,2}(\p{Lu}[\p{L}'’\-]{1,30}(?:[ \t]{1,2}\p{Lu}[\p{L}'’\-]{1,30}){0,2})[ \t]{1,2}${HOUSE}\.?(?![\p{L}\p{N}]|[.,]\d)`,
  'uy',
);
/** A unit of measure after a number: "Tylenol 500 mg" is a dose, not an address. */
const MEASURE_AFTER =
  /^[ \t]{0,2}(?:mg|mcg|µg|g|kg|ml|l|lb|lbs|oz|%|units?|iu|tabs?|tablets?|caps?|capsules?|pills?|x|times|mm|cm|m|km|mi|miles?|hours?|hrs?|min|minutes?|days?|weeks?)(?![\p{L}])/iu;
/** A line break, perhaps inside a quoted reply or after a bullet ("> ", "• ", "- "). */
const NEWLINE = String.raw`(?:\r?\n[ \t>*•·\-?]{0,4})`;
const UNIT = String.raw`(?:,?[ \t]{0,2}${NEWLINE}?[ \t]{0,2}(?:apt|apartment|suite|ste|unit|bldg|building|fl|floor|rm|room|flat|#)\.?[ \t]{0,2}#?[ \t]{0,2}[A-Z0-9][A-Z0-9\-]{0,6}(?![\p{L}\p{N}]))`;
/** The rest of a postal address on its own lines: city, region, country, postcode (letters, then perhaps a number). */
const PLACE_LINE = String.raw`(?:,?[ \t]{0,2}${NEWLINE}${NEWLINE}?[ \t]{0,3},?[ \t]{0,2}(?:\p{L}[\p{L}'’.()\- \t]{0,40}(?:[ \t]\d{4,6})?|\d{4,6})(?=[ \t]{0,2}(?:\r?\n|$|[,.;?!])))`;
/** Postcodes: UK ("SW1A 1AA"), Canada ("M5V 2T6"), and numbers of four to six digits. */
const POSTCODE = String.raw`(?:[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d|\d{4,6}(?:-\d{3,4})?)(?![\p{L}\p{N}])`;
/** On the same line after a comma: ", Belfast", ", Hellendoorn, OV 21072", ", Toronto ON M5V 2T6". */
const PLACE_WORD = String.raw`\p{L}(?:[\p{L}'’.\-]{0,29}\p{L})?(?![\p{L}\p{N}])`;
const PLACE_PART = String.raw`(?:,[ \t]{0,2}(?:${PLACE_WORD}(?:[ \t]${PLACE_WORD}){0,2}(?:[ \t]{1,2}${POSTCODE})?|${POSTCODE}))`;
const TAIL = new RegExp(`${UNIT}?${UNIT}?(?:${PLACE_PART}){0,3}(?:${PLACE_LINE}){0,4}`, 'iuy');

const ORDINALS = wordSet('first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth');

/**
 * The words of a street name: none a word a sentence goes on with; with `strict`, none an everyday English word either
 * (particles aside); with `capitalised`, each capitalised or an ordinal ("Elm", "fourth", "5th").
 */
function nameWords(words: string, strict: boolean, capitalised = false): boolean {
  for (const raw of words.trim().split(/[ \t]+/)) {
    if (raw === '') continue;
    const w = raw.toLowerCase().replace(/\.$/, '');
    if (NOT_IN_A_STREET.has(w) || NOT_A_STREET.has(w)) return false;
    if (strict && !PARTICLES.has(w) && (COMMON.has(w) || MEDICAL.has(w))) return false;
    if (capitalised && raw[0] === w[0] && !ORDINALS.has(w) && !/^\d{1,3}(?:st|nd|rd|th)$/.test(w))
      return false;
  }
  return true;
}

/** How much of `rest` can belong to a street name: capitalised words, particles inside, no everyday words. */
function nameAfterLength(rest: string): number {
  let length = 0;
  const re = /[ \t]{1,2}(\S+)/y;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    const raw = m[1]!;
    const w = raw.toLowerCase().replace(/\.$/, '');
    if (NOT_IN_A_STREET.has(w) || NOT_A_STREET.has(w)) break;
    if (PARTICLES.has(w)) {
      // A particle does not end a name ("avenue de"): it counts once a word follows.
      continue;
    }
    const capital = raw[0] !== w[0];
    if (!capital && (COMMON.has(w) || MEDICAL.has(w))) break;
    length = re.lastIndex;
  }
  return length;
}

/** How much of the words before a type word belongs to the street's name ("enter on hegyalja " → "hegyalja "). */
function nameBeforeLength(words: string): number {
  const parts = words.split(/(?<=[ \t])(?=\S)/);
  let length = 0;
  for (let k = parts.length - 1; k >= 0 && parts.length - k <= 3; k--) {
    if (!nameWords(parts[k]!, true)) break;
    length += parts[k]!.length;
  }
  return length;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Where the word (letters, inner ' ’ -, a final dot) that ends right before `end` starts, or -1 when none does. */
function wordStartBefore(text: string, end: number): number {
  let p = end;
  if (p > 0 && text.charCodeAt(p - 1) === 46) p--;
  const last = p;
  while (p > 0 && last - p < 32) {
    const c = text.charCodeAt(p - 1);
    if (c === 39 || c === 0x2019 || c === 45 || (!isDigit(c) && isLetterOrDigit(c))) p--;
    else break;
  }
  if (p === last) return -1;
  const first = text.charCodeAt(p);
  if (isDigit(first) || first === 39 || first === 0x2019 || first === 45) return -1;
  // Not the tail of a longer token ("x1Abc").
  return p > 0 && isLetterOrDigit(text.charCodeAt(p - 1)) ? -1 : p;
}

/** Start of one or two blanks ending at `end` (spaces or tabs), or -1. */
function blanksBefore(text: string, end: number): number {
  let p = end;
  while (p > 0 && end - p < 2 && (text.charCodeAt(p - 1) === 32 || text.charCodeAt(p - 1) === 9)) p--;
  return p === end ? -1 : p;
}

/** Up to three words right before `pos`, with the blanks after each ("Árpád fejedelem "), or '' when none. */
function wordsBefore(text: string, pos: number): string {
  let start = pos;
  for (let k = 0; k < 3; k++) {
    const blank = blanksBefore(text, start);
    if (blank < 0) break;
    const word = wordStartBefore(text, blank);
    if (word < 0) break;
    start = word;
  }
  return text.slice(start, pos);
}

/**
 * A house number (perhaps after another number: "13813 3784 …") and up to three words before `pos`: "3911 fourth ",
 * "33 ", "180 ". Returns the number with its blanks and the words with theirs, or null.
 */
function numberThenName(text: string, pos: number): { number: string; words: string } | null {
  let wordsStart = pos;
  for (let k = 0; k <= 3; k++) {
    const blank = blanksBefore(text, wordsStart);
    if (blank < 0) return null;
    // A number ends at the blank: \d{1,6} with an optional letter ("12B").
    let p = blank;
    if (p > 0 && !isDigit(text.charCodeAt(p - 1)) && p > 1 && isDigit(text.charCodeAt(p - 2))) {
      const c = text.charCodeAt(p - 1);
      if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) p--;
    }
    let digits = 0;
    while (p > 0 && digits < 7 && isDigit(text.charCodeAt(p - 1))) {
      p--;
      digits++;
    }
    if (digits >= 1 && digits <= 6 && (p === 0 || !isLetterOrDigit(text.charCodeAt(p - 1)))) {
      // Another number before it ("13813 3784 Archwood Avenue").
      const blank2 = blanksBefore(text, p);
      if (blank2 > 0) {
        let q = blank2;
        let more = 0;
        while (q > 0 && more < 7 && isDigit(text.charCodeAt(q - 1))) {
          q--;
          more++;
        }
        if (more >= 1 && more <= 6 && (q === 0 || !isLetterOrDigit(text.charCodeAt(q - 1)))) p = q;
      }
      return { number: text.slice(p, wordsStart), words: text.slice(wordsStart, pos) };
    }
    if (k === 3) return null;
    const word = wordStartBefore(text, blank);
    if (word < 0) return null;
    wordsStart = word;
  }
  return null;
}

/** A digit in text[from, to). */
function hasDigit(text: string, from: number, to: number): boolean {
  const end = Math.min(text.length, to);
  for (let p = from; p < end; p++) {
    const c = text.charCodeAt(p);
    if (c >= 48 && c <= 57) return true;
  }
  return false;
}

function extend(text: string, end: number): number {
  TAIL.lastIndex = end;
  const m = TAIL.exec(text);
  return m ? end + m[0].length : end;
}

export const internationalStreetRecognizer: CustomRecognizer = {
  id: 'street-address-intl',
  emits: [['STREET_ADDRESS', 'identifier']],
  analyze(text: string, ctx: AnalyzeContext): Out[] {
    const out: Out[] = [];
    const lower = ctx.lower;
    let covered = 0;
    const push = (start: number, end: number, score: number) => {
      out.push({
        type: 'STREET_ADDRESS',
        category: 'identifier',
        start,
        end,
        score,
        recognizer: 'street-address-intl',
      });
      covered = end;
    };
    // Type words from where the last one ended (or the last address), as a search of the lower-cased text finds them.
    const typeWords = typeWordFinder(lower, ctx.tokens?.() ?? null);
    let searchFrom = 0;
    for (let m = typeWords(0); m; m = typeWords(searchFrom)) {
      const hit = m.index;
      const hitEnd = hit + m[0].length;
      searchFrom = hitEnd;
      if (hit < covered) continue;
      // The word the hit ends: the type word itself, or a compound ("Magasinsgatan").
      let wordStart = hit;
      while (wordStart > 0 && isLetterOrDigit(lower.charCodeAt(wordStart - 1))) wordStart--;
      const typeWord = m[0].replace(/\.$/, '');
      const compound = wordStart < hit;
      if (compound) {
        // A compound needs a name before its ending and a capital ("Nybyvägen"), or lower-case text around.
        if (hit - wordStart < 3 || !COMPOUND_ENDINGS.includes(typeWord)) continue;
        const word = lower.slice(wordStart, hitEnd).replace(/\.$/, '');
        if (COMMON.has(word) || MEDICAL.has(word)) continue;
      } else if (!STREET_TYPES.has(typeWord)) continue;
      // Every address here has a house number within a few words of the type word: most hits ("shared drive",
      // "Elm Street is closed") have none, and are left before any pattern runs.
      if (!hasDigit(text, Math.max(0, wordStart - 45), wordStart) && !hasDigit(text, hitEnd, hitEnd + 60))
        continue;
      // English order puts the type last ("Elm Street"), most others first ("Via Roma", "ul. Miła"); compounds either way.
      const english = ENGLISH_TYPES.has(typeWord) && !compound;
      let start = -1;
      let end = -1;
      // Number after the name: "Via delle Coste 41", "Magasinsgatan 7", "hegyalja út 98".
      if (!english) {
        NAME_THEN_NUMBER.lastIndex = hitEnd;
        const after = NAME_THEN_NUMBER.exec(text);
        let named = after !== null && (compound || after[1]!.trim() !== '');
        if (after && !named) {
          // The name before the type: "hegyalja út 98".
          const words = wordsBefore(text, wordStart);
          const length = words ? nameBeforeLength(words) : 0;
          named = length > 0;
          wordStart -= length;
        }
        if (after && named && nameWords(after[1]!, true)) {
          const numberEnd = hitEnd + after[0].length;
          if (!MEASURE_AFTER.test(text.slice(numberEnd, numberEnd + 12))) {
            end = numberEnd;
            // Words before the type in the same name ("hegyalja út"), and a number before them.
            const before = numberThenName(text, wordStart);
            start =
              before && nameWords(before.words, true)
                ? wordStart - before.number.length - before.words.length
                : wordStart;
          }
        }
      }
      if (start < 0) {
        // Number first: "33 avenue de Provence", "3911 fourth avenue", "180 Sahantie".
        const before = numberThenName(text, wordStart);
        if (!before) continue;
        const words = before.words;
        NAME_AFTER.lastIndex = hitEnd;
        const rest = NAME_AFTER.exec(text);
        const restLength = rest ? nameAfterLength(rest[0]) : 0;
        // "3911 fourth avenue", "12 Oak Lane": a name before the type, capitalised or an ordinal.
        const englishOrder = words.trim() !== '' && nameWords(words, false, true);
        // "33 avenue de Provence": a name after the type, and no ordinary words before it ("3 patients via Zoom").
        const otherOrder = restLength > 0 && nameWords(words, true);
        if (english ? !englishOrder : compound ? !nameWords(words, true) : !englishOrder && !otherOrder)
          continue;
        if (english || (englishOrder && !otherOrder)) end = hitEnd;
        start = wordStart - before.number.length - words.length;
        if (end < 0) end = hitEnd + restLength;
      }
      if (start < covered) continue;
      push(start, extend(text, end), 0.7);
      searchFrom = Math.max(searchFrom, covered);
    }
    // Post-office boxes ("45818 P.O. Box 242" and the lines under it), searched for only in text that has a word
    // every box has (a search of the whole text for a rare pattern cost as much as the street search above).
    const mayHaveWord = ctx.mayHaveWord;
    const boxes = (!mayHaveWord || PO_BOX_TOKENS.some(mayHaveWord)) && PO_BOX_WORDS.test(lower);
    PO_BOX.lastIndex = boxes ? 0 : lower.length;
    for (let m = PO_BOX.exec(lower); m; m = PO_BOX.exec(lower)) {
      // Its own word: nothing of a word or number before it.
      if (m.index > 0 && isLetterOrDigit(lower.charCodeAt(m.index - 1))) continue;
      const number = NUMBER_BEFORE.exec(lower.slice(Math.max(0, m.index - 10), m.index));
      const start = m.index - (number ? number[1]!.length : 0);
      if (start < covered) continue;
      const boxEnd = m.index + m[0].length;
      const end = extend(text, boxEnd);
      // Only a box with more of the address after it: a bare "PO Box 12" is found by the US recognizer.
      if (end > boxEnd) push(start, end, 0.7);
    }
    out.sort((a, b) => a.start - b.start);
    // House number, name, house number.
    const sandwich = NUMBER_NAME_NUMBER;
    const tokens = ctx.tokens?.() ?? null;
    const houses = anchorStarts(
      text,
      HOUSE_NUMBER_ANCHOR,
      tokens ? digitRunsOf(text, tokens, isAscii(lower)) : null,
    );
    const typed = out.length;
    let k = 0;
    // As a search from each match's end would go: the next house number at or after it.
    let from = 0;
    for (let h = 0; h < houses.length; h++) {
      const start = houses[h]!;
      if (start < from) continue;
      sandwich.lastIndex = start;
      const m = sandwich.exec(text);
      if (!m) continue;
      const end = start + m[0].length;
      from = end;
      // Skip what the search above found (its findings are in text order).
      while (k < typed && out[k]!.end <= start) k++;
      if (k < typed && out[k]!.start < end) continue;
      if (!nameWords(m[1]!, false) || MEASURE_AFTER.test(text.slice(end, end + 12))) continue;
      push(start, extend(text, end), 0.6);
      from = Math.max(from, covered);
    }
    return out;
  },
};
