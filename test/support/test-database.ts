// Runs the tests against PostgreSQL when PHIGW_TEST_DATABASE_URL is set (scripts/test-pg.sh): every data
// directory a test opens gets its own fresh database on that server. Never touches a database it did not name.
import { createHash } from 'node:crypto';
import path from 'node:path';
import knexFactory from 'knex';
import { Store } from '../../store/store.js';

/** The server for test databases (a maintenance database URL, e.g. postgres://postgres@127.0.0.1:5433/postgres). */
export const TEST_DATABASE_URL = process.env.PHIGW_TEST_DATABASE_URL || undefined;

const created = new Set<string>();
const opened: Store[] = [];

/**
 * The database of a data directory: its name follows from the directory's path, so a store re-opened on the
 * same directory (a restart, a child process, a second node) finds the same database, as with SQLite.
 */
export function databaseNameFor(dataDir: string): string {
  return `phigw_t_${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 24)}`;
}

function urlFor(name: string): string {
  const url = new URL(TEST_DATABASE_URL!);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (db: knexFactory.Knex) => Promise<T>, connections = 1): Promise<T> {
  const db = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: connections } });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

/** Creates the data directory's database if it does not exist yet; returns its URL. */
export async function ensureTestDatabase(dataDir: string): Promise<string> {
  const name = databaseNameFor(dataDir);
  if (!created.has(name)) {
    await admin(async (db) => {
      try {
        await db.raw(`CREATE DATABASE ${name}`);
      } catch (err) {
        if ((err as { code?: string }).code !== '42P04') throw err; // exists already: re-opened
      }
    });
    created.add(name);
  }
  return urlFor(name);
}

/** Drops every database this process created (end of the run), a few at a time. */
export async function dropTestDatabases(): Promise<void> {
  const names = [...created];
  created.clear();
  // A test that failed before closing its store leaves a pool that would keep reconnecting to a dropped database.
  for (const store of opened.splice(0)) await store.db.destroy().catch(() => undefined);
  await admin(async (db) => {
    for (let i = 0; i < names.length; i += 4) {
      await Promise.all(
        names.slice(i, i + 4).map((name) => db.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
      );
    }
  }, 4);
}

if (TEST_DATABASE_URL) {
  // Every Store.open without its own databaseUrl (the tests' default) goes to a per-directory database.
  const open = Store.open.bind(Store);
  Store.open = async (config, env) => {
    const store = await open(
      config.databaseUrl ? config : { ...config, databaseUrl: await ensureTestDatabase(config.dataDir) },
      env,
    );
    opened.push(store);
    return store;
  };
}

/** Mocha root hooks (loaded with --require): clean up the databases at the end of the run. */
export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(300_000);
    if (TEST_DATABASE_URL) await dropTestDatabases();
  },
};
