// Loads the configuration once at start-up: YAML file (PHIGW_CONFIG), then environment variables,
// validated against the schema and frozen. It never falls back silently on a bad value.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Config after loading: paths absolute and the public URL filled in. */
export type ResolvedConfig = Readonly<Config & { publicUrl: string }>;

type Env = Record<string, string | undefined>;

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === undefined || next === null) node[key] = {};
    else if (typeof next !== 'object')
      throw new ConfigError(`config: ${keys.join('.')} conflicts with a non-object value`);
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function parsePort(name: string, value: string): number {
  if (!/^\d{1,5}$/.test(value))
    throw new ConfigError(`config: ${name} must be a port number, got "${value}"`);
  return Number(value);
}

/** Environment variables from DESIGN.md, mapped onto schema keys. */
function applyEnv(raw: Record<string, unknown>, env: Env): void {
  const map: Array<[string, string[], (v: string) => unknown]> = [
    ['PHIGW_DATA_DIR', ['dataDir'], (v) => v],
    ['PHIGW_SMTP_HOST', ['smtp', 'host'], (v) => v],
    ['PHIGW_SMTP_PORT', ['smtp', 'port'], (v) => parsePort('PHIGW_SMTP_PORT', v)],
    ['PHIGW_WEB_HOST', ['web', 'host'], (v) => v],
    ['PHIGW_WEB_PORT', ['web', 'port'], (v) => parsePort('PHIGW_WEB_PORT', v)],
    ['PHIGW_PUBLIC_URL', ['web', 'publicUrl'], (v) => v],
    ['PHIGW_RELAY_URL', ['relay', 'url'], (v) => v],
    ['PHIGW_DATABASE_URL', ['databaseUrl'], (v) => v],
    ['PHIGW_NODE_ID', ['nodeId'], (v) => v],
    ['PHIGW_LOG_LEVEL', ['logLevel'], (v) => v],
  ];
  for (const [name, keys, convert] of map) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(raw, keys, convert(value));
  }
}

function describeIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((issue) => {
    const where = issue.path.join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => (where === '(top level)' ? k : `${where}.${k}`));
      return `unknown key${keys.length > 1 ? 's' : ''}: ${keys.join(', ')}`;
    }
    return `${where}: ${issue.message}`;
  });
  return `config (${source}) is invalid:\n  ${lines.join('\n  ')}`;
}

/** Reads, validates and freezes the configuration. Throws ConfigError with a readable message. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): ResolvedConfig {
  let raw: Record<string, unknown> = {};
  const file = env.PHIGW_CONFIG;
  const source = file ? file : 'embedded default';
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`config: cannot read PHIGW_CONFIG file ${file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (err) {
      throw new ConfigError(`config: ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (parsed === null || parsed === undefined) parsed = {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`config: ${file} must hold a mapping of settings at the top level`);
    }
    raw = parsed as Record<string, unknown>;
    // A section whose keys are all commented out reads as null: it means "all defaults".
    for (const [key, value] of Object.entries(raw)) if (value === null) delete raw[key];
  }
  applyEnv(raw, env);
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error, source));
  const config = result.data;
  const base = file ? path.dirname(path.resolve(cwd, file)) : cwd;
  const resolved = {
    ...config,
    dataDir: path.resolve(file && !env.PHIGW_DATA_DIR ? base : cwd, config.dataDir),
    smtp: {
      ...config.smtp,
      tlsCert: config.smtp.tlsCert ? path.resolve(base, config.smtp.tlsCert) : undefined,
      tlsKey: config.smtp.tlsKey ? path.resolve(base, config.smtp.tlsKey) : undefined,
    },
    web: {
      ...config.web,
      tlsCert: config.web.tlsCert ? path.resolve(base, config.web.tlsCert) : undefined,
      tlsKey: config.web.tlsKey ? path.resolve(base, config.web.tlsKey) : undefined,
    },
    dlp: {
      ...config.dlp,
      rulesFile: config.dlp.rulesFile ? path.resolve(base, config.dlp.rulesFile) : undefined,
    },
    publicUrl: (config.web.publicUrl ?? `http://127.0.0.1:${config.web.port}`).replace(/\/+$/, ''),
  };
  return deepFreeze(resolved);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
