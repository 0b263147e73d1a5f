// The scan stage's contract with the detector. The verdict is the shape `phi-gateway scan --json` prints;
// findings carry positions, scores and rule ids, never the matched text.
import type { ParsedMail } from 'mailparser';

export type ScanAction = 'clean' | 'protect' | 'quarantine' | 'block' | 'log';

export interface Finding {
  type: string;
  /** Which decoded part of the message: 'subject', 'text', 'html', 'attachment:<n>'. */
  part: string;
  start: number;
  end: number;
  score: number;
  rule: string | null;
}

export interface ScanVerdict {
  phi: boolean;
  score: number;
  action: ScanAction;
  findings: Finding[];
  /** Rule ids that decided the verdict. */
  rules: string[];
}

export interface Scanner {
  scan(parsed: ParsedMail): Promise<ScanVerdict>;
}

/**
 * The scanner until detection lands: every message is clean. It keeps the final interface so the
 * pipeline, audit and trace headers are already shaped for real verdicts.
 */
export const cleanScanner: Scanner = {
  scan: () => Promise.resolve({ phi: false, score: 0, action: 'clean', findings: [], rules: [] }),
};
