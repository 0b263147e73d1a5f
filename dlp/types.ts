// The detector's vocabulary: parts of a message, recognizers, findings and verdicts.
// dlp/ is a pure library: no I/O, and it imports nothing else of ours.
import type { WordTokens } from './engine.js';

/** What a finding means for the verdict. */
export type Category =
  /** Identifies a person by itself (SSN, MRN, member ID, MBI …): PHI when in a care context. */
  | 'strong'
  /** Identifies a person with other facts (name, DOB, phone, address, email …): PHI near a health signal. */
  | 'identifier'
  /** Says something about health (diagnosis, medication, procedure code, lab value …). */
  | 'health'
  /** A clinical payload (HL7 v2, FHIR, C-CDA, X12 837/835) that holds PHI by itself. */
  | 'payload'
  /** Makes a message about care (patient, appointment, billing …) without being a health fact. */
  | 'care'
  /** An admin's deny-list term: always counts. */
  | 'deny'
  /** An attachment that could hold PHI but cannot be read as text (image, encrypted, corrupt). */
  | 'attachment'
  /** A rule's own keyword or pattern (RULE_KEYWORD, RULE_PATTERN): counted by that rule alone. */
  | 'rule';

/** A decoded piece of a message, scanned on its own. */
export interface TextPart {
  /** 'subject', 'text', 'html', 'attachment:1', 'attachment:1/inner.txt' … */
  id: string;
  text: string;
  /** The subject is short and about the whole message: it pairs with findings in every part. */
  kind: 'subject' | 'body' | 'attachment' | 'header';
}

/** One detection. Carries positions and scores, never the matched text. */
export interface Finding {
  type: string;
  category: Category;
  part: string;
  start: number;
  end: number;
  score: number;
  recognizer: string;
}

export interface PatternSpec {
  name: string;
  /** Must be linear-time safe: no nested quantifiers, bounded repetition. Flags g (and i where needed) added by the engine. */
  regex: RegExp;
  score: number;
  /**
   * A prefilter: lower-case ASCII strings, one of which the text must hold for `regex` to match at all (in the match or
   * in what its lookarounds read; compared without case). A part that holds none of them is not searched with this
   * pattern (a search is a pass over the part; `includes` is a fraction of one). Only letters whose sole case variants
   * are ASCII: not k or s, which the i and u flags also match to K (U+212A) and ſ (U+017F).
   */
  triggers?: readonly string[];
  /**
   * A prefilter told by the part's word tokens, asked before `triggers` when the tokens are at hand: lower-case words
   * (letters a–z) one of which every match holds as a whole word token, or as a run of letters inside a token that
   * holds a digit ("ndc12345678901", "5550100fax"). A part without any of them is not searched with this pattern.
   * Case-insensitive patterns may use them: the tokens are of the lower-cased text (the Kelvin sign becomes k), and a
   * part with a long s (ſ, which lower-casing keeps and the i and u flags read as s) passes every prefilter.
   */
  triggerWords?: readonly string[];
  /**
   * Where a match can start, found by one cheap search shared by the patterns that start alike: a global regular
   * expression whose matches start at every position where `regex` can match (and maybe more). Each match should be
   * one character wide, the rest in a lookahead, so that no start is skipped. `regex` is then tried only there, and
   * not at all in a part without such a start; its findings are the same as with a search of the whole part.
   */
  anchor?: RegExp;
  /**
   * Where a match can start, told by the part's word tokens (runs of letters and digits): every match starts where a
   * token starts, with a character of kind `first`, and that token is `minLength` to `maxLength` long
   * ("1HGCM82633A004352" is one token of 17). `first`: 'digit', a digit 0–9; 'upper-digit', a capital A–Z, in a token
   * that holds a digit 0–9 too (codes of a letter and digits: ICD-10, HCPCS, CDT, DEA; "E11", not "Eleven"); 'any', no
   * check. When a recognizer of the set reads the tokens anyway, `regex` is tried at those tokens only; its findings
   * are the same as with a search of the whole part.
   */
  tokens?: { minLength: number; maxLength: number; first: 'digit' | 'upper-digit' | 'any' };
  /**
   * Every match opens with a run of `minLength` to `maxLength` digits 0–9 that no digit 0–9 comes right before (the
   * pattern says so with a look-behind, as `\d(?<![\p{N}-]\d)` does, and the character after the run is not a digit).
   * Such a run is always inside a word token; when a recognizer of the set reads the tokens anyway, `regex` is tried
   * only where such a run starts (found in the tokens that hold a digit), and not at all in a part without one. Its
   * findings are the same as with a search of the whole part.
   */
  digitRun?: { minLength: number; maxLength: number };
}

export interface PatternRecognizer {
  id: string;
  type: string;
  category: Category;
  patterns: PatternSpec[];
  /** Whole words or phrases that raise the score when found within `contextWindow` characters before (or after) the match. */
  context?: string[];
  /** Characters searched around a match for context words. Default 60. */
  contextWindow?: number;
  /** Added to the score when a context word is near. Default 0.35. */
  contextBoost?: number;
  /** The match counts only with a context word near (labelled identifiers like MRN or member ID). */
  requireContext?: boolean;
  /**
   * Checks the matched text (checksum, range). true raises the score to at least `validScore` (default 0.95),
   * false drops the match, undefined leaves it as it is.
   */
  validate?: (match: string) => boolean | undefined;
  validScore?: number;
}

/** A recognizer with its own logic (dictionaries, payload parsers). */
export interface CustomRecognizer {
  id: string;
  /** Returns findings without part (the engine sets it). */
  analyze(text: string, ctx: AnalyzeContext): Array<Omit<Finding, 'part'>>;
  /**
   * Reads the part's word tokens (the engine's wordTokens): the engine then finds context words with them too, where
   * tokenizing only for that would cost more than the search it saves.
   */
  usesWordTokens?: boolean;
  /**
   * Every [type, category] this recognizer can find. With it, the analyzer knows which recognizers a rule's condition
   * waits for, and stops scanning once no rule can fire (a recognizer that declares nothing could find anything: with
   * one such, every recognizer runs). A finding of a pair not declared is an error: the scan fails, closed.
   */
  emits?: ReadonlyArray<readonly [type: string, category: Category]>;
}

export type Recognizer = PatternRecognizer | CustomRecognizer;

export interface AnalyzeContext {
  part: TextPart;
  /** Lower-cased copy of the text, same offsets. */
  lower: string;
  /** Recipient display names from the message headers (To/Cc; not From: the sender signs every mail). */
  headerNames: readonly string[];
  /**
   * The part's word tokens (engine wordTokens) when they agree with the patterns' word boundaries in this text (no
   * marks, numbers beyond ASCII or characters beyond 16 bits) and a recognizer of the set reads them anyway,
   * else null; absent outside the engine.
   */
  tokens?: () => WordTokens | null;
  /**
   * Whether a lower-case word (letters a–z) may be among the part's word tokens, whole or as a run of letters a–z
   * inside a token that holds a digit ("fax" of "5550100fax", "ndc" of "ndc12345"): false when it surely is not, true
   * when it may be (or the tokens cannot tell, as in a part whose tokens are null or that has a long s); absent outside
   * the engine. One look-up in a filter made once per part.
   */
  mayHaveWord?: (word: string) => boolean;
}

export type Action = 'protect' | 'quarantine' | 'block' | 'log';

export interface Verdict {
  phi: boolean;
  /** Highest rule score among rules that fired (0 when none). */
  score: number;
  /** Strongest action among rules that fired and act (not monitor-only): block > quarantine > protect > log; 'clean' when none. */
  action: Action | 'clean';
  findings: Array<Finding & { rule: string | null }>;
  /** Rules that fired and act. */
  rules: string[];
  /** Rules in monitor-only mode that would have fired. */
  monitored: string[];
  /** Why each fired rule fired: type names and parts, never text. */
  explanation: Array<{
    rule: string;
    action: Action;
    monitorOnly: boolean;
    reason: string;
    findingTypes: string[];
    parts: string[];
    /** The rule's image redaction setting, when it has one. */
    redaction?: 'on' | 'off' | 'clear-copy';
  }>;
}
