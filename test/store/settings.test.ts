// UI settings on a real store (SQLite, or PostgreSQL under scripts/test-pg.sh): validation as a table with
// more refusals than acceptances, effective values (override, else config file), audit by key without values,
// and a second node's cache that catches up within its check interval.
import { expect } from 'chai';
import { loadConfig, type ResolvedConfig } from '../../config/load.js';
import { verifyAudit } from '../../store/audit.js';
import { isDomainName, UiSettings, uiSettings } from '../../store/settings.js';
import { Store } from '../../store/store.js';
import { removeDir, tempDir, writeConfig } from '../support/gateway.js';

const DAY = 24 * 60 * 60 * 1000;

describe('store/settings', () => {
  let dir: string;
  let store: Store;
  let config: ResolvedConfig;

  before(async () => {
    dir = await tempDir();
    const file = await writeConfig(dir, {
      dataDir: dir,
      logLevel: 'silent',
      practiceName: 'File Practice',
      policy: { internalDomains: ['clinic.example'] },
      pickup: { expiry: 10 * DAY },
    });
    config = loadConfig({ PHIGW_CONFIG: file });
    store = await Store.open(config);
  });

  after(async () => {
    await store?.close();
    await removeDir(dir);
  });

  const domainCases: Array<[string, boolean]> = [
    ['clinic.example', true],
    ['*.clinic.example', true],
    ['mail.partner-clinic.co.uk', true],
    ['clinic', false],
    ['-clinic.example', false],
    ['clinic-.example', false],
    ['clinic..example', false],
    ['clinic.example.', false],
    ['*clinic.example', false],
    ['clinic.exam ple', false],
    ['user@clinic.example', false],
    ['clinic.123', false],
  ];
  for (const [text, ok] of domainCases)
    it(`isDomainName(${JSON.stringify(text)}) is ${ok}`, () => expect(isDomainName(text)).to.equal(ok));

  const validation: Array<[string, Record<string, unknown>, string | null]> = [
    ['a practice name', { practiceName: '  Riverside Dental ' }, null],
    ['expiry in whole days', { pickupExpiryDays: 14 }, null],
    ['domains, lower-cased', { internalDomains: ['Clinic.Example', '*.lab.example'] }, null],
    ['null resets a key', { practiceName: null }, null],
    ['an empty practice name', { practiceName: '   ' }, 'practiceName'],
    ['markup in the practice name', { practiceName: 'Evil <b>Dental</b>' }, 'practiceName'],
    ['a newline in the practice name', { practiceName: 'A\nB' }, 'practiceName'],
    ['a practice name of 101 characters', { practiceName: 'x'.repeat(101) }, 'practiceName'],
    ['zero days', { pickupExpiryDays: 0 }, 'pickupExpiryDays'],
    ['a fraction of a day', { pickupExpiryDays: 1.5 }, 'pickupExpiryDays'],
    ['366 days', { pickupExpiryDays: 366 }, 'pickupExpiryDays'],
    ['days as a string', { pickupExpiryDays: '7' }, 'pickupExpiryDays'],
    ['sms without a webhook', { passwordDelivery: 'sms' }, 'passwordDelivery'],
    ['an unknown delivery', { passwordDelivery: 'fax' }, 'passwordDelivery'],
    ['a bad domain', { internalDomains: ['clinic.example', 'not a domain'] }, 'internalDomains'],
    ['domains not as a list', { internalDomains: 'clinic.example' }, 'internalDomains'],
    ['an unknown key', { smsWebhookUrl: 'https://evil.example/' }, 'form'],
  ];
  for (const [name, change, field] of validation)
    it(`validate: ${name} ${field ? `is refused (${field})` : 'is accepted'}`, () => {
      const out = uiSettings(store, config).validate(change);
      if (field === null) expect(out.ok, JSON.stringify(out)).to.equal(true);
      else {
        expect(out.ok).to.equal(false);
        if (!out.ok)
          expect(out.errors[field as keyof typeof out.errors])
            .to.be.a('string')
            .and.not.equal('');
      }
    });

  it('uses the config file until a value is set, then the override; null goes back to the file', async () => {
    const s = uiSettings(store, config);
    const before = await s.current();
    expect(before).to.include({
      practiceName: 'File Practice',
      pickupExpiry: 10 * DAY,
      passwordDelivery: 'email',
    });
    expect(before.internalDomains).to.deep.equal(['clinic.example']);

    const checked = s.validate({
      practiceName: 'Riverside Dental',
      internalDomains: ['Lab.Example', 'lab.example'],
    });
    expect(checked.ok).to.equal(true);
    if (!checked.ok) return;
    expect(await s.update(checked.change, 'admin@clinic.example')).to.deep.equal([
      'practiceName',
      'internalDomains',
    ]);
    const now = s.snapshot();
    expect(now.practiceName).to.equal('Riverside Dental');
    expect(now.internalDomains).to.deep.equal(['lab.example']);
    expect(now.config.practiceName).to.equal('Riverside Dental');
    expect(now.config.policy.internalDomains).to.deep.equal(['lab.example']);
    expect(now.config.pickup.expiry).to.equal(10 * DAY);
    expect(now.updatedBy).to.equal('admin@clinic.example');

    // The same values again change nothing and write no audit event.
    const events = await store.db('audit_events').where({ type: 'settings.changed' });
    expect(await s.update({ practiceName: 'Riverside Dental' }, 'admin@clinic.example')).to.deep.equal([]);
    expect(await store.db('audit_events').where({ type: 'settings.changed' })).to.have.length(events.length);

    expect(await s.update({ internalDomains: null }, 'admin@clinic.example')).to.deep.equal([
      'internalDomains',
    ]);
    expect(s.snapshot().internalDomains).to.deep.equal(['clinic.example']);
  });

  it('audits each change by key, with the practice name but never the domains', async () => {
    const rows = (await store
      .db('audit_events')
      .where({ type: 'settings.changed' })
      .orderBy('seq')) as Array<{
      actor: string;
      detail: string;
    }>;
    expect(rows.length).to.be.at.least(2);
    const first = JSON.parse(rows[0]!.detail) as { keys: string[]; practiceName?: string };
    expect(first).to.deep.equal({
      keys: ['practiceName', 'internalDomains'],
      practiceName: 'Riverside Dental',
    });
    for (const r of rows) {
      expect(r.actor).to.equal('admin@clinic.example');
      expect(r.detail).not.to.contain('lab.example');
    }
    expect((await verifyAudit(store.db)).ok).to.equal(true);
  });

  it('another node sees a change within its check interval, and only then', async () => {
    const mine = uiSettings(store, config);
    const other = new UiSettings(store, config, 300);
    await other.current();
    await mine.update({ pickupExpiryDays: 3 }, 'admin@clinic.example');
    expect(mine.snapshot().pickupExpiry).to.equal(3 * DAY);
    // Cached: the other node has not looked yet.
    expect((await other.current()).pickupExpiry).to.equal(10 * DAY);
    await new Promise((r) => setTimeout(r, 350));
    expect((await other.current()).pickupExpiry).to.equal(3 * DAY);
    expect(other.snapshot().version).to.equal(mine.snapshot().version);
  });

  it('keeps the logo with its content type and a content hash; removing it is audited once', async () => {
    const s = uiSettings(store, config);
    const bytes = Buffer.from('89504e470d0a1a0a0000', 'hex');
    await s.setLogo({ contentType: 'image/png', bytes }, 'admin@clinic.example');
    const logo = s.snapshot().logo;
    expect(logo?.contentType).to.equal('image/png');
    expect(logo?.bytes.equals(bytes)).to.equal(true);
    expect(logo?.etag).to.match(/^[0-9a-f]{16}$/);
    let refused = false;
    await s
      .setLogo({ contentType: 'image/png', bytes: Buffer.alloc(300 * 1024) }, 'x')
      .catch(() => (refused = true));
    expect(refused, 'a logo over 200 KB is refused').to.equal(true);
    expect(await s.removeLogo('admin@clinic.example')).to.equal(true);
    expect(await s.removeLogo('admin@clinic.example')).to.equal(false);
    expect(s.snapshot().logo).to.equal(null);
    const logoEvents = (await store.db('audit_events').where({ type: 'settings.changed' })).filter(
      (r: { detail: string }) => r.detail.includes('"logo"'),
    );
    expect(logoEvents).to.have.length(2);
  });

  it('ignores an sms override once the webhook is gone from the config file', async () => {
    const withSms = { ...config, pickup: { ...config.pickup, smsWebhookUrl: 'https://sms.example/hook' } };
    const s = new UiSettings(store, withSms, 0);
    const checked = s.validate({ passwordDelivery: 'sms' });
    expect(checked.ok).to.equal(true);
    await s.update({ passwordDelivery: 'sms' }, 'admin@clinic.example');
    expect(s.snapshot().passwordDelivery).to.equal('sms');
    const without = new UiSettings(store, config, 0);
    expect((await without.current()).passwordDelivery).to.equal('email');
    await s.update({ passwordDelivery: null }, 'admin@clinic.example');
  });
});
