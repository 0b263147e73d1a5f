// The built-in recognizer registry, in the order they run.
import type { Recognizer } from '../types.js';
import { internationalStreetRecognizer } from './addresses.js';
import { healthRecognizers } from './health.js';
import { identifierRecognizers, labelledNumbers, NUMBER_KINDS } from './identifiers.js';
import { LABELLED_KINDS, labelledIdentifiers, labelledRecognizers, labelScanner } from './labelled.js';
import { nameRecognizers } from './names.js';
import { payloadRecognizers } from './payloads.js';

/**
 * The labelled numbers (SSN, phone, fax …) and the labelled identifiers (MRN, member ID, DOB …) in one search for all
 * their labels: one pass over the text instead of two. Their labels do not start the same way, so each kind finds
 * what it found alone.
 */
const allLabelled = labelScanner('labelled', [...NUMBER_KINDS, ...LABELLED_KINDS]);

export function builtinRecognizers(): Recognizer[] {
  return [
    ...identifierRecognizers.map((r) => (r === labelledNumbers ? allLabelled : r)),
    ...labelledRecognizers.filter((r) => r !== labelledIdentifiers),
    internationalStreetRecognizer,
    ...nameRecognizers,
    ...healthRecognizers,
    ...payloadRecognizers,
  ];
}
