// A throwaway Haraka (the devDependency) for `npm run bench:peers`: a pass-through relay on a free loopback
// port that forwards each message to the benchmark's next hop before answering 250. Never listens off loopback.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { generate } from 'selfsigned';
import { freePort, removeDir, tempDir } from '../test/support/gateway.js';

const run = promisify(execFile);

export interface Haraka {
  port: number;
  /** The cluster master; its `nodes` workers are its children. */
  pid: number;
  /** What the instance printed (warnings and errors only). */
  output(): string;
  stop(): Promise<void>;
}

/** Where the Haraka package's command is, or undefined when it is not installed. */
export function harakaBin(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve('Haraka/package.json');
    return path.join(path.dirname(pkg), 'bin', 'haraka');
  } catch {
    return undefined;
  }
}

function answers220(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    // A cluster master may accept before its worker is ready to greet: give up on this try after 2 s.
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 2000);
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      s.destroy();
      resolve(d.toString().startsWith('220'));
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * The instance: plugins `relay` (ACL: 127.0.0.1 may relay) and `queue/smtp_forward` (to `nextHopPort`, for
 * relayed mail too), nothing else — no DNS-based checks, no TLS, no spam or header plugins. `nodes`: Haraka's
 * cluster workers, default 1 (one process handles all connections, as in phi-gateway); a number or 'cpus'.
 */
export async function startHaraka(opts: { nextHopPort: number; nodes?: string }): Promise<Haraka> {
  const bin = harakaBin();
  if (!bin) throw new Error('Haraka is not installed (npm devDependency "Haraka")');
  const dir = await tempDir('phigw-haraka-');
  const config = path.join(dir, 'config');
  // `haraka -i` writes the stock instance (config/ with every default); the files below then replace some.
  await run(process.execPath, [bin, '-i', dir]);
  const port = await freePort();
  const pems = await generate([{ name: 'commonName', value: 'haraka-peer.test' }], {
    keySize: 2048,
    algorithm: 'sha256',
  });
  const files: Record<string, string> = {
    'smtp.ini': [`listen=127.0.0.1:${port}`, `nodes=${opts.nodes ?? 1}`, 'force_shutdown_timeout=3', ''].join(
      '\n',
    ),
    plugins: ['relay', 'queue/smtp_forward', ''].join('\n'),
    'relay.ini': '[relay]\nacl=true\n',
    relay_acl_allow: '127.0.0.1/32\n',
    'smtp_forward.ini': [
      `host=127.0.0.1`,
      `port=${opts.nextHopPort}`,
      // Relayed mail goes through the queue_outbound hook: forward it too (not Haraka's MX delivery).
      'enable_outbound=true',
      'enable_tls=false',
      '',
    ].join('\n'),
    'log.ini': '[main]\nlevel=warn\ntimestamps=false\nformat=default\n',
    me: 'haraka-peer.test\n',
    // Haraka loads a server certificate at start and logs errors without one (the load never uses TLS).
    'tls_key.pem': pems.private,
    'tls_cert.pem': pems.cert,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(config, name), text);
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [bin, '-c', dir], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const stop = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await removeDir(dir);
  };
  for (let i = 0; !(await answers220(port)); i++) {
    if (gone || i > 300) {
      await stop();
      throw new Error(`haraka did not answer on port ${port}: ${out.slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, pid: child.pid!, output: () => out, stop };
}
