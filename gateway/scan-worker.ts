// A scan thread: parses a message and runs the DLP analyzer on it, off the main thread, with the rule set
// the main thread has in force (sent as its YAML text). It answers with the verdict (types and positions,
// never matched text) or an error code; it never logs, stores or sends anything.
import { parentPort, workerData } from 'node:worker_threads';
import { errorCode } from '../config/errors.js';
import type { Analyzer } from '../dlp/analyzer.js';
import { parseForScan } from './bounded-parse.js';
import { DEFAULT_EXTRACT_LIMITS } from './extract.js';
import { PARSE_OPTIONS } from './pipeline.js';
import { analyzerFromText, warmAnalyzer } from './rules.js';
import { DlpScanner, headlineOf, type ScanResult } from './scan.js';

export interface ScanWorkerData {
  rulesText: string;
}

export type ScanRequest = { type: 'rules'; text: string } | { type: 'scan'; id: number; raw: Uint8Array };

export type ScanReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: ScanResult }
  | { type: 'result'; id: number; error: string };

const port = parentPort!;
const data = workerData as ScanWorkerData;
let analyzer: Analyzer = analyzerFromText(data.rulesText, 'rules in force');
const scanner = new DlpScanner({
  get analyzer() {
    return analyzer;
  },
});

port.on('message', (msg: ScanRequest) => {
  if (msg.type === 'rules') {
    // The main thread validated this text before putting it in force; a failure here keeps the old rules.
    try {
      analyzer = analyzerFromText(msg.text, 'rules in force');
    } catch {
      // keep the rules in force
    }
    return;
  }
  void (async () => {
    try {
      const raw = Buffer.from(msg.raw.buffer, msg.raw.byteOffset, msg.raw.byteLength);
      // Attachment bodies the scan never reads (too large, images, unknown binaries) are counted, not kept.
      const parsed = await parseForScan(raw, PARSE_OPTIONS, DEFAULT_EXTRACT_LIMITS.maxAttachmentBytes);
      const result = { verdict: await scanner.scan(parsed), headline: headlineOf(parsed) };
      port.postMessage({ type: 'result', id: msg.id, result } satisfies ScanReply);
    } catch (err) {
      // A code only: library messages may quote the input they choked on.
      port.postMessage({ type: 'result', id: msg.id, error: errorCode(err) } satisfies ScanReply);
    }
  })();
});

warmAnalyzer(analyzer);
port.postMessage({ type: 'ready' } satisfies ScanReply);
