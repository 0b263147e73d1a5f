// smtp-server's input parser (exported as smtp-server/lib/smtp-stream.js, untyped): the parts smtp-data-reader.ts
// reads and replaces.
declare module 'smtp-server/lib/smtp-stream.js' {
  import type { PassThrough, Writable } from 'node:stream';

  export class SMTPStream extends Writable {
    _dataStream: (PassThrough & { byteLength: number; sizeExceeded: boolean }) | null;
    _lastBytes: Buffer | false;
    _atDataStart: boolean;
    dataBytes: number;
    /** Called by the parser for each command line; `next` reads the next one. */
    oncommand(command: Buffer, next?: () => void): void;
    /** Reads on after a message, once its data stream has been read. */
    continue(): void;
    startDataMode(maxBytes?: number): PassThrough & { byteLength: number; sizeExceeded: boolean };
    _countDataBytes(length: number): void;
    _endDataMode(chunk: Buffer | false, remainder: Buffer, callback: (err?: Error) => void): void;
    /** The DATA reader: a property here, so that it can be read off the prototype and put on an instance. */
    _feedDataStream: (this: SMTPStream, chunk: Buffer, done: (err?: Error) => void) => void;
  }
}
