// Test harness: a real gateway on loopback with its own data directory, in this process or as a child
// process (for crash tests). Ports are picked free by the OS.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadConfig, type ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { Gateway, type GatewayOptions } from '../../gateway/gateway.js';
import { Store } from '../../store/store.js';
import { ensureTestDatabase, TEST_DATABASE_URL } from './test-database.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export async function tempDir(prefix = 'phigw-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export type ConfigOverrides = Record<string, unknown>;

/** Fast retries and polling for tests; everything else is the real default. */
export const testQueue = { retryInitialDelay: 200, retryMaxDelay: 1000, pollInterval: 100 };

export async function writeConfig(
  dir: string,
  overrides: ConfigOverrides,
  name = 'config.yaml',
): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, stringify(overrides));
  return file;
}

export interface RunningGateway {
  gateway: Gateway;
  store: Store;
  config: ResolvedConfig;
  smtpPort: number;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startGateway(
  opts: {
    relayUrl?: string;
    overrides?: ConfigOverrides;
    dataDir?: string;
    gateway?: Partial<GatewayOptions>;
  } = {},
): Promise<RunningGateway> {
  const dir = opts.dataDir ?? (await tempDir());
  const smtpPort = await freePort();
  const overrides = {
    dataDir: dir,
    logLevel: 'silent',
    ...opts.overrides,
    queue: { ...testQueue, ...(opts.overrides?.queue as object) },
  };
  const configFile = await writeConfig(dir, overrides);
  const config = loadConfig({
    PHIGW_CONFIG: configFile,
    PHIGW_SMTP_PORT: String(smtpPort),
    PHIGW_RELAY_URL: opts.relayUrl,
  });
  const log = createLogger(config.logLevel);
  const store = await Store.open(config);
  const gateway = new Gateway({ config, store, log, ...opts.gateway });
  await gateway.start();
  return {
    gateway,
    store,
    config,
    smtpPort,
    dataDir: dir,
    async stop() {
      await gateway.stop();
      await store.close();
    },
  };
}

export interface ChildGateway {
  child: ChildProcess;
  smtpPort: number;
  dataDir: string;
  stderr: () => string;
  stdout: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `phi-gateway start smtp` as a real process; resolves once it listens. */
export async function spawnGateway(opts: {
  dataDir: string;
  relayUrl?: string;
  smtpPort?: number;
  overrides?: ConfigOverrides;
  /** Extra environment for the child (PHIGW_MASTER_KEY, PHIGW_NODE_ID, PHIGW_DATABASE_URL …). */
  env?: Record<string, string>;
  /** Config file name in dataDir (nodes sharing a data directory need one each). */
  configName?: string;
  /** Extra node flags for the child (benchmarks: `--cpu-prof`). */
  nodeArgs?: string[];
}): Promise<ChildGateway> {
  const smtpPort = opts.smtpPort ?? (await freePort());
  const configFile = await writeConfig(
    opts.dataDir,
    {
      logLevel: 'info',
      ...opts.overrides,
      queue: { ...testQueue, ...(opts.overrides?.queue as object) },
    },
    opts.configName,
  );
  // PostgreSQL runs (scripts/test-pg.sh): the child uses the data directory's test database too.
  const databaseUrl =
    opts.env?.PHIGW_DATABASE_URL ?? (TEST_DATABASE_URL ? await ensureTestDatabase(opts.dataDir) : undefined);
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), path.join(ROOT, 'bin/phi-gateway.js'), 'start', 'smtp'],
    {
      env: {
        ...process.env,
        ...opts.env,
        ...(databaseUrl ? { PHIGW_DATABASE_URL: databaseUrl } : {}),
        PHIGW_CONFIG: configFile,
        PHIGW_DATA_DIR: opts.dataDir,
        PHIGW_SMTP_PORT: String(smtpPort),
        PHIGW_RELAY_URL: opts.relayUrl ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${err}`)), 20000);
    const check = () => {
      if (err.includes('phi-gateway: SMTP on')) {
        clearTimeout(timer);
        child.stderr!.off('data', check);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${err}`));
    });
  });
  return {
    child,
    smtpPort,
    dataDir: opts.dataDir,
    stderr: () => err,
    stdout: () => out,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
