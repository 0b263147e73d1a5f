// The Settings page in real headless Chromium: an admin signs in with TOTP, changes settings through the forms
// (an inline error first, then success), uploads a logo that the pickup portal then shows; axe-core finds no
// serious or critical violations, nothing scrolls sideways at 360 px, and screenshots land in /tmp/ui-shots.
import { mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { createLogger } from '../../config/log.js';
import { uiSettings } from '../../store/settings.js';
import { createWebApp } from '../../web/app.js';
import { totp } from '../../web/totp.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { CHROMIUM_ARGS } from '../support/chromium.js';
import { addStaff } from '../support/staff-browser.js';

const SHOTS = '/tmp/ui-shots';
const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

interface AxeResult {
  violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }>;
}

describe('web/admin-settings (browser)', function () {
  this.timeout(120000);
  let dir: string;
  let gw: RunningGateway;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  let account: { email: string; password: string; totpSecret: Buffer };
  const problems: string[] = [];

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    dir = await tempDir();
    const webPort = await freePort();
    base = `http://127.0.0.1:${webPort}`;
    gw = await startGateway({
      dataDir: dir,
      overrides: {
        practiceName: 'File Practice',
        policy: { internalDomains: ['clinic.example'] },
        web: { port: webPort, publicUrl: base },
      },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      webPort,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    account = await addStaff(gw.store, 'admin@clinic.example', 'admin');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  });

  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    server?.close();
    await gw?.stop();
    if (dir) await removeDir(dir);
  });

  /** axe-core at desktop width, then 360 px without sideways scroll; screenshots at both widths. */
  async function check(p: Page, name: string): Promise<void> {
    await p.setViewportSize({ width: 1280, height: 900 });
    await p.evaluate(`${AXE_SOURCE}\n;0`);
    const result = await p.evaluate<AxeResult>(
      `axe.run(document, { resultTypes: ['violations'] }).then(r => ({ violations: r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({ target: n.target })) })) }))`,
    );
    for (const v of result.violations)
      if (v.impact === 'serious' || v.impact === 'critical')
        problems.push(
          `${name}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
        );
    await p.screenshot({ path: `${SHOTS}/${name}-1280.png`, fullPage: true });
    await p.setViewportSize({ width: 360, height: 800 });
    const width = await p.evaluate(() => document.scrollingElement!.scrollWidth);
    if (width > 360) problems.push(`${name}: scrolls sideways at 360 px (${width} px wide)`);
    await p.screenshot({ path: `${SHOTS}/${name}-360.png`, fullPage: true });
    await p.setViewportSize({ width: 1280, height: 900 });
  }

  function assertClean(): void {
    const found = problems.splice(0);
    expect(found, found.join('\n')).to.deep.equal([]);
  }

  it('signs in as an admin and opens Settings from the navigation, marked as the current page', async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(account.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel(/6-digit code/).fill(totp(account.totpSecret));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    const current = page.locator('.staff-nav a[aria-current="page"]');
    expect(await current.innerText()).to.equal('Settings');
    // The current section looks different from the others, not only to screen readers.
    const look = async (sel: string) =>
      page.locator(sel).evaluate((a) => {
        const s = getComputedStyle(a);
        return `${s.backgroundColor} ${s.fontWeight} ${s.boxShadow}`;
      });
    expect(await look('.staff-nav a[aria-current="page"]')).to.not.equal(
      await look('.staff-nav a[href="/admin/audit"]'),
    );
    expect(await page.getByLabel('Practice name').inputValue()).to.equal('File Practice');
    // No SMS webhook configured: text messages are not offered.
    expect(await page.getByRole('radio').count()).to.equal(2);
    await check(page, 'admin-settings');
    assertClean();
  });

  it('shows a bad domain inline and keeps the input, then saves; the change reaches the gateway at once', async () => {
    const domains = page.getByLabel('Internal domains, one per line');
    await domains.fill('clinic.example\nlab example');
    await page.locator('form:has(#internalDomains)').getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.locator('#internalDomains-error').innerText()).to.contain(
      'lab example is not a domain name',
    );
    expect(await domains.getAttribute('aria-invalid')).to.equal('true');
    expect(await domains.inputValue()).to.equal('clinic.example\nlab example');
    await check(page, 'admin-settings-error');

    await domains.fill('clinic.example\nlab.clinic-partner.example');
    await page.locator('form:has(#internalDomains)').getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').waitFor();
    expect(await page.getByRole('status').innerText()).to.contain('Internal domains saved');
    expect(await page.locator('#internalDomains-hint').innerText()).to.contain('Set here');
    const cfg = await uiSettings(gw.store, gw.config).effectiveConfig();
    expect(cfg.policy.internalDomains).to.deep.equal(['clinic.example', 'lab.clinic-partner.example']);
    assertClean();
  });

  it('changes the practice name, expiry and delivery, uploads a logo, and the pickup portal shows it', async () => {
    await page.getByLabel('Practice name').fill('Riverside Dental');
    await page.locator('form:has(#practiceName)').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Practice name saved.').waitFor();

    await page.getByLabel('Messages can be opened for (days)').fill('7');
    await page.getByRole('radio', { name: /The sender passes it on/ }).check();
    await page.locator('form:has(#pickupExpiryDays)').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Secure pickup settings saved.').waitFor();
    expect(await page.getByRole('radio', { name: /The sender passes it on/ }).isChecked()).to.equal(true);

    const logoFile = path.join(dir, 'logo.png');
    await writeFile(
      logoFile,
      await sharp({ create: { width: 900, height: 300, channels: 4, background: '#1d4f91' } })
        .composite([
          {
            input: Buffer.from(
              '<svg width="900" height="300"><text x="40" y="190" font-size="120" fill="white" font-family="sans-serif">Riverside</text></svg>',
            ),
          },
        ])
        .png()
        .toBuffer(),
    );
    await page.getByLabel('Upload a logo').setInputFiles(logoFile);
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText('Logo saved.').waitFor();
    const preview = page.getByRole('img', { name: 'Riverside Dental' });
    await preview.waitFor();
    expect(await preview.evaluate((img) => (img as HTMLImageElement).naturalWidth)).to.equal(600);
    await check(page, 'admin-settings-saved');

    const s = await uiSettings(gw.store, gw.config).current();
    expect(s).to.include({
      practiceName: 'Riverside Dental',
      pickupExpiry: 7 * 86_400_000,
      passwordDelivery: 'sender',
    });

    // The recipient's side: the portal's header shows the logo, with the practice name as its text.
    const rcpt = await browser.newPage();
    await rcpt.goto(`${base}/p/${'A'.repeat(43)}`);
    const logo = rcpt.getByRole('img', { name: 'Riverside Dental' });
    await logo.waitFor();
    expect(await logo.evaluate((img) => (img as HTMLImageElement).naturalWidth)).to.be.above(0);
    expect(await rcpt.title()).to.contain('Riverside Dental');
    await check(rcpt, 'pickup-unknown-with-logo');
    await rcpt.close();
    assertClean();
  });
});
