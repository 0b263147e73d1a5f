// DLP rule versions for the admin pages: validate a rule set (YAML or data), publish it as a new
// append-only version and write it atomically to the rules file the gateway hot-reloads, drafts, rollback
// and per-rule counts from message verdicts. Audit entries carry version and rule ids, never rule text.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseDocument, stringify } from 'yaml';
import { activeRulesFile, rulesFileInForce } from '../config/rules-file.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { Analyzer } from '../dlp/analyzer.js';
import { ruleSetSchema, type RuleSet } from '../dlp/rules.js';
import { checkPatternSafety } from '../dlp/safe-regex.js';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';

export interface RuleVersion {
  id: number;
  yaml: string;
  author: string;
  reason: string;
  kind: 'import' | 'publish' | 'rollback';
  parentId: number | null;
  rollbackOf: number | null;
  createdAt: number;
}

export interface RuleDraft {
  author: string;
  yaml: string;
  reason: string;
  baseVersion: number | null;
  updatedAt: number;
}

/** One problem with a rule set: `path` is the zod path ("rules.2.minScore", "mrnFormats.0") or "yaml". */
export interface RuleError {
  path: string;
  message: string;
}

export type Checked = { ok: true; ruleSet: RuleSet; analyzer: Analyzer } | { ok: false; errors: RuleError[] };

/** Thrown by publish/saveDraft: the rule set is invalid (422), or someone else published first (409). */
export class RulesRefused extends Error {
  override name = 'RulesRefused';
  constructor(
    readonly status: 400 | 409 | 422,
    readonly errors: RuleError[],
  ) {
    super(errors.map((e) => `${e.path}: ${e.message}`).join('; '));
  }
}

export const MIN_REASON = 3;
export const MAX_REASON = 500;
/** The largest rule file accepted from an admin, in bytes. */
export const MAX_RULES_BYTES = 256 * 1024;

/** Validates rule-set data: schema (every issue with its path), pattern safety, unique ids, compilation. */
export function checkRuleSet(data: unknown): Checked {
  const result = ruleSetSchema.safeParse(data);
  if (!result.success) {
    return {
      ok: false,
      errors: result.error.issues.map((i) => ({
        path: i.path.join('.') || '(top level)',
        message: i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : i.message,
      })),
    };
  }
  const ruleSet = result.data;
  const errors: RuleError[] = [];
  ruleSet.mrnFormats.forEach((f, i) => {
    const problem = checkPatternSafety(f);
    if (problem) errors.push({ path: `mrnFormats.${i}`, message: `pattern refused: ${problem}` });
  });
  const seen = new Set<string>();
  ruleSet.rules.forEach((r, i) => {
    if (seen.has(r.id)) errors.push({ path: `rules.${i}.id`, message: `rule id "${r.id}" is used twice` });
    seen.add(r.id);
  });
  if (errors.length > 0) return { ok: false, errors };
  try {
    return { ok: true, ruleSet, analyzer: new Analyzer(ruleSet) };
  } catch (err) {
    return { ok: false, errors: [{ path: '(top level)', message: (err as Error).message }] };
  }
}

/** Parses YAML text and validates it. */
export function checkRuleYaml(text: string): Checked {
  if (Buffer.byteLength(text) > MAX_RULES_BYTES)
    return { ok: false, errors: [{ path: 'yaml', message: `longer than ${MAX_RULES_BYTES / 1024} KB` }] };
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    return {
      ok: false,
      errors: doc.errors.map((e) => ({
        path: 'yaml',
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
      })),
    };
  return checkRuleSet(doc.toJS());
}

/** YAML text for rule-set data that came as JSON (the API); YAML that came as text is kept as written. */
export function ruleSetToYaml(data: unknown): string {
  return stringify(data, { lineWidth: 0 });
}

/** Rule ids added, removed or changed between two rule sets, and the top-level lists that changed. */
export function changedIds(before: RuleSet | null, after: RuleSet): { rules: string[]; lists: string[] } {
  const old = new Map((before?.rules ?? []).map((r) => [r.id, r]));
  const now = new Map(after.rules.map((r) => [r.id, r]));
  const rules = new Set<string>();
  for (const [id, r] of now) if (!isDeepStrictEqual(old.get(id), r)) rules.add(id);
  for (const id of old.keys()) if (!now.has(id)) rules.add(id);
  const lists = (['allow', 'deny', 'mrnFormats'] as const).filter(
    (k) => !isDeepStrictEqual(before?.[k] ?? [], after[k]),
  );
  return { rules: [...rules].sort(), lists: [...lists] };
}

interface VersionRow {
  id: number;
  yaml: string;
  author: string;
  reason: string;
  kind: RuleVersion['kind'];
  parent_id: number | null;
  rollback_of: number | null;
  created_at: number | string;
}

function toVersion(r: VersionRow): RuleVersion {
  return {
    id: Number(r.id),
    yaml: r.yaml,
    author: r.author,
    reason: r.reason,
    kind: r.kind,
    parentId: r.parent_id === null ? null : Number(r.parent_id),
    rollbackOf: r.rollback_of === null ? null : Number(r.rollback_of),
    createdAt: Number(r.created_at),
  };
}

/** Writes `text` to a temp file next to `file` and fsyncs it; returns the temp path to rename. */
async function writeTemp(file: string, text: string): Promise<string> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', 0o640);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function checkReason(reason: unknown): RuleError | null {
  const r = typeof reason === 'string' ? reason.trim() : '';
  if (r.length < MIN_REASON) return { path: 'reason', message: 'say briefly why (at least 3 characters)' };
  if (r.length > MAX_REASON)
    return { path: 'reason', message: `keep the reason under ${MAX_REASON} characters` };
  return null;
}

export class RulesService {
  /** The file a publish writes and the gateway watches. */
  readonly file: string;

  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
  ) {
    this.file = activeRulesFile(config);
  }

  /** The first use imports the file in force as version 1, by 'system'. */
  async ensureImported(): Promise<void> {
    const any = (await this.store.db('rule_versions').first('id')) as { id: number } | undefined;
    if (any) return;
    const source = rulesFileInForce(this.config);
    const yaml = await readFile(source, 'utf8');
    await this.store.write(async (trx) => {
      if (await trx('rule_versions').first('id')) return;
      const [id] = (await trx('rule_versions').insert(
        {
          yaml,
          author: 'system',
          reason: `imported from ${path.basename(source)} at first use`,
          kind: 'import',
          parent_id: null,
          rollback_of: null,
          created_at: Date.now(),
        },
        ['id'],
      )) as Array<{ id: number } | number>;
      const version = typeof id === 'object' ? id.id : id;
      await appendAudit(trx, {
        type: 'rules.imported',
        actor: 'system',
        detail: { version: Number(version) },
      });
    });
  }

  async current(): Promise<RuleVersion> {
    await this.ensureImported();
    const row = (await this.store.db('rule_versions').orderBy('id', 'desc').first()) as VersionRow;
    return toVersion(row);
  }

  async list(): Promise<RuleVersion[]> {
    await this.ensureImported();
    const rows = (await this.store.db('rule_versions').orderBy('id', 'desc')) as VersionRow[];
    return rows.map(toVersion);
  }

  async get(id: number): Promise<RuleVersion | null> {
    if (!Number.isSafeInteger(id) || id < 1) return null;
    await this.ensureImported();
    const row = (await this.store.db('rule_versions').where({ id }).first()) as VersionRow | undefined;
    return row ? toVersion(row) : null;
  }

  /** Whether the rules file on disk still holds the version in force (false after a hand edit). */
  async fileMatches(version: RuleVersion): Promise<boolean> {
    const text = await readFile(rulesFileInForce(this.config), 'utf8').catch(() => null);
    return text === version.yaml;
  }

  /**
   * Publishes `yaml` as a new version and writes it to the rules file (temp, fsync, rename inside the
   * transaction that inserts the row, so a refused insert leaves the file as it was).
   * `expectedParent`: the version the admin edited; if another was published since, 409.
   */
  async publish(opts: {
    yaml: string;
    author: string;
    reason: string;
    expectedParent?: number;
    rollbackOf?: number;
  }): Promise<RuleVersion> {
    const reasonProblem = checkReason(opts.reason);
    const checked = checkRuleYaml(opts.yaml);
    if (!checked.ok || reasonProblem)
      throw new RulesRefused(422, [
        ...(reasonProblem ? [reasonProblem] : []),
        ...(checked.ok ? [] : checked.errors),
      ]);
    const current = await this.current();
    if (!opts.rollbackOf && opts.yaml === current.yaml)
      throw new RulesRefused(422, [
        { path: '(top level)', message: `nothing changed: this is version ${current.id} as it is` },
      ]);
    const before = checkRuleYaml(current.yaml);
    const changed = changedIds(before.ok ? before.ruleSet : null, checked.ruleSet);
    const tmp = await writeTemp(this.file, opts.yaml);
    // store.write may run this callback again alone when another writer in its batch failed.
    let renamed = false;
    try {
      const id = await this.store.write(async (trx) => {
        const top = (await trx('rule_versions').orderBy('id', 'desc').first('id')) as { id: number };
        if (opts.expectedParent !== undefined && Number(top.id) !== opts.expectedParent)
          throw new RulesRefused(409, [
            {
              path: '(top level)',
              message: `version ${top.id} was published while you edited version ${opts.expectedParent}; reload and apply your change again`,
            },
          ]);
        const [row] = (await trx('rule_versions').insert(
          {
            yaml: opts.yaml,
            author: opts.author,
            reason: opts.reason.trim(),
            kind: opts.rollbackOf ? 'rollback' : 'publish',
            parent_id: Number(top.id),
            rollback_of: opts.rollbackOf ?? null,
            created_at: Date.now(),
          },
          ['id'],
        )) as Array<{ id: number } | number>;
        const version = Number(typeof row === 'object' ? row.id : row);
        await appendAudit(trx, {
          type: opts.rollbackOf ? 'rules.rolled_back' : 'rules.published',
          actor: opts.author,
          detail: {
            version,
            parent: Number(top.id),
            ...(opts.rollbackOf ? { rollbackOf: opts.rollbackOf } : {}),
            rules: changed.rules,
            lists: changed.lists,
          },
        });
        if (!renamed) await rename(tmp, this.file);
        renamed = true;
        return version;
      });
      await syncDir(path.dirname(this.file)).catch(() => undefined);
      this.log.info({ evt: 'RULES_PUBLISHED', version: id }, 'dlp rules published');
      return (await this.get(id))!;
    } catch (err) {
      if (!renamed) await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  /** Publishes a copy of an older version as a new version. */
  async rollback(id: number, author: string, reason: string): Promise<RuleVersion> {
    const old = await this.get(id);
    if (!old) throw new RulesRefused(400, [{ path: 'version', message: `no version ${id}` }]);
    return this.publish({ yaml: old.yaml, author, reason, rollbackOf: id });
  }

  async draft(author: string): Promise<RuleDraft | null> {
    const row = (await this.store.db('rule_drafts').where({ author }).first()) as
      | { author: string; yaml: string; reason: string; base_version: number | null; updated_at: number }
      | undefined;
    return row
      ? {
          author: row.author,
          yaml: row.yaml,
          reason: row.reason,
          baseVersion: row.base_version === null ? null : Number(row.base_version),
          updatedAt: Number(row.updated_at),
        }
      : null;
  }

  /** Saves the admin's draft (valid rule sets only: a draft exists to be tested). Not in force. */
  async saveDraft(author: string, yaml: string, reason: string): Promise<RuleDraft> {
    const checked = checkRuleYaml(yaml);
    if (!checked.ok) throw new RulesRefused(422, checked.errors);
    const current = await this.current();
    const before = checkRuleYaml(current.yaml);
    const changed = changedIds(before.ok ? before.ruleSet : null, checked.ruleSet);
    const row = {
      author,
      yaml,
      reason: reason.trim().slice(0, MAX_REASON),
      base_version: current.id,
      updated_at: Date.now(),
    };
    await this.store.write(async (trx) => {
      await trx('rule_drafts').insert(row).onConflict('author').merge();
      await appendAudit(trx, {
        type: 'rules.draft_saved',
        actor: author,
        detail: { base: current.id, rules: changed.rules, lists: changed.lists },
      });
    });
    return (await this.draft(author))!;
  }

  async discardDraft(author: string): Promise<boolean> {
    return this.store.write(async (trx) => {
      const n = await trx('rule_drafts').where({ author }).delete();
      if (n > 0) await appendAudit(trx, { type: 'rules.draft_discarded', actor: author, detail: {} });
      return n > 0;
    });
  }

  /** Messages in the last `days` whose verdict names each rule: acting (`fired`) and monitor-only (`monitored`). */
  async counts(
    days = 7,
    now = Date.now(),
  ): Promise<{ fired: Map<string, number>; monitored: Map<string, number> }> {
    const fired = new Map<string, number>();
    const monitored = new Map<string, number>();
    const rows = (await this.store
      .db('messages')
      .where('created_at', '>=', now - days * 86_400_000)
      .whereNotNull('verdict')
      .select('verdict')) as Array<{ verdict: string }>;
    const bump = (m: Map<string, number>, ids: unknown) => {
      if (!Array.isArray(ids)) return;
      for (const id of new Set(ids)) if (typeof id === 'string') m.set(id, (m.get(id) ?? 0) + 1);
    };
    for (const r of rows) {
      try {
        const v = JSON.parse(r.verdict) as { rules?: unknown; monitored?: unknown };
        bump(fired, v.rules);
        bump(monitored, v.monitored);
      } catch {
        // A verdict that is not JSON (an older format) counts for nothing.
      }
    }
    return { fired, monitored };
  }
}
