// Admin pages and JSON for the DLP rules: the rules in force with their 7-day counts, a rule editor (with the
// rule's own keywords and patterns), the allow/deny lists and MRN formats, a YAML view, versions with diffs and rollback, drafts, and the live
// tester. Every change needs a reason and becomes a version; nothing of the tester's input is kept or logged.
import { isDeepStrictEqual } from 'node:util';
import express, { type NextFunction, type Request, type Response } from 'express';
import { parseDocument, type Document } from 'yaml';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import type { Rule, RuleSet } from '../dlp/rules.js';
import { appendAudit } from '../store/audit.js';
import { Keyring } from '../store/pgp-keyring.js';
import type { Store } from '../store/store.js';
import { html, SafeHtml } from './html.js';
import { hunks, lineDiff } from './line-diff.js';
import { MultipartError, multipartBoundary, parseMultipart } from './multipart.js';
import { formatPatternLines, parseKeywordLines, parsePatternLines } from './rule-lines.js';
import {
  checkRuleSet,
  checkRuleYaml,
  RulesRefused,
  RulesService,
  ruleSetToYaml,
  type RuleError,
  type RuleVersion,
} from './rules-service.js';
import {
  describeRoute,
  highlight,
  MAX_TEST_EML,
  MAX_TEST_TEXT,
  parseRecipients,
  resultJson,
  runTest,
  type TesterInput,
  type TesterResult,
} from './rules-tester.js';
import { staffPage, type StaffAuth } from './staff-auth.js';

const ACTIONS = ['protect', 'quarantine', 'block', 'log'] as const;
const ACTION_LABEL: Record<string, string> = {
  protect: 'Protect (PGP or pickup)',
  quarantine: 'Quarantine for review',
  block: 'Block and bounce',
  log: 'Log only',
};

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** "Keywords: a, b, c (+2 more) · Patterns: study-id" for the rules list; empty when the rule has none. */
function ownMatchersLine(rule: Rule): SafeHtml {
  const kw = rule.keywords ?? [];
  const pats = rule.patterns ?? [];
  if (kw.length === 0 && pats.length === 0) return html``;
  const more = (n: number) => (n > 0 ? ` (+${n} more)` : '');
  const items = [
    ...(kw.length ? [`Keywords: ${kw.slice(0, 3).join(', ')}${more(kw.length - 3)}`] : []),
    ...(pats.length
      ? [
          `Patterns: ${pats
            .slice(0, 3)
            .map((p) => p.name)
            .join(', ')}${more(pats.length - 3)}`,
        ]
      : []),
  ];
  return html`<span class="rule-desc rule-matchers">${items.join(' · ')}</span>`;
}

function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}

const checked = (on: boolean) => new SafeHtml(on ? ' checked' : '');
const selected = (on: boolean) => new SafeHtml(on ? ' selected' : '');

/** Errors whose path starts with `prefix`, as a list shown next to the field. */
function fieldErrors(errors: readonly RuleError[], match: (path: string) => boolean, id?: string): SafeHtml {
  const mine = errors.filter((e) => match(e.path));
  if (mine.length === 0) return html``;
  return html`<ul class="field-errors"${new SafeHtml(id ? ` id="${id}"` : '')}>${mine.map(
    (e) => html`<li>${e.message}</li>`,
  )}</ul>`;
}

function errorSummary(errors: readonly RuleError[]): SafeHtml {
  if (errors.length === 0) return html``;
  return html`<div class="error" role="alert"><p><strong>Nothing was changed.</strong> Please fix:</p><ul>${errors.map(
    (e) => html`<li><code>${e.path}</code>: ${e.message}</li>`,
  )}</ul></div>`;
}

function reasonField(value: string, errors: readonly RuleError[]): SafeHtml {
  return html`<label for="reason">Why this change? <span class="hint-inline">(kept with the version)</span></label>
<input id="reason" name="reason" required minlength="3" maxlength="500" value="${value}" aria-describedby="reason-errors">
${fieldErrors(errors, (p) => p === 'reason', 'reason-errors')}`;
}

function submitButtons(): SafeHtml {
  return html`<div class="actions"><button type="submit" name="intent" value="publish">Publish</button>
<button type="submit" name="intent" value="draft" class="secondary">Save as my draft</button></div>`;
}

/** Applies an edit to the YAML text of a rule set, keeping comments and layout of untouched parts. */
function editYaml(text: string, edit: (doc: Document) => void): string {
  const doc = parseDocument(text);
  edit(doc);
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

function numberOrRaw(v: string): number | string {
  const t = v.trim();
  return t !== '' && Number.isFinite(Number(t)) ? Number(t) : t;
}

export function createRulesPages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): express.Router {
  const { config, store, log, auth } = opts;
  const service = new RulesService(store, config, log);
  const keyring = new Keyring(store, config.pgp);
  const r = express.Router();
  r.use(['/admin/rules', '/api/admin/rules'], auth.load);
  const admin = auth.require(['admin']);
  const forms = express.urlencoded({ extended: false, limit: '512kb' });
  const json = express.json({ limit: '16mb' });
  const send = (req: Request, res: Response, title: string, body: SafeHtml, status = 200) =>
    res
      .status(status)
      .type('html')
      .send(staffPage(title, req.staff, body));
  const csrfField = (req: Request) => html`<input type="hidden" name="_csrf" value="${req.staff!.csrf}">`;
  const subnav = (current: string) => {
    const items: Array<[string, string]> = [
      ['/admin/rules', 'Rules'],
      ['/admin/rules/lists', 'Allow, deny & MRN formats'],
      ['/admin/rules/yaml', 'YAML'],
      ['/admin/rules/versions', 'Versions'],
      ['/admin/rules/test', 'Live tester'],
    ];
    return html`<nav class="subnav" aria-label="DLP rules"><ul>${items.map(
      ([href, label]) =>
        html`<li><a href="${href}"${new SafeHtml(href === current ? ' aria-current="page"' : '')}>${label}</a></li>`,
    )}</ul></nav>`;
  };
  const inForce = async () => {
    const version = await service.current();
    const parsed = checkRuleYaml(version.yaml);
    // Versions are validated before they are stored; a failure here means a schema change since.
    if (!parsed.ok) throw new Error(`rule version ${version.id} no longer validates`);
    return { version, ruleSet: parsed.ruleSet };
  };
  const versionLine = (v: RuleVersion) =>
    html`Version <strong>${v.id}</strong> is in force: ${v.kind === 'import' ? 'imported' : v.kind === 'rollback' ? 'rolled back' : 'published'} by ${v.author} on ${when(v.createdAt)} UTC — “${v.reason}”.`;

  // ---- The rules in force ----
  r.get('/admin/rules', admin, async (req, res) => {
    const { version, ruleSet } = await inForce();
    const counts = await service.counts(7);
    const draft = await service.draft(req.staff!.email);
    const fileOk = await service.fileMatches(version);
    const notice =
      req.query.published !== undefined
        ? html`<p class="ok" role="status">Published version ${str(req.query.published)}. The gateway picks it up within ${Math.ceil(config.dlp.reloadInterval / 1000)} s, without a restart.</p>`
        : req.query.draft !== undefined
          ? html`<p class="ok" role="status">Saved as your draft. <a href="/admin/rules/test">Try it in the live tester</a>.</p>`
          : html``;
    send(
      req,
      res,
      'DLP rules',
      html`<h1>DLP rules</h1>
${subnav('/admin/rules')}
${notice}
<p class="note">${versionLine(version)} <a href="/admin/rules/versions/${version.id}">What changed</a></p>
${fileOk ? '' : html`<p class="error" role="alert">The rules file on disk (<code>${service.file}</code>) no longer matches version ${version.id}: it was edited by hand. Publish a version to bring them back in line.</p>`}
${draft ? html`<p class="draft-note">You have a draft saved ${when(draft.updatedAt)} UTC (based on version ${draft.baseVersion ?? '?'}). <a href="/admin/rules/test">Test or publish it</a>.</p>` : ''}
<table class="rules-table">
<caption class="visually-hidden">Rules in version ${version.id}, with how often each fired in the last 7 days</caption>
<thead><tr><th scope="col">Rule</th><th scope="col">Action</th><th scope="col">Last 7 days</th><th scope="col">Thresholds</th></tr></thead>
<tbody>${ruleSet.rules.map((rule) => {
        const n = rule.monitorOnly ? (counts.monitored.get(rule.id) ?? 0) : (counts.fired.get(rule.id) ?? 0);
        return html`<tr${new SafeHtml(rule.enabled ? '' : ' class="disabled"')}><td><a href="/admin/rules/rule/${rule.id}" class="rule-id">${rule.id}</a><span class="rule-desc">${rule.description}</span>${ownMatchersLine(rule)}</td>
<td><span class="kind action-${rule.action}">${rule.action}</span>${rule.monitorOnly ? html` <span class="kind monitor">monitor only</span>` : ''}${rule.enabled ? '' : html` <span class="kind off">disabled</span>`}</td>
<td>${!rule.enabled ? html`<span class="note">off</span>` : rule.monitorOnly ? html`would have fired <strong>${times(n)}</strong>` : html`fired <strong>${times(n)}</strong>`}</td>
<td class="thresholds">score ≥ ${rule.minScore}${rule.conditions.map((c) => ('any' in c ? (c.minCount > 1 ? html`, ≥ ${c.minCount} findings` : '') : html`, within ${c.window} chars`))}</td></tr>`;
      })}</tbody></table>
<p><a class="button-link" href="/admin/rules/new">Add a rule</a></p>
<p class="note">Counts are messages in the last 7 days whose verdict named the rule. A monitor-only rule records what it would have done without acting.</p>`,
    );
  });

  r.get('/api/admin/rules', admin, async (_req, res) => {
    const { version, ruleSet } = await inForce();
    const counts = await service.counts(7);
    res.json({
      version: meta(version),
      file: service.file,
      yaml: version.yaml,
      ruleSet,
      rules: ruleSet.rules.map((rule) => ({
        ...rule,
        last7Days: rule.monitorOnly
          ? { wouldHaveFired: counts.monitored.get(rule.id) ?? 0 }
          : { fired: counts.fired.get(rule.id) ?? 0 },
      })),
    });
  });

  // ---- Edit one rule (or add one) ----
  /** The conditions as the admin wrote them (no schema defaults filled in), for the editor. */
  const rawConditions = (yamlText: string, id: string): unknown => {
    const data = parseDocument(yamlText).toJS() as { rules?: Array<{ id?: unknown; conditions?: unknown }> };
    return data.rules?.find((x) => x.id === id)?.conditions;
  };
  const conditionsYaml = (rule: Rule | undefined, version: RuleVersion) => {
    if (!rule) return "- any: ['@strong']\n- any: ['@health', '@care']\n";
    const raw = rawConditions(version.yaml, rule.id);
    // No conditions: the rule's keywords or patterns alone decide; an empty field says so.
    return raw === undefined || (Array.isArray(raw) && raw.length === 0) ? '' : ruleSetToYaml(raw);
  };
  const ruleForm = (
    req: Request,
    res: Response,
    o: {
      rule?: Rule;
      isNew: boolean;
      version: RuleVersion;
      values?: Record<string, string>;
      errors?: RuleError[];
      status?: number;
    },
  ) => {
    const errors = o.errors ?? [];
    const v = o.values;
    const val = (k: string, fallback: string) => (v ? (v[k] ?? '') : fallback);
    const flag = (k: string, fallback: boolean) => (v ? v[k] === 'on' : fallback);
    const at = (field: string) => (p: string) => new RegExp(`^rules\\.\\d+\\.${field}(\\.|$)`).test(p);
    const action = val('action', o.rule?.action ?? 'protect');
    const title = o.isNew ? 'Add a rule' : `Rule ${o.rule!.id}`;
    send(
      req,
      res,
      title,
      html`<h1>${title}</h1>
${subnav('')}
${errorSummary(errors)}
<form method="post" action="${o.isNew ? '/admin/rules/new' : `/admin/rules/rule/${o.rule!.id}`}" class="card rule-form">
${csrfField(req)}
<input type="hidden" name="base" value="${o.version.id}">
${
  o.isNew
    ? html`<label for="id">Rule id</label><p class="hint" id="id-hint">Lower-case letters, digits and dashes, e.g. <code>study-codename</code>.</p>
<input id="id" name="id" required pattern="[a-z0-9][a-z0-9\\-]{0,63}" value="${val('id', '')}" aria-describedby="id-hint">${fieldErrors(errors, at('id'))}`
    : ''
}
<label for="description">Description</label>
<input id="description" name="description" value="${val('description', o.rule?.description ?? '')}">
${fieldErrors(errors, at('description'))}
<fieldset class="switches"><legend>State</legend>
<label class="check"><input type="checkbox" name="enabled"${checked(flag('enabled', o.rule?.enabled ?? true))}> Enabled</label>
<label class="check"><input type="checkbox" name="monitorOnly"${checked(flag('monitorOnly', o.rule?.monitorOnly ?? false))}> Monitor only (record what it would do, do not act)</label>
</fieldset>
<label for="action">Action when it fires</label>
<select id="action" name="action">${ACTIONS.map((a) => html`<option value="${a}"${selected(a === action)}>${ACTION_LABEL[a]}</option>`)}</select>
${fieldErrors(errors, at('action'))}
<label for="minScore">Minimum finding score (0–1)</label>
<p class="hint" id="minScore-hint">Findings scoring below this are ignored by the rule. Higher means fewer, surer matches.</p>
<input id="minScore" name="minScore" inputmode="decimal" value="${val('minScore', String(o.rule?.minScore ?? 0.5))}" aria-describedby="minScore-hint">
${fieldErrors(errors, at('minScore'))}
<label for="conditions">Conditions (YAML; all must hold)</label>
<p class="hint" id="conditions-hint"><code>- any: ['@strong']</code> with optional <code>minCount</code> and <code>minScore</code>, or <code>- near: [['@identifier'], ['@health']]</code> with <code>window</code> in characters. Selectors are finding types (<code>US_SSN</code>, <code>DENY_TERM</code>, <code>RULE_KEYWORD</code>) or categories (<code>@strong @identifier @health @care @payload @deny @attachment @rule</code>). Leave empty when this rule's keywords or patterns alone should decide.</p>
<textarea id="conditions" name="conditions" rows="6" class="code" spellcheck="false" aria-describedby="conditions-hint">${val('conditions', conditionsYaml(o.rule, o.version))}</textarea>
${fieldErrors(errors, (p) => at('conditions')(p) || p === 'conditions')}
<fieldset class="own-matchers"><legend>This rule's keywords and patterns</legend>
<p class="hint" id="own-hint">When a rule has keywords or patterns, at least one of them must match for it to fire, as well as its conditions. Their matches are findings of type <code>RULE_KEYWORD</code> and <code>RULE_PATTERN</code> (category <code>@rule</code>) that only this rule counts.</p>
<label for="keywords">Keywords (one per line)</label>
<p class="hint" id="keywords-hint">Whole words or phrases, any case, e.g. <code>Project Nightingale</code>. 2–100 characters each, at most 200.</p>
<textarea id="keywords" name="keywords" rows="4" spellcheck="false" aria-describedby="own-hint keywords-hint">${val('keywords', (o.rule?.keywords ?? []).join('\n'))}</textarea>
${fieldErrors(errors, at('keywords'), 'keywords-errors')}
<label for="patterns">Patterns (one per line: <code>name: regular expression</code>)</label>
<p class="hint" id="patterns-hint">E.g. <code>study-id: NGL-\\d{4,6}\\b</code>. After the name, <code>(i)</code> ignores case and a number sets the score: <code>ticket (i, 0.8): TCK\\d{6}</code>. Refused: repetition without an upper bound (<code>+</code>, <code>*</code>: write <code>\\d{1,12}</code>), wide ranges side by side (at most 64 ways of matching at one place), a repeated group holding a repetition or overlapping alternatives, back-references, look-arounds, and patterns that match empty text.</p>
<textarea id="patterns" name="patterns" rows="4" class="code" spellcheck="false" aria-describedby="own-hint patterns-hint">${val('patterns', formatPatternLines(o.rule?.patterns))}</textarea>
${fieldErrors(errors, at('patterns'), 'patterns-errors')}
</fieldset>
${reasonField(val('reason', ''), errors)}
${submitButtons()}
</form>
<p class="note">The keywords and patterns above belong to this rule. Deny-list terms and your MRN formats are shared by all rules: edit them under <a href="/admin/rules/lists">Allow, deny &amp; MRN formats</a>.</p>`,
      o.status ?? 200,
    );
  };

  r.get('/admin/rules/new', admin, async (req, res) => {
    const { version } = await inForce();
    ruleForm(req, res, { isNew: true, version });
  });
  r.get('/admin/rules/rule/:id', admin, async (req, res) => {
    const { version, ruleSet } = await inForce();
    const rule = ruleSet.rules.find((x) => x.id === req.params.id);
    if (!rule) {
      send(
        req,
        res,
        'No such rule',
        html`<h1>No such rule</h1><p><a href="/admin/rules">Back to the rules</a></p>`,
        404,
      );
      return;
    }
    ruleForm(req, res, { rule, isNew: false, version });
  });

  /** Publishes or saves as draft; on refusal re-renders via `again` with the errors. */
  const commit = async (
    req: Request,
    res: Response,
    yaml: string | null,
    preErrors: RuleError[],
    again: (errors: RuleError[], status: number) => Promise<void> | void,
    draftSaved = '/admin/rules?draft=saved',
  ) => {
    const body = req.body as Record<string, unknown>;
    const reason = str(body.reason);
    const intent = body.intent === 'draft' ? 'draft' : 'publish';
    if (preErrors.length > 0 || yaml === null) {
      await again(preErrors, 422);
      return;
    }
    try {
      if (intent === 'draft') {
        await service.saveDraft(req.staff!.email, yaml, reason);
        res.redirect(303, draftSaved);
      } else {
        const base = Number(str(body.base));
        const v = await service.publish({
          yaml,
          author: req.staff!.email,
          reason,
          ...(Number.isSafeInteger(base) && base > 0 ? { expectedParent: base } : {}),
        });
        res.redirect(303, `/admin/rules?published=${v.id}`);
      }
    } catch (err) {
      if (!(err instanceof RulesRefused)) throw err;
      await again(err.errors, err.status);
    }
  };

  const saveRule = (isNew: boolean) => async (req: Request, res: Response) => {
    const { version, ruleSet } = await inForce();
    const body = req.body as Record<string, unknown>;
    const values = Object.fromEntries(
      [
        'id',
        'description',
        'enabled',
        'monitorOnly',
        'action',
        'minScore',
        'conditions',
        'keywords',
        'patterns',
        'reason',
      ].map((k) => [k, str(body[k])]),
    ) as Record<string, string>;
    const id = isNew ? values.id!.trim() : String(req.params.id);
    const index = ruleSet.rules.findIndex((x) => x.id === id);
    const pre: RuleError[] = [];
    if (!isNew && index === -1) {
      send(req, res, 'No such rule', html`<h1>No such rule</h1>`, 404);
      return;
    }
    if (isNew && index !== -1)
      pre.push({ path: `rules.${ruleSet.rules.length}.id`, message: `a rule "${id}" exists already` });
    const condDoc = parseDocument(values.conditions ?? '');
    if (condDoc.errors.length > 0)
      pre.push({
        path: 'conditions',
        message: `not valid YAML: ${condDoc.errors[0]!.message.split('\n')[0]}`,
      });
    const slot = isNew ? ruleSet.rules.length : index;
    const kw = parseKeywordLines(values.keywords ?? '');
    const pats = parsePatternLines(values.patterns ?? '');
    for (const e of pats.errors)
      pre.push({ path: `rules.${slot}.patterns`, message: `line ${e.line}: ${e.message}` });
    const fields = {
      ...(isNew ? { id } : {}),
      description: values.description!.trim(),
      enabled: values.enabled === 'on',
      action: values.action,
      monitorOnly: values.monitorOnly === 'on',
      minScore: numberOrRaw(values.minScore ?? ''),
      // An empty field: no conditions (the rule's keywords or patterns alone decide).
      conditions:
        condDoc.errors.length || (values.conditions ?? '').trim() === '' ? [] : (condDoc.toJS() as unknown),
      keywords: kw.keywords,
      patterns: pats.patterns,
    };
    /** Schema errors about the i-th keyword or pattern, told by the line it came from. */
    const byLine = (errors: RuleError[]) =>
      errors.map((e) => {
        const m = new RegExp(`^rules\\.${slot}\\.(keywords|patterns)\\.(\\d+)(\\.|$)`).exec(e.path);
        const line = m ? (m[1] === 'keywords' ? kw.lines : pats.lines)[Number(m[2])] : undefined;
        return line ? { ...e, message: `line ${line}: ${e.message}` } : e;
      });
    const yaml =
      pre.length > 0
        ? null
        : editYaml(version.yaml, (doc) => {
            // Keywords and patterns are written only when there are some.
            const own = (k: string, v: unknown) => (k === 'keywords' || k === 'patterns') && Array.isArray(v);
            if (isNew)
              doc.addIn(
                ['rules'],
                doc.createNode(
                  Object.fromEntries(
                    Object.entries(fields).filter(([k, v]) => !own(k, v) || (v as unknown[]).length > 0),
                  ),
                ),
              );
            else {
              // Only what changed is written, so the version's diff shows exactly the edit.
              const was = {
                ...ruleSet.rules[index]!,
                conditions: rawConditions(version.yaml, id) ?? [],
              } as Record<string, unknown>;
              for (const [k, v] of Object.entries(fields)) {
                if (own(k, v) && (v as unknown[]).length === 0) {
                  if (was[k] !== undefined) doc.deleteIn(['rules', index, k]);
                } else if (!isDeepStrictEqual(was[k], v))
                  doc.setIn(['rules', index, k], typeof v === 'object' ? doc.createNode(v) : v);
              }
            }
          });
    const rule = isNew ? undefined : ruleSet.rules[index];
    await commit(req, res, yaml, pre, (errors, status) =>
      ruleForm(req, res, { rule, isNew, version, values, errors: byLine(errors), status }),
    );
  };
  r.post('/admin/rules/new', admin, forms, auth.csrf, saveRule(true));
  r.post('/admin/rules/rule/:id', admin, forms, auth.csrf, saveRule(false));

  // ---- Allow list, deny list, MRN formats ----
  const listsForm = (
    req: Request,
    res: Response,
    o: {
      ruleSet: RuleSet;
      version: RuleVersion;
      values?: Record<string, string>;
      errors?: RuleError[];
      status?: number;
    },
  ) => {
    const errors = o.errors ?? [];
    const val = (k: 'allow' | 'deny' | 'mrnFormats') => o.values?.[k] ?? o.ruleSet[k].join('\n');
    const lineErrors = (k: string) =>
      fieldErrors(
        errors.map((e) => {
          const m = new RegExp(`^${k}\\.(\\d+)$`).exec(e.path);
          return m ? { ...e, message: `line ${Number(m[1]) + 1}: ${e.message}` } : e;
        }),
        (p) => p === k || p.startsWith(`${k}.`),
        `${k}-errors`,
      );
    send(
      req,
      res,
      'Allow, deny and MRN formats',
      html`<h1>Allow list, deny list and MRN formats</h1>
${subnav('/admin/rules/lists')}
${errorSummary(errors)}
<form method="post" action="/admin/rules/lists" class="card">
${csrfField(req)}
<input type="hidden" name="base" value="${o.version.id}">
<label for="deny">Deny list: words or phrases that always count (one per line)</label>
<p class="hint" id="deny-hint">Each is a finding of type <code>DENY_TERM</code> (category <code>@deny</code>), e.g. the code name of a research study. At least 2 characters.</p>
<textarea id="deny" name="deny" rows="5" spellcheck="false" aria-describedby="deny-hint deny-errors">${val('deny')}</textarea>
${lineErrors('deny')}
<label for="allow">Allow list: values that never count (one per line)</label>
<p class="hint" id="allow-hint">The practice's own phone, fax, address or e-mail; compared ignoring case, spaces and punctuation.</p>
<textarea id="allow" name="allow" rows="5" spellcheck="false" aria-describedby="allow-hint allow-errors">${val('allow')}</textarea>
${lineErrors('allow')}
<label for="mrnFormats">Your organisation's MRN formats (regular expressions, one per line)</label>
<p class="hint" id="mrn-hint">E.g. <code>MR-\\d{7}</code>. A match counts as an MRN (<code>@strong</code>). Patterns that could take exponential time (a repeated group containing a repetition), back-references and look-arounds are refused.</p>
<textarea id="mrnFormats" name="mrnFormats" rows="4" class="code" spellcheck="false" aria-describedby="mrn-hint mrnFormats-errors">${val('mrnFormats')}</textarea>
${lineErrors('mrnFormats')}
${reasonField(o.values?.reason ?? '', errors)}
${submitButtons()}
</form>`,
      o.status ?? 200,
    );
  };
  r.get('/admin/rules/lists', admin, async (req, res) => {
    const { version, ruleSet } = await inForce();
    listsForm(req, res, { version, ruleSet });
  });
  r.post('/admin/rules/lists', admin, forms, auth.csrf, async (req, res) => {
    const { version, ruleSet } = await inForce();
    const body = req.body as Record<string, unknown>;
    const values = {
      allow: str(body.allow),
      deny: str(body.deny),
      mrnFormats: str(body.mrnFormats),
      reason: str(body.reason),
    };
    const yaml = editYaml(version.yaml, (doc) => {
      for (const k of ['allow', 'deny', 'mrnFormats'] as const) {
        const next = lines(values[k]);
        if (JSON.stringify(next) !== JSON.stringify(ruleSet[k])) doc.set(k, doc.createNode(next));
      }
    });
    await commit(req, res, yaml, [], (errors, status) =>
      listsForm(req, res, { version, ruleSet, values, errors, status }),
    );
  });

  // ---- YAML view for power users ----
  const yamlForm = (
    req: Request,
    res: Response,
    o: {
      version: RuleVersion;
      text: string;
      reason?: string;
      errors?: RuleError[];
      status?: number;
      fromDraft?: boolean;
    },
  ) => {
    const errors = o.errors ?? [];
    send(
      req,
      res,
      'Rules as YAML',
      html`<h1>Edit the rules as YAML</h1>
${subnav('/admin/rules/yaml')}
${errorSummary(errors)}
<p class="note">The whole rule set${o.fromDraft ? ' (your draft)' : html`, version ${o.version.id}`}. The format is documented in the comments of the shipped pack. A file that does not validate is refused and nothing changes.</p>
<form method="post" action="/admin/rules/yaml" class="card">
${csrfField(req)}
<input type="hidden" name="base" value="${o.version.id}">
<label for="yaml">Rule set</label>
<textarea id="yaml" name="yaml" rows="28" class="code" spellcheck="false">${o.text}</textarea>
${reasonField(o.reason ?? '', errors)}
${submitButtons()}
</form>`,
      o.status ?? 200,
    );
  };
  r.get('/admin/rules/yaml', admin, async (req, res) => {
    const { version } = await inForce();
    const draft = req.query.draft !== undefined ? await service.draft(req.staff!.email) : null;
    yamlForm(req, res, { version, text: draft?.yaml ?? version.yaml, fromDraft: !!draft });
  });
  r.post('/admin/rules/yaml', admin, forms, auth.csrf, async (req, res) => {
    const { version } = await inForce();
    const body = req.body as Record<string, unknown>;
    const text = str(body.yaml).replace(/\r\n/g, '\n');
    await commit(req, res, text, [], (errors, status) =>
      yamlForm(req, res, { version, text, reason: str(body.reason), errors, status }),
    );
  });

  // ---- Versions, diff, rollback ----
  const meta = (v: RuleVersion) => ({
    id: v.id,
    author: v.author,
    reason: v.reason,
    kind: v.kind,
    parentId: v.parentId,
    rollbackOf: v.rollbackOf,
    createdAt: v.createdAt,
  });
  r.get('/admin/rules/versions', admin, async (req, res) => {
    const versions = await service.list();
    const current = versions[0]!.id;
    send(
      req,
      res,
      'Rule versions',
      html`<h1>Rule versions</h1>
${subnav('/admin/rules/versions')}
${req.query.rolledBack !== undefined ? html`<p class="ok" role="status">Rolled back: version ${str(req.query.rolledBack)} is now in force.</p>` : ''}
<table class="versions-table"><thead><tr><th scope="col">Version</th><th scope="col">When (UTC)</th><th scope="col">Why</th><th scope="col">Who</th></tr></thead><tbody>
${versions.map(
  (
    v,
  ) => html`<tr><td><a href="/admin/rules/versions/${v.id}">${v.id}</a>${v.id === current ? html` <span class="kind in-force">in force</span>` : ''}${v.kind === 'rollback' ? html` <span class="kind">rollback of ${v.rollbackOf}</span>` : ''}</td>
<td>${when(v.createdAt)}</td><td>${v.reason}</td><td>${v.author}</td></tr>`,
)}</tbody></table>`,
    );
  });
  r.get('/api/admin/rules/versions', admin, async (_req, res) => {
    res.json({ versions: (await service.list()).map(meta) });
  });

  const diffAgainst = async (v: RuleVersion, against: unknown) => {
    const otherId = typeof against === 'string' && against ? Number(against) : v.parentId;
    const other = otherId ? await service.get(otherId) : null;
    return { other, diff: lineDiff(other?.yaml ?? '', v.yaml) };
  };
  r.get('/admin/rules/versions/:id', admin, async (req, res) => {
    const v = await service.get(Number(req.params.id));
    if (!v) {
      send(
        req,
        res,
        'No such version',
        html`<h1>No such version</h1><p><a href="/admin/rules/versions">All versions</a></p>`,
        404,
      );
      return;
    }
    const versions = await service.list();
    const current = versions[0]!.id;
    const { other, diff } = await diffAgainst(v, req.query.against);
    const shown = hunks(diff, 3);
    const changes = diff.filter((d) => d.op !== ' ').length;
    send(
      req,
      res,
      `Rule version ${v.id}`,
      html`<h1>Rule version ${v.id}${v.id === current ? html` <span class="kind in-force">in force</span>` : ''}</h1>
${subnav('/admin/rules/versions')}
<dl class="meta">
<dt>When</dt><dd>${when(v.createdAt)} UTC</dd>
<dt>Who</dt><dd>${v.author}</dd>
<dt>Why</dt><dd>${v.reason}</dd>
<dt>Kind</dt><dd>${v.kind === 'rollback' ? `rollback to a copy of version ${v.rollbackOf}` : v.kind}${v.parentId ? `, published over version ${v.parentId}` : ''}</dd>
</dl>
<form method="get" action="/admin/rules/versions/${v.id}" class="inline-form">
<label for="against">Compare with</label>
<select id="against" name="against">${versions
        .filter((x) => x.id !== v.id)
        .map(
          (x) =>
            html`<option value="${x.id}"${selected(x.id === other?.id)}>version ${x.id}${x.id === v.parentId ? ' (parent)' : ''}</option>`,
        )}</select>
<button type="submit" class="secondary">Compare</button>
</form>
<h2>${other ? `Changes from version ${other.id}` : 'First version'} <span class="note">(${changes} line${changes === 1 ? '' : 's'} changed)</span></h2>
${
  other && changes === 0
    ? html`<p class="note">No difference.</p>`
    : html`<div class="diff" role="region" aria-label="Line differences" tabindex="0"><table><tbody>${shown.map(
        (d) =>
          d === null
            ? html`<tr class="gap"><td colspan="3">⋯</td></tr>`
            : html`<tr class="${d.op === '+' ? 'add' : d.op === '-' ? 'del' : 'ctx'}"><td class="ln">${d.oldLine ?? ''}</td><td class="ln">${d.newLine ?? ''}</td><td><span class="op" aria-label="${d.op === '+' ? 'added' : d.op === '-' ? 'removed' : 'unchanged'}">${d.op === ' ' ? ' ' : d.op}</span>${d.text}</td></tr>`,
      )}</tbody></table></div>`
}
${
  v.id !== current
    ? html`<form method="post" action="/admin/rules/versions/${v.id}/rollback" class="card rollback">
${csrfField(req)}
<label for="reason">Roll back: publish a copy of version ${v.id} as a new version</label>
<input id="reason" name="reason" required minlength="3" maxlength="500" value="Roll back to version ${v.id}">
<button type="submit">Roll back to version ${v.id}</button>
</form>`
    : ''
}
<details><summary>The whole rule set of version ${v.id}</summary><pre class="code">${v.yaml}</pre></details>`,
    );
  });
  r.get('/api/admin/rules/versions/:id', admin, async (req, res) => {
    const v = await service.get(Number(req.params.id));
    if (!v) {
      res.status(404).json({ error: 'no such version' });
      return;
    }
    const { other, diff } = await diffAgainst(v, req.query.against);
    res.json({ version: { ...meta(v), yaml: v.yaml }, against: other?.id ?? null, diff });
  });

  const rollback = async (req: Request) => {
    const id = Number(req.params.id);
    const reason =
      str((req.body as Record<string, unknown> | undefined)?.reason) || `Roll back to version ${id}`;
    return service.rollback(id, req.staff!.email, reason);
  };
  r.post('/admin/rules/versions/:id/rollback', admin, forms, auth.csrf, async (req, res) => {
    try {
      const v = await rollback(req);
      res.redirect(303, `/admin/rules/versions?rolledBack=${v.id}`);
    } catch (err) {
      if (!(err instanceof RulesRefused)) throw err;
      send(
        req,
        res,
        'Rollback refused',
        html`<h1>Rollback refused</h1>${errorSummary(err.errors)}<p><a href="/admin/rules/versions">All versions</a></p>`,
        err.status,
      );
    }
  });
  r.post('/api/admin/rules/rollback/:id', admin, json, auth.csrf, async (req, res) => {
    try {
      res.status(201).json({ version: meta(await rollback(req)) });
    } catch (err) {
      if (!(err instanceof RulesRefused)) throw err;
      res.status(err.status === 400 ? 404 : err.status).json({ errors: err.errors });
    }
  });

  // ---- Publish and drafts over JSON ----
  /** `{yaml}` (text kept as written) or `{ruleSet}` (data, stored as YAML). */
  const yamlFromJson = (body: Record<string, unknown>): { yaml: string } | { errors: RuleError[] } => {
    if (typeof body.yaml === 'string') return { yaml: body.yaml };
    if (body.ruleSet && typeof body.ruleSet === 'object') {
      const c = checkRuleSet(body.ruleSet);
      return c.ok ? { yaml: ruleSetToYaml(body.ruleSet) } : { errors: c.errors };
    }
    return {
      errors: [{ path: '(top level)', message: 'send {"yaml": "…"} or {"ruleSet": {…}} with a "reason"' }],
    };
  };
  r.post('/api/admin/rules', admin, json, auth.csrf, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const got = yamlFromJson(body);
    if ('errors' in got) {
      res.status(422).json({ errors: got.errors });
      return;
    }
    try {
      const v = await service.publish({
        yaml: got.yaml,
        author: req.staff!.email,
        reason: str(body.reason),
        ...(typeof body.base === 'number' ? { expectedParent: body.base } : {}),
      });
      res.status(201).json({ version: meta(v) });
    } catch (err) {
      if (!(err instanceof RulesRefused)) throw err;
      res.status(err.status).json({ errors: err.errors });
    }
  });
  r.post('/api/admin/rules/drafts', admin, json, auth.csrf, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const got = yamlFromJson(body);
    if ('errors' in got) {
      res.status(422).json({ errors: got.errors });
      return;
    }
    try {
      const d = await service.saveDraft(req.staff!.email, got.yaml, str(body.reason));
      res.json({ draft: d });
    } catch (err) {
      if (!(err instanceof RulesRefused)) throw err;
      res.status(err.status).json({ errors: err.errors });
    }
  });
  r.get('/api/admin/rules/drafts', admin, async (req, res) => {
    res.json({ draft: await service.draft(req.staff!.email) });
  });
  r.delete('/api/admin/rules/drafts', admin, auth.csrf, async (req, res) => {
    res.status((await service.discardDraft(req.staff!.email)) ? 204 : 404).end();
  });

  // ---- Drafts from the tester page ----
  r.post('/admin/rules/drafts', admin, forms, auth.csrf, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const text = str(body.yaml).replace(/\r\n/g, '\n');
    if (body.intent === 'discard') {
      await service.discardDraft(req.staff!.email);
      res.redirect(303, '/admin/rules/test');
      return;
    }
    await commit(
      req,
      res,
      text,
      [],
      async (errors, status) =>
        testerPage(req, res, { draftText: text, draftReason: str(body.reason), draftErrors: errors, status }),
      '/admin/rules/test?draft=saved',
    );
  });

  // ---- Live tester ----
  interface TesterView {
    input?: TesterInput & { useDraft: boolean; recipientsText: string; emlName?: string };
    result?: TesterResult;
    error?: string;
    draftText?: string;
    draftReason?: string;
    draftErrors?: RuleError[];
    status?: number;
  }
  const testerPage = async (req: Request, res: Response, view: TesterView) => {
    const { version } = await inForce();
    const draft = await service.draft(req.staff!.email);
    const i = view.input;
    const useDraft = i?.useDraft ?? false;
    const draftErrors = view.draftErrors ?? [];
    send(
      req,
      res,
      'Live rule tester',
      html`<h1>Live rule tester</h1>
${subnav('/admin/rules/test')}
${req.query.draft !== undefined ? html`<p class="ok" role="status">Draft saved. Choose “My draft” below to test it.</p>` : ''}
<p class="note">Try a message against the rules in force or your draft. What you paste or upload is checked in memory and shown back to you only; it is not stored or logged.</p>
<form method="post" action="/admin/rules/test" enctype="multipart/form-data" class="card tester-form">
${csrfField(req)}
<label for="subject">Subject</label>
<input id="subject" name="subject" value="${i?.subject ?? ''}">
<label for="text">Message text</label>
<textarea id="text" name="text" rows="8">${i?.text ?? ''}</textarea>
<label for="eml">…or upload an .eml file (used instead of the text)</label>
<input id="eml" name="eml" type="file" accept=".eml,message/rfc822">
<label for="recipients">Recipients (optional; for an .eml, its To and Cc by default)</label>
<input id="recipients" name="recipients" value="${i?.recipientsText ?? ''}" placeholder="partner@example.org, patient@example.com">
<fieldset class="switches"><legend>Rules</legend>
<label class="check"><input type="radio" name="rules" value="force"${checked(!useDraft)}> Rules in force (version ${version.id})</label>
<label class="check"><input type="radio" name="rules" value="draft"${checked(useDraft)}${new SafeHtml(draft ? '' : ' disabled')}> My draft${draft ? ` (saved ${when(draft.updatedAt)} UTC)` : ' (none saved yet)'}</label>
</fieldset>
<button type="submit">Test</button>
</form>
${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
${view.result && i ? resultView(view.result, useDraft ? 'your draft' : `version ${version.id}`) : ''}
<h2 id="draft-heading">Edit your draft</h2>
${errorSummary(draftErrors)}
<form method="post" action="/admin/rules/drafts" class="card" aria-labelledby="draft-heading">
${csrfField(req)}
<input type="hidden" name="base" value="${version.id}">
<p class="hint">${draft ? `Saved ${when(draft.updatedAt)} UTC, based on version ${draft.baseVersion ?? '?'}.` : `No draft yet: this is version ${version.id}. Change it, save it as your draft, test it above, then publish.`}</p>
<label for="draft-yaml">Draft rule set (YAML)</label>
<textarea id="draft-yaml" name="yaml" rows="16" class="code" spellcheck="false">${view.draftText ?? draft?.yaml ?? version.yaml}</textarea>
${fieldErrors(draftErrors, (p) => p === 'yaml')}
${reasonField(view.draftReason ?? draft?.reason ?? '', draftErrors)}
<div class="actions"><button type="submit" name="intent" value="draft">Save draft</button>
<button type="submit" name="intent" value="publish" class="secondary">Publish draft</button>
${draft ? html`<button type="submit" name="intent" value="discard" class="secondary" formnovalidate>Discard draft</button>` : ''}</div>
</form>`,
      view.status ?? 200,
    );
  };

  const resultView = (result: TesterResult, against: string) => {
    const v = result.verdict;
    const verdictText =
      v.action === 'clean'
        ? 'No rule fired: the message would go out as it is'
        : v.action === 'log'
          ? 'Logged only'
          : v.action === 'protect'
            ? 'Holds PHI: protect'
            : v.action === 'quarantine'
              ? 'Quarantine for admin review'
              : 'Block and bounce to the sender';
    const unplaced = v.findings.filter((f) => f.end <= f.start);
    return html`<section class="card result" aria-labelledby="result-heading">
<h2 id="result-heading">Result with ${against}</h2>
<p class="verdict verdict-${v.action}"><strong>${verdictText}</strong>${v.action !== 'clean' ? html` · score ${v.score}` : ''} · ${v.findings.length} finding${v.findings.length === 1 ? '' : 's'}</p>
${
  v.explanation.length === 0
    ? html`<p class="note">No rule fired.</p>`
    : html`<h3>Rules that fired</h3><ul class="fired">${v.explanation.map(
        (e) =>
          html`<li><a href="/admin/rules/rule/${e.rule}"><strong>${e.rule}</strong></a> <span class="kind action-${e.action}">${e.action}</span>${e.monitorOnly ? html` <span class="kind monitor">monitor only: would have fired</span>` : ''}<br><span class="note">${e.reason}. Types: ${e.findingTypes.join(', ')}; parts: ${e.parts.join(', ')}.</span></li>`,
      )}</ul>`
}
<h3>Per recipient</h3>
${
  result.routes.length === 0
    ? html`<p class="note">Add recipients to see what would happen to each.</p>`
    : html`<ul class="routes">${result.routes.map(
        (x) =>
          html`<li><span class="rcpt">${x.rcpt}</span>: <span class="route route-${x.action}">${describeRoute(x)}</span></li>`,
      )}</ul>`
}
<h3>Findings in your input</h3>
<p class="legend"><mark class="finding counted"><span class="finding-type">TYPE</span>counted by a rule</mark> <mark class="finding"><span class="finding-type">TYPE</span>found, not counted</mark></p>
${result.parts.map(
  (p) => html`<h4 class="part-name">${p.id}</h4><div class="highlighted">${highlight(p, v.findings)}</div>`,
)}
${unplaced.length ? html`<p class="note">Attachments flagged: ${unplaced.map((f) => `${f.type} (${f.part})`).join(', ')}</p>` : ''}
</section>`;
  };

  r.get('/admin/rules/test', admin, async (req, res) => {
    await testerPage(req, res, {});
  });

  /** Multipart (the page's form) into req.body fields plus the .eml, so the CSRF check reads `_csrf`. */
  const testerBody = (req: Request, res: Response, next: NextFunction) => {
    const boundary = multipartBoundary(req.get('content-type'));
    if (!boundary) return next();
    if (!Buffer.isBuffer(req.body)) {
      res.status(400).type('text').send('Bad form');
      return;
    }
    try {
      const form = parseMultipart(req.body, boundary, { maxParts: 12, maxFiles: 1 });
      const fields: Record<string, unknown> = Object.fromEntries(form.fields);
      const file = form.files.find((f) => f.field === 'eml');
      if (file) fields.emlFile = file;
      req.body = fields;
      next();
    } catch (err) {
      if (!(err instanceof MultipartError)) throw err;
      res.status(400).type('text').send('The form could not be read. Reload the page and try again.');
    }
  };
  const rawForm = express.raw({ type: 'multipart/form-data', limit: MAX_TEST_EML + 1024 * 1024 });

  const analyzerFor = async (req: Request, useDraft: boolean) => {
    if (useDraft) {
      const draft = await service.draft(req.staff!.email);
      if (!draft)
        return { error: 'You have no saved draft: save one first, or test with the rules in force.' };
      const c = checkRuleYaml(draft.yaml);
      if (!c.ok) return { error: 'Your draft no longer validates; open it in the YAML view.' };
      return { analyzer: c.analyzer, version: null };
    }
    const { version } = await inForce();
    const c = checkRuleYaml(version.yaml);
    if (!c.ok) throw new Error('rules in force do not validate');
    return { analyzer: c.analyzer, version: version.id };
  };

  const audited = async (req: Request, result: TesterResult, useDraft: boolean, version: number | null) => {
    await store.write((trx) =>
      appendAudit(trx, {
        type: 'rules.tested',
        actor: req.staff!.email,
        detail: {
          draft: useDraft,
          version,
          findings: result.verdict.findings.length,
          rulesFired: result.verdict.rules.length,
          monitored: result.verdict.monitored.length,
          recipients: result.recipients.length,
        },
      }),
    );
  };

  r.post('/admin/rules/test', admin, rawForm, testerBody, forms, auth.csrf, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const file = body.emlFile as { content: Buffer; filename: string } | undefined;
    const text = str(body.text);
    const recipientsText = str(body.recipients);
    const useDraft = body.rules === 'draft';
    const input = {
      text,
      subject: str(body.subject),
      ...(file && file.content.length > 0 ? { eml: file.content } : {}),
      recipients: parseRecipients(recipientsText),
      useDraft,
      recipientsText,
    };
    if (text.length > MAX_TEST_TEXT) {
      await testerPage(req, res, {
        input: { ...input, text: '' },
        error: 'The text is longer than 1 MB.',
        status: 413,
      });
      return;
    }
    const a = await analyzerFor(req, useDraft);
    if ('error' in a) {
      await testerPage(req, res, { input, error: a.error, status: 422 });
      return;
    }
    let result: TesterResult;
    try {
      result = await runTest(input, a.analyzer!, config, keyring);
    } catch {
      // The message is not passed on: it may hold the input.
      await testerPage(req, res, {
        input,
        error: 'That file could not be read as an e-mail message.',
        status: 422,
      });
      return;
    }
    await audited(req, result, useDraft, a.version ?? null);
    await testerPage(req, res, { input, result });
  });

  r.post('/api/admin/rules/test', admin, json, auth.csrf, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const eml = typeof body.eml === 'string' ? Buffer.from(body.eml, 'base64') : undefined;
    const text = str(body.text);
    if (!eml && typeof body.text !== 'string') {
      res.status(400).json({
        error: 'send {"text": "…"} or {"eml": "<base64>"}, optional "subject", "recipients", "draft": true',
      });
      return;
    }
    if (text.length > MAX_TEST_TEXT || (eml && eml.length > MAX_TEST_EML)) {
      res.status(413).json({ error: 'input too large' });
      return;
    }
    const recipients = Array.isArray(body.recipients)
      ? parseRecipients(body.recipients.filter((x): x is string => typeof x === 'string').join(','))
      : parseRecipients(str(body.recipients));
    const useDraft = body.draft === true;
    const a = await analyzerFor(req, useDraft);
    if ('error' in a) {
      res.status(422).json({ error: a.error });
      return;
    }
    let result: TesterResult;
    try {
      result = await runTest(
        { text, subject: str(body.subject), ...(eml ? { eml } : {}), recipients },
        a.analyzer!,
        config,
        keyring,
      );
    } catch {
      res.status(422).json({ error: 'the eml could not be parsed' });
      return;
    }
    await audited(req, result, useDraft, a.version ?? null);
    res.json({ rules: useDraft ? 'draft' : { version: a.version }, ...resultJson(result) });
  });

  return r;
}
