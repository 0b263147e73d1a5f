// A deliberately dumb SMTP client for tests that must send exactly the bytes they choose (smuggling
// attempts, broken MIME, commands out of order). It reads one reply per command it sends.
import { connect, type Socket } from 'node:net';

export class RawSmtp {
  private buffer = '';
  private waiting?: (line: string) => void;
  private replies: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer += d.toString('latin1');
      let idx: number;
      while ((idx = this.buffer.indexOf('\r\n')) !== -1) {
        const line = this.buffer.slice(0, idx);
        this.buffer = this.buffer.slice(idx + 2);
        // Multi-line replies: "250-..." continue, "250 ..." ends.
        if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
          this.replies.push(line);
          this.flush();
        }
      }
    });
  }

  static async open(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    const socket = connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawSmtp(socket);
    await client.reply(); // greeting
    return client;
  }

  private flush(): void {
    if (this.waiting && this.replies.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.replies.shift()!);
    }
  }

  /** Next complete reply line (last line of a multi-line reply). */
  reply(timeoutMs = 10000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no SMTP reply')), timeoutMs);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.flush();
    });
  }

  /** Sends a command line (CRLF added) and returns its reply. */
  async cmd(line: string): Promise<string> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  /** Sends raw bytes as they are and returns the next reply. */
  async raw(data: string | Buffer): Promise<string> {
    this.socket.write(data);
    return this.reply();
  }

  /** Sends raw bytes without waiting for a reply. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * One message the way the tests send it: EHLO, MAIL FROM, a RCPT TO per recipient, DATA, then `message` (CRLF
 * lines, ending with CRLF) and the final dot. Returns the reply to the message; replies before it are not checked
 * (a refused command shows in that last one).
 */
export async function sendMessage(
  port: number,
  from: string,
  to: string | readonly string[],
  message: string | Buffer,
): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.cmd('EHLO client.example');
    await c.cmd(`MAIL FROM:<${from}>`);
    for (const rcpt of typeof to === 'string' ? [to] : to) await c.cmd(`RCPT TO:<${rcpt}>`);
    await c.cmd('DATA');
    return await c.raw(Buffer.concat([Buffer.from(message), Buffer.from('.\r\n')]));
  } finally {
    c.close();
  }
}

/** The queue id in a "250 … queued as ID" reply; throws with the reply when there is none. */
export function queueIdOf(reply: string): string {
  const id = /queued as ([0-9A-Za-z]+)/.exec(reply)?.[1];
  if (!id) throw new Error(`not queued: ${reply}`);
  return id;
}

/** A minimal complete message with CRLF line endings. */
export function makeMessage(
  opts: { from?: string; to?: string; subject?: string; body?: string; extraHeaders?: string[] } = {},
): string {
  const lines = [
    `From: ${opts.from ?? 'staff@clinic.example'}`,
    `To: ${opts.to ?? 'partner@example.org'}`,
    `Subject: ${opts.subject ?? 'Test message'}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@clinic.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(opts.extraHeaders ?? []),
    '',
    opts.body ?? 'Hello.',
  ];
  return lines.join('\r\n') + '\r\n';
}
