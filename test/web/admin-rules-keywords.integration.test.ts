// A rule's own keywords and patterns end to end, over real HTTP, SMTP and SQLite: the API refuses an unsafe
// pattern naming the rule and the field and saves nothing; a published keyword rule is followed by the running
// gateway's next SMTP message without a restart; the tester marks its findings; the editor reads and writes
// keywords and patterns line by line; a rollback takes the rule away again.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parse } from 'yaml';
import { createLogger } from '../../config/log.js';
import { activeRulesFile } from '../../config/rules-file.js';
import { createWebApp } from '../../web/app.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { makeMessage, queueIdOf, sendMessage } from '../support/smtp-client.js';
import { Browser, makeAdmin } from '../support/admin-browser.js';

const KEYWORD = 'Project Nightingale';
const RULE = {
  id: 'study-codename',
  description: 'The code name or an ID of our oncology study',
  action: 'quarantine',
  keywords: [KEYWORD],
  patterns: [{ name: 'study-id', regex: 'NGL-\\d{4,6}\\b' }],
};

interface RuleSetJson {
  rules: Array<Record<string, unknown> & { id: string }>;
  [k: string]: unknown;
}

describe('web/admin-rules: keywords and patterns (integration)', function () {
  this.timeout(90000);
  let gw: RunningGateway;
  let server: Server;
  let admin: Browser;
  let csrf: string;

  const versions = async () =>
    Number(((await gw.store.db('rule_versions').count({ n: '*' })) as Array<{ n: number }>)[0]!.n);
  const inForce = async () =>
    (
      JSON.parse((await admin.go('/api/admin/rules')).body) as {
        version: { id: number };
        ruleSet: RuleSetJson;
      }
    ).ruleSet;
  const gatewayHas = (id: string) => gw.gateway.rules!.analyzer.ruleSet.rules.some((r) => r.id === id);

  async function until(check: () => boolean, what: string): Promise<void> {
    const end = Date.now() + 10000;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function send(body: string): Promise<string> {
    const message = makeMessage({ to: 'partner@partner.example', subject: 'Update', body });
    return queueIdOf(
      await sendMessage(gw.smtpPort, 'staff@clinic.example', 'partner@partner.example', message),
    );
  }

  async function verdictOf(id: string): Promise<{ state: string; rules: string[]; types: string[] }> {
    const end = Date.now() + 20000;
    for (;;) {
      const row = (await gw.store.db('messages').where({ id }).first()) as
        { state: string; verdict: string | null } | undefined;
      if (row?.verdict && !['queued', 'processing'].includes(row.state)) {
        const v = JSON.parse(row.verdict) as { rules: string[]; types?: string[] };
        return { state: row.state, rules: v.rules, types: v.types ?? [] };
      }
      if (Date.now() > end) throw new Error(`message ${id} not processed`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    gw = await startGateway({ overrides: { dlp: { reloadInterval: 100 } } });
    const secret = await makeAdmin(gw.store, 'admin@clinic.example', 'admin-password-123');
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    admin = new Browser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    csrf = await admin.signInAdmin('admin@clinic.example', 'admin-password-123', secret);
    expect(csrf).to.not.equal('');
  });

  after(async () => {
    server?.close();
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
  });

  it('refuses an unsafe pattern or a bad keyword over the API, naming the rule and the field; nothing is saved', async () => {
    const ruleSet = await inForce();
    const n = await versions();
    const slot = ruleSet.rules.length;
    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [
        { patterns: [{ name: 'evil', regex: '(a+)+$' }] },
        `rules.${slot}.patterns.0.regex`,
        /^rule "study-codename", pattern "evil": refused: .*nested quantifiers/,
      ],
      [
        { patterns: [{ name: 'evil', regex: '(a|aa)+' }] },
        `rules.${slot}.patterns.0.regex`,
        /^rule "study-codename", pattern "evil": refused: .*alternatives/,
      ],
      [
        { patterns: [{ name: 'slow', regex: 'NGL-\\d+' }] },
        `rules.${slot}.patterns.0.regex`,
        /^rule "study-codename", pattern "slow": refused: .*upper bound/,
      ],
      [
        { keywords: [KEYWORD, ' '] },
        `rules.${slot}.keywords.1`,
        /^rule "study-codename": keyword 2 is empty/,
      ],
    ];
    for (const [extra, where, message] of cases) {
      const res = await admin.json(
        '/api/admin/rules',
        'POST',
        { ruleSet: { ...ruleSet, rules: [...ruleSet.rules, { ...RULE, ...extra }] }, reason: 'study rule' },
        csrf,
      );
      expect(res.status, where).to.equal(422);
      const errors = (JSON.parse(res.body) as { errors: Array<{ path: string; message: string }> }).errors;
      expect(errors.find((e) => e.path === where)?.message, JSON.stringify(errors)).to.match(message);
    }
    // The same through YAML text.
    const yaml = await admin.json(
      '/api/admin/rules',
      'POST',
      {
        yaml: `version: 1\nrules:\n  - id: only\n    patterns:\n      - { name: evil, regex: '(.*a){10}' }\n`,
        reason: 'study rule',
      },
      csrf,
    );
    expect(yaml.status).to.equal(422);
    expect(yaml.body).to.contain('"path":"rules.0.patterns.0.regex"');
    expect(yaml.body).to.contain('rule \\"only\\", pattern \\"evil\\": refused');
    expect(await versions()).to.equal(n);
    expect(existsSync(activeRulesFile(gw.config))).to.equal(false);
  });

  it('publishes a keyword rule over the API; the running gateway follows it on the next SMTP message', async () => {
    const before = await send(`Status of ${KEYWORD}, please.`);
    expect((await verdictOf(before)).rules).to.not.include(RULE.id);

    const ruleSet = await inForce();
    const res = await admin.json(
      '/api/admin/rules',
      'POST',
      { ruleSet: { ...ruleSet, rules: [...ruleSet.rules, RULE] }, reason: 'Oncology study code name' },
      csrf,
    );
    expect(res.status, res.body).to.equal(201);
    const listed = (await inForce()).rules.find((r) => r.id === RULE.id)!;
    expect(listed).to.deep.include({ keywords: RULE.keywords, patterns: RULE.patterns, conditions: [] });
    await until(() => gatewayHas(RULE.id), 'gateway reload');

    const table: Array<[string, boolean]> = [
      [`Status of ${KEYWORD.toUpperCase()}, please.`, true],
      ['Enrolment numbers for NGL-20417 attached.', true],
      ['A nightingale sang; the project is on time.', false],
      ['Ticket NGL-12 is closed.', false],
    ];
    for (const [body, fires] of table) {
      const v = await verdictOf(await send(body));
      expect(v.rules.includes(RULE.id), body).to.equal(fires);
      if (fires) {
        expect(v.state).to.equal('held');
        expect(v.types.some((t) => t === 'RULE_KEYWORD' || t === 'RULE_PATTERN')).to.equal(true);
      }
    }
  });

  it('marks keyword and pattern findings in the live tester, by type and rule', async () => {
    const api = await admin.json(
      '/api/admin/rules/test',
      'POST',
      { text: `About ${KEYWORD} and NGL-1234.` },
      csrf,
    );
    expect(api.status).to.equal(200);
    const body = JSON.parse(api.body) as {
      verdict: {
        action: string;
        findings: Array<{ type: string; category: string; start: number; end: number; rule: string | null }>;
      };
    };
    expect(body.verdict.action).to.equal('quarantine');
    const own = body.verdict.findings.filter((f) => f.category === 'rule');
    expect(own.map((f) => [f.type, f.start, f.end, f.rule])).to.deep.equal([
      ['RULE_KEYWORD', 6, 25, RULE.id],
      ['RULE_PATTERN', 30, 38, RULE.id],
    ]);
    const form = new FormData();
    form.set('_csrf', csrf);
    form.set('subject', '');
    form.set('text', `About ${KEYWORD}.`);
    form.set('recipients', '');
    form.set('rules', 'force');
    const page = await admin.go('/admin/rules/test', { method: 'POST', body: form });
    expect(page.status).to.equal(200);
    // The name recognizer may also see a surname in it: one mark lists every type.
    expect(page.body).to.match(
      /<mark class="finding counted" title="RULE_KEYWORD \(rule study-codename\)[^"]*"><span class="finding-type">RULE_KEYWORD( · PERSON)?<\/span>Project Nightingale<\/mark>/,
    );
  });

  it('edits keywords and patterns line by line in the editor, refusing a bad line with its number', async () => {
    const form = await admin.go(`/admin/rules/rule/${RULE.id}`);
    expect(form.status).to.equal(200);
    expect(form.body).to.match(/<textarea id="keywords"[^>]*>Project Nightingale<\/textarea>/);
    expect(form.body).to.contain('study-id: NGL-\\d{4,6}\\b</textarea>');
    expect(form.body).to.match(/<textarea id="conditions"[^>]*><\/textarea>/);
    const n = await versions();
    const fields = {
      _csrf: csrf,
      base: String(n),
      description: RULE.description,
      enabled: 'on',
      action: 'quarantine',
      minScore: '0.5',
      conditions: '',
      keywords: `${KEYWORD}\nBluebird`,
      reason: 'Add the second code name',
      intent: 'publish',
    };
    const bad = await admin.post(`/admin/rules/rule/${RULE.id}`, {
      ...fields,
      patterns: 'study-id: NGL-\\d{4,6}\\b\n\nevil (i): (x+x+)+y\nno colon here',
    });
    expect(bad.status).to.equal(422);
    expect(bad.body).to.contain('Nothing was changed');
    expect(bad.body).to.contain('<li>line 4: write the name, a colon and the pattern');
    const fixed = await admin.post(`/admin/rules/rule/${RULE.id}`, {
      ...fields,
      patterns: 'study-id: NGL-\\d{4,6}\\b\n\nevil (i): (x+x+)+y',
    });
    expect(fixed.status).to.equal(422);
    expect(fixed.body).to.match(
      /id="patterns-errors"><li>line 3: rule &#34;study-codename&#34;, pattern &#34;evil&#34;: refused: a repeated group contains a repetition/,
    );
    expect(await versions()).to.equal(n);

    const ok = await admin.post(`/admin/rules/rule/${RULE.id}`, {
      ...fields,
      patterns: 'study-id (i, 0.9): NGL-\\d{4,6}\\b',
    });
    expect(ok.status, ok.body.slice(0, 2000)).to.equal(303);
    expect(await versions()).to.equal(n + 1);
    const onDisk = parse(readFileSync(activeRulesFile(gw.config), 'utf8')) as RuleSetJson;
    expect(onDisk.rules.find((r) => r.id === RULE.id)).to.deep.include({
      keywords: [KEYWORD, 'Bluebird'],
      patterns: [{ name: 'study-id', regex: 'NGL-\\d{4,6}\\b', flags: 'i', score: 0.9 }],
    });
    const diff = await admin.go(`/admin/rules/versions/${n + 1}`);
    expect(diff.body).to.contain('Bluebird');
    const list = await admin.go('/admin/rules');
    expect(list.body).to.contain('Keywords: Project Nightingale, Bluebird · Patterns: study-id');
    const yaml = await admin.go('/admin/rules/yaml');
    expect(yaml.body).to.contain('Bluebird');

    // Removing every keyword and pattern of a rule without conditions is refused: it would never fire.
    const empty = await admin.post(`/admin/rules/rule/${RULE.id}`, { ...fields, keywords: '', patterns: '' });
    expect(empty.status).to.equal(422);
    expect(empty.body).to.contain('give at least one condition, keyword or pattern');

    await until(
      () => gw.gateway.rules!.analyzer.ruleSet.rules.some((r) => r.keywords?.includes('Bluebird')),
      'gateway reload',
    );
    expect((await verdictOf(await send('Bluebird kickoff on Monday'))).rules).to.include(RULE.id);
  });

  it('a rollback to the version before the rule takes it away from the running gateway', async () => {
    const res = await admin.json('/api/admin/rules/rollback/1', 'POST', { reason: 'Study closed' }, csrf);
    expect(res.status).to.equal(201);
    await until(() => !gatewayHas(RULE.id), 'gateway reload');
    expect((await verdictOf(await send(`Status of ${KEYWORD}, please.`))).rules).to.not.include(RULE.id);
  });
});
