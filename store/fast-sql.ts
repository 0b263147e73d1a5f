// Hot-path SQL without the query builder. knex costs ~40 µs per statement in building and dispatch, against
// ~2 µs for a prepared better-sqlite3 statement; every message runs about twenty. On SQLite, inside a write
// transaction (which owns the store's single connection), these run directly on that connection, and a SELECT
// outside one takes that connection from knex's pool for the moment it runs; writes outside a transaction, and
// everything on PostgreSQL, go through knex.raw with the same SQL. Never for user-supplied SQL.
import type { Knex } from 'knex';

interface Statement {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  all(...params: unknown[]): unknown[];
}

export interface SqliteConnection {
  prepare(sql: string): unknown;
}

/** The live connection of a SQLite store, keyed by its knex config (transaction clients share that object). */
const connections = new WeakMap<object, { conn?: SqliteConnection }>();

/** Called by the store: `holder.conn` is kept current by the pool's afterCreate. */
export function registerSqliteConnection(knexConfig: object, holder: { conn?: SqliteConnection }): void {
  connections.set(knexConfig, holder);
}

type Db = Knex | Knex.Transaction;

/** The connection to run on directly, or undefined to go through knex. */
/** knex's client config object: the same object on the root client and on every transaction's client. */
export function clientConfig(db: Db): { client?: unknown } {
  return (db.client as { config: { client?: unknown } }).config;
}

function direct(db: Db): SqliteConnection | undefined {
  if (!(db as Knex.Transaction).isTransaction) return undefined;
  return connections.get(clientConfig(db))?.conn;
}

function isPg(db: Db): boolean {
  return clientConfig(db).client === 'pg';
}

/** SQLite binds numbers, strings, buffers and null only. */
function sqliteValue(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

function statement(conn: SqliteConnection, sql: string): Statement {
  return conn.prepare(sql) as Statement;
}

/**
 * Rows of a SELECT. `?` placeholders. On SQLite outside a transaction (a read on a message's path: a key lookup, a
 * blob), the statement runs on the store's one connection taken from knex's pool for the moment it runs, as a
 * transaction takes it, so it never reads inside another writer's open transaction.
 */
export async function selectRows<T>(db: Db, sql: string, params: readonly unknown[] = []): Promise<T[]> {
  const values = params.map(sqliteValue);
  const conn = direct(db);
  if (conn) return statement(conn, sql).all(...values) as T[];
  if (!(db as Knex.Transaction).isTransaction && !isPg(db) && connections.get(clientConfig(db))?.conn) {
    const client = db.client as {
      acquireConnection(): Promise<SqliteConnection>;
      releaseConnection(conn: SqliteConnection): Promise<unknown>;
    };
    const pooled = await client.acquireConnection();
    try {
      return statement(pooled, sql).all(...values) as T[];
    } finally {
      await client.releaseConnection(pooled);
    }
  }
  const res = (await db.raw(sql, params as Knex.RawBinding[])) as T[] | { rows: T[] };
  return Array.isArray(res) ? res : res.rows;
}

/** Runs an UPDATE or DELETE; resolves with the number of rows changed. */
export async function execute(db: Db, sql: string, params: readonly unknown[] = []): Promise<number> {
  const conn = direct(db);
  if (conn) return statement(conn, sql).run(...params.map(sqliteValue)).changes;
  const res = (await db.raw(sql, params as Knex.RawBinding[])) as { rowCount?: number; changes?: number };
  return res.rowCount ?? res.changes ?? 0;
}

const q = (name: string): string => `"${name}"`;
const insertSql = new Map<string, string>();

/** Inserts one row; resolves with its integer `id` when the table has one (`returnId`). */
export async function insertRow(
  db: Db,
  table: string,
  row: Record<string, unknown>,
  returnId = false,
): Promise<number | undefined> {
  const columns = Object.keys(row);
  const key = `${table}\u0000${columns.join(',')}\u0000${returnId}`;
  let sql = insertSql.get(key);
  if (sql === undefined) {
    sql = `insert into ${q(table)} (${columns.map(q).join(', ')}) values (${columns.map(() => '?').join(', ')})`;
    insertSql.set(key, sql);
  }
  const values = columns.map((c) => row[c]);
  const conn = direct(db);
  if (conn) {
    const info = statement(conn, sql).run(...values.map(sqliteValue));
    return returnId ? Number(info.lastInsertRowid) : undefined;
  }
  if (returnId && isPg(db)) {
    const res = (await db.raw(`${sql} returning "id"`, values as Knex.RawBinding[])) as {
      rows: Array<{ id: number }>;
    };
    return Number(res.rows[0]!.id);
  }
  if (returnId) {
    const [id] = (await db(table).insert(row).returning('id')) as Array<{ id: number } | number>;
    return typeof id === 'number' ? id : Number(id!.id);
  }
  await db.raw(sql, values as Knex.RawBinding[]);
  return undefined;
}

/** `update table set … where id in (…)`; resolves with the number of rows changed. */
export function updateByIds(
  db: Db,
  table: string,
  ids: ReadonlyArray<string | number>,
  set: Record<string, unknown>,
  extraWhere = '',
  extraParams: readonly unknown[] = [],
): Promise<number> {
  const columns = Object.keys(set);
  const sql =
    `update ${q(table)} set ${columns.map((c) => `${q(c)} = ?`).join(', ')} ` +
    `where ${q('id')} in (${ids.map(() => '?').join(', ')})${extraWhere ? ` and ${extraWhere}` : ''}`;
  return execute(db, sql, [...columns.map((c) => set[c]), ...ids, ...extraParams]);
}
