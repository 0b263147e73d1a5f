// The pickup portal in real headless Chromium: password page, wrong then right password, reading, download,
// phone width without horizontal scroll, accessible names, and mail HTML that cannot run script or phone home.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createPickups, listPickups, type CreatedPickup } from '../../store/pickups.js';
import { MARKER, PDF, PNG, makeWebContent, startPortal } from '../support/portal.js';
import { CHROMIUM_ARGS } from '../support/chromium.js';

describe('web/pickup-portal (browser)', function () {
  this.timeout(60000);
  let browser: Browser;
  let portal: Awaited<ReturnType<typeof startPortal>>;
  let tracker: Server;
  let trackerHits: string[] = [];
  let trackerUrl: string;

  before(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    portal = await startPortal();
    // A "remote" server on loopback: any request it sees is a leak (remote image, script, form).
    tracker = createServer((req, res) => {
      trackerHits.push(req.url ?? '');
      res.end();
    });
    await new Promise<void>((r) => tracker.listen(0, '127.0.0.1', () => r()));
    const addr = tracker.address();
    trackerUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  after(async () => {
    await browser?.close();
    await portal?.stop();
    await new Promise<void>((r) => (tracker ? tracker.close(() => r()) : r()));
  });
  beforeEach(async () => {
    trackerHits = [];
    await portal.store.write((trx) => trx('pickup_ip_limits').delete());
  });

  async function makePickup(): Promise<CreatedPickup> {
    const html =
      `<div style="font-family:sans-serif"><p>Dear Ms Jones,</p><p>Your blood test <b>${MARKER}</b> came back normal. ` +
      `No further action is needed.</p><p><img alt="Practice logo" src="cid:logo@clinic" width="40" height="40"></p>` +
      `<img alt="tracker" src="${trackerUrl}/pixel.gif">` +
      `<script>document.body.setAttribute('data-pwned', '1'); fetch('${trackerUrl}/script');</script>` +
      `<img alt="x" src="cid:missing" onerror="document.body.setAttribute('data-pwned', '2')"></div>`;
    const content = {
      ...makeWebContent(html),
      subject: 'Your blood test results',
      text:
        `Dear Ms Jones,\n\nYour blood test ${MARKER} came back normal. No further action is needed.\n\n` +
        'If you have questions, call us on 555 0100.\n\nKind regards,\nDr Smith\nRiverside Dental',
    };
    const [p] = await createPickups(portal.store, {
      messageId: 'MSGB',
      sender: 'dr.smith@clinic.example',
      recipients: ['ms.jones@example.org'],
      content,
      expiresAt: Date.now() + 30 * 86_400_000,
    });
    return p!;
  }

  async function unlock(page: Page, p: CreatedPickup): Promise<void> {
    await page.goto(`${portal.base}/p/${p.token}`);
    await page.getByLabel('Password', { exact: true }).fill(p.password.toUpperCase());
    await page.getByRole('button', { name: 'Open message' }).click();
    await page.getByRole('heading', { level: 1, name: 'Your blood test results' }).waitFor();
  }

  it('opens a pickup: password field, wrong password refused, right one shows the message, download matches', async () => {
    const p = await makePickup();
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    try {
      const first = await page.goto(`${portal.base}/p/${p.token}`);
      expect(first!.status()).to.equal(200);
      const field = page.getByLabel('Password', { exact: true });
      expect(await field.count()).to.equal(1);
      expect(await field.getAttribute('type')).to.equal('password');
      expect(await page.getByRole('heading', { level: 1 }).count()).to.equal(1);
      expect(await page.locator('html').getAttribute('lang')).to.equal('en');
      expect((await listPickups(portal.store, { id: p.id }))[0]!.status).to.equal('fetched');

      await field.fill('abcd-efgh-jkmn-pqrs-tuvw');
      const [wrong] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST'),
        page.getByRole('button', { name: 'Open message' }).click(),
      ]);
      expect(wrong.status()).to.equal(401);
      expect(await page.getByRole('alert').innerText()).to.contain('That password is not correct');
      // The field is focused again and points at the error for screen readers.
      expect(await page.evaluate(() => document.activeElement?.id)).to.equal('password');
      expect(await page.getByLabel('Password', { exact: true }).getAttribute('aria-describedby')).to.contain(
        'pw-error',
      );

      await page.getByLabel('Password', { exact: true }).fill(p.password);
      await page.getByRole('button', { name: 'Open message' }).click();
      await page.getByRole('heading', { level: 1, name: 'Your blood test results' }).waitFor();
      expect(await page.getByText('dr.smith@clinic.example').count()).to.be.at.least(1);
      expect(await page.getByRole('heading', { level: 2, name: 'Attachments' }).count()).to.equal(1);

      // The formatted message, sandboxed: text shown, cid image loaded, script not run, remote image not fetched.
      const frame = page.frameLocator('iframe.mail-html');
      expect(await frame.locator('b').innerText()).to.equal(MARKER);
      await page.waitForLoadState('networkidle');
      const logoWidth = await frame
        .locator('img[alt="Practice logo"]')
        .evaluate((img: HTMLImageElement) => img.naturalWidth);
      expect(logoWidth).to.equal(1);
      expect(await frame.locator('body').getAttribute('data-pwned')).to.equal(null);
      expect(trackerHits).to.deep.equal([]);
      // The plain text version is there too.
      await page.getByText('Plain text version').click();
      expect(await page.locator('.mail-text').innerText()).to.contain(
        `Your blood test ${MARKER} came back normal.`,
      );

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'results.pdf' }).click(),
      ]);
      expect(download.suggestedFilename()).to.equal('results.pdf');
      expect((await readFile((await download.path())!)).equals(PDF)).to.equal(true);
      expect((await listPickups(portal.store, { id: p.id }))[0]!.status).to.equal('downloaded');
      expect(PNG.length).to.be.greaterThan(0);
    } finally {
      await context.close();
    }
  });

  it('fits a 375 px phone without horizontal scrolling, with JavaScript off', async () => {
    const p = await makePickup();
    const context = await browser.newContext({
      viewport: { width: 375, height: 740 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      javaScriptEnabled: false,
    });
    const page = await context.newPage();
    try {
      await page.goto(`${portal.base}/p/${p.token}`);
      const widths = async () => {
        const cdp = await context.newCDPSession(page);
        const metrics = (await cdp.send('Page.getLayoutMetrics')) as { cssContentSize: { width: number } };
        await cdp.detach();
        return metrics.cssContentSize.width;
      };
      expect(await widths(), 'password page').to.be.at.most(375);
      await page.screenshot({ path: '/tmp/pickup-phone-password.png', fullPage: true });
      await unlock(page, p);
      expect(await widths(), 'message page').to.be.at.most(375);
      expect(await page.locator('.mail-text').count()).to.equal(1);
      await page.screenshot({ path: '/tmp/pickup-phone.png', fullPage: true });
      expect(trackerHits).to.deep.equal([]);
    } finally {
      await context.close();
    }
  });

  it('has an accessible structure: a named password input, headings, a named frame, labelled reply fields', async () => {
    const p = await makePickup();
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${portal.base}/p/${p.token}`);
      const snapshot = await page.locator('main').ariaSnapshot();
      expect(snapshot).to.match(/heading "You have a secure message" \[level=1\]/);
      expect(snapshot).to.match(/textbox "Password"/);
      expect(snapshot).to.match(/button "Open message"/);
      await unlock(page, p);
      const opened = await page.locator('main').ariaSnapshot();
      expect(opened).to.match(/heading "Your blood test results" \[level=1\]/);
      expect(opened).to.match(/heading "Message" \[level=2\]/);
      expect(opened).to.match(/heading "Reply securely" \[level=2\]/);
      expect(opened).to.match(/textbox "Your reply"/);
      expect(await page.locator('iframe[title="Message (formatted)"]').count()).to.equal(1);
      expect(await page.getByLabel('Attach files (optional)').count()).to.equal(1);
    } finally {
      await context.close();
    }
  });
});
