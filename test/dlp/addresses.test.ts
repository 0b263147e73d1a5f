// International street addresses: street-type words in many languages, compound street names, a house number on
// both sides of a name, post-office boxes, and the unit and place lines under them. Negatives: ordinary sentences
// with numbers and the same words (doses, rooms, versions, "via email").
import { expect } from 'chai';
import { recognizerTable } from '../support/recognizer-table.js';
import { internationalStreetRecognizer } from '../../dlp/recognizers/addresses.js';

const { table } = recognizerTable([internationalStreetRecognizer]);

table(
  'dlp international street addresses',
  ['STREET_ADDRESS'],
  [
    ['a Polish street', 'Send it to ul. Chrzanowska 61 please.', ['STREET_ADDRESS ul. Chrzanowska 61']],
    [
      'a Portuguese street',
      'Return to Rua Cyro Schmutzer Franco 1213 in case.',
      ['STREET_ADDRESS Rua Cyro Schmutzer Franco 1213'],
    ],
    [
      'an Italian street with particles',
      'She lives in Via delle Coste 41, Roma.',
      ['STREET_ADDRESS Via delle Coste 41, Roma'],
    ],
    [
      'a Swedish compound',
      'Nybyvägen 65\nANKARSRUM\nSweden 67626',
      ['STREET_ADDRESS Nybyvägen 65\nANKARSRUM\nSweden 67626'],
    ],
    [
      'a German compound with a unit',
      'Strickstrasse 61, Suite 292',
      ['STREET_ADDRESS Strickstrasse 61, Suite 292'],
    ],
    ['a Hungarian street, type last', 'enter on hegyalja út 98 today', ['STREET_ADDRESS hegyalja út 98']],
    [
      'a French street, number first',
      'Verda lives on 33 avenue de Provence now.',
      ['STREET_ADDRESS 33 avenue de Provence'],
    ],
    [
      'a lower-case English street with an ordinal',
      'at 3911 fourth avenue suite 112',
      ['STREET_ADDRESS 3911 fourth avenue suite 112'],
    ],
    [
      'a number on both sides of a name',
      'Mail to 5850 Jana Nerudy 894, Praha.',
      ['STREET_ADDRESS 5850 Jana Nerudy 894, Praha'],
    ],
    [
      'a post-office box with its lines',
      '45818 P.O. Box 242\n Suite 787\n Kangerlussuaq',
      ['STREET_ADDRESS 45818 P.O. Box 242\n Suite 787\n Kangerlussuaq'],
    ],
    [
      'a UK postcode after the city',
      'Flat 2, 14 Strickgasse 5, London SW1A 1AA',
      ['STREET_ADDRESS 14 Strickgasse 5, London SW1A 1AA'],
    ],
    [
      'an address block under bullets',
      '• 4923 Parmova 109\n• Suite 380\n• Maribor',
      ['STREET_ADDRESS 4923 Parmova 109\n• Suite 380\n• Maribor'],
    ],
  ],
  [
    ['"via" and a count', 'Please send it via email 2 times a day.'],
    ['"via" after a count', 'We moved 3 patients via Zoom yesterday.'],
    ['a dose', 'Take 2 Tylenol 500 mg every 6 hours.'],
    ['a drug and a dose without a unit', 'Continue Metformin 500 twice daily.'],
    ['a road number', 'Route 66 is closed for repairs.'],
    ['room and floor', 'The meeting is in Room 12 on Floor 3.'],
    ['a version', 'Use Windows 10 on the front desk PC.'],
    ['an English type word with a count', 'We need 5 square feet of storage.'],
    ['a court date', 'I have 2 open court dates next week.'],
    ['a street name without a number', 'Parking on Elm Street is closed next week.'],
    ['teeth and numbers', 'Tooth 14 MOD composite, tooth 30 crown prep.'],
    ['an invoice line', 'Invoice 4021 Dentsply 3200 units shipped.'],
    ['a model and a number', 'Our autoclave model Statim 5000 needs service.'],
    ['a game score', 'She scored 12 points in Game 3.'],
    ['a bare post-office box (the US recognizer finds it)', 'Write to PO Box 12.'],
    ['a product version after a count', 'Install 2 Cerec Primescan 2 units.'],
  ],
);

/** Completes, however hostile: the bench times these; here only a bound no linear scan comes near. */
const HOSTILE_MS = 10_000;

describe('dlp international street addresses on hostile input (each megabyte completes; the bench times them)', () => {
  const cases: Array<[string, string]> = [
    ['type words and numbers', 'ul. 1 Rua 2 strasse 3 '.repeat(45_454)],
    ['almost addresses', '1 Via Aa '.repeat(111_111)],
    ['compound endings without numbers', 'Aagatan Bbvej Ccstrasse '.repeat(41_666)],
    ['numbers around capitals', '1 Aa 2 '.repeat(142_857)],
    ['boxes without lines', 'PO Box 1 '.repeat(111_111)],
    ['place lines without a street', 'Aa\n'.repeat(333_333)],
  ];
  for (const [label, text] of cases) {
    it(`handles ${label}`, () => {
      const started = performance.now();
      internationalStreetRecognizer.analyze(text, {
        part: { id: 'text', text, kind: 'body' },
        lower: text.toLowerCase(),
        headerNames: [],
      });
      expect(performance.now() - started).to.be.below(HOSTILE_MS);
    });
  }
});
