// The built-in recognizer registry, in the order they run.
import type { Recognizer } from '../types.js';
import { internationalStreetRecognizer } from './addresses.js';
import { healthRecognizers } from './health.js';
import { identifierRecognizers } from './identifiers.js';
import { labelledRecognizers } from './labelled.js';
import { nameRecognizers } from './names.js';
import { payloadRecognizers } from './payloads.js';

export function builtinRecognizers(): Recognizer[] {
  return [
    ...identifierRecognizers,
    ...labelledRecognizers,
    internationalStreetRecognizer,
    ...nameRecognizers,
    ...healthRecognizers,
    ...payloadRecognizers,
  ];
}
