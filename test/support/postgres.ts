// A PostgreSQL server for tests that need one: the server of PHIGW_TEST_DATABASE_URL when set, else a
// throwaway cluster (Debian's `postgresql`: initdb in a temp dir, loopback, a free port). Never a real server's data.
import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './gateway.js';
import { TEST_DATABASE_URL } from './test-database.js';

const run = promisify(execFile);

export interface TestPostgres {
  /** URL of a maintenance database (`postgres`) on the server. */
  url: string;
  stop(): Promise<void>;
}

/** Newest installed server binaries (/usr/lib/postgresql/<major>/bin); throws, saying what to install. */
async function binDir(): Promise<string> {
  const majors = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const newest = majors
    .map(Number)
    .filter(Number.isFinite)
    .sort((a, b) => b - a)[0];
  if (newest === undefined)
    throw new Error('PostgreSQL server not installed: apt-get install postgresql (CI does, see .ci/run)');
  return `/usr/lib/postgresql/${newest}/bin`;
}

/**
 * initdb refuses to run as root: as root the cluster belongs to the `postgres` user (runuser), otherwise to
 * whoever runs the tests.
 */
async function asOwner(cmd: string, args: string[]): Promise<void> {
  if (process.getuid?.() === 0) await run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
  else await run(cmd, args);
}

export async function startTestPostgres(): Promise<TestPostgres> {
  if (TEST_DATABASE_URL) return { url: TEST_DATABASE_URL, stop: () => Promise.resolve() };
  const bin = await binDir();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'phigw-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  await asOwner(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  await asOwner(path.join(bin, 'pg_ctl'), [
    '-D',
    data,
    '-w',
    '-l',
    path.join(dir, 'server.log'),
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
    'start',
  ]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await asOwner(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
