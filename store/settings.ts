// Settings an admin changes in the web UI (practice name and logo, pickup expiry, password delivery, internal
// domains): overrides of the config file kept in the `ui_settings` row, with a per-process cache that every
// node re-checks cheaply (one version number, at most every few seconds). It never logs or audits values
// that could be sensitive: the audit detail names the keys that changed (and the practice name, which is public).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ResolvedConfig } from '../config/load.js';
import { appendAudit } from './audit.js';
import type { Store } from './store.js';

const DAY = 24 * 60 * 60 * 1000;

/** How long a node trusts its cached settings before it asks the database for the version again. */
export const SETTINGS_CHECK_INTERVAL_MS = 2000;
/** Largest logo kept, after re-encoding (the upload limit is checked before, in web/). */
export const LOGO_MAX_BYTES = 200 * 1024;

export type PasswordDelivery = 'email' | 'sender' | 'sms';

/** A domain name, or `*.` and a domain name (covers its subdomains), as policy.internalDomains takes them. */
const DOMAIN_RE =
  /^(\*\.)?(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isDomainName(text: string): boolean {
  return DOMAIN_RE.test(text);
}

/** The overrides, each optional: a key that is absent uses the config file's value. */
export const settingsOverridesSchema = z.strictObject({
  practiceName: z
    .string()
    .trim()
    .min(1, 'Enter the practice name.')
    .max(100, 'Use at most 100 characters.')
    .regex(/^[^\p{Cc}<>]+$/u, 'Use letters, digits and ordinary punctuation (no < or >).')
    .optional(),
  pickupExpiryDays: z
    .number({ error: 'Enter a whole number of days.' })
    .int('Enter a whole number of days.')
    .min(1, 'At least 1 day.')
    .max(365, 'At most 365 days.')
    .optional(),
  passwordDelivery: z.enum(['email', 'sender', 'sms'], { error: 'Choose email, sender or sms.' }).optional(),
  internalDomains: z
    .array(
      z
        .string()
        .trim()
        .toLowerCase()
        .refine(isDomainName, { error: (i) => `${String(i.input)} is not a domain name.` }),
    )
    .max(200, 'At most 200 domains.')
    .optional(),
});

export type SettingsOverrides = z.infer<typeof settingsOverridesSchema>;
export type SettingKey = keyof SettingsOverrides;
export const SETTING_KEYS: readonly SettingKey[] = [
  'practiceName',
  'pickupExpiryDays',
  'passwordDelivery',
  'internalDomains',
];

/** A change: a value sets the override, null removes it (the config file's value applies again). */
export type SettingsChange = { [K in SettingKey]?: SettingsOverrides[K] | null };

export interface Logo {
  contentType: 'image/png' | 'image/jpeg';
  bytes: Buffer;
  /** Short content hash: the ETag, and the cache-busting query of the logo's URL. */
  etag: string;
}

/** What applies now: each value from the UI when set there, else from the config file. */
export interface EffectiveSettings {
  version: number;
  practiceName: string;
  /** Milliseconds, like pickup.expiry. */
  pickupExpiry: number;
  passwordDelivery: PasswordDelivery;
  internalDomains: readonly string[];
  logo: Logo | null;
  overrides: Readonly<SettingsOverrides>;
  /** The config with these values in place, for code that reads a ResolvedConfig. */
  config: ResolvedConfig;
  updatedAt: number | null;
  updatedBy: string | null;
}

export type SettingsErrors = Partial<Record<SettingKey | 'logo' | 'form', string>>;

interface Row {
  version: number | string;
  data: string;
  logo: string | null;
  logo_type: string | null;
  updated_at: number | string | null;
  updated_by: string | null;
}

function effective(config: ResolvedConfig, row: Row | undefined): EffectiveSettings {
  let overrides: SettingsOverrides = {};
  if (row) {
    // A row written by a newer or older build may not parse: keep what does, drop the rest.
    const parsed = settingsOverridesSchema.partial().safeParse(JSON.parse(row.data || '{}'));
    if (parsed.success) overrides = parsed.data;
  }
  // sms needs the webhook; without it (config changed since) the config file's choice applies.
  const delivery =
    overrides.passwordDelivery === 'sms' && !config.pickup.smsWebhookUrl
      ? config.pickup.passwordDelivery
      : (overrides.passwordDelivery ?? config.pickup.passwordDelivery);
  const practiceName = overrides.practiceName ?? config.practiceName;
  const pickupExpiry =
    overrides.pickupExpiryDays !== undefined ? overrides.pickupExpiryDays * DAY : config.pickup.expiry;
  const internalDomains = overrides.internalDomains ?? config.policy.internalDomains;
  let logo: Logo | null = null;
  if (row?.logo && (row.logo_type === 'image/png' || row.logo_type === 'image/jpeg')) {
    const bytes = Buffer.from(row.logo, 'base64');
    logo = {
      contentType: row.logo_type,
      bytes,
      etag: createHash('sha256').update(bytes).digest('hex').slice(0, 16),
    };
  }
  const merged: ResolvedConfig = Object.freeze({
    ...config,
    practiceName,
    policy: Object.freeze({ ...config.policy, internalDomains: [...internalDomains] }),
    pickup: Object.freeze({ ...config.pickup, expiry: pickupExpiry, passwordDelivery: delivery }),
  });
  return {
    version: row ? Number(row.version) : 0,
    practiceName,
    pickupExpiry,
    passwordDelivery: delivery,
    internalDomains,
    logo,
    overrides,
    config: merged,
    updatedAt: row?.updated_at === null || row?.updated_at === undefined ? null : Number(row.updated_at),
    updatedBy: row?.updated_by ?? null,
  };
}

/**
 * The settings of one store. Reads are served from memory; `current()` asks the database for the version
 * number once the cache is older than SETTINGS_CHECK_INTERVAL_MS, and reloads the row only when it moved.
 * A change made through this object is in the cache at once, so this process sees it on the very next call.
 */
export class UiSettings {
  private value: EffectiveSettings;
  private checkedAt = 0;
  private loading?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly checkIntervalMs = SETTINGS_CHECK_INTERVAL_MS,
  ) {
    this.value = effective(config, undefined);
  }

  /** The settings as last loaded (no database access); call current() first where freshness matters. */
  snapshot(): EffectiveSettings {
    return this.value;
  }

  /** The settings now in force; at most one cheap version query per check interval. */
  async current(): Promise<EffectiveSettings> {
    if (Date.now() - this.checkedAt < this.checkIntervalMs) return this.value;
    this.loading ??= this.refresh().finally(() => (this.loading = undefined));
    await this.loading;
    return this.value;
  }

  /** The config with the UI's values in place. */
  async effectiveConfig(): Promise<ResolvedConfig> {
    return (await this.current()).config;
  }

  private async refresh(): Promise<void> {
    const head = (await this.store.db('ui_settings').where({ id: 1 }).first('version')) as
      { version: number | string } | undefined;
    if (!head) {
      this.value = effective(this.config, undefined);
    } else if (Number(head.version) !== this.value.version) {
      const row = (await this.store.db('ui_settings').where({ id: 1 }).first()) as Row | undefined;
      // Versions only grow: a read that raced a newer write made here must not put older values back.
      if (row && Number(row.version) > this.value.version) this.value = effective(this.config, row);
    }
    this.checkedAt = Date.now();
  }

  /** Checks a change without saving it: the cleaned values, or an error per field. */
  validate(
    change: Record<string, unknown>,
  ): { ok: true; change: SettingsChange } | { ok: false; errors: SettingsErrors } {
    const errors: SettingsErrors = {};
    const unknown = Object.keys(change).filter((k) => !(SETTING_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) errors.form = `Unknown settings: ${unknown.join(', ')}.`;
    const clean: SettingsChange = {};
    const toCheck: Record<string, unknown> = {};
    for (const key of SETTING_KEYS) {
      if (!(key in change)) continue;
      if (change[key] === null) (clean as Record<string, unknown>)[key] = null;
      else toCheck[key] = change[key];
    }
    const parsed = settingsOverridesSchema.safeParse(toCheck);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = issue.path[0] as SettingKey | undefined;
        if (key && !errors[key]) errors[key] = issue.message;
      }
    } else {
      Object.assign(clean, parsed.data);
      if (clean.passwordDelivery === 'sms' && !this.config.pickup.smsWebhookUrl)
        errors.passwordDelivery =
          'Text messages need an SMS webhook (pickup.smsWebhookUrl in the config file).';
      if (clean.internalDomains) clean.internalDomains = [...new Set(clean.internalDomains)];
    }
    return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, change: clean };
  }

  /**
   * Saves a validated change (see validate), audited as `settings.changed` with the keys that changed. Values
   * equal to what is stored are no change. Returns the keys changed.
   */
  async update(change: SettingsChange, actor: string): Promise<SettingKey[]> {
    const changed = await this.mutate(actor, (data) => {
      const keys: SettingKey[] = [];
      for (const key of SETTING_KEYS) {
        if (!(key in change)) continue;
        const next = change[key];
        const before = JSON.stringify(data[key] ?? null);
        if (next === null || next === undefined) delete data[key];
        else (data as Record<string, unknown>)[key] = next;
        if (JSON.stringify(data[key] ?? null) !== before) keys.push(key);
      }
      return keys;
    });
    return changed as SettingKey[];
  }

  /** Stores an already re-encoded logo (PNG or JPEG, at most LOGO_MAX_BYTES), audited. */
  async setLogo(
    logo: { contentType: 'image/png' | 'image/jpeg'; bytes: Buffer },
    actor: string,
  ): Promise<void> {
    if (logo.bytes.length > LOGO_MAX_BYTES) throw new RangeError('logo too large');
    await this.mutate(actor, () => ['logo'], {
      logo: logo.bytes.toString('base64'),
      logo_type: logo.contentType,
    });
  }

  /** Removes the logo (audited); false when there was none. */
  async removeLogo(actor: string): Promise<boolean> {
    const had = (await this.current()).logo !== null;
    if (had) await this.mutate(actor, () => ['logo'], { logo: null, logo_type: null });
    return had;
  }

  /** One transaction: lock the row (PostgreSQL), apply `edit`, bump the version, audit; then the cache holds it. */
  private async mutate(
    actor: string,
    edit: (data: SettingsOverrides) => string[],
    columns: Partial<Pick<Row, 'logo' | 'logo_type'>> = {},
  ): Promise<string[]> {
    let written: Row | undefined;
    const keys = await this.store.write(async (trx) => {
      const query = trx('ui_settings').where({ id: 1 });
      const row = (await (this.store.engine === 'postgres' ? query.forUpdate() : query).first()) as
        Row | undefined;
      const data = settingsOverridesSchema.partial().safeParse(JSON.parse(row?.data || '{}'));
      const overrides: SettingsOverrides = data.success ? data.data : {};
      const changed = edit(overrides);
      if (changed.length === 0) return changed;
      const now = Date.now();
      const next: Row = {
        version: Number(row?.version ?? 0) + 1,
        data: JSON.stringify(overrides),
        logo: row?.logo ?? null,
        logo_type: row?.logo_type ?? null,
        updated_at: now,
        updated_by: actor,
        ...columns,
      };
      if (row) await trx('ui_settings').where({ id: 1 }).update(next);
      else await trx('ui_settings').insert({ id: 1, ...next });
      written = next;
      await appendAudit(trx, {
        type: 'settings.changed',
        actor,
        detail: {
          keys: changed,
          ...(changed.includes('practiceName') ? { practiceName: overrides.practiceName ?? null } : {}),
        },
      });
      return changed;
    });
    if (written && Number(written.version) > this.value.version) this.value = effective(this.config, written);
    return keys;
  }
}

const perStore = new WeakMap<Store, UiSettings>();

/** The settings of `store`: one cache per store object, shared by the SMTP side and the web side of a process. */
export function uiSettings(store: Store, config: ResolvedConfig): UiSettings {
  let s = perStore.get(store);
  if (!s) {
    s = new UiSettings(store, config);
    perStore.set(store, s);
  }
  return s;
}
