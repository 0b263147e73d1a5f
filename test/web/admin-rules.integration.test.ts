// DLP rule administration over real HTTP with a real SQLite store: first-use import, publish to the active
// rules file that a RulesSource follows, refusals (bad YAML, catastrophic pattern, bad field) that change
// nothing, diff and rollback, 7-day counts, drafts, CSRF and 401, and a live tester that stores nothing.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig, type ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { activeRulesFile, SHIPPED_RULES_FILE } from '../../config/rules-file.js';
import { RulesSource } from '../../gateway/rules.js';
import { Keyring } from '../../store/pgp-keyring.js';
import { Store } from '../../store/store.js';
import { createWebApp } from '../../web/app.js';
import { removeDir, tempDir, writeConfig } from '../support/gateway.js';
import { makeKey } from '../support/pgp.js';
import { makeMessage } from '../support/smtp-client.js';
import { Browser, makeAdmin } from '../support/admin-browser.js';

const PHI_TEXT =
  'Patient John Smith, DOB 03/14/1962, SSN 536-22-8741, was diagnosed with type 2 diabetes (E11.9). <script>alert(1)</script>';

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('web/admin-rules (integration)', function () {
  this.timeout(60000);
  let dir: string;
  let store: Store;
  let server: Server;
  let base: string;
  let config: ResolvedConfig;
  let admin: Browser;
  let csrf: string;
  let partnerFpr: string;

  const versions = async () =>
    Number(((await store.db('rule_versions').count({ n: '*' })) as Array<{ n: number }>)[0]!.n);
  const audits = async (type: string) =>
    (await store.db('audit_events').where({ type }).orderBy('seq')) as Array<{
      actor: string;
      detail: string;
    }>;

  before(async () => {
    dir = await tempDir();
    const file = await writeConfig(dir, {
      dataDir: dir,
      logLevel: 'silent',
      policy: { internalDomains: ['clinic.example'] },
    });
    config = loadConfig({ PHIGW_CONFIG: file });
    store = await Store.open(config);
    const secret = await makeAdmin(store, 'admin@clinic.example', 'admin-password-123');
    const key = await makeKey('partner@partner.example');
    partnerFpr = key.fingerprint;
    const imported = await new Keyring(store, config.pgp).importArmored(key.publicArmored, 'test');
    expect(imported.imported).to.have.length(1);
    server = createWebApp({ config, store, log: createLogger('silent') }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    admin = new Browser(base);
    csrf = await admin.signInAdmin('admin@clinic.example', 'admin-password-123', secret);
    expect(csrf).to.not.equal('');
  });

  after(async () => {
    server?.close();
    await store?.close();
    await removeDir(dir);
  });

  it('answers the API with 401 and the pages with a redirect to /login without a session', async () => {
    const anon = new Browser(base);
    for (const p of ['/api/admin/rules', '/api/admin/rules/versions', '/api/admin/rules/versions/1'])
      expect((await anon.go(p)).status, p).to.equal(401);
    for (const p of [
      '/api/admin/rules',
      '/api/admin/rules/drafts',
      '/api/admin/rules/rollback/1',
      '/api/admin/rules/test',
    ])
      expect((await anon.json(p, 'POST', {}, '')).status, p).to.equal(401);
    const page = await anon.go('/admin/rules');
    expect(page.status).to.equal(303);
    expect(page.location).to.equal('/login?next=%2Fadmin%2Frules');
  });

  it('imports the file in force as version 1 by system at first use', async () => {
    expect(existsSync(activeRulesFile(config))).to.equal(false);
    const res = await admin.go('/api/admin/rules');
    expect(res.status).to.equal(200);
    const body = JSON.parse(res.body) as {
      version: { id: number; author: string; kind: string };
      yaml: string;
      rules: Array<{ id: string }>;
    };
    expect(body.version).to.include({ id: 1, author: 'system', kind: 'import' });
    expect(body.yaml).to.equal(readFileSync(SHIPPED_RULES_FILE, 'utf8'));
    expect(body.rules.map((r) => r.id)).to.include('strong-identifier-in-care');
    const page = await admin.go('/admin/rules');
    expect(page.body).to.contain('Version <strong>1</strong> is in force');
    expect((await audits('rules.imported')).length).to.equal(1);
  });

  it('refuses a form POST without its CSRF token (403) and an API call without the header (403)', async () => {
    const res = await admin.post('/admin/rules/yaml', { yaml: 'version: 1', reason: 'csrf test' });
    expect(res.status).to.equal(403);
    const api = await admin.json('/api/admin/rules', 'POST', { yaml: 'x', reason: 'csrf test' }, '');
    expect(api.status).to.equal(403);
    const test = await admin.json('/api/admin/rules/test', 'POST', { text: 'x' }, '');
    expect(test.status).to.equal(403);
    expect(await versions()).to.equal(1);
  });

  it('publishes a rule edit as version 2, writes the active file, and a RulesSource follows it', async () => {
    const source = new RulesSource(activeRulesFile(config), undefined, SHIPPED_RULES_FILE);
    expect(source.analyzer.ruleSet.rules.find((r) => r.id === 'image-attachment')!.monitorOnly).to.equal(
      true,
    );
    source.watch(50);
    try {
      const form = await admin.go('/admin/rules/rule/image-attachment');
      expect(form.status).to.equal(200);
      expect(form.body).to.contain('name="monitorOnly" checked');
      const res = await admin.post('/admin/rules/rule/image-attachment', {
        _csrf: csrf,
        base: '1',
        description: 'Images are held for review',
        enabled: 'on',
        action: 'quarantine',
        minScore: '0.5',
        conditions: "- any: ['IMAGE_ATTACHMENT']\n",
        reason: 'Images with X-rays leaked twice',
        intent: 'publish',
      });
      expect(res.status).to.equal(303);
      expect(res.location).to.equal('/admin/rules?published=2');
      expect(await versions()).to.equal(2);
      const onDisk = readFileSync(activeRulesFile(config), 'utf8');
      expect(onDisk).to.contain('action: quarantine');
      // The edit keeps the pack's comments and layout.
      expect(onDisk).to.contain('# phi-gateway default DLP rule pack.');
      await until(
        () => source.analyzer.ruleSet.rules.find((r) => r.id === 'image-attachment')!.action === 'quarantine',
      );
      const rule = source.analyzer.ruleSet.rules.find((r) => r.id === 'image-attachment')!;
      expect(rule.monitorOnly).to.equal(false);
      const [audit] = await audits('rules.published');
      expect(audit!.actor).to.equal('admin@clinic.example');
      expect(JSON.parse(audit!.detail)).to.deep.include({
        version: 2,
        parent: 1,
        rules: ['image-attachment'],
      });
      const list = await admin.go('/admin/rules?published=2');
      expect(list.body).to.contain('Published version 2');
      expect(list.body).to.contain('Images with X-rays leaked twice');
    } finally {
      source.close();
    }
  });

  it('refuses invalid YAML, a catastrophic pattern and a bad threshold with 422 and changes nothing', async () => {
    const before = readFileSync(activeRulesFile(config), 'utf8');
    const n = await versions();
    const bad = await admin.post('/admin/rules/yaml', {
      _csrf: csrf,
      base: '2',
      yaml: 'version: 1\nrules: [\n  - id: x\n',
      reason: 'broken on purpose',
      intent: 'publish',
    });
    expect(bad.status).to.equal(422);
    expect(bad.body).to.contain('Nothing was changed');
    expect(bad.body).to.contain('not valid YAML');

    const pattern = await admin.post('/admin/rules/lists', {
      _csrf: csrf,
      base: '2',
      allow: '',
      deny: '',
      mrnFormats: 'MR-\\d{7}\n(a+)+$',
      reason: 'our MRN format',
      intent: 'publish',
    });
    expect(pattern.status).to.equal(422);
    expect(pattern.body).to.match(
      /id="mrnFormats-errors"><li>line 2: pattern refused: a repeated group contains a repetition/,
    );

    const score = await admin.post('/admin/rules/rule/deny-list', {
      _csrf: csrf,
      base: '2',
      description: 'x',
      enabled: 'on',
      action: 'protect',
      minScore: '1.5',
      conditions: "- any: ['@deny']\n",
      reason: 'too high',
      intent: 'publish',
    });
    expect(score.status).to.equal(422);
    expect(score.body).to.match(/id="minScore"[^>]*>\s*<ul class="field-errors"><li>Too big/);
    expect(score.body).to.contain('value="1.5"');

    const noReason = await admin.post('/admin/rules/lists', {
      _csrf: csrf,
      base: '2',
      allow: '',
      deny: 'Project Bluebird',
      mrnFormats: '',
      reason: '',
      intent: 'publish',
    });
    expect(noReason.status).to.equal(422);
    expect(noReason.body).to.contain('say briefly why');

    const api = await admin.json(
      '/api/admin/rules',
      'POST',
      { ruleSet: { version: 1, rules: [{ id: 'Bad Id', conditions: [] }] }, reason: 'api' },
      csrf,
    );
    expect(api.status).to.equal(422);
    const errors = (JSON.parse(api.body) as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
    expect(errors).to.include.members(['rules.0.id', 'rules.0.conditions']);

    const same = await admin.post('/admin/rules/lists', {
      _csrf: csrf,
      base: '2',
      allow: '',
      deny: '',
      mrnFormats: '',
      reason: 'no change',
      intent: 'publish',
    });
    expect(same.status).to.equal(422);
    expect(same.body).to.contain('nothing changed');

    const stale = await admin.post('/admin/rules/lists', {
      _csrf: csrf,
      base: '1',
      allow: '',
      deny: 'Project Bluebird',
      mrnFormats: '',
      reason: 'edited an old page',
      intent: 'publish',
    });
    expect(stale.status).to.equal(409);
    expect(stale.body).to.contain('was published while you edited version 1');

    expect(await versions()).to.equal(n);
    expect(readFileSync(activeRulesFile(config), 'utf8')).to.equal(before);
  });

  it('shows the diff of a version against its parent and any other version', async () => {
    const page = await admin.go('/admin/rules/versions/2');
    expect(page.status).to.equal(200);
    expect(page.body).to.match(/<tr class="del">.*monitorOnly: true/);
    expect(page.body).to.match(/<tr class="add">.*action: quarantine/);
    const api = await admin.go('/api/admin/rules/versions/2');
    const body = JSON.parse(api.body) as { against: number; diff: Array<{ op: string; text: string }> };
    expect(body.against).to.equal(1);
    expect(body.diff.filter((d) => d.op === '+').map((d) => d.text.trim())).to.include('action: quarantine');
    // Only the edited keys were rewritten (description, monitorOnly, action): comments and the rest stay.
    expect(body.diff.filter((d) => d.op !== ' ')).to.have.length(6);
    const list = JSON.parse((await admin.go('/api/admin/rules/versions')).body) as {
      versions: Array<{ id: number }>;
    };
    expect(list.versions.map((v) => v.id)).to.deep.equal([2, 1]);
  });

  it('rolls back by publishing a copy of the old version as a new, audited version', async () => {
    const page = await admin.go('/admin/rules/versions/1');
    expect(page.body).to.contain('Roll back to version 1');
    const res = await admin.post('/admin/rules/versions/1/rollback', {
      _csrf: csrf,
      reason: 'Roll back to version 1',
    });
    expect(res.status).to.equal(303);
    expect(res.location).to.equal('/admin/rules/versions?rolledBack=3');
    type Row = { kind: string; yaml: string };
    const v3 = (await store.db('rule_versions').where({ id: 3 }).first()) as Row;
    const v1 = (await store.db('rule_versions').where({ id: 1 }).first()) as Row;
    expect(v3).to.include({ kind: 'rollback', rollback_of: 1, parent_id: 2, author: 'admin@clinic.example' });
    expect(v3.yaml).to.equal(v1.yaml);
    expect(readFileSync(activeRulesFile(config), 'utf8')).to.equal(v1.yaml);
    const [audit] = await audits('rules.rolled_back');
    expect(JSON.parse(audit!.detail)).to.deep.include({ version: 3, rollbackOf: 1 });
    const api = await admin.json(
      '/api/admin/rules/rollback/2',
      'POST',
      { reason: 'back to quarantine' },
      csrf,
    );
    expect(api.status).to.equal(201);
    const again = await admin.json('/api/admin/rules/rollback/3', 'POST', { reason: 'and back' }, csrf);
    expect(again.status).to.equal(201);
    expect((JSON.parse(again.body) as { version: { id: number } }).version.id).to.equal(5);
    expect((await admin.json('/api/admin/rules/rollback/99', 'POST', {}, csrf)).status).to.equal(404);
  });

  it('counts, per rule, the messages of the last 7 days: "fired" and, for monitor-only, "would have fired"', async () => {
    const now = Date.now();
    const row = (id: string, at: number, verdict: object) => ({
      id,
      state: 'routed',
      created_at: at,
      updated_at: at,
      next_attempt_at: at,
      size: 1,
      mail_from: 'a@clinic.example',
      rcpt_to: '[]',
      trace: '',
      verdict: JSON.stringify(verdict),
    });
    await store.db('messages').insert([
      row('CNT1', now - 3600_000, { rules: ['deny-list'], monitored: ['image-attachment'] }),
      row('CNT2', now - 2 * 86_400_000, {
        rules: ['deny-list', 'clinical-payload'],
        monitored: ['image-attachment'],
      }),
      row('CNT3', now - 3 * 86_400_000, { rules: [], monitored: ['image-attachment'] }),
      row('CNT4', now - 9 * 86_400_000, { rules: ['deny-list'], monitored: ['image-attachment'] }),
      row('CNT5', now - 3600_000, { scanned: false }),
    ]);
    const page = await admin.go('/admin/rules');
    const rowOf = (id: string) =>
      new RegExp(`href="/admin/rules/rule/${id}"[\\s\\S]*?</tr>`).exec(page.body)?.[0] ?? '';
    expect(rowOf('image-attachment')).to.contain('would have fired <strong>3 times</strong>');
    expect(rowOf('deny-list')).to.contain('fired <strong>2 times</strong>');
    expect(rowOf('clinical-payload')).to.contain('fired <strong>once</strong>');
    expect(rowOf('strong-identifier-in-care')).to.contain('fired <strong>0 times</strong>');
    const api = JSON.parse((await admin.go('/api/admin/rules')).body) as {
      rules: Array<{ id: string; last7Days: Record<string, number> }>;
    };
    expect(api.rules.find((r) => r.id === 'image-attachment')!.last7Days).to.deep.equal({
      wouldHaveFired: 3,
    });
    expect(api.rules.find((r) => r.id === 'deny-list')!.last7Days).to.deep.equal({ fired: 2 });
  });

  async function tableCounts(): Promise<Record<string, number>> {
    const tables = (await store.db.raw(
      "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'",
    )) as Array<{ name: string }>;
    const out: Record<string, number> = {};
    for (const { name } of tables) {
      const [c] = (await store.db(name).count({ n: '*' })) as Array<{ n: number }>;
      out[name] = Number(c!.n);
    }
    return out;
  }
  async function files(d: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(d, { withFileTypes: true, recursive: true }))
      if (e.isFile() && !e.name.startsWith('phi-gateway.sqlite')) out.push(path.join(e.parentPath, e.name));
    return out.sort();
  }

  it('tests pasted text: verdict, rules, findings highlighted in place (escaped), routes per recipient; stores nothing', async () => {
    const tablesBefore = await tableCounts();
    const filesBefore = await files(dir);
    const form = new FormData();
    form.set('_csrf', csrf);
    form.set('subject', 'Lab results');
    form.set('text', PHI_TEXT);
    form.set('recipients', 'partner@partner.example, patient@example.com; colleague@clinic.example');
    form.set('rules', 'force');
    const res = await admin.go('/admin/rules/test', { method: 'POST', body: form });
    expect(res.status).to.equal(200);
    expect(res.body).to.contain('Holds PHI: protect');
    expect(res.body).to.match(
      /<mark class="finding counted" title="US_SSN \(rule [a-z-]+\)"><span class="finding-type">US_SSN<\/span>536-22-8741<\/mark>/,
    );
    expect(res.body).to.contain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(res.body).to.not.contain('<script>alert(1)');
    expect(res.body).to.contain('strong-identifier-in-care');
    const pretty = partnerFpr
      .slice(0, 16)
      .replace(/(.{4})/g, '$1 ')
      .trim();
    expect(res.body).to.contain(
      `partner@partner.example</span>: <span class="route route-pgp">PGP (key ${pretty}…)`,
    );
    expect(res.body).to.contain('patient@example.com</span>: <span class="route route-pickup">secure pickup');
    expect(res.body).to.contain(
      'colleague@clinic.example</span>: <span class="route route-clean">clear (internal)',
    );

    const api = await admin.json(
      '/api/admin/rules/test',
      'POST',
      { text: 'Lunch on Friday?', recipients: ['patient@example.com'] },
      csrf,
    );
    expect(api.status).to.equal(200);
    const clean = JSON.parse(api.body) as { verdict: { action: string }; routes: Array<{ summary: string }> };
    expect(clean.verdict.action).to.equal('clean');
    expect(clean.routes[0]!.summary).to.equal('clear');

    const eml = makeMessage({
      to: 'partner@partner.example, patient@example.com',
      subject: '[secure] hello',
      body: 'Nothing sensitive here.',
    });
    const emlRes = await admin.json(
      '/api/admin/rules/test',
      'POST',
      { eml: Buffer.from(eml).toString('base64') },
      csrf,
    );
    const withTag = JSON.parse(emlRes.body) as {
      routes: Array<{ rcpt: string; action: string; fingerprint?: string }>;
    };
    expect(withTag.routes).to.deep.equal([
      {
        rcpt: 'partner@partner.example',
        action: 'pgp',
        reason: 'PGP_KEY',
        fingerprint: partnerFpr,
        summary: `PGP (key ${pretty}…)`,
      },
      { rcpt: 'patient@example.com', action: 'pickup', reason: 'NO_KEY', summary: 'secure pickup' },
    ]);

    const upload = new FormData();
    upload.set('_csrf', csrf);
    upload.set('rules', 'force');
    upload.set('eml', new Blob([makeMessage({ to: 'patient@example.com', body: PHI_TEXT })]), 'test.eml');
    const up = await admin.go('/admin/rules/test', { method: 'POST', body: upload });
    expect(up.status).to.equal(200);
    expect(up.body).to.contain('<span class="finding-type">US_SSN</span>536-22-8741</mark>');
    expect(up.body).to.contain('patient@example.com</span>: <span class="route route-pickup">');

    const tablesAfter = await tableCounts();
    expect({ ...tablesAfter, audit_events: 0 }).to.deep.equal({ ...tablesBefore, audit_events: 0 });
    expect(tablesAfter.audit_events).to.equal(tablesBefore.audit_events! + 4);
    expect(await files(dir)).to.deep.equal(filesBefore);
    const tested = await audits('rules.tested');
    expect(tested).to.have.length(4);
    for (const a of tested) {
      expect(a.detail).to.not.contain('536-22');
      expect(a.detail).to.not.contain('example.com');
      expect(Object.keys(JSON.parse(a.detail) as object).sort()).to.deep.equal(
        ['draft', 'findings', 'monitored', 'recipients', 'rulesFired', 'version'].sort(),
      );
    }
  });

  it('saves a draft that is not in force and tests it before publishing', async () => {
    const n = await versions();
    const current = JSON.parse((await admin.go('/api/admin/rules')).body) as { yaml: string };
    const draftYaml = current.yaml.replace('deny: []', "deny: ['Project Nightingale']");
    expect(draftYaml).to.not.equal(current.yaml);
    const saved = await admin.json(
      '/api/admin/rules/drafts',
      'POST',
      { yaml: draftYaml, reason: 'study' },
      csrf,
    );
    expect(saved.status).to.equal(200);
    const text = 'Status of Project Nightingale?';
    const withDraft = JSON.parse(
      (await admin.json('/api/admin/rules/test', 'POST', { text, draft: true }, csrf)).body,
    ) as { verdict: { rules: string[]; findings: Array<{ type: string }> } };
    expect(withDraft.verdict.rules).to.deep.equal(['deny-list']);
    const inForce = JSON.parse((await admin.json('/api/admin/rules/test', 'POST', { text }, csrf)).body) as {
      verdict: { rules: string[] };
    };
    expect(inForce.verdict.rules).to.deep.equal([]);
    expect(await versions()).to.equal(n);
    const page = await admin.go('/admin/rules/test');
    expect(page.body).to.contain('Project Nightingale');
    expect(page.body).to.contain('name="rules" value="draft"');
    const bad = await admin.json('/api/admin/rules/drafts', 'POST', { yaml: 'rules: 3', reason: 'x' }, csrf);
    expect(bad.status).to.equal(422);
    expect((await audits('rules.draft_saved')).length).to.equal(1);
    const pub = await admin.post('/admin/rules/drafts', {
      _csrf: csrf,
      base: String(n),
      yaml: draftYaml,
      reason: 'Study code name',
      intent: 'publish',
    });
    expect(pub.status).to.equal(303);
    expect(await versions()).to.equal(n + 1);
    expect(readFileSync(activeRulesFile(config), 'utf8')).to.contain('Project Nightingale');
  });
});
