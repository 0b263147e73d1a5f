// Table-driven recognizer tests: positive rows with the findings expected, negative rows with none, and a
// check that there are at least as many negatives as positives (tests follow the threat model).
import { expect } from 'chai';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import type { Finding, Recognizer } from '../../dlp/types.js';

export type Row = [label: string, text: string, expected: string[]];

export function recognizerTable(recognizers: readonly Recognizer[]) {
  const compiled = compileRecognizers(recognizers);

  function findAll(text: string): Finding[] {
    return analyzePart(compiled, { id: 'text', text, kind: 'body' });
  }

  /** Findings of these types scoring at least `minScore` (the rules' default threshold is 0.5), as "TYPE text". */
  function counted(text: string, types: readonly string[], minScore = 0.5): string[] {
    return findAll(text)
      .filter((f) => f.score >= minScore && types.includes(f.type))
      .map((f) => `${f.type} ${text.slice(f.start, f.end)}`);
  }

  function table(
    title: string,
    types: string[],
    positives: Row[],
    negatives: Array<[string, string]>,
    minScore = 0.5,
  ): void {
    describe(title, () => {
      for (const [label, text, expected] of positives) {
        it(`finds ${label}`, () => expect(counted(text, types, minScore)).to.deep.equal(expected));
      }
      for (const [label, text] of negatives) {
        it(`finds nothing in ${label}`, () => expect(counted(text, types, minScore)).to.deep.equal([]));
      }
      it('has at least as many negative rows as positive rows', () =>
        expect(negatives.length).to.be.at.least(positives.length));
    });
  }

  return { compiled, findAll, counted, table };
}
