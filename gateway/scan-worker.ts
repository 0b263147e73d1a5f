// A scan thread: parses a message and runs the DLP analyzer on it, off the main thread, with the rule set
// the main thread has in force (sent as its YAML text). It answers with the verdict (types and positions,
// never matched text) or an error code; it never logs, stores or sends anything.
import { PassThrough } from 'node:stream';
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

export type ScanRequest =
  | { type: 'rules'; text: string }
  | { type: 'scan'; id: number; raw: Uint8Array }
  /** A streamed scan: start, its chunks in order (each answered with 'ack'), then end or abort. */
  | { type: 'scan-start'; id: number }
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };

export type ScanReply =
  | { type: 'ready' }
  | { type: 'ack'; id: number }
  | { type: 'result'; id: number; result: ScanResult }
  | { type: 'result'; id: number; error: string };

const port = parentPort!;
const data = workerData as ScanWorkerData;
let analyzer: Analyzer = analyzerFromText(data.rulesText, 'rules in force');
const scanner = new DlpScanner(
  {
    get analyzer() {
      return analyzer;
    },
  },
  {},
  'verdict',
);

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
  if (msg.type === 'scan-start') {
    const input = new PassThrough();
    input.on('error', () => undefined); // the parse reports it
    streams.set(msg.id, input);
    void scanOne(msg.id, input);
    return;
  }
  if (msg.type === 'chunk' || msg.type === 'end' || msg.type === 'abort') {
    const input = streams.get(msg.id);
    if (!input) return;
    if (msg.type === 'chunk') {
      const ack = () => port.postMessage({ type: 'ack', id: msg.id } satisfies ScanReply);
      if (input.write(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength))) ack();
      else input.once('drain', ack);
      return;
    }
    streams.delete(msg.id);
    if (msg.type === 'end') input.end();
    else input.destroy(new Error('aborted'));
    return;
  }
  void scanOne(msg.id, Buffer.from(msg.raw.buffer, msg.raw.byteOffset, msg.raw.byteLength));
});

/** Streamed scans in progress: the parser's input, fed by 'chunk' messages. */
const streams = new Map<number, PassThrough>();

async function scanOne(id: number, raw: Buffer | PassThrough): Promise<void> {
  try {
    // Attachment bodies the scan never reads (too large, images, unknown binaries) are counted, not kept.
    const parsed = await parseForScan(raw, PARSE_OPTIONS, DEFAULT_EXTRACT_LIMITS.maxAttachmentBytes);
    const result = { verdict: await scanner.scan(parsed), headline: headlineOf(parsed) };
    port.postMessage({ type: 'result', id, result } satisfies ScanReply);
  } catch (err) {
    // A code only: library messages may quote the input they choked on.
    port.postMessage({ type: 'result', id, error: errorCode(err) } satisfies ScanReply);
  } finally {
    streams.delete(id);
  }
}

warmAnalyzer(analyzer);
port.postMessage({ type: 'ready' } satisfies ScanReply);
