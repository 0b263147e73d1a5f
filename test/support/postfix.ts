// A throwaway Debian Postfix instance on loopback for tests and benchmarks: its own config and queue in a
// temp dir, smtpd on a free port, the placement's main.cf/master.cf lines added. Needs root (or sudo -n).
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, removeDir, tempDir } from './gateway.js';

const run = promisify(execFile);

/** Postfix must run as root (its master drops to the postfix user); through `sudo -n` when we are not root. */
export function asRoot(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? [cmd, args] : ['sudo', ['-n', cmd, ...args]];
}

export async function which(cmd: string): Promise<string | undefined> {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, cmd);
    if (
      await readFile(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

export async function asRootRun(cmd: string, args: string[]): Promise<void> {
  const [c, a] = asRoot(cmd, args);
  await run(c, a);
}

function answers220(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString().startsWith('220'));
    });
    s.once('error', () => resolve(false));
  });
}

export interface Postfix {
  port: number;
  /** The instance's config directory (its queue, with pid/master.pid, is `<dir>/queue`). */
  dir: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A Postfix instance of its own: config and queue in a temp dir, smtpd on a free loopback port. `main` and
 * `master` are the placement's lines (as in docs/deploy.md); the rest only makes a throwaway instance work.
 */
export async function startPostfix(placement: {
  main: string[];
  smtpdOptions?: string[];
  master?: string[];
}): Promise<Postfix> {
  const dir = await tempDir('phigw-postfix-');
  await chmod(dir, 0o755); // the postfix user must reach its queue below it
  await mkdir(path.join(dir, 'queue'), { mode: 0o755 });
  await mkdir(path.join(dir, 'data'), { mode: 0o700 });
  const port = await freePort();
  const main = [
    'compatibility_level = 3.6',
    `queue_directory = ${dir}/queue`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'myhostname = postfix-front.test',
    'mydestination =',
    'mynetworks = 127.0.0.0/8',
    'smtpd_relay_restrictions = permit_mynetworks, reject',
    'local_transport = error:local delivery is disabled',
    'alias_maps =',
    'alias_database =',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    ...placement.main,
    '',
  ].join('\n');
  const master = [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    ...(placement.smtpdOptions ?? []).map((o) => `  -o ${o}`),
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
    ...(placement.master ?? []),
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'main.cf'), main);
  await writeFile(path.join(dir, 'master.cf'), master);
  await asRootRun('chown', ['postfix', path.join(dir, 'data')]);
  const log = () => readFile(path.join(dir, 'maillog'), 'utf8').catch(() => '(no maillog)');
  const remove = () => asRootRun('rm', ['-rf', dir]).catch(() => removeDir(dir));
  try {
    await asRootRun('postfix', ['-c', dir, 'start']);
  } catch (err) {
    const text = await log();
    await remove();
    throw new Error(
      `postfix did not start (it needs root or passwordless sudo): ${(err as Error).message}\n${text}`,
    );
  }
  const stop = async () => {
    await asRootRun('postfix', ['-c', dir, 'stop']).catch(() => undefined);
    await remove();
  };
  for (let i = 0; !(await answers220(port)); i++) {
    if (i > 100) {
      await stop();
      throw new Error('postfix smtpd did not answer');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, dir, log, stop };
}
