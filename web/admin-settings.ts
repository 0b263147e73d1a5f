// The admin Settings page and its JSON twin: practice name and logo, pickup expiry and password delivery,
// internal domains — overrides of the config file kept in the database (store/settings.ts) that apply from the
// next message and page view, without a restart. Every change is audited by key; values are never logged.
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import {
  uiSettings,
  type EffectiveSettings,
  type SettingKey,
  type SettingsChange,
  type SettingsErrors,
} from '../store/settings.js';
import type { Store } from '../store/store.js';
import { html, SafeHtml } from './html.js';
import { MultipartError, multipartBoundary, parseMultipart } from './multipart.js';
import { LOGO_PATH, LOGO_UPLOAD_MAX_BYTES, LogoError, processLogo } from './settings-logo.js';
import { requireJson, staffPage, type StaffAuth } from './staff-auth.js';

const DAY = 24 * 60 * 60 * 1000;

const SECTIONS = {
  practice: ['practiceName'],
  pickup: ['pickupExpiryDays', 'passwordDelivery'],
  routing: ['internalDomains'],
} as const satisfies Record<string, readonly SettingKey[]>;
type Section = keyof typeof SECTIONS;

const DELIVERY_LABELS = {
  email: [
    'A separate email',
    'The recipient gets the password in a second email, a little after the notice.',
  ],
  sender: [
    'The sender passes it on',
    'The sender gets the password and gives it to the recipient, e.g. by phone.',
  ],
  sms: ['Text message', 'The password goes to the recipient by SMS, through the configured webhook.'],
} as const;

/** What the form showed, as typed: redisplayed with the errors when it does not validate. */
type FormValues = Partial<Record<SettingKey, string>>;

function daysOf(ms: number): string {
  const days = ms / DAY;
  return Number.isInteger(days) ? String(days) : days.toFixed(2);
}

function domainsOf(text: string): string[] {
  return text
    .split(/[\r\n,]+/)
    .map((d) => d.trim())
    .filter((d) => d !== '');
}

export function createSettingsPages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): express.Router {
  const { config, store, log, auth } = opts;
  const settings = uiSettings(store, config);
  const smsAvailable = !!config.pickup.smsWebhookUrl;
  const r = express.Router();
  r.use(['/admin/settings', '/api/admin/settings'], auth.load);
  const admin = auth.require(['admin']);
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  const json = express.json({ limit: '64kb' });
  const rawLogo = express.raw({ type: 'multipart/form-data', limit: LOGO_UPLOAD_MAX_BYTES * 4 });
  const rawImage = express.raw({ type: ['image/png', 'image/jpeg'], limit: LOGO_UPLOAD_MAX_BYTES * 4 });

  const fileValue = (key: SettingKey): string => {
    switch (key) {
      case 'practiceName':
        return config.practiceName;
      case 'pickupExpiryDays':
        return `${daysOf(config.pickup.expiry)} days`;
      case 'passwordDelivery':
        return DELIVERY_LABELS[config.pickup.passwordDelivery][0].toLowerCase();
      case 'internalDomains':
        return config.policy.internalDomains.join(', ') || 'none';
    }
  };

  /** Under a field: where its value comes from now. */
  const origin = (s: EffectiveSettings, key: SettingKey) =>
    s.overrides[key] !== undefined
      ? html`Set here. The config file says: ${fileValue(key)}.`
      : html`From the config file.`;

  const fieldError = (errors: SettingsErrors, key: SettingKey | 'logo', id: string) =>
    errors[key] ? html`<p class="field-error" id="${id}">${errors[key]}</p>` : '';
  const invalid = (errors: SettingsErrors, key: SettingKey | 'logo', hint: string, err: string) =>
    new SafeHtml(
      errors[key] ? ` aria-invalid="true" aria-describedby="${hint} ${err}"` : ` aria-describedby="${hint}"`,
    );

  const renderPage = (
    req: Request,
    res: Response,
    state: { errors?: SettingsErrors; values?: FormValues; saved?: string; status?: number } = {},
  ) => {
    const s = settings.snapshot();
    const errors = state.errors ?? {};
    const v = state.values ?? {};
    const csrf = html`<input type="hidden" name="_csrf" value="${req.staff!.csrf}">`;
    const name = v.practiceName ?? s.practiceName;
    const days = v.pickupExpiryDays ?? daysOf(s.pickupExpiry);
    const delivery = v.passwordDelivery ?? s.passwordDelivery;
    const domains = v.internalDomains ?? s.internalDomains.join('\n');
    const choices = (['email', 'sender', 'sms'] as const).filter(
      (d) => d !== 'sms' || smsAvailable || s.passwordDelivery === 'sms',
    );
    const savedText: Record<string, string> = {
      practice: 'Practice name saved. Notices and pickup pages use it from now on.',
      pickup: 'Secure pickup settings saved. They apply to the next message.',
      routing: 'Internal domains saved. They apply to the next message.',
      logo: 'Logo saved. Pickup pages show it from now on.',
      'logo-removed': 'Logo removed. Pickup pages show the practice name.',
      reset: 'Back to the config file’s values, from the next message on.',
      unchanged: 'Nothing changed.',
    };
    const resetButton = (section: Section) =>
      SECTIONS[section].some((k) => s.overrides[k] !== undefined)
        ? html` <button type="submit" name="reset" value="1" class="secondary" formnovalidate>Reset to the config file</button>`
        : '';
    const body = html`<h1>Settings</h1>
<p class="note">These settings override the config file. A change applies to the next message and the next pickup page, on every node within a few seconds; no restart is needed. Each change is kept in the audit log.</p>
${state.saved && savedText[state.saved] ? html`<p class="ok" role="status">${savedText[state.saved]}</p>` : ''}
${Object.keys(errors).length ? html`<div class="error" role="alert"><p>Not saved: please correct the field marked below.</p>${errors.form ? html`<p>${errors.form}</p>` : ''}</div>` : ''}
<section class="card settings-section" aria-labelledby="s-practice">
<h2 id="s-practice">Practice</h2>
<form method="post" action="/admin/settings" novalidate>
${csrf}<input type="hidden" name="section" value="practice">
<label for="practiceName">Practice name</label>
<p class="hint" id="practiceName-hint">Shown on pickup pages and in notices (“Secure message from …”). ${origin(s, 'practiceName')}</p>
<input id="practiceName" name="practiceName" type="text" maxlength="100" required value="${name}"${invalid(errors, 'practiceName', 'practiceName-hint', 'practiceName-error')}>
${fieldError(errors, 'practiceName', 'practiceName-error')}
<div class="form-actions"><button type="submit">Save</button>${resetButton('practice')}</div>
</form>
<h3 id="s-logo">Logo</h3>
${
  s.logo
    ? html`<div class="logo-preview"><img src="${LOGO_PATH}?v=${s.logo.etag}" alt="${s.practiceName}"></div>
<form method="post" action="/admin/settings/logo/remove" class="inline-form">${csrf}<button type="submit" class="secondary">Remove the logo</button></form>`
    : html`<p class="note">No logo: pickup pages show the practice name.</p>`
}
<form method="post" action="/admin/settings/logo" enctype="multipart/form-data">
${csrf}
<label for="logo">${s.logo ? 'Replace the logo' : 'Upload a logo'}</label>
<p class="hint" id="logo-hint">PNG or JPEG, at most ${LOGO_UPLOAD_MAX_BYTES / 1024} KB. It is resized to fit 600 × 200 pixels and its metadata is removed.</p>
<input id="logo" name="logo" type="file" accept="image/png,image/jpeg" required${invalid(errors, 'logo', 'logo-hint', 'logo-error')}>
${fieldError(errors, 'logo', 'logo-error')}
<div class="form-actions"><button type="submit">Upload</button></div>
</form>
</section>
<section class="card settings-section" aria-labelledby="s-pickup">
<h2 id="s-pickup">Secure pickup</h2>
<form method="post" action="/admin/settings" novalidate>
${csrf}<input type="hidden" name="section" value="pickup">
<label for="pickupExpiryDays">Messages can be opened for (days)</label>
<p class="hint" id="pickupExpiryDays-hint">From 1 to 365 days; applies to pickups created from now on. ${origin(s, 'pickupExpiryDays')}</p>
<input id="pickupExpiryDays" name="pickupExpiryDays" type="number" inputmode="numeric" min="1" max="365" step="1" required value="${days}" class="short"${invalid(errors, 'pickupExpiryDays', 'pickupExpiryDays-hint', 'pickupExpiryDays-error')}>
${fieldError(errors, 'pickupExpiryDays', 'pickupExpiryDays-error')}
<fieldset class="choices"${invalid(errors, 'passwordDelivery', 'passwordDelivery-hint', 'passwordDelivery-error')}>
<legend>How the recipient gets the password</legend>
<p class="hint" id="passwordDelivery-hint">${origin(s, 'passwordDelivery')}${smsAvailable ? '' : ' Text messages need an SMS webhook in the config file (pickup.smsWebhookUrl).'}</p>
${choices.map(
  (d) =>
    html`<label class="check"><input type="radio" name="passwordDelivery" value="${d}"${new SafeHtml(delivery === d ? ' checked' : '')}> <span><strong>${DELIVERY_LABELS[d][0]}</strong><span class="hint-inline"> — ${DELIVERY_LABELS[d][1]}</span></span></label>`,
)}
${fieldError(errors, 'passwordDelivery', 'passwordDelivery-error')}
</fieldset>
<div class="form-actions"><button type="submit">Save</button>${resetButton('pickup')}</div>
</form>
</section>
<section class="card settings-section" aria-labelledby="s-routing">
<h2 id="s-routing">Routing</h2>
<form method="post" action="/admin/settings" novalidate>
${csrf}<input type="hidden" name="section" value="routing">
<label for="internalDomains">Internal domains, one per line</label>
<p class="hint" id="internalDomains-hint">Mail to these domains stays inside the practice and leaves in clear, even with health information. <code>*.example.org</code> also covers its subdomains. ${origin(s, 'internalDomains')}</p>
<textarea id="internalDomains" name="internalDomains" rows="5" spellcheck="false" autocapitalize="none"${invalid(errors, 'internalDomains', 'internalDomains-hint', 'internalDomains-error')}>${domains}</textarea>
${fieldError(errors, 'internalDomains', 'internalDomains-error')}
<div class="form-actions"><button type="submit">Save</button>${resetButton('routing')}</div>
</form>
</section>
${s.updatedAt ? html`<p class="note">Last changed ${new Date(s.updatedAt).toISOString().replace('T', ' ').slice(0, 16)} UTC by ${s.updatedBy ?? 'unknown'}.</p>` : ''}`;
    res
      .status(state.status ?? 200)
      .type('html')
      .send(staffPage('Settings', req.staff, body));
  };

  const audited = (req: Request, keys: readonly string[]) => {
    if (keys.length > 0)
      log.info({ evt: 'SETTINGS_CHANGED', keys, actor: req.staff!.id }, 'settings changed in the web UI');
  };

  r.get('/admin/settings', admin, async (req, res) => {
    await settings.current();
    renderPage(req, res, { saved: typeof req.query.saved === 'string' ? req.query.saved : undefined });
  });

  r.post('/admin/settings', admin, form, auth.csrf, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const section = typeof body.section === 'string' ? body.section : '';
    if (!(section in SECTIONS)) {
      res.status(400);
      renderPage(req, res, { errors: { form: 'Unknown section.' }, status: 400 });
      return;
    }
    const keys = SECTIONS[section as Section];
    await settings.current();
    if (body.reset === '1') {
      const change: SettingsChange = Object.fromEntries(keys.map((k) => [k, null]));
      const changed = await settings.update(change, req.staff!.email);
      audited(req, changed);
      res.redirect(303, `/admin/settings?saved=${changed.length ? 'reset' : 'unchanged'}`);
      return;
    }
    const values: FormValues = {};
    const raw: Record<string, unknown> = {};
    for (const key of keys) {
      const text = typeof body[key] === 'string' ? body[key] : '';
      values[key] = text;
      if (key === 'pickupExpiryDays') raw[key] = /^\s*\d+\s*$/.test(text) ? Number(text) : text;
      else if (key === 'internalDomains') raw[key] = domainsOf(text);
      else raw[key] = text;
    }
    const checked = settings.validate(raw);
    if (!checked.ok) {
      renderPage(req, res, { errors: checked.errors, values, status: 422 });
      return;
    }
    const changed = await settings.update(checked.change, req.staff!.email);
    audited(req, changed);
    res.redirect(303, `/admin/settings?saved=${changed.length ? section : 'unchanged'}`);
  });

  /** Multipart (the logo form) into req.body fields plus the file, so the CSRF check reads `_csrf`. */
  const logoBody = (req: Request, res: Response, next: NextFunction) => {
    const boundary = multipartBoundary(req.get('content-type'));
    if (!boundary || !Buffer.isBuffer(req.body)) {
      res.status(400).type('text').send('Bad form');
      return;
    }
    try {
      const parsed = parseMultipart(req.body, boundary, { maxParts: 4, maxFiles: 1 });
      const fields: Record<string, unknown> = Object.fromEntries(parsed.fields);
      fields.logoFile = parsed.files.find((f) => f.field === 'logo')?.content ?? Buffer.alloc(0);
      req.body = fields;
      next();
    } catch (err) {
      if (!(err instanceof MultipartError)) throw err;
      res.status(400).type('text').send('The form could not be read. Reload the page and try again.');
    }
  };

  r.post('/admin/settings/logo', admin, rawLogo, logoBody, auth.csrf, async (req, res) => {
    await settings.current();
    try {
      const logo = await processLogo((req.body as { logoFile: Buffer }).logoFile);
      await settings.setLogo(logo, req.staff!.email);
      audited(req, ['logo']);
      res.redirect(303, '/admin/settings?saved=logo');
    } catch (err) {
      if (!(err instanceof LogoError)) throw err;
      renderPage(req, res, { errors: { logo: err.message }, status: 422 });
    }
  });

  r.post('/admin/settings/logo/remove', admin, form, auth.csrf, async (req, res) => {
    const removed = await settings.removeLogo(req.staff!.email);
    if (removed) audited(req, ['logo']);
    res.redirect(303, `/admin/settings?saved=${removed ? 'logo-removed' : 'unchanged'}`);
  });

  // ---- JSON ----
  const describe = (s: EffectiveSettings) => ({
    settings: {
      practiceName: s.practiceName,
      pickupExpiryDays: s.pickupExpiry / DAY,
      passwordDelivery: s.passwordDelivery,
      internalDomains: s.internalDomains,
    },
    overrides: s.overrides,
    configFile: {
      practiceName: config.practiceName,
      pickupExpiryDays: config.pickup.expiry / DAY,
      passwordDelivery: config.pickup.passwordDelivery,
      internalDomains: config.policy.internalDomains,
    },
    passwordDeliveryChoices: smsAvailable ? ['email', 'sender', 'sms'] : ['email', 'sender'],
    logo: s.logo
      ? { url: `${LOGO_PATH}?v=${s.logo.etag}`, contentType: s.logo.contentType, size: s.logo.bytes.length }
      : null,
    version: s.version,
    updatedAt: s.updatedAt,
    updatedBy: s.updatedBy,
  });

  r.get('/api/admin/settings', admin, async (_req, res) => {
    res.json(describe(await settings.current()));
  });

  r.put('/api/admin/settings', admin, requireJson, json, auth.csrf, async (req, res) => {
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      res.status(400).json({ error: 'send a JSON object of settings (null resets one to the config file)' });
      return;
    }
    await settings.current();
    const checked = settings.validate(body as Record<string, unknown>);
    if (!checked.ok) {
      res.status(422).json({ errors: checked.errors });
      return;
    }
    const changed = await settings.update(checked.change, req.staff!.email);
    audited(req, changed);
    res.json({ changed, ...describe(await settings.current()) });
  });

  r.put('/api/admin/settings/logo', admin, rawImage, auth.csrf, async (req, res) => {
    if (!Buffer.isBuffer(req.body)) {
      res.status(415).json({ error: 'send the image as the body, Content-Type image/png or image/jpeg' });
      return;
    }
    try {
      const logo = await processLogo(req.body);
      await settings.setLogo(logo, req.staff!.email);
      audited(req, ['logo']);
      res.json(describe(await settings.current()));
    } catch (err) {
      if (!(err instanceof LogoError)) throw err;
      res.status(422).json({ errors: { logo: err.message } });
    }
  });

  r.delete('/api/admin/settings/logo', admin, auth.csrf, async (req, res) => {
    const removed = await settings.removeLogo(req.staff!.email);
    if (removed) audited(req, ['logo']);
    res.status(removed ? 204 : 404).end();
  });

  // A body over the parsers' limits: say so on the page (or in JSON) rather than as an internal error.
  r.use(
    ['/admin/settings', '/api/admin/settings'],
    (err: unknown, req: Request, res: Response, next: NextFunction) => {
      const status = (err as { status?: number }).status;
      if (status !== 413 || !req.staff) return next(err);
      if (req.originalUrl.startsWith('/api/'))
        res.status(413).json({ errors: { logo: 'The request is too large.' } });
      else
        renderPage(req, res, {
          errors: { logo: `The image is too large: at most ${LOGO_UPLOAD_MAX_BYTES / 1024} KB.` },
          status: 413,
        });
    },
  );
  return r;
}
