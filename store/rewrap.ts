// Master key rotation, second half: re-seals every file and value still under a retired master key with the
// current one, so the retired keys can be deleted. Safe while the gateway runs; never holds plaintext on disk.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../config/errors.js';
import { deleteRetiredKeys } from './master-key.js';
import { syncDir } from './sealed-file.js';
import type { SealedArea, Store } from './store.js';

export interface RewrapResult {
  /** Re-sealed under the current key. */
  files: number;
  values: number;
  /** Items that vanished meanwhile (delivered, deleted) — nothing to do for them. */
  gone: number;
}

const AREAS: SealedArea[] = ['spool', 'blobs', 'outbox'];

async function* sealedUnderOldKeys(
  store: Store,
): AsyncGenerator<{ area: SealedArea; id: string; plain: Buffer }> {
  for (const area of AREAS) {
    const { ids } = await store.scanArea(area);
    for (const id of ids) {
      let data: Buffer;
      try {
        data = await readFile(path.join(store.areaDir(area), id));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      const { plain, keyIndex } = store.openSealedKeyIndex(data, id);
      if (keyIndex > 0) yield { area, id, plain };
    }
  }
}

async function inlineUnderOldKeys(
  store: Store,
): Promise<Array<{ area: string; id: string; data: Buffer; plain: Buffer }>> {
  const rows = (await store.db('sealed_inline').select('area', 'id', 'data')) as Array<{
    area: string;
    id: string;
    data: Buffer;
  }>;
  const out = [];
  for (const row of rows) {
    const { plain, keyIndex } = store.openSealedKeyIndex(Buffer.from(row.data), row.id);
    if (keyIndex > 0) out.push({ ...row, plain });
  }
  return out;
}

interface ValueColumn {
  table: string;
  key: string;
  column: string;
  purpose: (row: Record<string, unknown>) => string;
}

// Everything Store.encryptValue wrote. Pending TOTP enrolments (web_sessions) are short-lived and are not
// re-wrapped: one that straddles a key retirement simply starts again.
const VALUE_COLUMNS: ValueColumn[] = [
  { table: 'users', key: 'id', column: 'totp_secret', purpose: (r) => `totp:${String(r.id)}` },
  {
    table: 'user_keys',
    key: 'user_id',
    column: 'wrapped_private',
    purpose: (r) => `user-key:${String(r.user_id)}`,
  },
];

/** Re-seals everything still under a retired key with the current key. Repeatable; returns counts. */
export async function rewrapAll(store: Store): Promise<RewrapResult> {
  const result: RewrapResult = { files: 0, values: 0, gone: 0 };
  const touched = new Set<SealedArea>();
  for await (const { area, id, plain } of sealedUnderOldKeys(store)) {
    // A file the gateway deletes meanwhile must not come back: re-check just before replacing it
    // (a deletion in the remaining window leaves an orphan, which spool recovery removes).
    if (!(await stat(path.join(store.areaDir(area), id)).catch(() => undefined))) {
      result.gone++;
      continue;
    }
    await store.seal(area, id, plain);
    touched.add(area);
    result.files++;
  }
  for (const a of touched) await syncDir(store.areaDir(a));
  // Sealed content kept in the database (small spooled messages): re-sealed in place, unless it changed or
  // went meanwhile (compare-and-set on the old bytes).
  for (const row of await inlineUnderOldKeys(store)) {
    const changed = await store.write(
      (trx) =>
        trx('sealed_inline')
          .where({ area: row.area, id: row.id, data: row.data })
          .update({ data: store.sealToBuffer(row.id, row.plain) }),
      { durable: true },
    );
    if (changed > 0) result.files++;
    else result.gone++;
  }
  for (const col of VALUE_COLUMNS) {
    const rows = (await store.db(col.table).whereNotNull(col.column).select(col.key, col.column)) as Array<
      Record<string, unknown>
    >;
    for (const row of rows) {
      const value = String(row[col.column]);
      const purpose = col.purpose(row);
      const { plain, keyIndex } = store.decryptValueWith(purpose, value);
      if (keyIndex === 0) continue;
      const changed = await store.write(
        (trx) =>
          trx(col.table)
            .where({ [col.key]: row[col.key], [col.column]: value })
            .update({ [col.column]: store.encryptValue(purpose, plain) }),
        { durable: true },
      );
      if (changed > 0) result.values++;
      else result.gone++;
    }
  }
  return result;
}

/** How many files and values still need a retired key. */
export async function countUnderOldKeys(store: Store): Promise<number> {
  let n = 0;
  for await (const item of sealedUnderOldKeys(store)) if (item) n++;
  n += (await inlineUnderOldKeys(store)).length;
  for (const col of VALUE_COLUMNS) {
    const rows = (await store.db(col.table).whereNotNull(col.column).select(col.key, col.column)) as Array<
      Record<string, unknown>
    >;
    for (const row of rows)
      if (store.decryptValueWith(col.purpose(row), String(row[col.column])).keyIndex > 0) n++;
  }
  return n;
}

/** Deletes the retired keys, but only when nothing needs them any more. */
export async function retireOldKeys(store: Store): Promise<string[]> {
  const left = await countUnderOldKeys(store);
  if (left > 0)
    throw new GatewayError(
      'MASTER_KEY_IN_USE',
      `${left} item(s) are still under a retired master key; reload the gateway (SIGHUP), run "master-key rewrap", then retire`,
    );
  const ids = await deleteRetiredKeys(store.dataDir);
  await store.reloadKeys();
  return ids;
}
