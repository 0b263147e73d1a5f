// The intake's DATA reader (gateway/smtp-data-reader.ts) against smtp-server's own, fed the same SMTP input in the
// same chunks: commands, message bytes, byte counts and the chunk a message ends in must all be the same.
import { expect } from 'chai';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import {
  dataReaderReplaceable,
  fastDataReader,
  installDataReader,
  librarysDataReader,
} from '../../gateway/smtp-data-reader.js';
import { randomFrom } from '../support/random.js';

type Reader = typeof fastDataReader;

/**
 * What a parser makes of `chunks`, as smtp-server's connection drives it: each DATA command starts data mode, and the
 * next command is read once the message's stream has ended. One line per command and per message.
 */
async function readAll(reader: Reader, chunks: readonly Buffer[], maxBytes = Infinity): Promise<string[]> {
  const parser = new SMTPStream();
  parser._feedDataStream = reader;
  const events: string[] = [];
  // (The parser passes no `next` for a last line without its newline, read when the input ends.)
  parser.oncommand = (command: Buffer, next?: () => void): void => {
    const line = command.toString('latin1');
    events.push(`command ${JSON.stringify(line)}`);
    if (line.toUpperCase() !== 'DATA') return next?.();
    const data = parser.startDataMode(maxBytes);
    const parts: Buffer[] = [];
    data.on('data', (part: Buffer) => parts.push(part));
    data.on('end', () => {
      const message = Buffer.concat(parts);
      events.push(
        `message ${message.length} ${JSON.stringify(message.toString('latin1'))} ` +
          `bytes=${data.byteLength} exceeded=${data.sizeExceeded}`,
      );
      // Later, as the connection does once the message is queued: a continue() from inside the parser's own call
      // would be overwritten by it.
      setImmediate(() => parser.continue());
    });
    next?.();
  };
  const finished = new Promise<void>((resolve, reject) => {
    parser.once('finish', resolve);
    parser.once('error', reject);
  });
  for (const chunk of chunks) parser.write(chunk);
  parser.end();
  await finished;
  // Escape dots are read on in later turns of the event loop, and a message ends in one.
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  events.push(`left ${JSON.stringify(parser._lastBytes ? parser._lastBytes.toString('latin1') : '')}`);
  return events;
}

/** The input cut at random places into chunks (a chunk may be a single byte). */
function cut(input: Buffer, random: (n: number) => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < input.length;) {
    const size = 1 + random(random(10) < 3 ? 4 : 40);
    chunks.push(input.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('intake DATA reader (smtp-server reader with a native search)', () => {
  /** smtp-server's own reader (other tests in this process may have put the new one in its place already). */
  let librarys: Reader;
  before(async () => {
    librarys = await librarysDataReader();
  });

  it('is in use with the smtp-server version it was written against', async () => {
    expect(
      dataReaderReplaceable(librarys),
      'smtp-server changed its DATA reader: check gateway/smtp-data-reader.ts',
    ).to.equal(true);
    expect(await installDataReader()).to.equal(true);
    expect(SMTPStream.prototype._feedDataStream).to.equal(fastDataReader);
    // Put in place once: smtp-server's own stays at hand.
    expect(await installDataReader()).to.equal(true);
    expect(await librarysDataReader()).to.equal(librarys);
  });

  it('is not put in place of a reader it was not written against', () => {
    expect(dataReaderReplaceable(function other() {})).to.equal(false);
    expect(dataReaderReplaceable(fastDataReader)).to.equal(false);
    expect(dataReaderReplaceable(undefined)).to.equal(false);
  });

  // Inputs where each of the reader's cases happens, each in one chunk and byte by byte.
  const cases: Array<[string, string]> = [
    ['a plain message', 'DATA\r\nhello\r\nworld\r\n.\r\nQUIT\r\n'],
    ['an empty message', 'DATA\r\n.\r\nQUIT\r\n'],
    ['a first line of one escaped dot', 'DATA\r\n..\r\nrest\r\n.\r\nQUIT\r\n'],
    ['escape dots on several lines', 'DATA\r\n..a\r\nb\r\n..\r\n...c\r\n.\r\nNOOP\r\n'],
    ['a dot inside lines, and after a bare LF', 'DATA\r\na.b\r\n.x\n.y\r\n.\r\nQUIT\r\n'],
    ['the smuggling ends that are not an end', 'DATA\r\na\n.\nb\r\n.\nc\n.\r\nd\r.\r\ne\r\n.\rf\r\n.\r\n'],
    // (Not a second DATA in the same chunk: a client waits for 354, and smtp-server's continue() loses the second
    // message's continuation when it ends within the first's.)
    ['a message with commands after it in the same chunk', 'DATA\r\none\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n'],
    ['a message without its end', 'DATA\r\nno end here\r\n'],
    ['an end right after DATA', 'DATA\r\n.\r\n'],
  ];
  for (const [name, text] of cases)
    it(`reads ${name} as smtp-server does, whole and byte by byte`, async () => {
      const input = Buffer.from(text, 'latin1');
      const bytes = [...input].map((b) => Buffer.from([b]));
      const expected = await readAll(librarys, [input]);
      expect(await readAll(fastDataReader, [input])).to.deep.equal(expected);
      expect(await readAll(fastDataReader, bytes)).to.deep.equal(await readAll(librarys, bytes));
      // The case happened: smtp-server's reader read a message (or, without an end, kept the input in data mode).
      expect(expected.join('\n')).to.match(/message|left/);
    });

  it('reads the plain message byte for byte', async () => {
    const events = await readAll(fastDataReader, [Buffer.from('DATA\r\nhello\r\n..dot\r\n.\r\n')]);
    expect(events).to.deep.equal([
      'command "DATA"',
      'message 13 "hello\\r\\n.dot\\r\\n" bytes=13 exceeded=false',
      'left ""',
    ]);
  });

  it('counts bytes past the size limit alike', async () => {
    const input = Buffer.from(`DATA\r\n${'x'.repeat(200)}\r\n.\r\nQUIT\r\n`);
    const fast = await readAll(fastDataReader, cut(input, randomFrom(7)), 100);
    expect(fast).to.deep.equal(await readAll(librarys, cut(input, randomFrom(7)), 100));
    expect(fast.join('\n')).to.contain('exceeded=true');
  });

  it('reads 3,000 random inputs in random chunks as smtp-server does', async function () {
    this.timeout(60_000);
    const random = randomFrom(20261201);
    // Pieces that make every boundary the reader looks at: dots, CR and LF alone and together, commands.
    const pieces = [
      '.',
      '.',
      '..',
      '\r\n',
      '\r',
      '\n',
      '\r\n.\r\n',
      '\r\n.',
      '.\r\n',
      'a',
      'text',
      'NOOP\r\n',
      'QUIT\r\n',
    ];
    let messages = 0;
    for (let n = 0; n < 3000; n++) {
      let text = 'DATA\r\n';
      const count = 1 + random(40);
      for (let i = 0; i < count; i++) text += pieces[random(pieces.length)];
      const input = Buffer.from(text, 'latin1');
      const seed = random(2 ** 31);
      const expected = await readAll(librarys, cut(input, randomFrom(seed)));
      const got = await readAll(fastDataReader, cut(input, randomFrom(seed)));
      expect(got, JSON.stringify(text)).to.deep.equal(expected);
      messages += expected.filter((e) => e.startsWith('message')).length;
    }
    // Most inputs did end their message (not only leave the parser in data mode).
    expect(messages).to.be.greaterThan(2000);
  });
});
