// Runs recognizers over one part: pattern matches, validators, context words, overlaps.
// Linear-time by construction: every pattern is a bounded regular expression run once over the text (or only at the
// places where a match can start: shared anchors, word tokens), and context is looked for only near each match.
// Every shortcut finds exactly what a search of the whole text finds; test/dlp/fast-paths.test.ts holds them to it.
import { readFileSync } from 'node:fs';
import type {
  AnalyzeContext,
  Category,
  Finding,
  PatternRecognizer,
  PatternSpec,
  Recognizer,
  TextPart,
} from './types.js';

const DEFAULT_WINDOW = 60;
const DEFAULT_BOOST = 0.35;

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * An alternation of literal words as a trie ("a(?:ddr(?:ess(?:es)?)?|pt)" for addr, address, addresses, apt): the regex
 * engine tries one branch per first letter instead of every word at every position, which is several times faster
 * for lists of dozens of words. Longer words are tried first, as in a longest-first alternation. Spaces match any
 * whitespace.
 */
export function trieSource(words: Iterable<string>): string {
  interface Node {
    end: boolean;
    next: Map<string, Node>;
  }
  const root: Node = { end: false, next: new Map() };
  for (const word of words) {
    let node = root;
    for (const ch of word) {
      let child = node.next.get(ch);
      if (!child) {
        child = { end: false, next: new Map() };
        node.next.set(ch, child);
      }
      node = child;
    }
    node.end = true;
  }
  const emit = (node: Node): string => {
    const branches = [...node.next.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([ch, child]) => (/\s/.test(ch) ? '\\s+' : escapeRegex(ch)) + emit(child));
    if (branches.length === 0) return '';
    const body = branches.length === 1 ? branches[0]! : `(?:${branches.join('|')})`;
    if (!node.end) return body;
    return branches.length === 1 ? `(?:${body})?` : `${body}?`;
  };
  return emit(root);
}

/** A whole-word, case-insensitive matcher for a list of words and phrases (spaces match any whitespace). */
export function wordListRegex(words: readonly string[], flags = 'i'): RegExp {
  const unique = new Set(words.map((w) => w.toLowerCase().trim().replace(/\s+/g, ' ')));
  // Word boundaries that also work next to punctuation like "MR#" or "Pt.".
  return new RegExp(`(?<![\\p{L}\\p{N}])(?:${trieSource(unique)})(?![\\p{L}\\p{N}])`, `${flags}u`);
}

// ── Word tokens ─────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Word tokens of the lower-cased text with a hash of each, so look-ups need no string per word. Shared by the health
 * vocabularies and the context-word search: one pass over a part's characters for both.
 */
export interface WordTokens {
  count: number;
  start: Int32Array;
  end: Int32Array;
  hash: Int32Array;
  /**
   * The token's digits, as bits: HAS_DIGIT when it holds a digit ("20931", "1234fax", "a1c"); DIGIT_AND_LETTERS
   * too when it also holds a letter a–z ("1234fax", "a1c"); LETTERS_THEN_DIGIT too when it starts with letters a–z
   * that a digit follows ("dob1985", "a1c"). Such tokens hold words their hash does not tell.
   */
  digits: Uint8Array;
  /** The indices of the tokens that hold a digit (HAS_DIGIT), in order: in most mail a few of them. */
  withDigit: Int32Array;
}

/** WordTokens.digits: the token holds a digit. */
export const HAS_DIGIT = 2;
/** WordTokens.digits: the token starts with letters a–z that a digit follows (the other two bits are set too). */
export const LETTERS_THEN_DIGIT = 1;
/** WordTokens.digits: the token holds a digit and a letter a–z (HAS_DIGIT is set too). */
export const DIGIT_AND_LETTERS = 4;

/** The multiplier of pairHash (FNV-1a's prime). */
const FNV_PRIME = 0x01000193;

function isWordCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);
}

/**
 * What a code unit is, in Unicode's general categories, as the patterns read it: CHAR_LETTER (\p{L}), CHAR_UPPER
 * (\p{Lu}), CHAR_MARK (\p{M}), CHAR_NUMBER (\p{N}), CHAR_SURROGATE (half of a pair, or alone). One table for
 * every reader (word tokens, the token-safety test, recognizers), complete from the start: a reader of a part's every
 * character then needs no pass of its own to fill in the code units it meets (text beyond ASCII paid two such passes
 * and a test per character). Filled by the same \p{…} classes the patterns use, run over every code unit at once
 * (~10 ms when the module loads; a test compares it with a test of each code unit alone).
 */
export const CHAR_LETTER = 1;
export const CHAR_UPPER = 2;
export const CHAR_MARK = 4;
export const CHAR_NUMBER = 8;
export const CHAR_SURROGATE = 16;

/** Every code unit but the surrogates, in order (a surrogate's place holds a space), for filling tables by class. */
export function everyCodeUnit(): string {
  const units = new Uint16Array(0x10000);
  for (let c = 0; c < 0x10000; c++) units[c] = c >= 0xd800 && c <= 0xdfff ? 0x20 : c;
  return Buffer.from(units.buffer).toString('utf16le');
}

const charClasses = ((): Uint8Array => {
  const table = new Uint8Array(0x10000);
  const all = everyCodeUnit();
  const mark = (re: RegExp, bit: number): void => {
    for (const m of all.matchAll(re)) for (let i = m.index, e = i + m[0].length; i < e; i++) table[i]! |= bit;
  };
  mark(/\p{L}+/gu, CHAR_LETTER);
  mark(/\p{Lu}+/gu, CHAR_UPPER);
  mark(/\p{M}+/gu, CHAR_MARK);
  mark(/\p{N}+/gu, CHAR_NUMBER);
  table.fill(CHAR_SURROGATE, 0xd800, 0xe000);
  return table;
})();

export function charClass(c: number): number {
  return charClasses[c]!;
}

/** A character of a word token: an ASCII letter or digit, or a letter or mark beyond ASCII. */
export function isWordChar(c: number): boolean {
  if (c < 0x80) return isWordCode(c);
  return (charClass(c) & (CHAR_LETTER | CHAR_MARK)) !== 0;
}

/**
 * The tokenizer and the word hash, in WebAssembly (dlp/tokens.wat, built into tokens.wasm next to this module),
 * compiled once per thread.
 */
const tokensModule = new WebAssembly.Module(readFileSync(new URL('./tokens.wasm', import.meta.url)));
interface TokensExports {
  memory: WebAssembly.Memory;
  classes: WebAssembly.Global;
  units: WebAssembly.Global;
  starts: WebAssembly.Global;
  ends: WebAssembly.Global;
  hashes: WebAssembly.Global;
  digits: WebAssembly.Global;
  withDigit: WebAssembly.Global;
  digitCount: WebAssembly.Global;
  lastEnd: WebAssembly.Global;
  tokenize(n: number, base: number, lastEnd: number): number;
  hashAt(at: number, len: number): number;
}

/**
 * The class of every code unit for the tokenizer: A_TO_Z, DIGIT, OTHER_WORD (A–Z, letters and marks beyond ASCII) or
 * 0 (no word character). The WebAssembly classifies ASCII itself and reads this table (its copy in its memory) for
 * text beyond.
 */
const A_TO_Z = 1;
const DIGIT = 2;
const OTHER_WORD = 4;
const wordClass = new Uint8Array(0x10000);
for (let c = 0; c < 0x10000; c++)
  wordClass[c] = c >= 97 && c <= 122 ? A_TO_Z : c >= 48 && c <= 57 ? DIGIT : isWordChar(c) ? OTHER_WORD : 0;

/** Code units the tokenizer reads at a time: a text is read in pieces of about this many, cut between tokens. */
const TOKEN_CHUNK = 1 << 18;
/**
 * The most tokens a piece holds: those before TOKEN_CHUNK (every other code unit at most), and one that runs on
 * past it (a piece goes on to that token's end).
 */
const MAX_PIECE_TOKENS = (TOKEN_CHUNK >> 1) + 2;
/** Code units after a piece that the WebAssembly may read (and zeroes): see tokens.wat. */
const UNITS_AFTER = 80;

/**
 * An instance of the WebAssembly and the layout of its memory for pieces of up to `capacity` code units: the class
 * table, the code units, then the tokens found (typed-array views of each).
 */
class TokenArena {
  readonly wasm = new WebAssembly.Instance(tokensModule).exports as unknown as TokensExports;
  readonly bytes: Buffer;
  readonly unitsAt: number;
  readonly units: Uint16Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly hashes: Int32Array;
  readonly digits: Uint8Array;
  readonly withDigit: Int32Array;

  constructor(readonly capacity: number) {
    const align = (n: number): number => (n + 15) & ~15;
    const tokens = Math.min((capacity >> 1) + 2, MAX_PIECE_TOKENS);
    const classesAt = 0;
    this.unitsAt = align(classesAt + 0x10000);
    const startsAt = align(this.unitsAt + 2 * (capacity + UNITS_AFTER));
    const endsAt = align(startsAt + 4 * tokens);
    const hashesAt = align(endsAt + 4 * tokens);
    const withDigitAt = align(hashesAt + 4 * tokens);
    const digitsAt = align(withDigitAt + 4 * tokens);
    const pages = Math.ceil((digitsAt + tokens) / 65536) - this.wasm.memory.buffer.byteLength / 65536;
    if (pages > 0) this.wasm.memory.grow(pages);
    const buffer = this.wasm.memory.buffer;
    this.bytes = Buffer.from(buffer);
    this.bytes.set(wordClass, classesAt);
    const w = this.wasm;
    w.classes.value = classesAt;
    w.units.value = this.unitsAt;
    w.starts.value = startsAt;
    w.ends.value = endsAt;
    w.hashes.value = hashesAt;
    w.withDigit.value = withDigitAt;
    w.digits.value = digitsAt;
    this.units = new Uint16Array(buffer, this.unitsAt, capacity + UNITS_AFTER);
    this.starts = new Int32Array(buffer, startsAt, tokens);
    this.ends = new Int32Array(buffer, endsAt, tokens);
    this.hashes = new Int32Array(buffer, hashesAt, tokens);
    this.withDigit = new Int32Array(buffer, withDigitAt, tokens);
    this.digits = new Uint8Array(buffer, digitsAt, tokens);
  }

  /** Copies lower's code units [start, end) to the start of the code units. */
  write(lower: string, start: number, end: number): void {
    if (end - start <= SHORT_WORD) {
      // A word's few code units one by one: a string made and written whole costs more.
      const units = this.units;
      for (let i = start; i < end; i++) units[i - start] = lower.charCodeAt(i);
    } else {
      const text = start === 0 && end === lower.length ? lower : lower.substring(start, end);
      this.bytes.write(text, this.unitsAt, 'utf16le');
    }
  }
}
const SHORT_WORD = 32;

/**
 * The thread's arena, sized for a whole piece. A longer piece (a token of more than TOKEN_CHUNK code units at its
 * end: a hostile part, a long run of hex) gets an arena of its own, dropped after it: a memory, once grown, never
 * shrinks.
 */
let arena: TokenArena | undefined;
function arenaFor(units: number): TokenArena {
  // Made at the first use: ~2.8 MB, which a thread that never scans does not need.
  arena ??= new TokenArena(TOKEN_CHUNK);
  return units <= arena.capacity ? arena : new TokenArena(units);
}

/** The hash of lower's code units [start, end): the hash of that word (hashWord), as its token carries it. */
function hashRange(lower: string, start: number, end: number): number {
  const len = end - start;
  const a = arenaFor(len);
  a.write(lower, start, end);
  return a.wasm.hashAt(a.unitsAt, len);
}

/** The hash of the letters a–z that start text at `from` (of "id" for "id12345"; of "" when none do). */
export function letterRunHash(text: string, from: number): number {
  let to = from;
  for (; to < text.length; to++) {
    const c = text.charCodeAt(to);
    if (c < 97 || c > 122) break;
  }
  return hashRange(text, from, to);
}

/** The hash a token of `word` gets (see tokens.wat: 64 bits at a time over its UTF-16 code units, 32 bits out). */
export function hashWord(word: string): number {
  return hashRange(word, 0, word.length);
}

/** Lower-case word tokens (letters and digits) of a text, in arrays of their own (see tokenize). */
export function tokenizeWords(lower: string): WordTokens {
  return tokenize(lower);
}

/**
 * Lower-case word tokens (letters and digits); a possessive "'s" is dropped so "crohn's" = "crohn". The arrays are the
 * tokens' own (a part's scan keeps them while other parts are scanned). The text is read in pieces of about
 * TOKEN_CHUNK code units, each ending where a token does; a text of one piece (most parts) has its tokens copied out
 * of the WebAssembly's memory once, a longer one gathers them in arrays of its own first.
 */
function tokenize(lower: string): WordTokens {
  const n = lower.length;
  let out: TokenArrays | null = null;
  let k = 0;
  let withDigit = new Int32Array(0);
  let d = 0;
  /** The end of the last token kept (a possessive "'s" right after it is none), or -1. */
  let lastEnd = -1;
  for (let from = 0; from < n;) {
    let to = Math.min(n, from + TOKEN_CHUNK);
    while (to < n && wordClass[lower.charCodeAt(to)] !== 0) to++;
    const len = to - from;
    const a = arenaFor(len);
    a.write(lower, from, to);
    const lastIn = lastEnd >= from ? lastEnd - from : -2;
    const count = a.wasm.tokenize(len, from, lastIn);
    const lastOut = a.wasm.lastEnd.value as number;
    if (lastOut !== lastIn) lastEnd = lastOut + from;
    const digitCount = a.wasm.digitCount.value as number;
    if (from === 0 && to === n)
      return {
        count,
        start: a.starts.slice(0, count),
        end: a.ends.slice(0, count),
        hash: a.hashes.slice(0, count),
        digits: a.digits.slice(0, count),
        withDigit: a.withDigit.slice(0, digitCount),
      };
    if (!out || out.start.length < k + count) {
      const grown = tokenArrays(Math.max(k + count, (out?.start.length ?? 0) * 2));
      if (out) {
        grown.start.set(out.start.subarray(0, k));
        grown.end.set(out.end.subarray(0, k));
        grown.hash.set(out.hash.subarray(0, k));
        grown.digits.set(out.digits.subarray(0, k));
      }
      out = grown;
    }
    out.start.set(a.starts.subarray(0, count), k);
    out.end.set(a.ends.subarray(0, count), k);
    out.hash.set(a.hashes.subarray(0, count), k);
    out.digits.set(a.digits.subarray(0, count), k);
    if (withDigit.length < d + digitCount) {
      const grown = new Int32Array(Math.max(d + digitCount, withDigit.length * 2));
      grown.set(withDigit.subarray(0, d));
      withDigit = grown;
    }
    for (let j = 0; j < digitCount; j++) withDigit[d + j] = a.withDigit[j]! + k;
    d += digitCount;
    k += count;
    from = to;
  }
  // Built field by field as above, so that every token object has one shape for V8.
  return {
    count: k,
    start: out ? out.start.subarray(0, k) : new Int32Array(0),
    end: out ? out.end.subarray(0, k) : new Int32Array(0),
    hash: out ? out.hash.subarray(0, k) : new Int32Array(0),
    digits: out ? out.digits.subarray(0, k) : new Uint8Array(0),
    withDigit: withDigit.subarray(0, d),
  };
}

/**
 * Where a part's scan keeps lists of token indices, reused from part to part; one grown beyond this is not kept.
 */
const RETAINED_TOKENS = 1 << 18;
/** The token arrays of a text read in several pieces (tokenize). */
interface TokenArrays {
  start: Int32Array;
  end: Int32Array;
  hash: Int32Array;
  digits: Uint8Array;
}
function tokenArrays(size: number): TokenArrays {
  return {
    start: new Int32Array(size),
    end: new Int32Array(size),
    hash: new Int32Array(size),
    digits: new Uint8Array(size),
  };
}

/**
 * The last part's tokens: every user of one part's tokens gets the same object (later caches key on it). A part's
 * scan that runs again after another part's puts its own tokens back here (PartScan.run).
 */
let lastTokens: { lower: string; tokens: WordTokens } | null = null;

/** The word tokens of a part's lower-cased text, found once per part. */
export function wordTokens(lower: string): WordTokens {
  if (lastTokens?.lower !== lower) lastTokens = { lower, tokens: tokenize(lower) };
  return lastTokens.tokens;
}

/** Bits of a word hash that index a filter of hashes: 64 K bits (8 KB, so it stays in cache). */
export const FILTER_BITS = 16;

/** Where a hash falls in a filter of FILTER_BITS bits (for loops that test mayHave written out). */
export function filterSlot(h: number): number {
  return (h ^ (h >>> FILTER_BITS)) & ((1 << FILTER_BITS) - 1);
}

/** A filter of word hashes: a token whose hash it lacks is none of the words (one that it has may be none either). */
export function wordHashFilter(words: Iterable<string>): Uint32Array {
  const filter = new Uint32Array((1 << FILTER_BITS) >>> 5);
  for (const word of words) {
    const slot = filterSlot(hashWord(word));
    filter[slot >>> 5]! |= 1 << (slot & 31);
  }
  return filter;
}

/** Whether a hash may be one of a wordHashFilter's words. */
export function mayHave(filter: Uint32Array, hash: number): boolean {
  const slot = filterSlot(hash);
  return (filter[slot >>> 5]! & (1 << (slot & 31))) !== 0;
}

/**
 * Filters of word hashes that recognizers test a part's every token against (the first words of labels, of context
 * words, of health terms …). Each made a pass over the tokens of its own, ~100 µs per 100 KB of mail each; one pass
 * now lists the tokens of all of them, from a table of which filters have each slot (filterSlot).
 */
export class TokenFilters {
  private readonly filters: Array<Uint32Array | null> = [];
  /** When each slot took its filter (a count of additions): a part listed before then has no list for it. */
  private readonly since: number[] = [];
  private added = 0;
  /** For each slot, a bit for each filter that has it. */
  private readonly masks = new Uint16Array(1 << FILTER_BITS);
  /**
   * The filters asked for in recent parts (a bit per id): a part's pass lists these, not every filter held (a set of
   * recognizers may use two of them). Forgotten every WANTED_PARTS parts, so filters no longer asked for drop out.
   */
  private wanted = 0;
  private parts = 0;
  /**
   * The slots of the filters in a `wanted` set, as one filter: 8 KB that stays in cache, where the 128 KB of masks
   * does not (for a small part most of its look-ups missed the cache). The masks are read for the tokens it lets
   * through only.
   */
  private unions = new Map<number, Uint32Array>();
  /** The last part listed (one part at a time; a part's scan saves and restores it, see Memo). */
  last: { tokens: WordTokens; listed: Listed } | null = null;
  /** Where the lists are written before they are copied out, reused from part to part. */
  private scratch = new Int32Array(1024);
  private readonly lengths = new Int32Array(16);

  constructor(readonly capacity = 16) {
    if (capacity > 16) throw new Error('TokenFilters: at most 16 filters');
  }

  /** Takes a filter (wordHashFilter; copied) and returns its id, or -1 when `capacity` others are held. */
  add(filter: Uint32Array): number {
    if (filter.length !== (1 << FILTER_BITS) >>> 5) throw new Error('TokenFilters: not a word hash filter');
    let id = this.filters.indexOf(null);
    if (id < 0) {
      if (this.filters.length === this.capacity) return -1;
      id = this.filters.length;
      this.filters.push(null);
      this.since.push(0);
    }
    this.filters[id] = filter.slice();
    this.since[id] = ++this.added;
    for (let slot = 0; slot < 1 << FILTER_BITS; slot++)
      if ((filter[slot >>> 5]! & (1 << (slot & 31))) !== 0) this.masks[slot]! |= 1 << id;
    this.unions = new Map();
    return id;
  }

  /** Gives up a filter's id (its owner is gone): the id may be given to another filter. */
  remove(id: number): void {
    if (!this.filters[id]) return;
    this.filters[id] = null;
    const keep = ~(1 << id);
    for (let slot = 0; slot < 1 << FILTER_BITS; slot++) this.masks[slot]! &= keep;
    this.wanted &= keep;
    this.unions = new Map();
  }

  /**
   * The indices, in order, of the tokens whose hash may be in filter `id`: exactly those a loop over all tokens with
   * mayHave(filter, hash) lets through. The first call for a part lists, in one pass, the tokens of `id` and of the
   * filters asked for in recent parts; a filter outside those, or added since, gets a pass of its own.
   */
  tokens(tokens: WordTokens, id: number): Int32Array {
    const filter = this.filters[id];
    if (!filter) throw new Error(`TokenFilters: no filter ${id}`);
    let last = this.last;
    if (last?.tokens !== tokens) {
      if (++this.parts % WANTED_PARTS === 0) this.wanted = 0;
      last = this.last = { tokens, listed: this.listAll(tokens, this.wanted | (1 << id)) };
    }
    this.wanted |= 1 << id;
    const listed = last.listed;
    if ((listed.ids & (1 << id)) !== 0 && this.since[id]! <= listed.added)
      return listed.all.subarray(listed.offsets[id], listed.offsets[id + 1]);
    listed.late ??= new Map();
    const late = listed.late.get(id);
    if (late && late.since === this.since[id]) return late.list;
    const list = listFilteredOne(tokens, filter);
    listed.late.set(id, { since: this.since[id]!, list });
    return list;
  }

  /** The lists of the filters in `ids` (a bit per id) in one pass. */
  private listAll(tokens: WordTokens, ids: number): Listed {
    const n = this.filters.length;
    const lengths = this.lengths.fill(0);
    const { count, hash } = tokens;
    const masks = this.masks;
    const union = this.unionOf(ids);
    if (this.scratch.length < count) this.scratch = new Int32Array(Math.max(count, this.scratch.length * 2));
    const hits = this.scratch;
    // First the tokens in any of the filters, without a branch: each token's index is written, and kept (the count
    // moves on) when its slot is in the union. A test per token mispredicted wherever the part's words alternate in
    // and out of the filters (office mail: 15,000 tokens, 1,900 in: 119 against 37-55 µs in a micro-benchmark).
    let h0 = 0;
    for (let k = 0; k < count; k++) {
      const h = hash[k]!;
      const slot = (h ^ (h >>> FILTER_BITS)) & ((1 << FILTER_BITS) - 1);
      hits[h0] = k;
      h0 += (union[slot >>> 5]! >>> (slot & 31)) & 1;
    }
    // Then each filter's count, and its tokens at its place in one array.
    for (let j = 0; j < h0; j++) {
      const h = hash[hits[j]!]!;
      for (let m = masks[(h ^ (h >>> FILTER_BITS)) & ((1 << FILTER_BITS) - 1)]! & ids; m !== 0; m &= m - 1)
        lengths[31 - Math.clz32(m & -m)]!++;
    }
    const offsets = new Int32Array(n + 1);
    for (let id = 0; id < n; id++) offsets[id + 1] = offsets[id]! + lengths[id]!;
    const all = new Int32Array(offsets[n]!);
    lengths.fill(0);
    for (let j = 0; j < h0; j++) {
      const k = hits[j]!;
      const h = hash[k]!;
      for (let m = masks[(h ^ (h >>> FILTER_BITS)) & ((1 << FILTER_BITS) - 1)]! & ids; m !== 0; m &= m - 1) {
        const id = 31 - Math.clz32(m & -m);
        all[offsets[id]! + lengths[id]!++] = k;
      }
    }
    // Scratch grown for a very large part is not kept.
    if (hits.length > RETAINED_TOKENS) this.scratch = new Int32Array(1024);
    return { added: this.added, ids, all, offsets, late: null };
  }

  private unionOf(ids: number): Uint32Array {
    let union = this.unions.get(ids);
    if (!union) {
      // A few sets are asked for in turn; more than that is a changing workload, and old sets go.
      if (this.unions.size === MAX_UNIONS) this.unions.clear();
      union = new Uint32Array((1 << FILTER_BITS) >>> 5);
      for (let id = 0; id < this.filters.length; id++) {
        const filter = this.filters[id];
        if (filter && (ids & (1 << id)) !== 0) for (let i = 0; i < union.length; i++) union[i]! |= filter[i]!;
      }
      this.unions.set(ids, union);
    }
    return union;
  }
}

/** TokenFilters forgets which filters were asked for after this many parts. */
const WANTED_PARTS = 4096;
/** How many union filters (8 KB each) TokenFilters keeps. */
const MAX_UNIONS = 16;

/** What TokenFilters made of a part's tokens: every filter's list, one after the other. */
interface Listed {
  /** The count of additions when it was made (TokenFilters.since). */
  added: number;
  /** The filters listed (a bit per id). */
  ids: number;
  all: Int32Array;
  /** Filter id's list: all[offsets[id], offsets[id + 1]). */
  offsets: Int32Array;
  /** Lists of filters added since, made when asked for. */
  late: Map<number, { since: number; list: Int32Array }> | null;
}

function listFilteredOne(tokens: WordTokens, filter: Uint32Array): Int32Array {
  const out: number[] = [];
  for (let k = 0; k < tokens.count; k++) if (mayHave(filter, tokens.hash[k]!)) out.push(k);
  return Int32Array.from(out);
}

/** The engine's token filters: the recognizers' (for as long as they live) and the context words' of each set. */
const tokenFilters = new TokenFilters();
const releaseFilter = new FinalizationRegistry<number>((id) => tokenFilters.remove(id));

/**
 * The id of a filter (wordHashFilter) for filteredTokens, held until `owner` is collected; -1 when the engine holds
 * as many as it can (the caller then reads every token itself).
 */
export function tokenFilterId(filter: Uint32Array, owner: object): number {
  const id = tokenFilters.add(filter);
  if (id >= 0) releaseFilter.register(owner, id);
  return id;
}

/**
 * Below this many tokens (a part of ~13 KB) a recognizer's own loop over the tokens costs less than the shared pass's
 * bookkeeping (measured on mail in 3 KB parts: 2–5% more CPU for names and health terms with the pass).
 */
const SHARED_PASS_TOKENS = 2048;

/**
 * The indices, in order, of the tokens whose hash may be in filter `id` (tokenFilterId); null for a small part, whose
 * every token the caller reads itself.
 */
export function filteredTokens(tokens: WordTokens, id: number): Int32Array | null {
  return tokens.count < SHARED_PASS_TOKENS ? null : tokenFilters.tokens(tokens, id);
}

/**
 * A filter of a part's words: the hash of every token, and of every run of letters a–z inside a token that holds a
 * digit ("ndc" of "ndc12345678901", "fax" of "5550100fax"). Asking it for a word costs one look-up where a search of
 * the part for the word cost a pass over it (76 µs for "ndc" in 100 KB of mail, whose many n's each stop the search).
 */
function tokenWordFilter(lower: string, tokens: WordTokens): Uint32Array {
  const filter = new Uint32Array((1 << FILTER_BITS) >>> 5);
  const { count, start, end, hash, digits, withDigit } = tokens;
  // The bit is set only when not yet set: most tokens of a part are words it had before, and a store for each
  // cost more than the test (53 against 32 µs for the 15,000 tokens of 100 KB of office mail).
  const add = (h: number): void => {
    const slot = filterSlot(h);
    const bit = 1 << (slot & 31);
    const bits = filter[slot >>> 5]!;
    if ((bits & bit) === 0) filter[slot >>> 5] = bits | bit;
  };
  for (let k = 0; k < count; k++) add(hash[k]!);
  for (let j = 0; j < withDigit.length; j++) {
    const k = withDigit[j]!;
    if ((digits[k]! & DIGIT_AND_LETTERS) === 0) continue;
    // Each run of a–z, ended by any other character of the token or by its end.
    let runStart = -1;
    for (let i = start[k]!, e = end[k]!; i <= e; i++) {
      const c = i < e ? lower.charCodeAt(i) : 0;
      if (c >= 97 && c <= 122) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        add(hashRange(lower, runStart, i));
        runStart = -1;
      }
    }
  }
  return filter;
}

interface CompiledPattern {
  name: string;
  regex: RegExp;
  score: number;
  triggers?: readonly string[];
  /** The hashes of PatternSpec.triggerWords. */
  triggerHashes?: readonly number[];
  /** Several triggers as one search (a search per trigger read the whole text once per trigger). */
  anyTrigger?: RegExp;
  /** With an anchor: the pattern's candidate starts, and the pattern as a sticky search tried at each of them. */
  anchor?: RegExp;
  sticky?: RegExp;
  tokens?: PatternSpec['tokens'];
  digitRun?: PatternSpec['digitRun'];
}

interface CompiledPatternRecognizer {
  kind: 'pattern';
  spec: PatternRecognizer;
  patterns: CompiledPattern[];
  context?: RegExp;
  /**
   * Every pattern is tried only at some of the part's tokens or digit runs when the part has tokens (not at every
   * token, not by a search of the text): on text without candidates that is next to nothing.
   */
  tokenTried: boolean;
}

type Compiled = CompiledPatternRecognizer | { kind: 'custom'; spec: Exclude<Recognizer, PatternRecognizer> };

function isPattern(r: Recognizer): r is PatternRecognizer {
  return 'patterns' in r;
}

/** One regex per distinct word list, so recognizers that share a list share its positions in a text. */
const wordLists = new Map<string, RegExp>();
/** The words of each shared list, lower case, spaces collapsed (as wordListRegex reads them). */
const listWords = new Map<RegExp, string[]>();
function sharedWordList(words: readonly string[]): RegExp {
  const key = [...new Set(words.map((w) => w.toLowerCase()))].sort().join('\u0000');
  let re = wordLists.get(key);
  if (!re) {
    re = wordListRegex(words);
    if (wordLists.size < 1000) wordLists.set(key, re);
    listWords.set(re, [...new Set(words.map(normaliseWord))]);
  }
  return re;
}

function normaliseWord(word: string): string {
  return word.toLowerCase().trim().replace(/\s+/g, ' ');
}

export function compileRecognizers(recognizers: readonly Recognizer[]): Compiled[] {
  return recognizers.map((r) => {
    if (!isPattern(r)) return { kind: 'custom', spec: r };
    const patterns = r.patterns.map((p): CompiledPattern => {
      // 'd' gives the exact position of an `id` group (its text may also occur inside the label).
      const flags = `${p.regex.flags}${p.regex.source.includes('(?<id>') ? 'd' : ''}`.replace(/[gy]/g, '');
      return {
        name: p.name,
        score: p.score,
        triggers: p.triggers,
        triggerHashes: p.triggerWords?.map(hashWord),
        anyTrigger:
          p.triggers && p.triggers.length > 1 ? new RegExp(p.triggers.map(escapeRegex).join('|')) : undefined,
        regex: new RegExp(p.regex.source, [...new Set(`${flags}g`)].join('')),
        anchor: p.anchor ? globalAnchor(p.anchor) : undefined,
        tokens: p.tokens,
        digitRun: p.digitRun,
        sticky:
          p.anchor || p.tokens || p.digitRun
            ? new RegExp(p.regex.source, [...new Set(`${flags}y`)].join(''))
            : undefined,
      };
    });
    return {
      kind: 'pattern',
      spec: r,
      patterns,
      context: r.context?.length ? sharedWordList(r.context) : undefined,
      tokenTried: patterns.every(
        (p) =>
          p.sticky !== undefined &&
          (p.digitRun !== undefined ||
            (p.tokens !== undefined && !(p.tokens.first === 'any' && p.tokens.minLength < LONG_TOKEN))),
      ),
    };
  });
}

export type CompiledRecognizers = ReturnType<typeof compileRecognizers>;

/**
 * Where a context word list occurs in one text: [start, end) pairs in text order. Found once per text and word list
 * (several recognizers share a list, and a slice per match to test was most of their cost on dense text).
 */
type ContextPositions = Int32Array;

/**
 * All the context lists of a set of recognizers as one search: every list's words in one trie, found in one pass over
 * the lower-cased text, each match then given to the lists that hold it. A pass per list read the text once per list
 * (a dozen lists, most of a millisecond per 100 KB each).
 */
interface ContextUnion {
  lists: RegExp[];
  /** A word (lower case, spaces collapsed) → the indices of the lists that hold it. */
  owners: Map<string, number[]>;
  /** After a character that is no letter or digit, and at the very start of the text. */
  after: RegExp;
  atStart: RegExp;
  /**
   * In text with tokens (see TOKEN_UNSAFE), a word of any list starts where a word token starts and its first token is the word's own: a filter of
   * those first tokens' hashes picks the few tokens to try `atStart` at, instead of a search at every word start. Null
   * when some word could start elsewhere (with a sign, or as a lone "s" that the tokens drop after an apostrophe).
   */
  firstTokens: FirstTokens | null;
  /**
   * A match of `atStart` or `after` (its text) → the words of the lists it holds from its start: its length and the
   * lists that hold it, for the whole match and each shorter prefix that ends on a word boundary, longest first. The
   * same few words recur all through a part ("desk" in a front desk's every signature): each is read out once.
   */
  expansions: Map<string, ContextExpansion>;
}

/** ContextUnion.expansions: pairs of a word's length and the indices of the lists that hold it. */
type ContextExpansion = Array<readonly [number, readonly number[]]>;
/** Matches whose expansion is kept, per union (a text of many distinct matches does not grow it further). */
const MAX_EXPANSIONS = 4096;

const unions = new WeakMap<readonly Compiled[], ContextUnion | null>();

const tokenUsers = new WeakMap<readonly Compiled[], boolean>();
/** Whether a recognizer of the set reads the part's word tokens. */
function usesTokens(compiled: readonly Compiled[]): boolean {
  let uses = tokenUsers.get(compiled);
  if (uses === undefined) {
    uses = compiled.some((r) => r.kind === 'custom' && r.spec.usesWordTokens === true);
    tokenUsers.set(compiled, uses);
  }
  return uses;
}

function unionOf(compiled: readonly Compiled[]): ContextUnion | null {
  let union = unions.get(compiled);
  if (union !== undefined) return union;
  const lists: RegExp[] = [];
  for (const rec of compiled)
    if (rec.kind === 'pattern' && rec.context && !lists.includes(rec.context)) lists.push(rec.context);
  const owners = new Map<string, number[]>();
  lists.forEach((list, k) => {
    for (const word of listWords.get(list) ?? []) {
      const own = owners.get(word);
      if (own) own.push(k);
      else owners.set(word, [k]);
    }
  });
  if (owners.size === 0) union = null;
  else {
    const source = `(?:${trieSource(owners.keys())})(?![\\p{L}\\p{N}])`;
    union = {
      lists,
      owners,
      after: new RegExp(`[^\\p{L}\\p{N}]${source}`, 'gu'),
      atStart: new RegExp(source, 'uy'),
      firstTokens: firstTokenFilter(owners.keys()),
      expansions: new Map(),
    };
  }
  unions.set(compiled, union);
  return union;
}

/**
 * ContextUnion.firstTokens: where a word of the lists may start. A word of one token starts at a token in `single`; a
 * word of several starts at a token in `several` whose next token makes a pair in `pairs` (pairHash of the two
 * tokens' hashes). Common words open phrases ("supply" of "supply code", "schedule" of "schedule ii"): the pair test
 * spares a search at each of them.
 */
interface FirstTokens {
  single: Uint32Array;
  /**
   * The hashes `single` was made of, exactly: a word that only shares its filter bit with one of them (on the bench
   * mail, "masks" with a context word, 175 times per 100 KB) is turned away before a search.
   */
  singleHashes: Set<number>;
  several: Uint32Array;
  pairs: Uint32Array;
  /** The tokenFilterId of `single` and `several` together (or -1). */
  id: number;
}

/** The hash of two tokens in a row, from their hashes (for a filter of pairs). */
export function pairHash(first: number, second: number): number {
  return Math.imul(first ^ 0x5bd1e995, FNV_PRIME) ^ second;
}

/** The first tokens of the words that can occur in text with tokens, or null (ContextUnion.firstTokens). */
function firstTokenFilter(words: Iterable<string>): FirstTokens | null {
  const single = new Uint32Array((1 << FILTER_BITS) >>> 5);
  const several = new Uint32Array((1 << FILTER_BITS) >>> 5);
  const pairs = new Uint32Array((1 << FILTER_BITS) >>> 5);
  const singleHashes = new Set<number>();
  const add = (filter: Uint32Array, h: number): void => {
    const slot = filterSlot(h);
    filter[slot >>> 5]! |= 1 << (slot & 31);
  };
  for (const word of words) {
    // A word with such a character never occurs in a text that has tokens to read.
    if (tokenUnsafe(word)) continue;
    const first = /^[\p{L}0-9]+/u.exec(word)?.[0];
    if (first === undefined || first === 's') return null;
    // The word's tokens as the text's are read. A word with an apostrophe (whose "s" the tokens may drop) or whose
    // second token is not what follows its first is tried wherever its first token is.
    const t = tokenize(word);
    const tokens = Array.from({ length: t.count }, (_, k) => word.slice(t.start[k], t.end[k]));
    if (tokens[0] !== first) return null;
    if (tokens.length < 2 || /['\u2019]/.test(word)) {
      add(single, hashWord(first));
      singleHashes.add(hashWord(first));
    } else {
      add(several, hashWord(first));
      add(pairs, pairHash(hashWord(first), hashWord(tokens[1]!)));
    }
  }
  const either = single.map((bits, i) => bits | several[i]!);
  const firstTokens = { single, singleHashes, several, pairs, id: -1 };
  firstTokens.id = tokenFilterId(either, firstTokens);
  return firstTokens;
}

/**
 * Characters that make word tokens and the patterns' word boundaries ([\p{L}\p{N}]) disagree: marks and numbers beyond
 * ASCII (a token's letters, or not), and characters beyond the 16-bit range (a token sees their halves). In a text
 * without them, a token is exactly a run of letters and digits as the patterns see one.
 */
export const TOKEN_UNSAFE = /[^\0-\x7f](?<=[^\0-\uFFFF]|[\uD800-\uDFFF]|[\p{M}\p{N}])/u;
/** 1 for a code unit beyond ASCII that is a mark, a number or a surrogate (TOKEN_UNSAFE), 0 for any other. */
const unsafeUnits = new Uint8Array(0x10000);
for (let c = 0x80; c < 0x10000; c++)
  unsafeUnits[c] = (charClass(c) & (CHAR_MARK | CHAR_NUMBER | CHAR_SURROGATE)) !== 0 ? 1 : 0;

/**
 * The UTF-16 code units of a string, in a buffer reused from call to call (one beyond RETAINED_CODES is not kept): a
 * typed array costs well under half of what charCodeAt does (measured: 8.5 against 20 ms for 2 MB); the copy itself
 * is a memcpy.
 */
const RETAINED_CODES = 1 << 22;
let codeBuffer = new Uint16Array(4096);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function codeUnitsOf(s: string): Uint16Array {
  const n = s.length;
  // One more than the string: a space after its end, so loops over it stop there without a bounds test.
  const into = codeBuffer.length > n ? codeBuffer : new Uint16Array(Math.max(n + 1, codeBuffer.length * 2));
  if (n <= RETAINED_CODES) codeBuffer = into;
  if (LITTLE_ENDIAN) Buffer.from(into.buffer, into.byteOffset, n * 2).write(s, 0, 'utf16le');
  else for (let i = 0; i < n; i++) into[i] = s.charCodeAt(i);
  into[n] = 0x20;
  return into;
}

/**
 * Whether `s` holds a TOKEN_UNSAFE character. The same answer as the regular expression's (a test compares them), read
 * from the string's code units (codeUnitsOf) against a table: the expression took ~3 ns a character on text with
 * characters beyond ASCII (12.5 ms for 2 MB with a typographic apostrophe in every third sentence), a loop of
 * charCodeAt ~2 ns.
 */
export function tokenUnsafe(s: string): boolean {
  const u = codeUnitsOf(s);
  // Two code units at a time (codeUnitsOf's buffer starts its own ArrayBuffer and has a space after the text), the
  // table read only for a pair with one beyond ASCII: 1.3 against 2.2 ms for 2 MB, most of it ASCII.
  const pairs = new Uint32Array(u.buffer, 0, (s.length + 1) >> 1);
  const unsafe = unsafeUnits;
  for (let i = 0; i < pairs.length; i++) {
    const v = pairs[i]!;
    if ((v & 0xff80ff80) !== 0 && (unsafe[v & 0xffff]! | unsafe[v >>> 16]!) !== 0) return true;
  }
  return false;
}

/** The last text asked about, and whether it is all ASCII. */
let asciiText: { text: string; ascii: boolean } | null = null;

/**
 * Whether every character of a text is ASCII (asked once per part, however many recognizers ask). Its UTF-8 length is
 * its length exactly then: any other code unit takes two bytes or more, and a lone surrogate three. Node counts that
 * at a quarter of the time a search for /[^\0-\x7f]/ takes (0.33 against 1.36 ms for 2 MB).
 */
export function isAscii(text: string): boolean {
  if (asciiText?.text !== text) asciiText = { text, ascii: Buffer.byteLength(text, 'utf8') === text.length };
  return asciiText.ascii;
}

/** A letter or number, as the patterns' [\p{L}\p{N}] reads one code unit (a surrogate is neither). */
export function isLetterOrDigit(c: number): boolean {
  return (charClasses[c]! & (CHAR_LETTER | CHAR_NUMBER)) !== 0;
}

/**
 * Each list's positions, as a search with that list alone finds them: at each word start, the longest of its words
 * that ends on a boundary, and no two of one list's words overlapping.
 */
function findContexts(
  lower: string,
  union: ContextUnion,
  tokens: WordTokens | null,
): Map<RegExp, ContextPositions> {
  const found: number[][] = union.lists.map(() => []);
  const lastEnd = new Int32Array(union.lists.length).fill(-1);
  const take = (start: number, matched: string): void => {
    let expansion = union.expansions.get(matched);
    if (expansion === undefined) {
      expansion = expand(union, matched);
      if (union.expansions.size < MAX_EXPANSIONS) union.expansions.set(matched, expansion);
    }
    for (const [length, own] of expansion) {
      const end = start + length;
      for (const k of own) {
        if (start <= lastEnd[k]!) continue;
        found[k]!.push(start, end);
        lastEnd[k] = end;
      }
    }
  };
  if (union.firstTokens && tokens) {
    // The same positions in the same order as the search below: every word start where a word of some list begins.
    const { single, singleHashes, several, pairs, id } = union.firstTokens;
    const re = union.atStart;
    const { count, hash } = tokens;
    // The tokens in single or several (every token when the filter has no id).
    const listed = id >= 0 ? filteredTokens(tokens, id) : null;
    const n = listed ? listed.length : count;
    for (let j = 0; j < n; j++) {
      const k = listed ? listed[j]! : j;
      // mayHave, written out: this runs for many words of the part.
      const slot = filterSlot(hash[k]!);
      const bit = 1 << (slot & 31);
      if ((single[slot >>> 5]! & bit) === 0 || !singleHashes.has(hash[k]!)) {
        if ((several[slot >>> 5]! & bit) === 0 || k + 1 === count) continue;
        const pair = filterSlot(pairHash(hash[k]!, hash[k + 1]!));
        if ((pairs[pair >>> 5]! & (1 << (pair & 31))) === 0) continue;
      }
      const start = tokens.start[k]!;
      re.lastIndex = start;
      const m = re.exec(lower);
      if (m) take(start, m[0]);
    }
    return listPositions(union, found);
  }
  union.atStart.lastIndex = 0;
  const first = union.atStart.exec(lower);
  if (first) take(0, first[0]);
  const re = union.after;
  re.lastIndex = 0;
  for (let m = re.exec(lower); m; m = re.exec(lower)) {
    take(m.index + 1, m[0].slice(1));
    // Words of other lists may start inside this one ("security" in "social security"): go on from its start.
    re.lastIndex = m.index + 1;
  }
  return listPositions(union, found);
}

/**
 * The words of the lists in a match, longest first: the whole match is the longest word here of any list; a list's
 * own longest word is one of its shorter prefixes that end on a boundary.
 */
function expand(union: ContextUnion, matched: string): ContextExpansion {
  const out: ContextExpansion = [];
  const add = (word: string): void => {
    const own = union.owners.get(/\s[\s]|[^\S ]/.test(word) ? word.replace(/\s+/g, ' ') : word);
    if (own) out.push([word.length, own]);
  };
  add(matched);
  for (let j = matched.length - 1; j > 0; j--)
    if (!isLetterOrDigit(matched.charCodeAt(j))) add(matched.slice(0, j));
  return out;
}

function listPositions(union: ContextUnion, found: number[][]): Map<RegExp, ContextPositions> {
  const out = new Map<RegExp, ContextPositions>();
  union.lists.forEach((list, k) => out.set(list, Int32Array.from(found[k]!)));
  return out;
}

/** A context word ending in [from, start] or starting in [end, to), not overlapping the match itself. */
function hasContext(positions: ContextPositions, start: number, end: number, window: number): boolean {
  const from = start - window;
  const to = end + Math.floor(window / 2);
  // First occurrence that ends after `from` (binary search over the pairs).
  let lo = 0;
  let hi = positions.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (positions[2 * mid + 1]! <= from) lo = mid + 1;
    else hi = mid;
  }
  for (let k = lo; 2 * k < positions.length; k++) {
    const s = positions[2 * k]!;
    const e = positions[2 * k + 1]!;
    if (s >= to) return false;
    if (e <= start || s >= end) return true;
  }
  return false;
}

/**
 * An anchor shared by patterns of several recognizers (one search per part for all of them), a house number: digits
 * on a boundary, perhaps a letter, a range or a half, blanks, then a capital or a digit (the street's name, its
 * direction or an ordinal). Every US street address and number-first street name starts so; most text has none, and
 * their patterns, the costliest here, are then not run at all. (An anchor pays only when it is much rarer than the
 * pattern's own first character, or shared: one for the long numbers of SSN, NPI, card and NDC cost what it saved.)
 */
export const HOUSE_NUMBER_ANCHOR =
  /\d(?<![\p{L}\p{N}_]\d)(?=\d{0,5}(?:[A-Z]|-\d{1,4}|[ \t]1\/2)?[ \t]{1,2}[\p{Lu}\d])/gu;

// ── Leading letters of a pattern ────────────────────────────────────────────────────────────────────────────

type Node =
  | { kind: 'set'; codes: number[] }
  | { kind: 'seq'; items: Node[] }
  | { kind: 'alt'; options: Node[] }
  | { kind: 'repeat'; node: Node; min: number; max: number };

const ASCII_CODES = Array.from({ length: 128 }, (_, c) => c);

/** A parser for the plain subset of regular expressions that labels are written in; throws on anything else. */
function parseSimpleRegex(source: string): Node {
  let i = 0;
  const escape = (c: string): number[] => {
    if (c === 't') return [9];
    if (c === 'n') return [10];
    if (c === 'r') return [13];
    if (c === 'd') return ASCII_CODES.filter((k) => k >= 48 && k <= 57);
    if (c === 's') return [9, 10, 11, 12, 13, 32];
    if (/[\w]/.test(c)) throw new Error(`escape \\${c}`);
    return [c.charCodeAt(0)];
  };
  const klass = (): number[] => {
    const negated = source[i] === '^';
    if (negated) i++;
    const codes = new Set<number>();
    while (i < source.length && source[i] !== ']') {
      let from: number[];
      if (source[i] === '\\') {
        from = escape(source[i + 1]!);
        i += 2;
      } else from = [source.charCodeAt(i++)];
      if (source[i] === '-' && source[i + 1] !== ']' && from.length === 1) {
        const to = source[i + 1] === '\\' ? escape(source[i + 2]!) : [source.charCodeAt(i + 1)];
        i += source[i + 1] === '\\' ? 3 : 2;
        for (let c = from[0]!; c <= to[0]!; c++) codes.add(c);
      } else for (const c of from) codes.add(c);
    }
    i++;
    // Beyond ASCII, a negated class would also take letters that the leading letters below do not count.
    if (negated) throw new Error('negated class');
    return [...codes];
  };
  const alt = (): Node => {
    const options = [seq()];
    while (source[i] === '|') {
      i++;
      options.push(seq());
    }
    return options.length === 1 ? options[0]! : { kind: 'alt', options };
  };
  const seq = (): Node => {
    const items: Node[] = [];
    while (i < source.length && source[i] !== '|' && source[i] !== ')') {
      let node: Node;
      const c = source[i]!;
      if (c === '(') {
        i++;
        if (source[i] === '?') {
          if (source[i + 1] !== ':') throw new Error('lookaround');
          i += 2;
        }
        node = alt();
        if (source[i++] !== ')') throw new Error('unclosed group');
      } else if (c === '[') {
        i++;
        node = { kind: 'set', codes: klass() };
      } else if (c === '\\') {
        node = { kind: 'set', codes: escape(source[i + 1]!) };
        i += 2;
      } else if (c === '.') {
        throw new Error('any character');
      } else if ('^$*+?{'.includes(c)) throw new Error(`unexpected ${c}`);
      else {
        if (source.charCodeAt(i) > 0x7f) throw new Error('a character beyond ASCII');
        node = { kind: 'set', codes: [source.charCodeAt(i++)] };
      }
      const q = /^(?:\?|\*|\+|\{(\d+)(,(\d*))?\})/.exec(source.slice(i));
      if (q) {
        i += q[0].length;
        const min = q[0] === '?' || q[0] === '*' ? 0 : q[0] === '+' ? 1 : Number(q[1]);
        const max =
          q[0] === '?'
            ? 1
            : q[0] === '*' || q[0] === '+'
              ? Infinity
              : q[2] === undefined
                ? min
                : q[3]
                  ? Number(q[3])
                  : Infinity;
        node = { kind: 'repeat', node, min, max };
      }
      items.push(node);
    }
    return items.length === 1 ? items[0]! : { kind: 'seq', items };
  };
  const tree = alt();
  if (i !== source.length) throw new Error('trailing text');
  return tree;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}

/**
 * The leading letters of every match of a pattern in the plain subset (see parseSimpleRegex): the letters a match
 * starts with, up to its first other character or its end ("call" for "call(?:ed|ing)?[ \t]back" as well as
 * "called", "calling", "callback" …), or null when that cannot be told (a construct outside the subset, a match that
 * may start with another character or with no letters, or too many words). In text whose word after a match is no
 * letter, a match starts with the letters of the word it starts.
 */
export function leadingLetters(source: string): string[] | null {
  // States: "o" + letters so far (open), "c" + letters (closed: a non-letter came, or the match may end here).
  const final = matchStates(source, 'o', (s, c) => {
    if (s[0] === 'c') return s;
    if (s.length > 64) throw new Error('too long');
    return isAsciiLetter(c) ? s + String.fromCharCode(c) : `c${s.slice(1)}`;
  });
  if (!final) return null;
  const words = new Set<string>();
  for (const s of final) {
    const word = s.slice(1);
    if (word === '') return null;
    words.add(word.toLowerCase());
  }
  return [...words];
}

/**
 * The states a match of a pattern in the plain subset (see parseSimpleRegex) may end in, from `initial`, where `next`
 * gives the state after a character (it may throw to give up); null when that cannot be told (a construct outside
 * the subset, too many states).
 */
function matchStates(
  source: string,
  initial: string,
  next: (state: string, code: number) => string,
): Set<string> | null {
  let tree: Node;
  try {
    tree = parseSimpleRegex(source);
  } catch {
    return null;
  }
  const LIMIT = 20_000;
  const step = (node: Node, states: Set<string>): Set<string> => {
    if (states.size > LIMIT) throw new Error('too many');
    switch (node.kind) {
      case 'set': {
        const out = new Set<string>();
        for (const s of states) for (const c of node.codes) out.add(next(s, c));
        return out;
      }
      case 'seq':
        return node.items.reduce((acc, item) => step(item, acc), states);
      case 'alt': {
        const out = new Set<string>();
        for (const option of node.options) for (const s of step(option, states)) out.add(s);
        return out;
      }
      case 'repeat': {
        let acc = states;
        for (let k = 0; k < node.min; k++) acc = step(node.node, acc);
        const out = new Set(acc);
        for (let k = node.min; k < Math.min(node.max, node.min + 66); k++) {
          const more = step(node.node, acc);
          let grew = false;
          for (const s of more)
            if (!out.has(s)) {
              out.add(s);
              grew = true;
            }
          if (!grew) break;
          acc = more;
        }
        return out;
      }
    }
  };
  try {
    return step(tree, new Set([initial]));
  } catch {
    return null;
  }
}

/**
 * What a match of a pattern in the plain subset needs after its first word (the leading letters, see leadingLetters)
 * where blanks (spaces, tabs) and then a word token follow that word in the text:
 * - `alone`: first words a match may also end with, or continue after with blanks and no letter (a digit, or
 *   nothing): a token of one of them may start a match whatever follows it;
 * - `pairs`: [first word, second word] where a match goes on with blanks and then letters, the second word being
 *   those letters up to the next character that is no letter a–z (or the end).
 * - `after`: [first word, character] for every character other than a letter a–z that may come right after the first
 *   word in a match (a word not in `alone` is followed by one of its characters, or starts no match).
 * Any other way on (a sign, a digit or a letter beyond a–z right after the first word, or a sign after its blanks)
 * puts more than blanks between the word and the next token, or makes one token of letters then digits. So at a
 * first word whose next token follows after blanks only, a match can start only when the word is in `alone` or the
 * two make one of `pairs`. Null when that cannot be told (as for leadingLetters).
 */
export function labelPairs(
  source: string,
): { alone: string[]; pairs: Array<[string, string]>; after: Array<[string, number]> } | null {
  const after = new Map<string, [string, number]>();
  // States: "o" + first word so far; "w" + first word (blanks after it); "p" + first word + "|" + second word so far;
  // "q" + first word + "|" + second word (ended); "a" + first word (alone); "x" (no requirement); "n" (no first word).
  const final = matchStates(source, 'o', (s, c) => {
    if (s.length > 130) throw new Error('too long');
    const kind = s[0];
    const blank = c === 32 || c === 9;
    const letter = isAsciiLetter(c) ? String.fromCharCode(c).toLowerCase() : null;
    if (kind === 'o') {
      if (letter) return s + letter;
      if (s.length === 1) return 'n';
      after.set(`${s}:${c}`, [s.slice(1), c]);
      return blank ? `w${s.slice(1)}` : 'x';
    }
    if (kind === 'w') {
      if (blank) return s;
      if (letter) return `p${s.slice(1)}|${letter}`;
      return c >= 48 && c <= 57 ? `a${s.slice(1)}` : 'x';
    }
    if (kind === 'p') return letter ? s + letter : `q${s.slice(1)}`;
    return s;
  });
  if (!final) return null;
  const alone = new Set<string>();
  const pairs = new Map<string, [string, string]>();
  for (const s of final) {
    const kind = s[0];
    if (kind === 'n' || s === 'o') return null;
    if (kind === 'o' || kind === 'w' || kind === 'a') alone.add(s.slice(1));
    else if (kind === 'p' || kind === 'q') {
      const [first, second] = s.slice(1).split('|') as [string, string];
      pairs.set(s.slice(1), [first, second]);
    }
  }
  return { alone: [...alone], pairs: [...pairs.values()], after: [...after.values()] };
}

/** Anchors as given when global, else a global copy (one per anchor, so patterns that share one share its starts). */
const globalAnchors = new WeakMap<RegExp, RegExp>();
function globalAnchor(anchor: RegExp): RegExp {
  if (anchor.global && !anchor.sticky) return anchor;
  let re = globalAnchors.get(anchor);
  if (!re) {
    re = new RegExp(anchor.source, `${anchor.flags.replace(/[gy]/g, '')}g`);
    globalAnchors.set(anchor, re);
  }
  return re;
}

/** The text whose anchor starts are cached, and those starts (analysis is synchronous: one part at a time). */
let anchorText: string | null = null;
let anchorCache = new Map<RegExp, Int32Array>();

/**
 * Where a global `anchor` matches in `text`, in text order: found once per part and anchor, however many patterns and
 * recognizers ask (a pattern with `anchor`, or a custom recognizer that runs a sticky pattern only at these starts).
 */
export function anchorStarts(text: string, anchor: RegExp, runs: DigitRuns | null = null): Int32Array {
  if (anchorText !== text) {
    anchorText = text;
    anchorCache = new Map();
  }
  let starts = anchorCache.get(anchor);
  if (!starts && runs !== null && anchor === HOUSE_NUMBER_ANCHOR) {
    starts = houseNumberStarts(text, runs);
    anchorCache.set(anchor, starts);
  }
  if (!starts) {
    const re = globalAnchor(anchor);
    const found: number[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      found.push(m.index);
      re.lastIndex = m.index + 1;
    }
    starts = Int32Array.from(found);
    anchorCache.set(anchor, starts);
  }
  return starts;
}

const HOUSE_NUMBER_AT = new RegExp(HOUSE_NUMBER_ANCHOR.source, 'uy');

/**
 * HOUSE_NUMBER_ANCHOR's matches, read from the part's runs of digits instead of searched for: every match starts a run
 * (its look-behind leaves out a digit after a number), of at most six digits (then a capital A–Z, a hyphen or a blank
 * follows), and the anchor itself decides there. The search read every character with a Unicode class test, at ~2 ns
 * a character in text beyond ASCII; most runs fail at the character after them.
 */
function houseNumberStarts(text: string, runs: DigitRuns): Int32Array {
  const found: number[] = [];
  const re = HOUSE_NUMBER_AT;
  for (let j = 0; j < runs.count; j++) {
    if (runs.length[j]! > 6) continue;
    const at = runs.start[j]!;
    const after = text.charCodeAt(at + runs.length[j]!);
    if (after !== 32 && after !== 9 && after !== 45 && (after < 65 || after > 90)) continue;
    re.lastIndex = at;
    if (re.test(text)) found.push(at);
  }
  return Int32Array.from(found);
}

/** Tokens of a length that few words have (9 and more), for patterns of long codes that may start with any character. */
const LONG_TOKEN = 9;

/**
 * Which of a part's tokens a list holds: those whose first character is a digit 0–9, those whose first character is a
 * capital A–Z and that hold a digit 0–9 too, or the long ones (PatternSpec.tokens).
 */
export type TokenList = 'digit' | 'upper-digit' | 'long';

/**
 * What patterns read of a part's tokens beside the tokens themselves: its tokens by how they start, its long ones and
 * its runs of digits, each made when a pattern first asks for it (a clean message is often decided before any pattern
 * that reads `long` runs).
 */
export interface TokenIndex {
  text: string;
  tokens: WordTokens;
  digit: Int32Array | null;
  'upper-digit': Int32Array | null;
  long: Int32Array | null;
  runs: DigitRuns | null;
}

let tokenIndex: TokenIndex | null = null;

/** The part's TokenIndex, a new (empty) one when the last was another part's. */
function indexOf(text: string, tokens: WordTokens): TokenIndex {
  const index = tokenIndex;
  if (index !== null && index.tokens === tokens && index.text === text) return index;
  return (tokenIndex = { text, tokens, digit: null, 'upper-digit': null, long: null, runs: null });
}

/**
 * Where a list is written before it is copied out at its length, reused from part to part: fresh arrays, zeroed and
 * paged in per part, cost as much as the loop on a large part.
 */
let listScratch = new Int32Array(1024);

/** The indices, in text order, of the tokens of `text` in list `kind` (tokens: of its lower-cased copy). */
export function tokenListOf(text: string, tokens: WordTokens, kind: TokenList): Int32Array {
  const index = indexOf(text, tokens);
  return (index[kind] ??= listTokens(text, tokens, kind));
}

/**
 * Only the tokens that hold a digit 0–9 (withDigit; lower-casing changes no digit) are read for `digit` and
 * `upper-digit` (a token that starts with a digit holds one): in most mail few do. The loop for `long` writes every
 * token's index and moves on by one where the token belongs (a sum, not a branch: long words come at random, and a
 * branch on them mispredicted).
 */
function listTokens(text: string, tokens: WordTokens, kind: TokenList): Int32Array {
  const { count, start, end, withDigit } = tokens;
  if (listScratch.length < count) listScratch = new Int32Array(count);
  const out = listScratch;
  if (count > RETAINED_TOKENS) listScratch = new Int32Array(1024);
  let n = 0;
  if (kind !== 'long') {
    const low = kind === 'digit' ? 48 : 65;
    const high = kind === 'digit' ? 57 : 90;
    for (let j = 0; j < withDigit.length; j++) {
      const k = withDigit[j]!;
      const c = text.charCodeAt(start[k]!);
      if (c >= low && c <= high) out[n++] = k;
    }
  } else {
    for (let k = 0; k < count; k++) {
      out[n] = k;
      // 1 exactly when the length is LONG_TOKEN or more.
      n += (LONG_TOKEN - 1 - (end[k]! - start[k]!)) >>> 31;
    }
  }
  return out.slice(0, n);
}

/** Where the runs of digits 0–9 of a part start (a digit with none right before it), and how long each is. */
export interface DigitRuns {
  count: number;
  start: Int32Array;
  length: Int32Array;
}

/**
 * The runs of digits of a part, in text order, read in its tokens that hold a digit: every digit 0–9 is in a token
 * (digits are word characters), and only the tokens listed in withDigit hold one. The tokens are of the lower-cased text, as
 * long as `text`; lower-casing changes no digit and makes none. When that lower-cased text is ASCII (`ascii`), a
 * token without a letter a–z is all digits (a–z and 0–9 are then its only word characters): one run, read from its
 * start and end alone.
 */
export function digitRunsOf(text: string, tokens: WordTokens, ascii: boolean): DigitRuns {
  const index = indexOf(text, tokens);
  return (index.runs ??= readDigitRuns(text, tokens, ascii));
}

function readDigitRuns(text: string, tokens: WordTokens, ascii: boolean): DigitRuns {
  const { start, end, digits, withDigit } = tokens;
  // Written into arrays reused from part to part, grown when full, and copied out at their length (as tokenListOf).
  let starts = runScratch.start;
  let lengths = runScratch.length;
  let n = 0;
  for (let j = 0; j < withDigit.length; j++) {
    const k = withDigit[j]!;
    const bits = digits[k]!;
    const at = start[k]!;
    const to = end[k]!;
    // A token holds at most (length + 1) / 2 runs.
    if (n + ((to - at + 1) >> 1) > starts.length) {
      runScratch = runArrays(Math.max(starts.length * 2, n + to - at + 1));
      runScratch.start.set(starts.subarray(0, n));
      runScratch.length.set(lengths.subarray(0, n));
      starts = runScratch.start;
      lengths = runScratch.length;
    }
    if (ascii && (bits & DIGIT_AND_LETTERS) === 0) {
      starts[n] = at;
      lengths[n++] = to - at;
      continue;
    }
    let run = -1;
    for (let i = at; i <= to; i++) {
      const d = i < to ? text.charCodeAt(i) : 0;
      if (d >= 48 && d <= 57) {
        if (run < 0) run = i;
      } else if (run >= 0) {
        starts[n] = run;
        lengths[n++] = i - run;
        run = -1;
      }
    }
  }
  const runs = { count: n, start: starts.slice(0, n), length: lengths.slice(0, n) };
  if (starts.length > RETAINED_TOKENS) runScratch = runArrays(1024);
  return runs;
}

function runArrays(size: number): { start: Int32Array; length: Int32Array } {
  return { start: new Int32Array(size), length: new Int32Array(size) };
}
let runScratch = runArrays(1024);

/** Whether the lower-cased text holds one of a pattern's triggers (true when it has none). */
export function hasTrigger(lower: string, triggers: readonly string[] | undefined): boolean {
  if (triggers === undefined) return true;
  for (const t of triggers) if (lower.includes(t)) return true;
  return false;
}

function runPattern(
  rec: CompiledPatternRecognizer,
  text: string,
  lower: string,
  part: string,
  contextOf: (re: RegExp) => ContextPositions,
  tokensOf: () => WordTokens | null,
  mayHaveHash: (hash: number) => boolean,
): Finding[] {
  const out: Finding[] = [];
  const spec = rec.spec;
  const window = spec.contextWindow ?? DEFAULT_WINDOW;
  // A labelled identifier cannot count without its label: skip the whole text when no label is in it. Finding the
  // labels means finding every context word of the set in the part (one pass for all lists): worth it before a
  // search of the whole text, not before patterns tried only at the part's tokens or digit runs, which take next to
  // nothing on text without candidates (office mail: the labels' pass was a tenth of the scan). The findings are
  // the same either way: a match still counts only near its label (take).
  if (
    spec.requireContext &&
    rec.context &&
    !(rec.tokenTried && tokensOf()) &&
    contextOf(rec.context).length === 0
  )
    return out;
  const take = (m: RegExpExecArray, pattern: CompiledPattern): void => {
    // A pattern may mark the identifier itself with a named group `id` (the rest is its label).
    const idText = m.groups?.id ?? m[0];
    const idSpan = m.indices?.groups?.id;
    const start = idSpan ? idSpan[0] : m.index;
    const end = start + idText.length;
    let score = pattern.score;
    if (spec.validate) {
      const valid = spec.validate(idText);
      if (valid === false) return;
      if (valid === true) score = Math.max(score, spec.validScore ?? 0.95);
    }
    const labelled = m.groups?.id !== undefined;
    const near = labelled || (rec.context ? hasContext(contextOf(rec.context), start, end, window) : false);
    if (spec.requireContext && !near) return;
    if (near) score = Math.min(1, score + (spec.contextBoost ?? DEFAULT_BOOST));
    out.push({ type: spec.type, category: spec.category, part, start, end, score, recognizer: spec.id });
  };
  // A sticky pattern tried at chosen starts, in order, each at or after where the last match ended: the same matches as
  // a search of the whole text when every place a match can start is among them.
  let from = 0;
  const tryAt = (re: RegExp, at: number, pattern: CompiledPattern): void => {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return;
    from = at + Math.max(1, m[0].length);
    if (m[0].length > 0) take(m, pattern);
  };
  for (const pattern of rec.patterns) {
    if (pattern.triggerHashes && !pattern.triggerHashes.some(mayHaveHash)) continue;
    if (pattern.anyTrigger ? !pattern.anyTrigger.test(lower) : !hasTrigger(lower, pattern.triggers)) continue;
    from = 0;
    const tokens = (pattern.tokens || pattern.digitRun) && pattern.sticky ? tokensOf() : null;
    if (tokens && pattern.digitRun && pattern.sticky) {
      // Tried where a run of digits of the pattern's length starts: every match starts at one.
      const { minLength, maxLength } = pattern.digitRun;
      const runs = digitRunsOf(text, tokens, isAscii(lower));
      for (let j = 0; j < runs.count; j++) {
        const at = runs.start[j]!;
        const length = runs.length[j]!;
        if (length >= minLength && length <= maxLength && at >= from) tryAt(pattern.sticky, at, pattern);
      }
      continue;
    }
    if (tokens && pattern.tokens && pattern.sticky) {
      // Tried at the tokens where a match can start.
      const { minLength, maxLength, first } = pattern.tokens;
      const all = first === 'any' && minLength < LONG_TOKEN;
      const list = all ? null : tokenListOf(text, tokens, first === 'any' ? 'long' : first);
      for (let j = 0, n = list === null ? tokens.count : list.length; j < n; j++) {
        const k = list === null ? j : list[j]!;
        const at = tokens.start[k]!;
        const length = tokens.end[k]! - at;
        if (length >= minLength && length <= maxLength && at >= from) tryAt(pattern.sticky, at, pattern);
      }
      continue;
    }
    if (pattern.anchor && pattern.sticky) {
      // Tried at its anchor's starts only (it cannot match where the anchor does not).
      const withTokens = tokensOf();
      const runs = withTokens ? digitRunsOf(text, withTokens, isAscii(lower)) : null;
      const starts = anchorStarts(text, pattern.anchor, runs);
      for (let k = 0; k < starts.length; k++)
        if (starts[k]! >= from) tryAt(pattern.sticky, starts[k]!, pattern);
      continue;
    }
    const re = pattern.regex;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      take(m, pattern);
    }
  }
  return out;
}

/**
 * Drops a finding when another of the same part and category covers it with a higher score (or the same
 * score and a wider span). Findings are grouped by part and category first, so the sort within a group compares
 * numbers only (comparing the strings of every pair was most of the cost with tens of thousands of findings); the
 * output is in the order of one stable sort by part, category, start, longest first, highest score first.
 */
export function resolveOverlaps(findings: Finding[]): Finding[] {
  const groups = new Map<string, Map<string, Finding[]>>();
  for (const f of findings) {
    let byCategory = groups.get(f.part);
    if (!byCategory) groups.set(f.part, (byCategory = new Map<string, Finding[]>()));
    const group = byCategory.get(f.category);
    if (group) group.push(f);
    else byCategory.set(f.category, [f]);
  }
  const keep: Finding[] = [];
  for (const part of [...groups.keys()].sort(byCodeUnits)) {
    const byCategory = groups.get(part)!;
    for (const category of [...byCategory.keys()].sort(byCodeUnits))
      sweep(byCategory.get(category)!.sort(byPosition), keep);
  }
  return keep;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byPosition(a: Finding, b: Finding): number {
  return a.start - b.start || b.end - a.end || b.score - a.score;
}

/** One group in sorted order, one sweep: only findings still open at a position can cover it. */
function sweep(sorted: readonly Finding[], keep: Finding[]): void {
  // The findings still open, first `count` of the array: its length is never cut (cutting an array's length and
  // pushing again made V8 allocate a new backing store per finding, a tenth of the allocations on dense text).
  const open = openScratch;
  let count = 0;
  for (const f of sorted) {
    // Loops rather than some/filter with closures: this runs for every finding.
    let still = 0;
    for (let j = 0; j < count; j++) {
      const k = open[j]!;
      if (k.end >= f.start) open[still++] = k;
    }
    count = still;
    let beaten = false;
    for (let j = 0; j < count; j++) {
      const k = open[j]!;
      if (
        k.end >= f.end &&
        (k.score > f.score ||
          (k.score === f.score && (k.type === f.type || k.end - k.start > f.end - f.start)))
      ) {
        beaten = true;
        break;
      }
    }
    if (beaten) continue;
    keep.push(f);
    if (count === open.length) open.push(f);
    else open[count] = f;
    count++;
  }
  // No finding held past the sweep.
  open.fill(NO_FINDING, 0, count);
}

const NO_FINDING: Finding = {
  type: '',
  category: 'identifier',
  part: '',
  start: 0,
  end: 0,
  score: 0,
  recognizer: '',
};
const openScratch: Finding[] = [];

/** A lower-cased copy with the same length and offsets (a few characters change length when lower-cased). */
function lowerSameLength(text: string): string {
  const lower = text.toLowerCase();
  if (lower.length === text.length) return lower;
  let out = '';
  for (const ch of text) {
    const l = ch.toLowerCase();
    out += l.length === ch.length ? l : ch;
  }
  return out;
}

/**
 * One part's scan, a few recognizers at a time: the analyzer runs the recognizers a verdict may need and stops when no
 * rule can fire any more (see Analyzer). Raw findings are kept per recognizer, so the findings of a category come out
 * as from one run of every recognizer (ties between equal findings go to the recognizer that runs first).
 */
export class PartScan {
  private readonly raw: Array<Finding[] | undefined>;
  private readonly byCategory = new Map<string, Finding[]>();
  /** What the recognizers read of the part beside its text, made at the first run and dropped by release(). */
  private lowerText: string | null = null;
  private context: AnalyzeContext | null = null;
  private tokens: WordTokens | null | undefined;
  private contexts: Map<RegExp, ContextPositions> | null = null;
  private memo: Memo | null = null;
  private readonly tokensOf = (): WordTokens | null => {
    // The part's word tokens when they agree with the patterns' word boundaries here (TOKEN_UNSAFE; ASCII text always
    // does, and the search for a character beyond ASCII is cached for other recognizers to ask) and some recognizer
    // reads them anyway (tokenizing only to narrow searches would cost about what it saves); found at first need.
    if (this.tokens === undefined)
      this.tokens =
        usesTokens(this.compiled) && (isAscii(this.lower) || !tokenUnsafe(this.lower))
          ? wordTokens(this.lower)
          : null;
    return this.tokens;
  };
  /** The part's word filter (tokenWordFilter), or null when it cannot tell: every word may then be in the part. */
  private wordFilter: Uint32Array | null | undefined;
  /** Whether a word of this hash may be in the part (mayHaveWord). */
  private readonly mayHaveHash = (hash: number): boolean => {
    if (this.wordFilter === undefined) {
      const tokens = this.tokensOf();
      // Without tokens the filter cannot tell; nor with a long s, which lower-casing keeps and a case-insensitive
      // pattern reads as "s" ("httpſ://", "deſk").
      this.wordFilter = tokens && !this.lower.includes('\u017f') ? tokenWordFilter(this.lower, tokens) : null;
    }
    return this.wordFilter === null || mayHave(this.wordFilter, hash);
  };
  private readonly contextOf = (re: RegExp): ContextPositions => {
    if (!this.contexts) {
      const union = unionOf(this.compiled);
      this.contexts = union
        ? findContexts(this.lower, union, union.firstTokens ? this.tokensOf() : null)
        : new Map<RegExp, ContextPositions>();
    }
    return this.contexts.get(re) ?? NO_POSITIONS;
  };

  constructor(
    private readonly compiled: CompiledRecognizers,
    readonly part: TextPart,
    private readonly headerNames: readonly string[] = [],
  ) {
    this.raw = new Array<Finding[] | undefined>(compiled.length);
  }

  private get lower(): string {
    return (this.lowerText ??= this.part.text ? lowerSameLength(this.part.text) : '');
  }

  private get ctx(): AnalyzeContext {
    return (this.context ??= {
      part: this.part,
      lower: this.lower,
      headerNames: this.headerNames,
      tokens: this.tokensOf,
      mayHaveWord: (word: string) => this.mayHaveHash(hashWord(word)),
    });
  }

  /**
   * Drops what only running recognizers need (the lower-cased copy, tokens, context positions), keeping the findings:
   * a message's parts are then not all held at once. A later run makes them again.
   */
  release(): void {
    this.lowerText = null;
    this.context = null;
    this.tokens = undefined;
    this.wordFilter = undefined;
    this.contexts = null;
    this.memo = null;
  }

  /** Runs the recognizers at these indices of the compiled set (each at most once). */
  run(indices: Iterable<number>): this {
    const text = this.part.text;
    // Another part may have been scanned since: what this part's last run found once (tokens, anchors …) is found again.
    if (this.memo) restoreMemo(this.memo);
    for (const i of indices) {
      if (this.raw[i]) continue;
      const rec = this.compiled[i]!;
      if (!text) this.raw[i] = [];
      else if (rec.kind === 'pattern')
        this.raw[i] = runPattern(
          rec,
          text,
          this.lower,
          this.part.id,
          this.contextOf,
          this.tokensOf,
          this.mayHaveHash,
        );
      else {
        // Built with one shape for V8; a custom recognizer's findings must be of a type and category it declares.
        const out: Finding[] = [];
        const declared = declaredPairs(rec.spec);
        for (const f of rec.spec.analyze(text, this.ctx)) {
          if (declared && declared.get(f.type)?.has(f.category) !== true)
            throw new Error(
              `recognizer ${rec.spec.id} found ${f.type} (${f.category}), which it does not declare in emits`,
            );
          out.push({
            type: f.type,
            category: f.category,
            part: this.part.id,
            start: f.start,
            end: f.end,
            score: f.score,
            recognizer: f.recognizer,
          });
        }
        this.raw[i] = out;
      }
      this.byCategory.clear();
    }
    this.memo = saveMemo();
    return this;
  }

  /** Runs every recognizer not run yet. */
  runAll(): this {
    return this.run(this.compiled.keys());
  }

  /**
   * The part's findings of one category, overlaps resolved: what a run of every recognizer finds once every
   * recognizer that can find the category has run (the caller knows which; see emitsOf).
   */
  category(category: string): Finding[] {
    let found = this.byCategory.get(category);
    if (!found) {
      const group: Finding[] = [];
      for (const list of this.raw) if (list) for (const f of list) if (f.category === category) group.push(f);
      found = [];
      sweep(group.sort(byPosition), found);
      this.byCategory.set(category, found);
    }
    return found;
  }

  /** The findings of the recognizers run so far, overlaps resolved (in the order of resolveOverlaps). */
  findings(): Finding[] {
    const categories = new Set<string>();
    for (const list of this.raw) if (list) for (const f of list) categories.add(f.category);
    const out: Finding[] = [];
    for (const c of [...categories].sort(byCodeUnits)) for (const f of this.category(c)) out.push(f);
    return out;
  }
}

const NO_POSITIONS = new Int32Array(0);

/**
 * The caches of what is found once per part for many recognizers (tokens, their index, ASCII or not, anchor starts).
 * Each holds the last part asked about; a part's scan saves them after a run and puts them back before its next, so
 * that scanning the parts of a message phase by phase finds nothing twice.
 */
interface Memo {
  tokens: { lower: string; tokens: WordTokens } | null;
  index: TokenIndex | null;
  listed: TokenFilters['last'];
  ascii: { text: string; ascii: boolean } | null;
  anchorText: string | null;
  anchorCache: Map<RegExp, Int32Array>;
}

function saveMemo(): Memo {
  return {
    tokens: lastTokens,
    index: tokenIndex,
    listed: tokenFilters.last,
    ascii: asciiText,
    anchorText,
    anchorCache,
  };
}

function restoreMemo(memo: Memo): void {
  lastTokens = memo.tokens;
  tokenIndex = memo.index;
  tokenFilters.last = memo.listed;
  asciiText = memo.ascii;
  anchorText = memo.anchorText;
  anchorCache = memo.anchorCache;
}

/** The categories a custom recognizer declares for each type it finds; null when it declares none. */
const declaredSets = new WeakMap<object, Map<string, Set<string>> | null>();
function declaredPairs(spec: Exclude<Recognizer, PatternRecognizer>): Map<string, Set<string>> | null {
  let pairs = declaredSets.get(spec);
  if (pairs === undefined) {
    pairs = null;
    if (spec.emits) {
      const map = new Map<string, Set<string>>();
      for (const [type, category] of spec.emits) map.set(type, (map.get(type) ?? new Set()).add(category));
      pairs = map;
    }
    declaredSets.set(spec, pairs);
  }
  return pairs;
}

/**
 * What each recognizer of a set can find: [type, category] pairs (a pattern recognizer finds its own; a custom one
 * what it declares in `emits`), or null when a custom recognizer declares nothing (it could find anything).
 */
export function emitsOf(
  compiled: CompiledRecognizers,
): Array<ReadonlyArray<readonly [string, Category]>> | null {
  const out: Array<ReadonlyArray<readonly [string, Category]>> = [];
  for (const rec of compiled) {
    if (rec.kind === 'pattern') out.push([[rec.spec.type, rec.spec.category]]);
    else if (rec.spec.emits) out.push(rec.spec.emits);
    else return null;
  }
  return out;
}

export function analyzePart(
  compiled: CompiledRecognizers,
  part: TextPart,
  headerNames: readonly string[] = [],
): Finding[] {
  if (!part.text) return [];
  return new PartScan(compiled, part, headerNames).runAll().findings();
}
