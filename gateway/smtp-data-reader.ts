// smtp-server's DATA reader, with its search for the end of the message done by Buffer.indexOf.
//
// smtp-server reads a message in DATA mode by testing every byte of every chunk in a JavaScript loop for a line that
// starts with a dot (the end ".", or a dot-stuffed line whose escape dot it removes). On 100 KB messages that loop was
// the intake's largest item of its own (0.23 ms a message alone, about half a millisecond under load), for what is a
// search for the two bytes "\n.". The reader below does exactly what smtp-server 3.21.6's does, step for step, and
// finds those places with one native search instead. It replaces smtp-server's method only when that method is the one
// it was written against (same source text, checked by hash): any other version keeps its own reader.
import { createHash } from 'node:crypto';
import type { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/** SHA-256 of the source text of smtp-server 3.21.6's SMTPStream.prototype._feedDataStream (ESM build). */
const REPLACED_READER = '9d8b903f9a3a63542d72e19a9e2f67009a3b1107a28d57e8e7369355454ff230';

const END_OF_DATA = Buffer.from('\r\n.\r\n');
const NEWLINE_DOT = Buffer.from('\n.');
/** How many bytes are kept back from each chunk for the next: a terminator may straddle two chunks. */
const KEPT = 4;

/**
 * One chunk in DATA mode: bytes up to a terminator go to the data stream with escape dots removed, the terminator ends
 * data mode, and the last bytes wait for the next chunk. As smtp-server's reader, which it replaces.
 */
function feedDataStream(this: SMTPStream, input: Buffer, done: (err?: Error) => void): void {
  const dataStream = this._dataStream!;
  let chunk = input;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  // A terminator as the first line ends an empty message. Only at the start of the data: once a byte was taken (or an
  // escape dot dropped), a dot that starts a chunk is content (smuggling by TCP segmentation).
  if (this._atDataStart && chunk.length >= 3 && chunk[0] === 0x2e && chunk[1] === 0x0d && chunk[2] === 0x0a) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && chunk.length >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    this._atDataStart = false;
  }
  const length = chunk.length;
  // Every dot at index 2 up to length - 3 that starts a line, in order: the terminator "\r\n.\r\n" around it ends the
  // data; a second dot after it makes it an escape dot, dropped before the rest is read again.
  for (
    let at = chunk.indexOf(NEWLINE_DOT, 1);
    at !== -1 && at + 1 < length - 2;
    at = chunk.indexOf(NEWLINE_DOT, at + 1)
  ) {
    const dot = at + 1;
    if (dot >= 2 && chunk[dot - 2] === 0x0d && chunk[dot + 1] === 0x0d && chunk[dot + 2] === 0x0a) {
      // END_OF_DATA spans dot - 2 … dot + 2: the bytes before it are the message, its last CRLF included.
      const message = chunk.subarray(0, dot);
      this._countDataBytes(message.length);
      this._endDataMode(message, chunk.subarray(dot + END_OF_DATA.length - 2), done);
      return;
    }
    if (chunk[dot + 1] === 0x2e) {
      const before = chunk.subarray(0, dot);
      this._lastBytes = false;
      this._countDataBytes(before.length);
      if (dataStream.writable) dataStream.write(before);
      const rest = chunk.subarray(dot + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  this._lastBytes = chunk.length < KEPT ? chunk : chunk.subarray(chunk.length - KEPT);
  if (this._lastBytes.length >= chunk.length) {
    done();
    return;
  }
  const ready = chunk.subarray(0, chunk.length - this._lastBytes.length);
  this._countDataBytes(ready.length);
  if (!dataStream.writable) {
    done();
    return;
  }
  if (dataStream.write(ready) || dataStream.destroyed) {
    done();
    return;
  }
  // Wait for the reader of the data; a stream destroyed meanwhile never drains, it only closes.
  const resume = (): void => {
    dataStream.removeListener('drain', resume);
    dataStream.removeListener('close', resume);
    done();
  };
  dataStream.once('drain', resume);
  dataStream.once('close', resume);
}

type DataReader = SMTPStream['_feedDataStream'];

/** Whether `reader` is the smtp-server reader feedDataStream was written against (its source text, by hash). */
export function dataReaderReplaceable(reader: unknown): boolean {
  return (
    typeof reader === 'function' &&
    createHash('sha256').update(Function.prototype.toString.call(reader)).digest('hex') === REPLACED_READER
  );
}

/** smtp-server's own reader, once installDataReader has put feedDataStream in its place. */
let replaced: DataReader | null = null;

/**
 * Puts feedDataStream in place of smtp-server's reader, once, when that reader is the version it replaces. Returns
 * whether the fast reader is in use. Anything else (another smtp-server version, a module that moved) leaves
 * smtp-server's reader as it is: the intake works the same, only slower.
 */
export async function installDataReader(): Promise<boolean> {
  if (replaced) return true;
  let stream: { prototype: { _feedDataStream: DataReader } } | undefined;
  try {
    stream = (await import('smtp-server/lib/smtp-stream.js')).SMTPStream;
  } catch {
    return false;
  }
  const reader = stream?.prototype?._feedDataStream;
  if (!stream || !dataReaderReplaceable(reader)) return false;
  replaced = reader;
  stream.prototype._feedDataStream = feedDataStream;
  return true;
}

/** smtp-server's own reader (for the tests that feed it and feedDataStream side by side). */
export async function librarysDataReader(): Promise<DataReader> {
  return replaced ?? (await import('smtp-server/lib/smtp-stream.js')).SMTPStream.prototype._feedDataStream;
}

/** The reader itself, for the tests. */
export const fastDataReader: DataReader = feedDataStream;
