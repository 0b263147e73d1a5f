// Person names (type PERSON, category identifier): dictionary pairs, cue words, and the recipients' own names.
// One linear pass over word tokens with Set look-ups; it must never let capitalisation alone make a name.
//
// Scores (the rules count findings from 0.5):
//   0.95 a recipient's display name (ctx.headerNames) found whole; 0.85 one of its name words (0.6 if also a word)
//   0.9  after a label: "Patient: Ann Lee", "Name: …", "Pt. …", "patient Ann Lee"
//   0.85 after a title: Mr./Mrs./Ms./Miss/Mx.; 0.6 after Dr./Prof. (often the provider, not the patient)
//   0.85 given name + surname from the dictionaries ("Sophia Johnson"), also at the start of a sentence
//   0.8  after "my name is"; 0.75 after "Dear", a relative ("her son Jacob"), "I'm", "named", "call me", a care verb
//        ("referring", "saw"), or "for" after an appointment word ("appointment for Ann Lee"), or a signer's label
//        ("Prepared by: Ann Lee"); 0.7 "Re:" + a name
//   0.7  possessive ("Ann Lee's x-ray"); a middle initial ("Faina D. Yefremova"); after a role ("producer Ann Lee",
//        "our hygienist Zorka")
//   0.65 given name + an unknown capitalised word ("Sophia Šušulić"); 0.6 ambiguous given name + surname ("Will Thompson")
//   0.6  a name word found again in the same part ("… Kowalczyk's chart"); a pair with a role in apposition ("Ann Lee,
//        the office manager"), a role as its predicate ("Ann Lee is our hygienist", "… as a beneficiary") or a person's
//        pronoun after it ("Ann Lee sent her forms"). A pair with a dictionary word gains 0.15 where a person stands, as
//        before a verb or where it works ("Ann Lee from Harlow Freight").
//   0.55 unknown capitalised word + surname mid-sentence; single names in a list of three or more, two of them given
//        names; a lone given name where a person stands: after "with", "told", an auxiliary ("Why is Ivan so …"),
//        before a person's verb or pronoun, addressed ("Kuba, can I …"), a transcript's speakers ("Oona: …"), or a lower-
//        case signature line. A name of another country that no list tells apart (OTHER_NAMES), or an unknown word spelled
//        like a name (NAME_SPELLING, a letter-trigram model), counts there as a given name would. Any name word with a
//        role as its predicate ("Jarnvik is our hygienist"), the names of a coordinated subject with a plural role ("Lee
//        and Park were engineers"), of a list after a plural word for people ("founders: …"), an unknown word addressed
//        at a sentence start ("Dravenna, can you …"), speakers whose lines are quoted, a name after "shouted at"/"spoke to".
//   0.5  a plain mid-sentence mention of a given name (not after an article, a greeting or a place preposition, not in a
//        list); a lone dictionary name joined by "and"/"to"/"with" to a counted one; a lone surname after a person word;
//        two unknown words both spelled like names (not after "in", "at" …); a given name that is a word, called out
//        ("…, Ruby!") or between a verb taking a person and a pronoun ("gave Pearl her card")
//   below 0.5 (hints for an admin who lowers minScore; never a verdict by themselves): a lone given name at a sentence
//        start 0.3 or in a list 0.4 (staff first names are everywhere in practice mail), after "Hi"/"Hello" 0.45, a lone
//        surname 0.35, two unknown capitalised words 0.35, an unknown subject ("Dentrix is …") 0.3, a lower-case given
//        name + surname 0.3. Names that are also common words ("Will", "May", "Grant") need a cue; in lower-case text so
//        do names that are English words ("dean", "clay": WORD_NAMES).
// Never names: common English words (SCOWL 10/20), the health vocabulary, days, months, places and big cities, street
// words, titles, and the firms of care mail that look like names (pharmacies, payers, dental software).
import { Buffer } from 'node:buffer';
import { COMMON_WORDS } from '../data/common-words.js';
import { vocabularyWords } from '../data/medical-terms.js';
import {
  FIRST_NAMES,
  NAME_SPELLING,
  NAME_SPELLING_THRESHOLD,
  OTHER_NAMES,
  SURNAMES,
  WORD_NAMES,
} from '../data/person-names.js';
import { CHAR_LETTER, CHAR_MARK, charClass as engineCharClass, everyCodeUnit } from '../engine.js';
import type { AnalyzeContext, CustomRecognizer, Finding, Recognizer } from '../types.js';

type Out = Omit<Finding, 'part'>;

/** 30-bit FNV-1a hash of a word (a small integer: a Set of them holds no string objects for the collector to walk). */
function wordHash(word: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

/**
 * The hashes of a long list's words: 170,000 strings in a Set made every garbage collection slower. A collision lets
 * a word pass for a listed name with a chance of about 1 in 6,000: acceptable for weak evidence that needs context.
 */
function hashSet(list: string): Set<number> {
  const out = new Set<number>();
  const re = /\S+/g;
  for (let m = re.exec(list); m !== null; m = re.exec(list)) out.add(wordHash(m[0]));
  return out;
}

/**
 * A set of words with a filter of their hashes (FNV-1a of their code units, as asciiHash): the scanner tells that a
 * token is none of them from its code units alone (NameScanner.isIn), without making its string, for most tokens.
 */
type WordSet = ReadonlySet<string> & { readonly bits: Uint8Array };
/** Bits of a word set's filter: 16 K bits (2 KB), few false hits for lists of up to a few hundred words. */
const WORD_FILTER_BITS = 14;

function filterSlot(h: number): number {
  return (h ^ (h >>> WORD_FILTER_BITS)) & ((1 << WORD_FILTER_BITS) - 1);
}

/** Adds a word to a word set and its filter. */
function addWord(set: Set<string> & { readonly bits: Uint8Array }, w: string): void {
  set.add(w);
  // A word beyond ASCII is never the word of an ASCII token: only ASCII tokens are filtered.
  let h = 0x811c9dc5 | 0;
  for (let p = 0; p < w.length; p++) {
    const c = w.charCodeAt(p);
    if (c > 0x7f) return;
    h = Math.imul(h ^ c, 0x01000193);
  }
  const slot = filterSlot(h);
  set.bits[slot >> 3]! |= 1 << (slot & 7);
}

function emptyWordSet(): Set<string> & { readonly bits: Uint8Array } {
  return Object.assign(new Set<string>(), { bits: new Uint8Array(1 << (WORD_FILTER_BITS - 3)) });
}

function wordSet(list: string): WordSet {
  const set = emptyWordSet();
  for (const w of list.split(/\s+/)) if (w) addWord(set, w);
  return set;
}

const FIRST = wordSet(FIRST_NAMES);
const LAST = wordSet(SURNAMES);
/** Names of many countries that no given- or family-name list holds (also places and firms): a lone word with a person's context. */
const OTHER = hashSet(OTHER_NAMES);
/** Letter code of a trigram table: a-z 0-25, "^" (word start) 26, "$" (word end) 27, any other character 28. */
function spellingCode(c: number): number {
  if (c >= 97 && c <= 122) return c - 97;
  return c === 94 ? 26 : c === 36 ? 27 : 28;
}
/**
 * Letter trigram → log-odds (in tenths) that a word with it is a name rather than an English or health word, indexed
 * by the three letter codes (a Map of trigram strings made a string per letter of every word it scored).
 */
const SPELLING = new Int8Array(29 * 29 * 29);
for (const entry of NAME_SPELLING.split(/\s+/))
  if (entry.length > 3)
    SPELLING[
      (spellingCode(entry.charCodeAt(0)) * 29 + spellingCode(entry.charCodeAt(1))) * 29 +
        spellingCode(entry.charCodeAt(2))
    ] = Number(entry.slice(3));

/** Whether a folded lower-case word is spelled like a name (mean trigram log-odds at or above the threshold). */
function spelledLikeName(word: string): boolean {
  let sum = 0;
  let n = 0;
  let prev2 = 26;
  let prev1 = -1;
  for (let i = 0; i <= word.length; i++) {
    const c = i === word.length ? 36 : word.charCodeAt(i);
    if (c === 39 || c === 0x2019 || c === 45) continue;
    // A character outside the basic plane is one letter, as a code point, and in no trigram.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < word.length) i++;
    const code = spellingCode(c);
    if (prev1 >= 0) {
      sum += SPELLING[(prev2 * 29 + prev1) * 29 + code]!;
      n++;
      prev2 = prev1;
    }
    prev1 = code;
  }
  return n > 0 && sum / n >= NAME_SPELLING_THRESHOLD;
}

/** Dictionary names that are also English words past the common list ("dean", "clay"): in lower case, words. */
const WORD_LIKE = wordSet(WORD_NAMES);
const COMMON = wordSet(COMMON_WORDS);
/** Health vocabulary is never a name ("Hepatitis B Vaccine", "Lisinopril Metformin"). */
const MEDICAL = new Set(vocabularyWords());

/** Capitalised words that are never names in mail, whatever the dictionaries say. */
const NOT_NAMES = wordSet(`
monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
january february march april may june july august september october november december feb mar apr jun jul aug
sep sept oct nov dec christmas easter thanksgiving halloween hanukkah kwanzaa ramadan passover memorial labor
mr mrs ms miss mx dr prof sir madam dear re fw fwd cc bcc pt patient name attn attention regards thanks thank
inc llc ltd corp co pc pllc dds dmd md do rn np pa lpn phd mba cpa jr sr ii iii iv esq
alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois
indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri montana
nebraska nevada hampshire jersey mexico york carolina dakota ohio oklahoma oregon pennsylvania rhode tennessee
texas utah vermont virginia washington wisconsin wyoming america american canada europe
north south east west northern southern eastern western new saint san santa los las del
street st avenue ave road rd drive lane ln terrace boulevard blvd court ct place pl parkway pkwy circle square
highway hwy suite ste apt unit floor building bldg plaza strasse straße str via rue calle avenida rua ul
afghanistan albania algeria argentina armenia australia austria belgium bolivia brazil bulgaria cambodia chile
china colombia croatia cuba cyprus czech czechia denmark ecuador egypt england estonia ethiopia finland france
germany ghana greece guatemala haiti honduras hungary iceland india indonesia iran iraq ireland israel italy
jamaica japan kenya korea latvia lebanon lithuania luxembourg malaysia mexico morocco nepal netherlands
nigeria norway pakistan panama peru philippines poland portugal romania russia scotland serbia singapore
slovakia slovenia somalia spain sweden switzerland syria taiwan thailand tunisia turkey ukraine uruguay
venezuela vietnam wales zealand africa asia kingdom republic
english german french spanish italian polish russian chinese japanese korean dutch swedish danish norwegian
finnish greek portuguese irish scottish british african asian european mexican canadian indian
hipaa phi covid medicare medicaid aetna cigna humana anthem kaiser delta blue cross shield metlife guardian
unitedhealthcare optum optumrx caremark centene molina wellcare elevance highmark ambetter tricare champva
walgreens walmart kroger costco safeway publix meijer wegmans albertsons heb riteaid cvs express scripts walgreen
quest labcorp sonora ameripath epic cerner athenahealth allscripts nextgen eclinicalworks meditech dentrix
eaglesoft opendental carestream dexis cerec invisalign schein benco dentsply sirona straumann
pfizer moderna novavax merck nordisk abbvie humira ozempic wegovy mounjaro jardiance
toyota honda hyundai nissan subaru mazda volkswagen bmw tesla uber lyft fedex usps dhl
oslo stockholm helsinki copenhagen reykjavik hamburg munich frankfurt cologne amsterdam rotterdam brussels
lisbon porto barcelona seville naples turin venice zurich prague warsaw krakow budapest bucharest belgrade
zagreb athens istanbul ankara moscow kyiv kiev minsk riga tallinn vilnius liverpool edinburgh dublin cardiff
belfast tokyo osaka kyoto seoul beijing shanghai taipei manila jakarta bangkok hanoi mumbai delhi bangalore
chennai karachi lahore dhaka tehran baghdad cairo lagos nairobi johannesburg toronto montreal vancouver ottawa
calgary chicago seattle miami atlanta philadelphia detroit minneapolis pittsburgh baltimore cincinnati
sacramento albuquerque tucson microsoft google apple amazon outlook gmail teams zoom office excel word windows
android iphone
`);

/** Given names that are also everyday words not in the common list: they need a cue. */
const AMBIGUOUS_EXTRA = wordSet(`
april june august summer autumn winter dawn christian major sunny rusty dusty misty stormy crystal ruby pearl jewel
amber ivy holly hazel daisy lily iris violet heather olive ginger candy brandy sandy penny robin angel destiny
trinity faith hope grace joy charity mercy patience harmony melody serenity liberty justice royal king prince
princess queen duke earl baron bishop deacon marshal sterling ward page bell chase drew grant mark bill will may
rose long young cash price rich guy gene ray pat sue don art jack frank jan precious lady sonny
`);

/** At most this many findings below 0.5 per part. */
const MAX_WEAK_FINDINGS = 1000;

const STREET_WORDS = wordSet(
  'street st avenue ave road rd drive dr lane ln terrace boulevard blvd court ct place pl parkway pkwy circle square highway hwy way strasse straße str u',
);
const STREET_PREFIXES = wordSet(
  'rua avenida via rue calle cite avenue boulevard piazza plaza ulica ul camino paseo largo praca',
);
const PARTICLES = wordSet('de da di del della der den van von la le du dos das al bin ibn st');

const HONORIFIC_STRONG = wordSet('mr mrs ms miss mx mister');
const HONORIFIC_PROVIDER = wordSet('dr prof doctor');
const LABEL_CUES = wordSet(
  'patient pt name client member subscriber insured guarantor policyholder beneficiary dependent',
);
const RELATIVE_CUES = wordSet(
  'son daughter wife husband mother mom father dad child kid baby spouse sister brother grandson granddaughter grandmother grandfather guardian niece nephew',
);
const GREETINGS = wordSet('hi hello hey');
/** Words before a person as the object of talking, meeting or helping ("speak with Ann", "the assistant to Ann Lee"). */
const PERSON_BEFORE = wordSet(
  'with to by under me leave let contact contacted email emailed text texted page paged join joined give gave given send sent',
);
/** Verbs whose object is a person, hardly ever a firm or a place: enough before a lone surname ("thank Kowalski"). */
const PERSON_BEFORE_STRONG = wordSet(
  'told tell tells ask asked asks thank thanked meet met meeting remember saw see seeing visit visited help helped notify notified inform informed introduce introduced',
);
/** Words that open a sentence spoken to someone: "Leif, can you …", "Maria, please …". */
const ADDRESSING = wordSet(
  "can could would will please do did are have you we i thanks thank let call remember don’t don't be",
);
/** Verbs that say a person acts: a capitalised word before one of them is someone's name. */
const PERSON_ONLY_VERBS = wordSet(
  'lives lived resides resided said says told asked wrote spent shouted whispered smiled laughed cried married divorced graduated studied',
);
/** Words of job titles: a line of them under a line that holds only a name makes that line a person's name. */
const JOB_TITLES = wordSet(
  'manager director writer engineer officer assistant coordinator specialist analyst consultant president ceo cfo coo cto founder administrator receptionist hygienist dentist physician nurse therapist technician supervisor editor designer developer representative associate executive secretary clerk accountant attorney counsel recruiter scientist researcher professor lecturer',
);
/**
 * Words for what someone is or does: before a name ("producer Ann Lee", "our hygienist Ann") or in an apposition after
 * it ("Ann Lee, the technical writer, said"), they make it a person's name.
 */
const ROLE_WORDS = new Set([
  ...JOB_TITLES,
  ...wordSet(
    'producer player singer songwriter actor actress author artist musician composer painter poet novelist journalist reporter photographer coach teammate colleague coworker co-worker neighbor neighbour friend boss partner teacher student pupil tenant landlord caregiver caretaker roommate fiance fiancee boyfriend girlfriend cousin aunt uncle stepson stepdaughter grandma grandpa lawyer doctor surgeon dentist orthodontist pharmacist chiropractor pediatrician midwife paramedic driver pilot chef farmer',
  ),
]);
/** Roles that firms and things take too ("a key player", "our partner", "a developer"): no predicate cue. */
const NOT_PREDICATE_ROLES = wordSet(
  'player partner driver developer associate executive representative friend assistant officer director manager founder',
);
/** Roles that only people take, after "is"/"were" ("Ann Lee is our hygienist", "Lee and Park were engineers"). */
const PREDICATE_ROLES = new Set([...ROLE_WORDS].filter((w) => !NOT_PREDICATE_ROLES.has(w)));
/** Roles in care and insurance that someone is added or listed as ("add Ann Lee as a beneficiary"). */
const AS_ROLES = wordSet(
  'beneficiary dependent guarantor subscriber policyholder insured patient witness proxy executor cosigner co-signer guardian caregiver spouse',
);
/** Copulas before a predicate role: singular, and plural (a coordinated subject: "Lee and Park were …"). */
const COPULAS_BY_LENGTH = byLength(['is', 'was', 'becomes', 'became', 'remains', 'remained']);
const PLURAL_COPULAS_BY_LENGTH = byLength(['are', 'were', 'become', 'remain']);
/** Words that may follow a role and keep it the head of its phrase ("a nurse at …", "engineers who …"). */
const ROLE_FOLLOWERS = wordSet('at for in of with and or from on to who whom whose since until');
/** Verbs of talking or looking at someone: with "at"/"to" after them, a person follows ("shouted at Ann", "spoke to Lee"). */
const TALK_VERBS = wordSet(
  'shouted yelled screamed smiled grinned laughed waved winked nodded stared glared frowned spoke speak speaks speaking talk talked talks talking whispered wrote write writes writing replied reply replying listen listened listening apologized apologised apologize apologise explained complained lied lying married engaged',
);
/** Plural words for people that introduce a list of names with a colon ("our founders: …", "attendees: …"). */
const PEOPLE_NOUNS = wordSet(
  'people attendees participants speakers guests authors members founders cofounders co-founders children kids sons daughters siblings grandchildren panelists winners recipients honorees candidates volunteers staff presenters hosts',
);
/** Words that may open an apposition before its role word ("…, the technical writer, …"). */
const APPOSITION_OPENERS = wordSet(
  'the a an our my your his her their its former senior junior chief head lead',
);
/** Pronouns of a person: a name followed by one ("Ann Lee listed her …", "given Ann his address") is someone's. */
const PERSON_PRONOUNS = wordSet('his her himself herself');
/** Words before a lone given name that make it no plain mention: a thing named after someone, or a place. */
const NOT_MENTION_BEFORE = wordSet(
  'the a an this that these those our your their my its to in at from near into via of hi hello hey dear thanks thank regards best cheers',
);
/** Prepositions of place: a pair of unknown words after one is as often a town ("in Palo Alto"). */
const PLACE_BEFORE = wordSet(
  'in at near from to into via across around outside inside within toward towards',
);
/** Auxiliaries before a subject in a question or a clause ("Why is Ivan so …", "did Ivan call"). */
const AUXILIARIES = wordSet('is was does did has had can could would will should');
/** Words that join the names of a coordinated subject ("Ann, Ben and Kónya"). */
const COORDINATION = /^(?:,? and |, | & )$/;
/** Words that join two names of people ("said Carla to Sandra", "Marrero and Murphy"). */
const NAME_LINKS = /^(?:,? and |,? or | & | to | with |, )$/;
/** Words before a comma that make the name after it a sign-off or greeting (staff names), not someone addressed in the text. */
const SIGN_OFF = wordSet(
  'hi hello hey dear thanks thank regards best cheers sincerely love yours warmly respectfully cordially morning afternoon evening',
);
/**
 * Surname endings of many languages (Slavic -ova/-ski/-vić, Nordic -sson/-sen, Greek -opoulos, Georgian -shvili,
 * Armenian -yan, Japanese -moto/-yama …): an unknown capitalised word with one of them is likely a surname.
 */
const SURNAME_ENDINGS = `
ova eva ov ev yev iev ski ska sky skiy skaya cki cka icz wicz vic vich ovna evna enko chuk czuk yuk escu eanu opoulos
poulos akis idis oglu yan shvili dze son sen berg stein mann baum feld ez elli etti otti ucci ini moto mura yama kawa
gawa saki zaki hara shima naga hashi zawa uchi guchi oka`
  .split(/\s+/)
  .filter(Boolean);
/** Endings of English adverbs, participles and abstract nouns the common list lacks ("Alternately, you can …"). */
const WORD_SUFFIX = /(?:ly|ing|ed|tion|sion|ment|ness|ity|ise|ize|ful|less|ous|ive|able|ible)$/;
const SURNAME_ENDING = new RegExp(`(?:${SURNAME_ENDINGS.join('|')})$`);
const PERSON_VERBS = [
  'is',
  'was',
  'has',
  'had',
  'lives',
  'lived',
  'spent',
  'said',
  'says',
  'began',
  'shouted',
  'wrote',
  'works',
  'worked',
  'went',
  'came',
  'told',
  'asked',
  'loves',
  'wants',
  'needs',
  'just',
  'will',
];
/** Words after which a lower-case name may follow ("my name is lena", "dear john", "mr. lee", "call me ann"). */
const LOWER_CUES = [
  'is',
  'dear',
  'mr',
  'mrs',
  'ms',
  'mx',
  'dr',
  'prof',
  'me',
  'him',
  'her',
  'name',
  'pt',
  'patient',
];
/** 1 at the char code of a cue's first letter: read for every lower-case word, so a typed array rather than a Set. */
const LOWER_CUE_INITIALS = new Uint8Array(128);
for (const w of LOWER_CUES) LOWER_CUE_INITIALS[w.charCodeAt(0)] = 1;
/**
 * 1 at (length, first letter, second letter) of each cue, the char codes taken & 31: the tokenizer's test of whether a
 * word may be one, so that the token after it may start a name. Letters a–z keep apart (1–26); other characters fall
 * together with them, which lets more words through, never fewer (the scan then asks lowerCueBefore). 8 KB, so it
 * stays in the cache: a table by & 127 (128 KB) was read for most words of a text, and missed.
 */
const LOWER_CUE_PREFIXES = new Uint8Array(8 * 32 * 32);
function cuePrefixSlot(length: number, first: number, second: number): number {
  return (length * 32 + (first & 31)) * 32 + (second & 31);
}
for (const w of LOWER_CUES) LOWER_CUE_PREFIXES[cuePrefixSlot(w.length, w.charCodeAt(0), w.charCodeAt(1))] = 1;

/** Words by length, so a look-up compares only words of the token's length (it runs for most words of a text). */
function byLength(words: readonly string[]): string[][] {
  const out: string[][] = [];
  for (const w of words) (out[w.length] ??= []).push(w);
  return out;
}
const LOWER_CUES_BY_LENGTH = byLength(LOWER_CUES);
const PERSON_VERBS_BY_LENGTH = byLength(PERSON_VERBS);

/** Whether lower[s, s + len) is one of the words (grouped by length). */
function isOneOf(lower: string, s: number, len: number, words: readonly (string[] | undefined)[]): boolean {
  const list = words[len];
  if (list === undefined) return false;
  for (const w of list) if (lower.startsWith(w, s)) return true;
  return false;
}
/** A role word in the number of its copula: "nurse" after "is", "engineers" after "were". */
function isPredicateRole(word: string, plural: boolean): boolean {
  if (!plural) return PREDICATE_ROLES.has(word);
  return word.length > 3 && word.endsWith('s') && PREDICATE_ROLES.has(word.slice(0, -1));
}
const SPEECH_VERBS = wordSet('says said asked told');
const CARE_VERB_CUES = wordSet(
  'referring referred refer saw seen treated treating examined admitted discharged evaluated',
);
const APPOINTMENT_WORDS = wordSet(
  'appointment appointments appt booked scheduled schedule referral prescription rx claim plan results labs records consult consultation visit exam xrays rays authorization preauthorization estimate note letter order',
);

function fold(word: string): string {
  let ascii = true;
  for (let i = 0; i < word.length; i++) if (word.charCodeAt(i) > 0x7f) ascii = false;
  if (ascii) return word;
  return word
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/ø/g, 'o')
    .replace(/ł/g, 'l')
    .replace(/đ/g, 'd')
    .replace(/æ/g, 'ae')
    .replace(/œ/g, 'oe')
    .replace(/ß/g, 'ss');
}

const IS_LETTER = 1;
const IS_UPPER = 2;
/** An apostrophe or hyphen: inside a word when letters are on both sides ("O'Brien", "Mary-Jane", "patient’s"). */
const JOINER = 8;
/**
 * Character classes of UTF-16 code units, for every code unit from the start (the marks of words read every character
 * of a part): IS_LETTER for a letter or mark ([\p{L}\p{M}], the engine's table), IS_UPPER for one that lower-casing
 * changes, JOINER. Lower-casing every code unit at once keeps each in its place but for U+0130 ("İ", which becomes
 * "i̇"): the units after it are read one further on. Should lower-casing ever make another unit longer, each letter
 * is lower-cased alone instead.
 */
const charClass = ((): Uint8Array => {
  const table = new Uint8Array(0x10000);
  const all = everyCodeUnit();
  const lowered = all.toLowerCase();
  const inPlace =
    lowered.length === 0x10001 && lowered.charCodeAt(0x130) === 0x69 && lowered.charCodeAt(0x131) === 0x307;
  for (let c = 0; c < 0x10000; c++) {
    if ((engineCharClass(c) & (CHAR_LETTER | CHAR_MARK)) === 0) continue;
    const lower = inPlace
      ? c < 0x130
        ? lowered.charCodeAt(c)
        : c === 0x130
          ? -1
          : lowered.charCodeAt(c + 1)
      : String.fromCharCode(c).toLowerCase() === String.fromCharCode(c)
        ? c
        : -1;
    table[c] = IS_LETTER | (lower !== c ? IS_UPPER : 0);
  }
  for (const c of [39, 45, 0x2019]) table[c] = JOINER;
  return table;
})();

/** The class bits of a code unit as the name recognizer reads it (IS_LETTER 1, IS_UPPER 2, JOINER 8). */
export function nameCharClass(c: number): number {
  return charClass[c]!;
}

function isLetterCode(c: number): boolean {
  return (charClass[c]! & IS_LETTER) !== 0;
}

const enum Shape {
  Lower,
  Cap,
  Upper,
}

const enum Kind {
  /** A common word or never a name. */
  Common,
  /** Given name. */
  First,
  /** Surname only. */
  Last,
  /** A dictionary name that is also a common word ("Will", "Young"). */
  Ambiguous,
  /** Not a dictionary name, not a common word: maybe a name the dictionaries lack. */
  Unknown,
}

interface Tokens {
  count: number;
  /** How many words start with a capital. */
  capitalised: number;
  start: Int32Array;
  /** End of the word without a possessive "'s". */
  end: Int32Array;
  /** 1 when the word ended in "'s". */
  possessive: Uint8Array;
  shape: Uint8Array;
  /**
   * In order, the tokens that may start a name in text that is not mostly lower case: every capitalised token, and
   * every token after a word that may be a lower-case cue (see lowerCueBefore; this list only leaves out tokens it
   * rejects). The scan and the search for repeats read these instead of every token.
   */
  candidates: Int32Array;
  candidateCount: number;
  /**
   * The code units of the lower-cased copy, at least as many as the text has (0 past the copy's end, which a hash
   * treats as charCodeAt's NaN there), in a buffer shared from part to part.
   */
  lowerCodes: Uint16Array;
}

function grow<T extends Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Word tokens: letters with inner apostrophes or hyphens ("O'Brien", "Mary-Jane"); "'s" is split off as possessive. */
/**
 * Token buffers, reused from call to call (analysis is synchronous, and findings keep numbers, not these arrays):
 * allocating them per part made garbage collection a quarter of the work on a megabyte of mail.
 */
let buffers: Tokens = {
  count: 0,
  capitalised: 0,
  start: new Int32Array(1024),
  end: new Int32Array(1024),
  possessive: new Uint8Array(1024),
  shape: new Uint8Array(1024),
  candidates: new Int32Array(1024),
  candidateCount: 0,
  lowerCodes: new Uint16Array(0),
};

/**
 * The UTF-16 code units of a string, in a buffer reused from call to call (grown as needed; one beyond RETAINED_CODES
 * is not kept). The tokenizer reads every character of a part twice over: from a typed array that costs a quarter of
 * what charCodeAt does (which checks the string's representation on every call), and the copy itself is a memcpy.
 */
const RETAINED_CODES = 1 << 22;
let textCodeBuffer: Uint16Array = new Uint16Array(4096);
let lowCodeBuffer: Uint16Array = new Uint16Array(4096);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function codeUnits(s: string, buffer: Uint16Array, spaces = 0): Uint16Array {
  const n = s.length;
  const into =
    buffer.length >= n + spaces ? buffer : new Uint16Array(Math.max(n + spaces, buffer.length * 2));
  if (LITTLE_ENDIAN) Buffer.from(into.buffer, into.byteOffset, n * 2).write(s, 0, 'utf16le');
  else for (let i = 0; i < n; i++) into[i] = s.charCodeAt(i);
  into.fill(0x20, n, n + spaces);
  return into;
}

/** Exported for the tests only: the word tokens of a text and its lower-cased copy. */
export function nameTokens(text: string, lower: string): Readonly<Tokens> {
  return tokenize(text, lower);
}

function tokenize(text: string, lower: string): Tokens {
  const n = text.length;
  const t = buffers;
  t.count = 0;
  t.capitalised = 0;
  let k = 0;
  let candidates = 0;
  /** The token before may be a lower-case cue: the next token is a candidate. */
  let afterCue = false;
  // The lower-cased copy gives the cue test its letters; outside the engine it may differ in length, and then the text
  // stands in for it. Two spaces after the text's code units: the marks read one character ahead and end at the first.
  const sameLength = lower.length === n;
  const tx = codeUnits(text, textCodeBuffer, 2);
  const low = sameLength ? codeUnits(lower, lowCodeBuffer) : tx;
  if (n <= RETAINED_CODES) {
    textCodeBuffer = tx;
    if (sameLength) lowCodeBuffer = low;
  }
  mark = 0;
  inWord = 0;
  for (let from = 0; from <= n;) {
    const to = Math.min(n + 1, from + MARK_CHUNK);
    markWords(tx, from, to);
    const done = mark >> 1;
    if (t.start.length < k + done) growTokens(t, Math.max(k + done, t.start.length * 2));
    // The arrays in locals (written for every word).
    const { start: starts, end: ends, possessive: possessives, shape: shapes, candidates: candidateList } = t;
    for (let m = 0; m < done; m++) {
      const start = MARKS[2 * m]!;
      let end = MARKS[2 * m + 1]!;
      // A possessive "'s": an apostrophe inside the word (a letter before it, so not its first character) right before
      // a last "s".
      let possessive = false;
      const apostrophe = tx[end - 2]!;
      if (
        end - start >= 3 &&
        (apostrophe === 39 || apostrophe === 0x2019) &&
        (tx[end - 1] === 115 || tx[end - 1] === 83)
      ) {
        possessive = true;
        end -= 2;
      }
      let shape = Shape.Lower;
      const firstUpper = (charClass[tx[start]!]! & IS_UPPER) !== 0;
      if (firstUpper) {
        t.capitalised++;
        // The shape is that of the word without its "'s" ("JOHN's" is upper case).
        shape = upperLetters(tx, start, end) ? Shape.Upper : Shape.Cap;
      }
      possessives[k] = possessive ? 1 : 0;
      starts[k] = start;
      ends[k] = end;
      shapes[k] = shape;
      if (firstUpper || afterCue) candidateList[candidates++] = k;
      // A cheap test that lets through every word lowerCueBefore accepts, for the token after this one.
      const len = end - start;
      afterCue =
        len >= 2 &&
        len <= 7 &&
        LOWER_CUE_PREFIXES[
          sameLength
            ? cuePrefixSlot(len, low[start]!, low[start + 1]!)
            : cuePrefixSlot(len, lower.charCodeAt(start), lower.charCodeAt(start + 1))
        ] === 1;
      k++;
    }
    // A word still open goes on into the next chunk: its start moves to the front.
    if ((mark & 1) === 1) {
      MARKS[0] = MARKS[mark - 1]!;
      mark = 1;
    } else mark = 0;
    from = to;
  }
  t.count = k;
  t.candidateCount = candidates;
  t.lowerCodes = sameLength ? low : new Uint16Array(Math.max(n, lower.length));
  if (!sameLength) codeUnits(lower, t.lowerCodes);
  return t;
}

function growTokens(t: Tokens, size: number): void {
  t.start = grow(t.start, new Int32Array(size));
  t.end = grow(t.end, new Int32Array(size));
  t.possessive = grow(t.possessive, new Uint8Array(size));
  t.shape = grow(t.shape, new Uint8Array(size));
  t.candidates = grow(t.candidates, new Int32Array(size));
  buffers = t;
}

/** Whether [start, end) has two letters or more and all of them upper case. */
function upperLetters(tx: Uint16Array, start: number, end: number): boolean {
  let letters = 0;
  for (let p = start; p < end; p++) {
    const cls = charClass[tx[p]!]!;
    if ((cls & IS_LETTER) === 0) continue;
    if ((cls & IS_UPPER) === 0) return false;
    letters++;
  }
  return letters >= 2;
}

/**
 * Word starts and ends, interleaved (a word's start at an even index, its end at the next), for one chunk of a part at
 * a time, which moves the start of a word still open to index 0: the same marks as the engine's tokenizer makes, and
 * for the same reason (see markWords in engine.ts: a loop without a branch per word, on fixed arrays named directly).
 */
const MARK_CHUNK = 1 << 16;
const MARKS = new Int32Array(MARK_CHUNK + 2);
/** Where markWords stands between chunks: the next mark, and whether the last character was in a word. */
let mark = 0;
let inWord = 0;

/**
 * Marks the words among the characters [from, to): letters, with an apostrophe or hyphen inside when a letter is on
 * both sides. A character is in a word when it is a letter, or a joiner after a character in a word and before a
 * letter: one expression of table bits, no branch. `tx` has two spaces after the text (codeUnits), so the look ahead
 * reads a character, and the last word ends.
 */
function markWords(tx: Uint16Array, from: number, to: number): void {
  const classes = charClass;
  let b = mark;
  let w0 = inWord;
  let next = classes[tx[from]!]!;
  for (let i = from; i < to; i++) {
    const cls = next;
    next = classes[tx[i + 1]!]!;
    const w = (cls & IS_LETTER) | ((cls >> 3) & next & w0);
    MARKS[b] = i;
    b += w ^ w0;
    w0 = w;
  }
  mark = b;
  inWord = w0;
}

/** A common word, or the plural of one ("investments", "services", "companies"). */
function isCommon(word: string): boolean {
  if (COMMON.has(word)) return true;
  if (word.length > 3 && word.endsWith('s')) {
    if (COMMON.has(word.slice(0, -1))) return true;
    if (word.endsWith('es') && COMMON.has(word.slice(0, -2))) return true;
    if (word.endsWith('ies') && COMMON.has(`${word.slice(0, -3)}y`)) return true;
  }
  return false;
}

/** Look-ups are the hot path: remember the kind of each word seen (bounded, cleared when full). */
const kindCache = new Map<string, Kind>();
/** The same for ASCII words, by hash, checked against the text. */
const hashCache = new Map<number, { word: string; kind: Kind }>();
/**
 * In front of hashCache: the last ASCII word of each slot of a hash (a power of two slots), as code units (up to
 * RECENT_LENGTH of them: longer words go to hashCache), with its length and kind. Comparing code units in typed arrays
 * costs a fraction of a startsWith on the text, and most words are found here.
 */
const RECENT_SIZE = 4096;
const RECENT_LENGTH = 16;
const RECENT_HASHES = new Int32Array(RECENT_SIZE);
const RECENT_CODES = new Uint16Array(RECENT_SIZE * RECENT_LENGTH);
const RECENT_LENGTHS = new Uint8Array(RECENT_SIZE);
const RECENT_KINDS = new Uint8Array(RECENT_SIZE);

function classifyCached(word: string): Kind {
  let k = kindCache.get(word);
  if (k === undefined) {
    if (kindCache.size > 50_000) kindCache.clear();
    k = classify(word);
    kindCache.set(word, k);
  }
  return k;
}

function classify(raw: string): Kind {
  // "O'Brien" is listed as "obrien"; "D'Angelo" as "dangelo".
  const word = raw.includes("'") || raw.includes('’') ? raw.replace(/['’]/g, '') : raw;
  if (word.length < 2 || NOT_NAMES.has(word)) return Kind.Common;
  const first = FIRST.has(word);
  const last = LAST.has(word);
  if (first || last) {
    // Only the word itself counts here, not a plural: "James" is no plural of "jam", "Banks" is a name.
    if (COMMON.has(word) || AMBIGUOUS_EXTRA.has(word) || word.length === 2) return Kind.Ambiguous;
    return first ? Kind.First : Kind.Last;
  }
  if (word.length === 2 || isCommon(word) || AMBIGUOUS_EXTRA.has(word) || MEDICAL.has(word))
    return Kind.Common;
  // Hyphenated names: a known part makes the whole a name ("Mary-Jane", "O'Brien-Smith"); "follow-up" stays common.
  if (word.includes('-')) {
    const parts = word.split('-').map((p) => p.replace(/['’]/g, ''));
    if (parts.some((p) => FIRST.has(p) && !COMMON.has(p))) return Kind.First;
    if (parts.some((p) => (LAST.has(p) || FIRST.has(p)) && p.length > 2)) return Kind.Last;
    if (parts.some((p) => COMMON.has(p) || MEDICAL.has(p))) return Kind.Common;
  }
  return Kind.Unknown;
}

function isName(k: Kind): boolean {
  return k !== Kind.Common;
}

interface Cue {
  score: number;
  /** A weak cue needs a dictionary word in the name. */
  needsDictionary: boolean;
  /** Lower-case names count after this cue ("my name is lena andersson"). */
  allowsLower: boolean;
  /** Two or more name words do instead of a dictionary word ("producer Liviana Palerma"). */
  pairOk?: boolean;
}

/** FNV-1a hash (32 bits) of lower[s, e), or -1 when a character is beyond ASCII (fold may change such a word). */
function asciiHash(lower: string, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  for (let p = s; p < e; p++) {
    const c = lower.charCodeAt(p);
    if (c > 0x7f) return -1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h;
}

/**
 * Every word that some cue of cueBefore has as the word before a name, by hash: a capitalised word after any other
 * word has no cue, which this tells without making a string of the word before (most capitalised words).
 */
const CUE_WORD_HASHES = new Set(
  [
    ...HONORIFIC_STRONG,
    ...HONORIFIC_PROVIDER,
    ...LABEL_CUES,
    ...RELATIVE_CUES,
    ...CARE_VERB_CUES,
    ...GREETINGS,
    ...SPEECH_VERBS,
    ...ROLE_WORDS,
    // ("i’m" is beyond ASCII: a word of such characters is always looked at.)
    ...['by', 'dear', 're', 'is', 'named', 'called', 'me', 'him', 'her', "i'm", 'am', 'for'],
  ]
    .map((w) => asciiHash(w, 0, w.length))
    .filter((h) => h !== -1),
);

/** Words of recent tokens kept by a scanner (a power of two). */
const WORD_CACHE_SIZE = 64;
/**
 * A scanner's buffers, shared from part to part (analysis is synchronous: one scanner at a time), reset when a scanner
 * is made: allocating them per part cost more than the scan of a short part.
 */
const WORD_CACHE_AT = new Int32Array(WORD_CACHE_SIZE);
const WORD_CACHE: string[] = new Array<string>(WORD_CACHE_SIZE).fill('');
let kindBuffer = new Uint8Array(1024);
let coveredBuffer = new Uint8Array(1024);

class NameScanner {
  private readonly t: Tokens;
  /** Kind + 1 per token once looked up (0: not yet). */
  private readonly kinds: Uint8Array;
  /** The code units of the lower-cased copy (Tokens.lowerCodes). */
  private readonly lowerCodes: Uint16Array;

  /** Mostly lower-case text (chat, quick notes): lower-case given names count there too. */
  private readonly lowerText: boolean;

  /** The words of recent tokens (word()): token index and word, by the index's low bits. */
  private readonly wordAt = WORD_CACHE_AT.fill(-1);
  private readonly words = WORD_CACHE;

  /** The lower-cased text (same offsets). */
  get lowerCopy(): string {
    return this.lower;
  }

  constructor(
    private readonly text: string,
    private readonly lower: string,
  ) {
    this.t = tokenize(text, lower);
    this.lowerCodes = this.t.lowerCodes;
    if (kindBuffer.length < this.t.count)
      kindBuffer = new Uint8Array(Math.max(this.t.count, kindBuffer.length * 2));
    this.kinds = kindBuffer.fill(0, 0, this.t.count);
    this.lowerText = this.t.capitalised < this.t.count * 0.03;
  }

  /** Whether the word before token i may be a cue that allows a lower-case name (cheap: no string is made). */
  lowerCueBefore(i: number): boolean {
    if (i === 0) return false;
    const s = this.t.start[i - 1]!;
    const len = this.t.end[i - 1]! - s;
    if (len < 2 || len > 7 || LOWER_CUE_INITIALS[this.lower.charCodeAt(s) & 127] !== 1) return false;
    return isOneOf(this.lower, s, len, LOWER_CUES_BY_LENGTH);
  }

  get tokens(): Tokens {
    return this.t;
  }

  get count(): number {
    return this.t.count;
  }

  word(i: number): string {
    // The checks around a name ask for the same few tokens' words again and again: keep the last ones.
    const slot = i & (WORD_CACHE_SIZE - 1);
    if (this.wordAt[slot] === i) return this.words[slot]!;
    const w = fold(this.lower.slice(this.t.start[i], this.t.end[i]));
    this.wordAt[slot] = i;
    this.words[slot] = w;
    return w;
  }

  /**
   * FNV-1a hash of token i's lower-case code units, or -1 when one is beyond ASCII or the token runs past the lower-case
   * copy (then fold or the copy's end may change its word: only the string tells).
   */
  private hashAt(i: number): number {
    const s = this.t.start[i]!;
    const e = this.t.end[i]!;
    if (e > this.lower.length) return -1;
    const lc = this.lowerCodes;
    let h = 0x811c9dc5 | 0;
    for (let p = s; p < e; p++) {
      const c = lc[p]!;
      if (c > 0x7f) return -1;
      h = Math.imul(h ^ c, 0x01000193);
    }
    return h;
  }

  /** Whether the word of token i is one of the set's: set.has(this.word(i)), mostly without making the word. */
  isIn(i: number, set: WordSet): boolean {
    const h = this.hashAt(i);
    if (h !== -1) {
      const slot = filterSlot(h);
      if ((set.bits[slot >> 3]! & (1 << (slot & 7))) === 0) return false;
    }
    return set.has(this.word(i));
  }

  kind(i: number): Kind {
    const known = this.kinds[i]!;
    if (known !== 0) return (known - 1) as Kind;
    const k = this.lookUp(i);
    this.kinds[i] = k + 1;
    return k;
  }

  /** The kind of token i, by a hash of its lower-case letters when they are ASCII: no string is made per word. */
  private lookUp(i: number): Kind {
    const s = this.t.start[i]!;
    const e = this.t.end[i]!;
    const lc = this.lowerCodes;
    let h = 0x811c9dc5 | 0;
    for (let p = s; p < e; p++) {
      const c = lc[p]!;
      if (c > 0x7f) {
        // A word with diacritics is no English word, even when it folds into one ("Bašić" is not "basic").
        const folded = this.word(i);
        const kind = classifyCached(folded);
        return kind === Kind.Common && !NOT_NAMES.has(folded) && !MEDICAL.has(folded) && isLetterCode(c)
          ? Kind.Unknown
          : kind;
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
    // The words met most recently, by hash, in arrays (no Map look-up for most of them).
    const slot = (h ^ (h >>> 12)) & (RECENT_SIZE - 1);
    const len = e - s;
    const base = slot * RECENT_LENGTH;
    if (RECENT_HASHES[slot] === h && RECENT_LENGTHS[slot] === len) {
      let p = 0;
      while (p < len && RECENT_CODES[base + p] === lc[s + p]) p++;
      if (p === len) return RECENT_KINDS[slot] as Kind;
    }
    const seen = hashCache.get(h);
    let word: string;
    let kind: Kind;
    if (seen !== undefined && seen.word.length === e - s && this.lower.startsWith(seen.word, s)) {
      word = seen.word;
      kind = seen.kind;
    } else {
      word = this.lower.slice(s, e);
      kind = classify(word);
      if (hashCache.size > 50_000) hashCache.clear();
      hashCache.set(h, { word, kind });
    }
    if (len <= RECENT_LENGTH) {
      RECENT_HASHES[slot] = h;
      RECENT_LENGTHS[slot] = len;
      RECENT_CODES.set(lc.subarray(s, e), base);
      RECENT_KINDS[slot] = kind;
    }
    return kind;
  }

  /** Text between token i-1 and token i. */
  gapBefore(i: number): string {
    const from =
      i > 0 ? this.t.end[i - 1]! + (this.t.possessive[i - 1] ? 2 : 0) : Math.max(0, this.t.start[i]! - 4);
    return this.text.slice(from, this.t.start[i]);
  }

  /** Sentence start: text start, a new line, or after . ! ? : ; or a bullet. */
  sentenceInitial(i: number): boolean {
    let p = this.t.start[i]! - 1;
    while (p >= 0) {
      const c = this.text.charCodeAt(p);
      if (
        c === 32 ||
        c === 9 ||
        c === 34 ||
        c === 39 ||
        c === 40 ||
        c === 0x201c ||
        c === 0x2018 ||
        c === 42 ||
        c === 0x2022 ||
        c === 45
      ) {
        p--;
        continue;
      }
      return c === 10 || c === 13 || c === 46 || c === 33 || c === 63 || c === 58 || c === 59 || c === 62;
    }
    return true;
  }

  /** Tokens i and j=i+1 sit in one name: a single space between them (or ". " after an initial). */
  joined(i: number, j: number): boolean {
    if (this.t.possessive[i]) return false;
    const from = this.t.end[i]!;
    const len = this.t.start[j]! - from;
    const a = this.text.charCodeAt(from);
    if (len === 1) return a === 32 || a === 9 || (a === 46 && this.t.end[i]! - this.t.start[i]! === 1);
    if (len === 2) {
      const b = this.text.charCodeAt(from + 1);
      return (a === 32 && b === 32) || (a === 46 && b === 32 && this.t.end[i]! - this.t.start[i]! === 1);
    }
    return false;
  }

  isInitial(i: number): boolean {
    if (this.t.end[i]! - this.t.start[i]! !== 1 || this.t.shape[i] === Shape.Lower) return false;
    // "M11", "B12": a letter of a model or vitamin name, not an initial.
    const next = this.text.charCodeAt(this.t.end[i]!);
    return !(next >= 48 && next <= 57);
  }

  /** Token i is followed by a verb that people do ("Tomomi is", "Asya spent", "Gerth had given"). */
  beforeVerb(i: number): boolean {
    const next = i + 1;
    if (next >= this.count || this.t.shape[next] !== Shape.Lower || !this.joined(i, next)) return false;
    const s = this.t.start[next]!;
    const len = this.t.end[next]! - s;
    return isOneOf(this.lower, s, len, PERSON_VERBS_BY_LENGTH);
  }

  /** Token i opens a line (or a quote) and is followed by a colon: a speaker in a transcript. */
  speakerLabel(i: number): boolean {
    const end = this.t.end[i]!;
    if (this.text.charCodeAt(end) !== 58 || this.t.possessive[i]) return false;
    const p = this.t.start[i]! - 1;
    const c = p < 0 ? 10 : this.text.charCodeAt(p);
    return c === 10 || c === 13 || c === 34 || c === 0x201d || c === 0x201c;
  }

  /** A quoted utterance after the speaker label at token i ('Ann: "Where were you?"'). */
  quoteAfterLabel(i: number): boolean {
    let p = this.t.end[i]! + 1;
    while (p < this.text.length && this.text.charCodeAt(p) === 32) p++;
    const c = this.text.charCodeAt(p);
    return c === 34 || c === 0x201c;
  }

  /** Tokens first..last sit in an address: a number right before, or a street word right after. */
  inAddress(first: number, last: number): boolean {
    // "1737 Victor Hugo", "12B, Sophia Lane": a house number right before.
    let p = this.t.start[first]! - 1;
    let spaces = 0;
    while (p >= 0 && spaces < 4 && (this.text.charCodeAt(p) === 32 || this.text.charCodeAt(p) === 9)) {
      p--;
      spaces++;
    }
    if (spaces > 0 && p >= 0) {
      if (this.text.charCodeAt(p) === 44) p--;
      const c = this.text.charCodeAt(p);
      const d = this.text.charCodeAt(p - 1);
      if ((c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 122 && d >= 48 && d <= 57)) {
        // A time is no house number: "9:00 Olivia Garcia" in a day's schedule is a person.
        let q = c >= 48 && c <= 57 ? p : p - 1;
        while (q >= 0 && this.text.charCodeAt(q) >= 48 && this.text.charCodeAt(q) <= 57) q--;
        if (q < 0 || this.text.charCodeAt(q) !== 58) return true;
      }
    }
    if (first > 0 && this.isIn(first - 1, STREET_PREFIXES) && this.joined(first - 1, first)) return true;
    const next = last + 1;
    return next < this.count && this.joined(last, next) && this.isIn(next, STREET_WORDS);
  }

  /** A single-letter word (an initial in lower-case text: "benjamin a seiler"). */
  isLetter(i: number): boolean {
    return this.t.end[i]! - this.t.start[i]! === 1;
  }

  /** A word that can stand in a capitalised name. */
  nameShaped(i: number): boolean {
    const shape = this.t.shape[i] as Shape;
    if (shape === Shape.Cap) return true;
    // ALL-CAPS only for dictionary names ("PATIENT: JOHN SMITH"), never acronyms like HIPAA or MRN.
    return shape === Shape.Upper && (this.kind(i) === Kind.First || this.kind(i) === Kind.Last);
  }

  /** "JOHN SMITH": an all-caps surname that is also a word continues an all-caps given name. */
  private upperSurname(first: number, k: number): boolean {
    return (
      this.t.shape[k] === Shape.Upper &&
      this.t.shape[first] === Shape.Upper &&
      this.kind(first) === Kind.First &&
      this.kind(k) === Kind.Ambiguous
    );
  }

  /** The cue right before token i, if any. */
  cueBefore(i: number): Cue | null {
    if (i === 0) return null;
    const h = asciiHash(this.lower, this.t.start[i - 1]!, this.t.end[i - 1]!);
    if (h !== -1 && !CUE_WORD_HASHES.has(h)) return null;
    const prev = this.word(i - 1);
    const gap = this.gapBefore(i);
    // A form's signer: "Prepared by:  Ann Lee", "Reviewed By: …" (a firm or a product needs two words or a listed one).
    if (prev === 'by' && /^:[ \t]{0,8}$/.test(gap))
      return { score: 0.75, needsDictionary: true, allowsLower: false, pairOk: true };
    if (gap.length > 3 || gap.includes('\n')) {
      // "Patient:\n  John Smith" still counts; other cues need to be on the same line.
      if (!(LABEL_CUES.has(prev) && /^[\s:#.-]{1,8}$/.test(gap))) return null;
    }
    // "Mr. Lee", "MRS LEE", and in lower-case text "mr. lee" (the dot tells it from the word "miss").
    const titled = this.t.shape[i - 1] !== Shape.Lower || gap.startsWith('.');
    if (HONORIFIC_STRONG.has(prev) && titled)
      return { score: 0.85, needsDictionary: false, allowsLower: gap.startsWith('.') };
    if (HONORIFIC_PROVIDER.has(prev) && titled)
      return { score: 0.6, needsDictionary: false, allowsLower: gap.startsWith('.') };
    if (LABEL_CUES.has(prev)) {
      // "Patient: x", "Name: x", "Pt. x", "patient x"; "member services" is stopped by the common-word check.
      const labelled = /^\s*[:#.?-]/.test(gap);
      if (prev === 'name' && !labelled) {
        // "name is" handled below; a bare "name X" is no cue.
      } else if (prev === 'pt' && !labelled && this.t.shape[i - 1] === Shape.Lower) {
        // "5 pt font": lower-case pt without a colon or dot is no cue.
      } else {
        return { score: 0.9, needsDictionary: false, allowsLower: labelled };
      }
    }
    if (prev === 'dear') return { score: 0.75, needsDictionary: false, allowsLower: true };
    if (prev === 're' && gap.startsWith(':'))
      return { score: 0.7, needsDictionary: true, allowsLower: false };
    if (RELATIVE_CUES.has(prev)) return { score: 0.75, needsDictionary: false, allowsLower: false };
    if (CARE_VERB_CUES.has(prev)) return { score: 0.75, needsDictionary: true, allowsLower: false };
    if (prev === 'is' && i >= 2 && this.word(i - 2) === 'name')
      return { score: 0.8, needsDictionary: false, allowsLower: true };
    if ((prev === 'named' || prev === 'called') && gap === ' ')
      return { score: 0.75, needsDictionary: false, allowsLower: false };
    // "named him Frank", "people call me Csanád", "everyone calls me Ann".
    if (
      (prev === 'me' || prev === 'him' || prev === 'her') &&
      i >= 2 &&
      /^(?:call|calls|called|named|name)$/.test(this.word(i - 2))
    ) {
      return { score: 0.75, needsDictionary: false, allowsLower: true };
    }
    if (GREETINGS.has(prev) && gap === ' ')
      return { score: 0.45, needsDictionary: false, allowsLower: false };
    if (SPEECH_VERBS.has(prev) && gap === ' ')
      return { score: 0.5, needsDictionary: false, allowsLower: false };
    if (prev === "i'm" || prev === 'i’m') return { score: 0.75, needsDictionary: false, allowsLower: false };
    if (prev === 'am' && i >= 2 && this.word(i - 2) === 'i')
      return { score: 0.75, needsDictionary: false, allowsLower: false };
    // "producer Liviana Palerma", "tennis player Ann Lee", "our hygienist Maria".
    if (ROLE_WORDS.has(prev) && gap === ' ')
      return { score: 0.7, needsDictionary: true, allowsLower: false, pairOk: true };
    if (prev === 'for') {
      for (let k = i - 2; k >= Math.max(0, i - 6); k--) {
        if (this.isIn(k, APPOINTMENT_WORDS))
          return { score: 0.75, needsDictionary: false, allowsLower: false };
      }
    }
    return null;
  }

  scan(): Out[] {
    const found: Candidate[] = [];
    const n = this.count;
    let i = 0;
    const shape = this.t.shape;
    if (this.lowerText) {
      while (i < n) {
        const c = this.nameAt(i);
        if (c) {
          found.push(c);
          i = c.next;
        } else i++;
      }
    } else {
      // Most words are lower-case and no name: only the tokens that may start one (Tokens.candidates) are tried.
      const candidates = this.t.candidates;
      for (let m = 0; m < this.t.candidateCount; m++) {
        const at = candidates[m]!;
        if (at < i) continue;
        if (shape[at] === Shape.Lower && !this.lowerCueBefore(at)) continue;
        const c = this.nameAt(at);
        if (c) {
          found.push(c);
          i = c.next;
        } else i = at + 1;
      }
    }
    this.raiseLists(found);
    this.raiseSpeakers(found);
    this.raiseLinked(found);
    this.raiseCoordinated(found);
    const named = found.filter((c) => c.score > 0);
    const repeated = this.repeats(named);
    // Findings below the rules' threshold are hints only; a flood of them (a list of capitalised words) is cut short.
    let weak = 0;
    const out: Out[] = [];
    for (const c of named) if (c.score >= 0.5 || ++weak <= MAX_WEAK_FINDINGS) out.push(personFinding(c));
    for (const f of repeated) if (f.score >= 0.5 || ++weak <= MAX_WEAK_FINDINGS) out.push(f);
    return out;
  }

  /** A name word already found in this text counts again on its own ("Mrs. Ann Kowalczyk … Kowalczyk's x-ray"). */
  private repeats(named: readonly Candidate[]): Out[] {
    const words = emptyWordSet();
    if (coveredBuffer.length < this.count)
      coveredBuffer = new Uint8Array(Math.max(this.count, coveredBuffer.length * 2));
    const covered = coveredBuffer.fill(0, 0, this.count);
    for (const c of named) {
      for (let k = c.first; k < c.next; k++) {
        covered[k] = 1;
        const kind = this.kind(k);
        if (c.score >= 0.5 && kind !== Kind.Common && kind !== Kind.Ambiguous && !this.isLetter(k))
          addWord(words, this.word(k));
      }
    }
    const out: Out[] = [];
    if (words.size === 0) return out;
    // A weaker finding of one of those words counts too.
    for (const c of named) {
      if (c.score >= 0.6 || (c.next - c.first > 1 && c.score < 0.3)) continue;
      // "Jouni … a huge Jouni Hahli fan": a name of two words that holds a counted word counts too.
      for (let k = c.first; k < c.next; k++)
        if (this.kind(k) !== Kind.Common && !this.isLetter(k) && this.isIn(k, words)) {
          c.score = 0.6;
          break;
        }
    }
    // Capitalised tokens only: each of them is a candidate (Tokens.candidates), in order.
    const candidates = this.t.candidates;
    for (let m = 0; m < this.t.candidateCount; m++) {
      const i = candidates[m]!;
      if (
        covered[i] === 1 ||
        this.t.shape[i] === Shape.Lower ||
        this.kind(i) === Kind.Common ||
        !this.isIn(i, words)
      )
        continue;
      out.push({
        type: 'PERSON',
        category: 'identifier',
        start: this.t.start[i]!,
        end: this.t.end[i]!,
        score: 0.6,
        recognizer: 'person-name',
      });
    }
    return out;
  }

  /** Tries a name starting at token i. */
  private nameAt(i: number): Candidate | null {
    if (this.isInitial(i)) return null;
    const shape = this.t.shape[i] as Shape;
    const lower = shape === Shape.Lower;
    // Most words are lower-case and no name: leave them before any string is made.
    if (lower && !this.lowerText && !this.lowerCueBefore(i)) return null;
    // A capitalised common word ("The", "Please") starts no name, whatever is before it.
    if (!lower && (!this.nameShaped(i) || !isName(this.kind(i)))) return null;
    const cue = this.cueBefore(i);
    // Lower-case words start a name only as a given name, or as any name word right after a cue that allows it.
    const lowerStart = cue?.allowsLower
      ? isName(this.kind(i)) && this.kind(i) !== Kind.Ambiguous
      : this.kind(i) === Kind.First ||
        // A lower-case signature or address block: a name the dictionaries lack may open its line.
        (this.lowerText && this.kind(i) === Kind.Unknown && this.opensLine(i));
    if (lower ? !lowerStart : !this.nameShaped(i) || !isName(this.kind(i))) return null;
    // In lower case a name that is also an English word ("dean", "clay") is the word, unless a cue says otherwise.
    if (lower && !cue?.allowsLower && this.isIn(i, WORD_LIKE)) return null;
    // Collect up to four name words (initials and particles in between do not count towards the four).
    const idx: number[] = [i];
    let initial = false;
    let j = i;
    while (idx.length < 4 && j + 1 < this.count && this.joined(j, j + 1)) {
      const k = j + 1;
      if (this.isInitial(k) || (lower && this.isLetter(k) && k + 1 < this.count && this.joined(k, k + 1))) {
        initial = true;
        j = k;
        continue;
      }
      if (
        !lower &&
        this.t.shape[k] === Shape.Lower &&
        this.isIn(k, PARTICLES) &&
        k + 1 < this.count &&
        this.joined(k, k + 1) &&
        // One particle or two ("van de Noort", "de la Cruz") before the next name word.
        (this.nameShaped(k + 1) ||
          (this.t.shape[k + 1] === Shape.Lower &&
            this.isIn(k + 1, PARTICLES) &&
            k + 2 < this.count &&
            this.joined(k + 1, k + 2) &&
            this.nameShaped(k + 2)))
      ) {
        j = k;
        continue;
      }
      // In lower-case text only words that are no common word continue a name ("lena andersson", not "lena in").
      const ok = lower
        ? this.t.shape[k] === Shape.Lower &&
          isName(this.kind(k)) &&
          this.kind(k) !== Kind.Ambiguous &&
          !this.isIn(k, WORD_LIKE)
        : (this.nameShaped(k) && isName(this.kind(k))) || this.upperSurname(i, k);
      if (!ok) break;
      idx.push(k);
      j = k;
      if (this.t.possessive[k]) break;
    }
    // An initial must sit between names ("Ken N. Fukuda"), not trail them.
    if (initial && idx.length === 1) initial = false;
    // Part of an address, not a person: after a house number or before a street word ("12 Sophia Lane", "Victor Hugo St").
    if (!cue && this.inAddress(i, j)) return null;
    // Only a given name starts a name that a given name follows ("Call Sophia Lee", "Quantum Sophia Lee" → "Sophia Lee").
    // (A name alone on its line is whole: "Cormac Allan" above a job title.)
    if (
      this.kind(i) !== Kind.First &&
      idx.length > 1 &&
      this.kind(idx[1]!) === Kind.First &&
      !this.lineAlone(i, idx[idx.length - 1]!)
    )
      return null;
    const kinds = idx.map((k) => this.kind(k));
    const last = idx[idx.length - 1]!;
    const possessive = this.t.possessive[last] === 1;
    let score: number;
    if (lower) {
      // Lower-case text: a name only after a cue that allows it, or a clear given name + surname pair (low).
      const pair =
        kinds.length === 2 &&
        (kinds[1] === Kind.Last || kinds[1] === Kind.Unknown || kinds[1] === Kind.First);
      score = cue?.allowsLower
        ? cue.score
        : pair
          ? // "follow up with patricia desrosiers": a given name and a surname where a person is expected.
            kinds[0] === Kind.First
            ? this.personBefore(i) || possessive || this.lineAlone(i, last) || this.beforePersonOnlyVerb(last)
              ? 0.55
              : 0.3
            : this.signatureName(last, idx)
              ? 0.55
              : 0
          : // Lower-case text (chat, quick notes): a lone given name counts where a capitalised one would
            // ("why is ivan so …", "selma is from …", "her son jacob").
            this.lowerText && kinds.length === 1 && kinds[0] === Kind.First
            ? cue
              ? cue.score
              : this.scorePosition(0, kinds, idx)
            : 0;
    } else {
      score = this.scoreShape(kinds, i, initial, idx);
      score = this.scorePosition(score, kinds, idx);
      if (
        cue &&
        (!cue.needsDictionary ||
          kinds.some((k) => k !== Kind.Unknown) ||
          (cue.pairOk === true && (kinds.length > 1 || this.listed(i))))
      )
        score = Math.max(score, cue.score);
      if (possessive) {
        if (
          kinds.some(
            (k, n) =>
              k === Kind.First ||
              k === Kind.Last ||
              (k === Kind.Ambiguous && kinds.length > 1) ||
              (k === Kind.Unknown && kinds.length > 1 && this.nameLike(idx[n]!)),
          )
        )
          score = Math.max(score, 0.7);
        else if (kinds[0] === Kind.Unknown && !this.sentenceInitial(i)) score = Math.max(score, 0.4);
      }
    }
    const single = idx.length === 1 && !cue && !lower;
    if (score <= 0 && !single) return null;
    return {
      start: this.t.start[i]!,
      end: this.t.end[last]!,
      score,
      first: i,
      next: last + 1,
      single,
      known: kinds[0] === Kind.First || kinds[0] === Kind.Last,
      given: kinds[0] === Kind.First,
    };
  }

  /**
   * Raises a name by where it stands: where a person is expected ("speak with Ann Lee", "Ann Lee said"), addressed
   * ("Don't go, Roy!"), or alone on a line above contact details (a signature or address block). Lone given names
   * otherwise stay below the rules: staff first names are everywhere in practice mail.
   */
  private scorePosition(score: number, kinds: readonly Kind[], idx: readonly number[]): number {
    const first = idx[0]!;
    const last = idx[idx.length - 1]!;
    const strongBefore = this.personBefore(first, PERSON_BEFORE_STRONG) || this.talkedTo(first, last);
    const before = strongBefore || this.personBefore(first, PERSON_BEFORE);
    // "to" leads to places as often as to people ("moved to Austin"): not enough before a lone name.
    const beforeLone = strongBefore || (before && this.word(first - 1) !== 'to');
    const after = this.beforeVerb(last);
    const addressed = this.addressed(first, last);
    if (idx.length === 1) {
      const kind = kinds[0]!;
      // "Dravenna, can you send …": someone addressed by a word no list holds.
      if (kind === Kind.Unknown && this.addressedOpening(first, last) && !WORD_SUFFIX.test(this.word(first)))
        return Math.max(score, 0.55);
      // A given name that is also a word ("Ruby", "Pearl") where only a person stands: called out, or between a verb
      // taking a person and a person's pronoun ("we gave Pearl her card").
      if (
        kind === Kind.Ambiguous &&
        !this.sentenceInitial(first) &&
        (this.calledOut(first, last) || (before && this.pronounAfter(last))) &&
        this.isIn(first, FIRST)
      )
        return Math.max(score, 0.5);
      // A listed name of another country, or a word spelled like a name ("Dzhambek"), counts where a given name would
      // ("Jouko is from …", "Kuba, can I …"). Firms spelled like names that mail about care names (pharmacies, payers,
      // software) are in NOT_NAMES. The context first: it is cheaper than the look-ups.
      if (
        (kind === Kind.First || kind === Kind.Unknown) &&
        (after ||
          beforeLone ||
          addressed ||
          this.speakerLabel(first) ||
          this.afterAuxiliary(first) ||
          this.pronounAfter(last) ||
          this.roleAfter(last)) &&
        (kind === Kind.First || this.listed(first) || spelledLikeName(this.word(first)))
      )
        return Math.max(score, 0.55);
      // "Jarnvik is our new hygienist", "add Jarnvik as a beneficiary": a role as the predicate.
      if (
        (kind === Kind.First || kind === Kind.Last || kind === Kind.Unknown) &&
        (this.rolePredicate(last) === 1 || this.asRoleAfter(last))
      )
        return Math.max(score, 0.55);
      if (kind === Kind.First && this.plainMention(first)) return Math.max(score, 0.5);
      // "given Gerth his address": a capitalised word that is no common word, before a person's pronoun.
      if (
        (kind === Kind.Unknown || kind === Kind.Last) &&
        this.pronounAfter(last) &&
        !this.sentenceInitial(first)
      )
        return Math.max(score, 0.5);
      if (
        (kind === Kind.Last || (kind === Kind.Unknown && this.nameLike(first))) &&
        (strongBefore ||
          addressed ||
          (kind === Kind.Last &&
            (beforeLone || this.afterAuxiliary(first) || this.pronounAfter(last) || this.roleAfter(last))))
      )
        return Math.max(score, 0.5);
      // A capitalised word doing what only people do ("Ciset lives on …", "Trivo said"); "Dentrix is down" stays a hint.
      if ((kind === Kind.Unknown || kind === Kind.Last) && this.beforePersonOnlyVerb(last))
        return Math.max(score, 0.5);
      return score;
    }
    const evidence = kinds.some(
      (k, n) => k === Kind.First || k === Kind.Last || (k === Kind.Unknown && this.nameLike(idx[n]!)),
    );
    // "Is", "has", "needs" follow products as often as people ("Primescan needs calibration"): without evidence from the
    // words themselves, only a verb that people alone do raises a pair.
    // With evidence, where someone works counts too: "Ann Lee from Harlow Freight", "… of Harlow Freight".
    const acts = evidence ? after || this.affiliationAfter(last) : this.beforePersonOnlyVerb(last);
    if (score >= 0.3 && (before || acts || addressed)) score = Math.min(0.85, score + 0.15);
    // Two name words with what only people have: a role in apposition ("…, the technical writer") or a pronoun after.
    if (
      score >= 0.3 &&
      (this.roleAfter(last) ||
        this.pronounAfter(last) ||
        this.rolePredicate(last) === 1 ||
        this.asRoleAfter(last))
    )
      score = Math.max(score, 0.6);
    if (this.lineAlone(first, last) && (evidence || this.contactBelow(last) || this.titleBelow(last)))
      score = Math.max(score, 0.6);
    return score;
  }

  /** Token i is followed by a verb that only people do ("lives", "said", "told" …). */
  beforePersonOnlyVerb(i: number): boolean {
    const next = i + 1;
    if (next >= this.count || this.t.shape[next] !== Shape.Lower || !this.joined(i, next)) return false;
    return this.isIn(next, PERSON_ONLY_VERBS);
  }

  /**
   * A given name that is no surname, mid-sentence, neither in a list nor after a greeting, an article or a preposition
   * of place ("I'm so jealous of how Ivan …", "early Marcil"): people, far more often than firms or places.
   */
  plainMention(i: number): boolean {
    if (this.sentenceInitial(i)) return false;
    if (i > 0 && this.isIn(i - 1, NOT_MENTION_BEFORE)) return false;
    return !this.inList(i - 1, i - 2, i) && !this.inList(i + 1, i + 2, i + 1);
  }

  /** Token k is a name of a list next to another: a capitalised word after a comma, or "and"/"or"/"&" then one. */
  private inList(k: number, beyond: number, gapAt: number): boolean {
    if (k < 0 || k >= this.count) return false;
    const gap = this.gapBefore(gapAt);
    if ((gap.startsWith(',') || gap.includes('&')) && this.t.shape[k] !== Shape.Lower) return true;
    const w = this.word(k);
    return (
      (w === 'and' || w === 'or') &&
      beyond >= 0 &&
      beyond < this.count &&
      this.t.shape[beyond] !== Shape.Lower
    );
  }

  /** Token i follows an auxiliary and a lower-case word follows it: a subject ("Why is Ivan so …", "did Ivan call"). */
  afterAuxiliary(i: number): boolean {
    if (!this.personBefore(i, AUXILIARIES)) return false;
    const next = i + 1;
    return next < this.count && this.t.shape[next] === Shape.Lower && this.joined(i, next);
  }

  /** A person's pronoun right after token i, or after one lower-case word ("Ann his address", "Ann listed her …"). */
  pronounAfter(i: number): boolean {
    for (let k = i + 1; k <= i + 2 && k < this.count; k++) {
      if (this.t.shape[k] !== Shape.Lower || !this.joined(k - 1, k)) return false;
      // "his", "her", "himself", "herself": look at words of those lengths only (no string for the others).
      const len = this.t.end[k]! - this.t.start[k]!;
      if ((len === 3 || len === 7) && this.isIn(k, PERSON_PRONOUNS)) return true;
    }
    return false;
  }

  /** An apposition with a role after token i: ", the technical writer", ", our office manager", ", a nurse". */
  roleAfter(i: number): boolean {
    const k0 = i + 1;
    if (k0 >= this.count || this.t.possessive[i]) return false;
    const e = this.t.end[i]!;
    if (this.text.charCodeAt(e) !== 44 || this.t.start[k0] !== e + 2 || this.text.charCodeAt(e + 1) !== 32)
      return false;
    for (let k = k0; k < k0 + 3 && k < this.count; k++) {
      if (k > k0 && !this.joined(k - 1, k)) return false;
      const w = this.word(k);
      if (ROLE_WORDS.has(w)) return true;
      if (k === k0 && !APPOSITION_OPENERS.has(w) && this.t.shape[k] === Shape.Lower) return false;
    }
    return false;
  }

  /** "from" or "of" and a capitalised word after token i: where someone works ("… from Harlow Freight"). */
  affiliationAfter(i: number): boolean {
    const k = i + 1;
    if (k + 1 >= this.count || this.t.possessive[i] || this.t.shape[k] !== Shape.Lower) return false;
    const s = this.t.start[k]!;
    const len = this.t.end[k]! - s;
    if (!((len === 4 && this.lower.startsWith('from', s)) || (len === 2 && this.lower.startsWith('of', s))))
      return false;
    return this.joined(i, k) && this.joined(k, k + 1) && this.t.shape[k + 1] !== Shape.Lower;
  }

  /** "as a beneficiary", "as our new hygienist" after token i: a role someone is given. */
  asRoleAfter(i: number): boolean {
    const k0 = i + 1;
    if (k0 + 1 >= this.count || this.t.possessive[i] || this.t.shape[k0] !== Shape.Lower) return false;
    const s = this.t.start[k0]!;
    if (this.t.end[k0]! - s !== 2 || !this.lower.startsWith('as', s) || !this.joined(i, k0)) return false;
    for (let k = k0 + 1; k <= k0 + 3 && k < this.count; k++) {
      if (this.t.shape[k] !== Shape.Lower || !this.joined(k - 1, k)) return false;
      const w = this.word(k);
      if (PREDICATE_ROLES.has(w) || AS_ROLES.has(w)) return !this.t.possessive[k];
      if (k === k0 + 1 && !APPOSITION_OPENERS.has(w)) return false;
    }
    return false;
  }

  /**
   * A role as the predicate after token i: "is our new hygienist", "was a nurse at …" (1), or after a plural copula
   * "were field engineers" (2, the end of a coordinated subject); 0 for none. Only determiners and adjectives may
   * stand between ("Boston is home to nurses" has a preposition), and the role must head its phrase ("a nurse shortage"
   * does not).
   */
  rolePredicate(i: number): number {
    const c = i + 1;
    if (c >= this.count || this.t.possessive[i] || this.t.shape[c] !== Shape.Lower || !this.joined(i, c))
      return 0;
    // Read for most capitalised words: compare in place, no string made unless it is a copula.
    const s = this.t.start[c]!;
    const len = this.t.end[c]! - s;
    const plural = isOneOf(this.lower, s, len, PLURAL_COPULAS_BY_LENGTH);
    if (!plural && !isOneOf(this.lower, s, len, COPULAS_BY_LENGTH)) return 0;
    for (let k = c + 1; k <= c + 4 && k < this.count; k++) {
      if (this.t.shape[k] !== Shape.Lower || !this.joined(k - 1, k)) return 0;
      const w = this.word(k);
      if (ROLE_FOLLOWERS.has(w)) return 0;
      if (!isPredicateRole(w, plural)) continue;
      if (this.t.possessive[k]) return 0;
      const next = k + 1;
      if (
        next < this.count &&
        this.joined(k, next) &&
        this.t.shape[next] === Shape.Lower &&
        !this.isIn(next, ROLE_FOLLOWERS)
      )
        return 0;
      return plural ? 2 : 1;
    }
    return 0;
  }

  /**
   * "shouted at Ann", "spoke to Lee": a verb of talking or looking, then "at" or "to", right before tokens i..last, and
   * no capitalised word after them ("talked to Jackson County" is a place).
   */
  talkedTo(i: number, last: number): boolean {
    if (i < 2 || this.t.shape[i - 1] !== Shape.Lower || this.t.shape[i - 2] !== Shape.Lower) return false;
    const next = last + 1;
    if (next < this.count && this.t.shape[next] !== Shape.Lower && this.joined(last, next)) return false;
    const s = this.t.start[i - 1]!;
    if (this.t.end[i - 1]! - s !== 2 || !(this.lower.startsWith('at', s) || this.lower.startsWith('to', s)))
      return false;
    return this.joined(i - 1, i) && this.joined(i - 2, i - 1) && this.isIn(i - 2, TALK_VERBS);
  }

  /** Only punctuation, bullets or spaces before token i on its line. */
  opensLine(i: number): boolean {
    for (let p = this.t.start[i]! - 1; p >= 0; p--) {
      const c = this.text.charCodeAt(p);
      if (c === 10 || c === 13) return true;
      if (isLetterCode(c) || (c >= 48 && c <= 57)) return false;
    }
    return true;
  }

  /**
   * Lower-case words alone on their line above contact details or a job title ("aksel ravnsborg" over a phone number),
   * each of them a given name, a listed name or spelled like one (any word no list holds above a job title): the name in
   * a signature or an address block.
   */
  signatureName(last: number, idx: readonly number[]): boolean {
    if (!this.lineAlone(idx[0]!, last)) return false;
    // A job title on the next line is the stronger sign: then any word that is no English word will do.
    const title = this.titleBelow(last);
    if (!title && !this.contactBelow(last)) return false;
    return idx.every((k) => {
      const kind = this.kind(k);
      if (kind === Kind.First || kind === Kind.Last) return true;
      if (kind !== Kind.Unknown) return false;
      const w = this.word(k);
      return title || OTHER.has(wordHash(w)) || spelledLikeName(w);
    });
  }

  /** An unknown capitalised word in the list of names of many countries (OTHER_NAMES). */
  listed(i: number): boolean {
    return (
      this.t.shape[i] !== Shape.Lower && this.kind(i) === Kind.Unknown && OTHER.has(wordHash(this.word(i)))
    );
  }

  /** An unknown capitalised word that looks like a name: letters with diacritics ("Kónya") or a surname ending. */
  nameLike(i: number): boolean {
    return this.hasDiacritics(i) || this.surnameEnding(i);
  }

  /** An unknown capitalised word of four letters or more with a letter outside ASCII ("Kónya", but also "Kraków"). */
  hasDiacritics(i: number): boolean {
    if (this.t.shape[i] === Shape.Lower || this.kind(i) !== Kind.Unknown) return false;
    const s = this.t.start[i]!;
    const e = this.t.end[i]!;
    if (e - s < 4) return false;
    for (let p = s; p < e; p++) if (this.lower.charCodeAt(p) > 0x7f) return true;
    return false;
  }

  /** An unknown capitalised word with a surname ending ("Petrussen", "Szczepańska"). */
  surnameEnding(i: number): boolean {
    if (this.t.shape[i] === Shape.Lower || this.kind(i) !== Kind.Unknown) return false;
    const s = this.t.start[i]!;
    const e = this.t.end[i]!;
    return e - s >= 4 && SURNAME_ENDING.test(fold(this.lower.slice(s, e)));
  }

  /** The word before token i takes a person as its object ("with", "to", "told", "thank" …), one space before. */
  personBefore(i: number, words: WordSet = PERSON_BEFORE): boolean {
    if (i === 0 || !this.joined(i - 1, i) || this.t.shape[i - 1] !== Shape.Lower) return false;
    return this.isIn(i - 1, words) || (words === PERSON_BEFORE && this.isIn(i - 1, PERSON_BEFORE_STRONG));
  }

  /** Someone addressed: ", Roy!" / ", Mary?" mid-sentence, or "Leif, can I …" at a sentence start. */
  addressed(first: number, last: number): boolean {
    const after = this.t.end[last]! + (this.t.possessive[last] ? 2 : 0);
    const next = this.text.charCodeAt(after);
    if (first > 0 && (next === 33 || next === 63 || next === 44)) {
      const gap = this.gapBefore(first);
      if (gap === ', ' && !this.isIn(first - 1, SIGN_OFF)) return true;
    }
    return this.addressedOpening(first, last);
  }

  /** "Leif, can I please …": a name, a comma and a word that turns to someone, opening a sentence. */
  addressedOpening(first: number, last: number): boolean {
    const after = this.t.end[last]! + (this.t.possessive[last] ? 2 : 0);
    if (this.text.charCodeAt(after) !== 44 || !this.sentenceInitial(first) || last + 1 >= this.count)
      return false;
    return this.text.slice(after, this.t.start[last + 1]) === ', ' && this.isIn(last + 1, ADDRESSING);
  }

  /** Someone called out mid-sentence: "Stop right there, Ruby!", "Is that you, Will?" (not after a greeting). */
  calledOut(first: number, last: number): boolean {
    if (first === 0 || this.t.possessive[last]) return false;
    const next = this.text.charCodeAt(this.t.end[last]!);
    return (next === 33 || next === 63) && this.gapBefore(first) === ', ' && !this.isIn(first - 1, SIGN_OFF);
  }

  /** Tokens first..last fill their line (bullets and quote marks aside). */
  lineAlone(first: number, last: number): boolean {
    let p = this.t.start[first]! - 1;
    while (p >= 0) {
      const c = this.text.charCodeAt(p);
      if (c === 10 || c === 13) break;
      if (isLetterCode(c) || (c >= 48 && c <= 57)) return false;
      p--;
    }
    const n = this.text.length;
    let q = this.t.end[last]! + (this.t.possessive[last] ? 2 : 0);
    while (q < n) {
      const c = this.text.charCodeAt(q);
      if (c === 10 || c === 13) return true;
      if (c !== 32 && c !== 9 && c !== 44) return false;
      q++;
    }
    return true;
  }

  /** A digit or an @ on the next lines: contact details or an address under a name. */
  contactBelow(last: number): boolean {
    const from = this.t.end[last]!;
    const to = Math.min(this.text.length, from + 120);
    for (let p = from; p < to; p++) {
      const c = this.text.charCodeAt(p);
      if ((c >= 48 && c <= 57) || c === 64) return true;
    }
    return false;
  }

  /**
   * The next line is a job title ("Office Manager", "Technical writer"): the two lines of a signature or a contact
   * card, where the line above is a person's name.
   */
  titleBelow(last: number): boolean {
    const n = this.text.length;
    let p = this.t.end[last]!;
    while (p < n && this.text.charCodeAt(p) !== 10) p++;
    const lineStart = p + 1;
    let lineEnd = lineStart;
    while (lineEnd < n && lineEnd - lineStart < 60 && this.text.charCodeAt(lineEnd) !== 10) lineEnd++;
    // A short line: a title, not a sentence that happens to hold one of the words.
    if (lineEnd - lineStart >= 60 || lineEnd === lineStart) return false;
    // At most four words, the title word first or last ("Office Manager", "Director of Operations"), not one inside
    // a phrase ("Support engineer on call").
    let first = -1;
    let lastWord = -1;
    for (let k = last + 1; k < this.count && this.t.start[k]! < lineEnd; k++) {
      if (this.t.start[k]! < lineStart) continue;
      if (first < 0) first = k;
      lastWord = k;
    }
    if (first < 0 || lastWord - first > 3) return false;
    return this.isIn(first, JOB_TITLES) || this.isIn(lastWord, JOB_TITLES);
  }

  private scoreShape(raw: Kind[], i: number, initial: boolean, idx: readonly number[]): number {
    // In a pair, an unknown word shaped like a surname ("Szczepańska", "Petrussen") counts as one.
    // Letters with diacritics alone are as common in place names ("Kraków Główny"): a pair that has nothing else stays a hint.
    if (
      raw.length === 2 &&
      raw.every((k, n) => k === Kind.Unknown && !this.surnameEnding(idx[n]!)) &&
      !this.sentenceInitial(i)
    ) {
      // Both words in the list of names of many countries, or spelled like names ("Jaakko Virtanen"): a person's name.
      // Not after a preposition of place: "headquartered in Palo Alto".
      if (
        !(i > 0 && this.isIn(i - 1, PLACE_BEFORE)) &&
        raw.every((_, n) => this.listed(idx[n]!) || spelledLikeName(this.word(idx[n]!)))
      )
        return 0.5;
      return raw.every((_, n) => this.hasDiacritics(idx[n]!)) ? 0.45 : 0.35;
    }
    const kinds =
      raw.length > 1
        ? raw.map((k, n) => (k === Kind.Unknown && this.nameLike(idx[n]!) ? Kind.Last : k))
        : raw;
    const first = kinds[0]!;
    const last = kinds[kinds.length - 1]!;
    const start = this.sentenceInitial(i);
    if (kinds.length === 1) {
      if (first === Kind.First) return start ? 0.3 : 0.4;
      if (first === Kind.Last && !start) return 0.35;
      // Hints below the rules: a capitalised unknown word acting as a subject ("Tomomi is from …") or a speaker
      // label at a line start ("Zuzana: …").
      if ((first === Kind.Unknown || first === Kind.Last) && (this.beforeVerb(i) || this.speakerLabel(i)))
        return 0.3;
      return 0;
    }
    const lastIsSurname = last === Kind.Last || last === Kind.First || last === Kind.Ambiguous;
    if (first === Kind.First && lastIsSurname) return 0.85;
    // A middle initial is a strong sign of a name, whatever the dictionaries say ("Faina D. Yefremova").
    if (initial && last !== Kind.Ambiguous) return 0.7;
    if (first === Kind.First && last === Kind.Unknown) return 0.65;
    if (first === Kind.Ambiguous && (last === Kind.Last || last === Kind.First)) return 0.6;
    if ((first === Kind.Unknown || first === Kind.Last) && last === Kind.Last)
      return start ? (first === Kind.Last ? 0.5 : 0.4) : 0.55;
    if (first === Kind.Last && last === Kind.First) return start ? 0.4 : 0.5;
    if (first === Kind.Last && last === Kind.Unknown) return start ? 0.35 : 0.45;
    if (first === Kind.Unknown && last === Kind.Unknown) return 0.35;
    if (first === Kind.Ambiguous && last === Kind.Unknown) return 0.3;
    return 0;
  }

  /**
   * A transcript: two or more lines open with a one-word speaker label ("Ella: …"), one of them a given name. Then every
   * such label that is no common word is a speaker's name ("Halldór: …", "Destiny: …").
   */
  private raiseSpeakers(found: Candidate[]): void {
    let labels = 0;
    let given = false;
    let quoted = 0;
    for (const c of found) {
      if (c.next - c.first !== 1 || !this.speakerLabel(c.first)) continue;
      labels++;
      if (this.kind(c.first) === Kind.First) given = true;
      if (
        this.kind(c.first) !== Kind.Common &&
        c.end - c.start >= 3 &&
        !this.text.slice(c.start, c.end).includes('-') &&
        this.quoteAfterLabel(c.first)
      )
        quoted++;
    }
    // Speakers whose lines are quoted ('Orielle: "Where were you?"') are people even when no list knows them.
    if (labels < 2 || (!given && quoted < 2)) return;
    for (const c of found)
      if (c.next - c.first === 1 && this.speakerLabel(c.first) && this.kind(c.first) !== Kind.Common)
        c.score = Math.max(c.score, 0.55);
  }

  /**
   * A lone dictionary name joined to a counted name by "and", "or", "to", "with" or a comma ("said Carla to Sandra",
   * "Mr. Marrero and Murphy"): the company of a person makes it one too.
   */
  private raiseLinked(found: Candidate[]): void {
    for (let n = 0; n + 1 < found.length; n++) {
      const a = found[n]!;
      const b = found[n + 1]!;
      if (a.score >= 0.5 === b.score >= 0.5) continue;
      const weak = a.score >= 0.5 ? b : a;
      if (weak.next - weak.first !== 1 || weak.score <= 0) continue;
      const kind = this.kind(weak.first);
      if (kind !== Kind.First && kind !== Kind.Last && !this.listed(weak.first)) continue;
      if (NAME_LINKS.test(this.text.slice(a.end, b.start))) weak.score = Math.max(weak.score, 0.5);
    }
  }

  /** Token i follows "founders:", "our speakers:", "attendees:" (a plural word for people and a colon). */
  private introducedByPeople(i: number): boolean {
    if (i === 0 || !/^:\s{1,2}$/.test(this.gapBefore(i))) return false;
    const w = this.word(i - 1);
    return PEOPLE_NOUNS.has(w) || isPredicateRole(w, true);
  }

  /**
   * A coordinated subject with a plural role as its predicate ("Halloran and Brightwater were field engineers", "Ann,
   * Ben and Kónya are our hygienists"): each name of it is a person's.
   */
  private raiseCoordinated(found: Candidate[]): void {
    for (let n = 1; n < found.length; n++) {
      const b = found[n]!;
      // Only a name joined to the one before it (", " or " and ") can end a coordinated subject: test that first.
      if (b.start - found[n - 1]!.end > 6 || this.rolePredicate(b.next - 1) !== 2) continue;
      let m = n;
      while (m > 0 && COORDINATION.test(this.text.slice(found[m - 1]!.end, found[m]!.start))) m--;
      if (m === n) continue;
      for (let k = m; k <= n; k++) found[k]!.score = Math.max(found[k]!.score, 0.55);
    }
  }

  /** Three or more single names in a list ("Ann, Ben, Kónya and Dana"), two of them in the dictionaries: each counts. */
  private raiseLists(found: Candidate[]): void {
    let run: Candidate[] = [];
    const flush = () => {
      // (Most candidates end a run of none: nothing to do, nothing to allocate.)
      if (run.length === 0) return;
      const known = run.filter((c) => c.known).length;
      // A list of given names counts; a list of surnames is as often a firm ("Owens, Duran and Oneal").
      const given = run.filter((c) => c.given).length;
      // A list that a colon introduces ("our founders: Kónya, Becker and Vasquez") is a list of people, not a firm.
      const introduced =
        run.length > 0 && /:\s{0,2}$/.test(this.text.slice(Math.max(0, run[0]!.start - 3), run[0]!.start));
      // A list that a plural word for people introduces ("our founders: Vesk, Lindqvist and Brown"): all are people.
      if (run.length >= 2 && this.introducedByPeople(run[0]!.first))
        for (const c of run) c.score = Math.max(c.score, 0.55);
      else if (run.length >= 3 && known >= 2)
        for (const c of run) c.score = Math.max(c.score, given >= 2 || introduced ? 0.55 : 0.45);
      // Two known names joined by "and" ("Marrero and Murphy"): likely people, not enough to count alone.
      else if (run.length === 2 && known === 2) for (const c of run) c.score = Math.max(c.score, 0.45);
      run = [];
    };
    for (const c of found) {
      if (!c.single) {
        flush();
        continue;
      }
      const prev = run[run.length - 1];
      if (prev !== undefined) {
        const between = this.text.slice(prev.end, c.start);
        if (!/^(?:,\s?|,?\s(?:and|or|&)\s)$/.test(between)) flush();
      }
      run.push(c);
    }
    flush();
  }
}

/**
 * A name tried at a token, kept while the raise steps may change its score; a finding is made only of one that is
 * reported (most candidates are single capitalised words that stay at 0: one object each, not two).
 */
interface Candidate {
  /** The text range [start, end) and the score of its finding. */
  start: number;
  end: number;
  score: number;
  /** Token range [first, next). */
  first: number;
  next: number;
  /** One word, no cue: may still count as part of a list of names. */
  single: boolean;
  known: boolean;
  given: boolean;
}

function personFinding(c: Candidate): Out {
  return {
    type: 'PERSON',
    category: 'identifier',
    start: c.start,
    end: c.end,
    score: c.score,
    recognizer: 'person-name',
  };
}

interface HeaderWord {
  word: string;
  common: boolean;
}

const ORG_WORDS = wordSet(
  'inc llc ltd corp co pc pllc group team dept department office support billing admin noreply no-reply info help desk services service clinic dental imaging lab labs insurance claims',
);
const TITLE_WORDS = wordSet('dr mr mrs ms miss mx prof dds dmd md do rn np pa lpn phd jr sr ii iii');

/** Person-like display names: their words, or null for an organisation or a role mailbox. */
function headerWords(display: string): HeaderWord[] | null {
  const raw = (display.toLowerCase().match(/[\p{L}\p{M}'’-]+/gu) ?? []).map((w) =>
    fold(w.replace(/['’]s$/, '')),
  );
  const words = raw.filter((w) => w.length >= 2 && !TITLE_WORDS.has(w));
  if (words.length === 0 || words.length > 4) return null;
  if (words.some((w) => ORG_WORDS.has(w))) return null;
  const kinds = words.map(classify);
  const known = kinds.some((k) => k === Kind.First || k === Kind.Last || k === Kind.Ambiguous);
  if (!known && (words.length < 2 || kinds.some((k) => k === Kind.Common))) return null;
  return words.map((w, n) => ({ word: w, common: kinds[n] === Kind.Common || kinds[n] === Kind.Ambiguous }));
}

/** The lengths and ASCII initials of the header words, reused from call to call (analysis is synchronous). */
const HEADER_LENGTHS = new Uint8Array(64);
const HEADER_INITIALS = new Uint8Array(128);
/** The display names that HEADER_LENGTHS, HEADER_INITIALS and headerWanted were made for (a copy). */
let headerKey: readonly string[] = [];
/** Their words: true for a word that is also a common word. */
let headerWanted = new Map<string, boolean>();

function findHeaderNames(scanner: NameScanner, shapes: Tokens, headerNames: readonly string[]): Out[] {
  const displays = headerNames.slice(0, 200);
  // The parts of one message share their recipients: their words are found once for all of them.
  if (displays.length !== headerKey.length || displays.some((d, n) => d !== headerKey[n])) {
    headerKey = displays;
    headerWanted = new Map<string, boolean>();
    for (const display of displays) {
      for (const w of headerWords(display) ?? [])
        headerWanted.set(w.word, w.common || headerWanted.get(w.word) === true);
    }
    // Cheap filters before a word is made: its length and first letter must match a header word.
    // Typed arrays rather than Sets: this test runs for every word of the text.
    HEADER_LENGTHS.fill(0);
    HEADER_INITIALS.fill(0);
    for (const w of headerWanted.keys()) {
      if (w.length < 64) HEADER_LENGTHS[w.length] = 1;
      const c = w.charCodeAt(0);
      if (c < 128) HEADER_INITIALS[c] = 1;
    }
  }
  const wanted = headerWanted;
  if (wanted.size === 0) return [];
  const lengths = HEADER_LENGTHS;
  const initials = HEADER_INITIALS;
  const lower = scanner.lowerCopy;
  const out: Out[] = [];
  let open: Out | null = null;
  let lastIndex = -2;
  // Every word of the text passes here: the arrays in locals.
  const count = scanner.count;
  const starts = shapes.start;
  const ends = shapes.end;
  for (let i = 0; i < count; i++) {
    const s = starts[i]!;
    const len = ends[i]! - s;
    if (len >= 64 || lengths[len] !== 1) continue;
    const c = lower.charCodeAt(s);
    if (c < 0x80 && initials[c] !== 1) continue;
    const w = scanner.word(i);
    const common = wanted.get(w);
    if (common === undefined) continue;
    // A header word that is also a common word ("Will", "Hope") counts only capitalised and mid-sentence.
    if (common && (shapes.shape[i] === Shape.Lower || scanner.sentenceInitial(i))) continue;
    const start = shapes.start[i]!;
    const end = shapes.end[i]!;
    if (open && lastIndex === i - 1 && scanner.joined(i - 1, i)) {
      open.end = end;
      open.score = 0.95;
    } else {
      open = {
        type: 'PERSON',
        category: 'identifier',
        start,
        end,
        score: common ? 0.6 : 0.85,
        recognizer: 'person-header-name',
      };
      out.push(open);
    }
    lastIndex = i;
  }
  return out;
}

export const personNameRecognizer: CustomRecognizer = {
  id: 'person-name',
  emits: [['PERSON', 'identifier']],
  analyze(text: string, ctx: AnalyzeContext): Out[] {
    const scanner = new NameScanner(text, ctx.lower);
    const found = scanner.scan();
    if (ctx.headerNames.length > 0) found.push(...findHeaderNames(scanner, scanner.tokens, ctx.headerNames));
    return found;
  },
};

export const nameRecognizers: Recognizer[] = [personNameRecognizer];
