// DLP rules in real headless Chromium against a running gateway: an admin signs in with TOTP, adds a
// deny-list term in the tester's draft, sees it highlighted, publishes, and the next SMTP message follows the
// new rule without a restart; then adds a rule with its own keyword and pattern in the editor, sees it in the
// list, and the next SMTP message fires it. Screenshots of the list, the editor and the tester at 1280 and 360 px;
// axe-core on the editor with keywords.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createLogger } from '../../config/log.js';
import { createWebApp } from '../../web/app.js';
import { totp } from '../../web/totp.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { makeMessage, queueIdOf, sendMessage } from '../support/smtp-client.js';
import { makeAdmin } from '../support/admin-browser.js';
import { CHROMIUM_ARGS } from '../support/chromium.js';

const TERM = 'Project Nightingale';
const KEYWORD = 'Project Bluebird';
const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

async function send(port: number, body: string): Promise<string> {
  const message = makeMessage({ to: 'patient@example.com', subject: 'Update', body });
  return queueIdOf(await sendMessage(port, 'staff@clinic.example', 'patient@example.com', message));
}

describe('web/admin-rules (browser)', function () {
  this.timeout(90000);
  let browser: Browser;
  /** One signed-in session for both tests (a TOTP code is accepted once). */
  let context: BrowserContext;
  let gw: RunningGateway;
  let server: Server;
  let base: string;
  let secret: Buffer;

  before(async () => {
    gw = await startGateway({ overrides: { dlp: { reloadInterval: 100 }, pickup: { passwordDelay: 0 } } });
    secret = await makeAdmin(gw.store, 'admin@clinic.example', 'admin-password-123');
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    server?.close();
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
  });

  async function verdictOf(id: string): Promise<{ rules: string[] }> {
    const end = Date.now() + 20000;
    for (;;) {
      const row = (await gw.store.db('messages').where({ id }).first()) as
        { state: string; verdict: string | null } | undefined;
      if (row?.verdict && !['queued', 'processing'].includes(row.state))
        return JSON.parse(row.verdict) as { rules: string[] };
      if (Date.now() > end) throw new Error(`message ${id} not processed`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function shoot(page: Page, name: string): Promise<void> {
    for (const width of [1280, 360]) {
      await page.setViewportSize({ width, height: 900 });
      await page.screenshot({ path: `/tmp/rules-${name}-${width}.png`, fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} at ${width}px scrolls sideways`).to.be.at.most(0);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  it('signs in with TOTP, publishes a deny-list term from the tester, and the next SMTP message follows it', async () => {
    const before = await send(gw.smtpPort, `Status of ${TERM}, please.`);
    expect((await verdictOf(before)).rules).to.not.include('deny-list');

    const page = await context.newPage();
    await page.goto(`${base}/admin/rules`);
    await page.getByLabel('Email').fill('admin@clinic.example');
    await page.getByLabel('Password').fill('admin-password-123');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel(/6-digit code/).fill(totp(secret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'DLP rules' }).waitFor();
    expect(await page.locator('.rules-table tbody tr').count()).to.be.greaterThan(3);
    await shoot(page, 'list');

    await page.getByRole('link', { name: 'deny-list' }).click();
    await page.getByRole('heading', { level: 1, name: 'Rule deny-list' }).waitFor();
    await shoot(page, 'editor');

    await page.goto(`${base}/admin/rules/test`);
    const draft = page.getByLabel('Draft rule set (YAML)');
    const yaml = await draft.inputValue();
    expect(yaml).to.contain('deny: []');
    await draft.fill(yaml.replace('deny: []', `deny: ['${TERM}']`));
    await page.getByLabel('Why this change?').fill('Research study code name');
    await page.getByRole('button', { name: 'Save draft' }).click();
    await page.getByText('Draft saved.').waitFor();

    await page.getByLabel('Message text').fill(`Hello,\nwhere are we with ${TERM} enrolment? <b>thanks</b>`);
    await page.getByLabel(/^Recipients/).fill('patient@example.com');
    await page.getByRole('radio', { name: /^My draft/ }).check();
    await page.getByRole('button', { name: 'Test', exact: true }).click();
    await page.getByRole('heading', { name: 'Result with your draft' }).waitFor();
    const mark = page.locator('mark.finding.counted', { hasText: TERM });
    expect(await mark.locator('.finding-type').innerText()).to.match(/^DENY_TERM( · PERSON)?$/);
    expect(await page.locator('.highlighted').innerText()).to.contain('<b>thanks</b>');
    expect(await page.locator('ul.routes').innerText()).to.contain('patient@example.com: secure pickup');
    await shoot(page, 'tester');

    await page.getByRole('button', { name: 'Publish draft' }).click();
    await page.getByText(/Published version 2/).waitFor();
    await page.goto(`${base}/admin/rules/versions/2`);
    expect(await page.locator('.diff tr.add').innerText()).to.contain(TERM);
    await shoot(page, 'versions');

    // The running gateway follows the file it watches; no restart.
    const end = Date.now() + 10000;
    while (!gw.gateway.rules!.analyzer.ruleSet.deny.includes(TERM)) {
      if (Date.now() > end) throw new Error('gateway did not reload the rules');
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await send(gw.smtpPort, `Status of ${TERM}, please.`);
    expect((await verdictOf(after)).rules).to.include('deny-list');
    const kinds = (await gw.store.db('envelopes').where({ message_id: after }).select('kind')) as Array<{
      kind: string;
    }>;
    expect(kinds.map((k) => k.kind)).to.include('pickup-notice');
    await page.close();
  });

  it('adds a rule with its own keyword and pattern in the editor, lists it, and the next SMTP message fires it', async () => {
    const before = await send(gw.smtpPort, `Minutes of ${KEYWORD}.`);
    expect((await verdictOf(before)).rules).to.not.include('study-codename');

    const page = await context.newPage();
    await page.goto(`${base}/admin/rules`);
    await page.getByRole('heading', { level: 1, name: 'DLP rules' }).waitFor();
    await page.getByRole('link', { name: 'Add a rule' }).click();
    await page.getByRole('heading', { level: 1, name: 'Add a rule' }).waitFor();
    await page.getByLabel('Rule id').fill('study-codename');
    await page.getByLabel('Description').fill('The code name or an ID of our study');
    await page.getByLabel('Action when it fires').selectOption('quarantine');
    await page.getByLabel(/^Conditions/).fill('');
    await page.getByLabel('Keywords (one per line)').fill(`${KEYWORD}\nBluebird cohort`);
    await page.getByLabel(/^Patterns/).fill('study-id: BB-\\d{4}\\b');
    await page.getByLabel('Why this change?').fill('Study code name must not leave in clear');

    // An unsafe pattern first: refused next to the field, with its line, and the form keeps what was typed.
    await page.getByLabel(/^Patterns/).fill('study-id: BB-\\d{4}\\b\nslow: BB-\\d+');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText('Nothing was changed.').waitFor();
    expect(await page.locator('#patterns-errors').innerText()).to.match(/line 2: .*upper bound/);
    expect(await page.getByLabel('Keywords (one per line)').inputValue()).to.contain(KEYWORD);
    // axe-core through the DevTools protocol, which the page's CSP (no inline script) does not govern.
    await page.evaluate(`${AXE_SOURCE}\n;0`);
    const axe = await page.evaluate<string[]>(
      `axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id))`,
    );
    expect(axe, 'serious or critical axe findings').to.deep.equal([]);
    await shoot(page, 'editor-keywords');

    await page.getByLabel(/^Patterns/).fill('study-id: BB-\\d{4}\\b');
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByText(/Published version 3/).waitFor();
    const row = page.locator('.rules-table tr', { hasText: 'study-codename' });
    expect(await row.locator('.rule-matchers').innerText()).to.equal(
      `Keywords: ${KEYWORD}, Bluebird cohort · Patterns: study-id`,
    );
    expect(await row.innerText()).to.contain('quarantine');
    await shoot(page, 'list-keywords');

    const end = Date.now() + 10000;
    while (!gw.gateway.rules!.analyzer.ruleSet.rules.some((r) => r.id === 'study-codename')) {
      if (Date.now() > end) throw new Error('gateway did not reload the rules');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(
      (await verdictOf(await send(gw.smtpPort, `Minutes of ${KEYWORD.toLowerCase()}.`))).rules,
    ).to.include('study-codename');
    expect((await verdictOf(await send(gw.smtpPort, 'Sample BB-1234 is ready.'))).rules).to.include(
      'study-codename',
    );
    expect((await verdictOf(await send(gw.smtpPort, 'A bluebird sang.'))).rules).to.not.include(
      'study-codename',
    );
    await page.close();
  });
});
