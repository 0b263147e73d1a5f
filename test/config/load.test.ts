// loadConfig: the embedded default, the PHIGW_* environment, the YAML file and the example config, and
// the refusals an operator sees when a setting is wrong. Nothing here starts a gateway.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ConfigError, loadConfig, type ResolvedConfig } from '../../config/load.js';
import { configSchema, queueSchema, relaySchema, smtpSchema, webSchema } from '../../config/schema.js';

const EXAMPLE = fileURLToPath(new URL('../../../config/phi-gateway.example.yaml', import.meta.url));

describe('config/load', function () {
  let tmp: string;
  let cwd: string;

  before(function () {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'phigw-config-'));
    cwd = path.join(tmp, 'cwd');
  });

  after(function () {
    rmSync(tmp, { recursive: true, force: true });
  });

  let fileCount = 0;
  /** Writes `text` to config.yaml in a fresh directory under the temp dir and returns its path. */
  function makeConfigFile(text: string): string {
    const dir = path.join(tmp, `f${++fileCount}`);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, text);
    return file;
  }

  describe('embedded default (no PHIGW_CONFIG)', function () {
    it('listens on loopback 2525 / 8080 and keeps state in <cwd>/data', function () {
      const config = loadConfig({}, cwd);
      expect(config.smtp.host).to.equal('127.0.0.1');
      expect(config.smtp.port).to.equal(2525);
      expect(config.web.host).to.equal('127.0.0.1');
      expect(config.web.port).to.equal(8080);
      expect(config.dataDir).to.equal(path.join(cwd, 'data'));
      expect(config.publicUrl).to.equal('http://127.0.0.1:8080');
    });

    it('has no relay (built-in outbox), SQLite, info logs and loopback-only trust', function () {
      const config = loadConfig({}, cwd);
      expect(config.relay.url).to.equal(undefined);
      expect(config.relay.allowInvalidCertificates).to.equal(false);
      expect(config.databaseUrl).to.equal(undefined);
      expect(config.logLevel).to.equal('info');
      expect(config.smtp.trustedNetworks).to.deep.equal(['127.0.0.0/8', '::1/128']);
    });

    it('uses the documented retry schedule: 1 minute doubling to 1 hour, bounce after 5 days', function () {
      const { queue } = loadConfig({}, cwd);
      expect(queue.retryInitialDelay).to.equal(60 * 1000);
      expect(queue.retryMaxDelay).to.equal(60 * 60 * 1000);
      expect(queue.maxQueueAge).to.equal(5 * 24 * 60 * 60 * 1000);
    });

    it('is frozen all the way down', function () {
      const config = loadConfig({}, cwd);
      for (const part of [
        config,
        config.smtp,
        config.smtp.trustedNetworks,
        config.web,
        config.relay,
        config.queue,
      ]) {
        expect(Object.isFrozen(part)).to.equal(true);
      }
      expect(() => {
        (config.smtp as { port: number }).port = 25;
      }).to.throw(TypeError);
      expect(() => (config.smtp.trustedNetworks as string[]).push('0.0.0.0/0')).to.throw(TypeError);
      expect(config.smtp.port).to.equal(2525);
      expect(config.smtp.trustedNetworks).to.have.length(2);
    });
  });

  describe('environment variables', function () {
    const rows: Array<[string, string, (c: ResolvedConfig) => unknown, unknown]> = [
      ['PHIGW_SMTP_HOST', '0.0.0.0', (c) => c.smtp.host, '0.0.0.0'],
      ['PHIGW_SMTP_PORT', '2600', (c) => c.smtp.port, 2600],
      ['PHIGW_WEB_HOST', '::', (c) => c.web.host, '::'],
      ['PHIGW_WEB_PORT', '9090', (c) => c.web.port, 9090],
      [
        'PHIGW_PUBLIC_URL',
        'https://secure.clinic.example',
        (c) => c.publicUrl,
        'https://secure.clinic.example',
      ],
      [
        'PHIGW_RELAY_URL',
        'smtps://gw:secret@relay.example:465',
        (c) => c.relay.url,
        'smtps://gw:secret@relay.example:465',
      ],
      [
        'PHIGW_DATABASE_URL',
        'postgres://phigw@db.internal/phigw',
        (c) => c.databaseUrl,
        'postgres://phigw@db.internal/phigw',
      ],
      ['PHIGW_LOG_LEVEL', 'debug', (c) => c.logLevel, 'debug'],
      ['PHIGW_DATA_DIR', '/srv/phi-gateway', (c) => c.dataDir, '/srv/phi-gateway'],
    ];
    for (const [name, value, read, expected] of rows) {
      it(`${name}=${value} overrides the default`, function () {
        expect(read(loadConfig({}, cwd)), 'default differs from the override').to.not.deep.equal(expected);
        expect(read(loadConfig({ [name]: value }, cwd))).to.deep.equal(expected);
      });
    }

    it('PHIGW_DATA_DIR relative to the working directory', function () {
      expect(loadConfig({ PHIGW_DATA_DIR: 'state' }, cwd).dataDir).to.equal(path.join(cwd, 'state'));
    });

    it('PHIGW_WEB_PORT changes the default public URL', function () {
      expect(loadConfig({ PHIGW_WEB_PORT: '9090' }, cwd).publicUrl).to.equal('http://127.0.0.1:9090');
    });

    it('PHIGW_PUBLIC_URL wins over the port, without a trailing slash', function () {
      const config = loadConfig(
        { PHIGW_WEB_PORT: '9090', PHIGW_PUBLIC_URL: 'https://secure.clinic.example/' },
        cwd,
      );
      expect(config.publicUrl).to.equal('https://secure.clinic.example');
      expect(config.web.port).to.equal(9090);
    });

    it('an empty variable counts as unset', function () {
      const config = loadConfig({ PHIGW_SMTP_PORT: '', PHIGW_RELAY_URL: '', PHIGW_DATA_DIR: '' }, cwd);
      expect(config.smtp.port).to.equal(2525);
      expect(config.relay.url).to.equal(undefined);
      expect(config.dataDir).to.equal(path.join(cwd, 'data'));
    });

    it('environment beats the file; the rest of the file stays', function () {
      const file = makeConfigFile(
        'smtp:\n  port: 2600\n  maxRecipients: 7\nrelay:\n  url: smtp://file.example\n',
      );
      const config = loadConfig(
        { PHIGW_CONFIG: file, PHIGW_SMTP_PORT: '2700', PHIGW_RELAY_URL: 'smtps://env.example' },
        cwd,
      );
      expect(config.smtp.port).to.equal(2700);
      expect(config.smtp.maxRecipients).to.equal(7);
      expect(config.relay.url).to.equal('smtps://env.example');
    });
  });

  describe('YAML file (PHIGW_CONFIG)', function () {
    it('reads settings from the file and fills in the rest from defaults', function () {
      const file = makeConfigFile('practiceName: Smile Dental\nqueue:\n  workers: 2\n');
      const config = loadConfig({ PHIGW_CONFIG: file }, cwd);
      expect(config.practiceName).to.equal('Smile Dental');
      expect(config.queue.workers).to.equal(2);
      expect(config.queue.deliveryConcurrency).to.equal(10);
      expect(config.smtp.port).to.equal(2525);
    });

    it('resolves a relative dataDir against the file, unless PHIGW_DATA_DIR is set', function () {
      const file = makeConfigFile('dataDir: ./state\n');
      expect(loadConfig({ PHIGW_CONFIG: file }, cwd).dataDir).to.equal(
        path.join(path.dirname(file), 'state'),
      );
      expect(loadConfig({ PHIGW_CONFIG: file, PHIGW_DATA_DIR: 'env-state' }, cwd).dataDir).to.equal(
        path.join(cwd, 'env-state'),
      );
    });

    it('an empty file is the default', function () {
      const file = makeConfigFile('');
      const config = loadConfig({ PHIGW_CONFIG: file }, cwd);
      expect(config.smtp.port).to.equal(2525);
      expect(config.publicUrl).to.equal('http://127.0.0.1:8080');
    });
  });

  describe('the example config (config/phi-gateway.example.yaml)', function () {
    it('loads and equals the embedded default', function () {
      const fromExample = loadConfig({ PHIGW_CONFIG: EXAMPLE }, cwd);
      const embedded = loadConfig({}, cwd);
      // The one difference by design: a relative dataDir in a file is taken from the file's directory.
      expect(fromExample.dataDir).to.equal(path.join(path.dirname(EXAMPLE), 'data'));
      expect({ ...fromExample, dataDir: '' }).to.deep.equal({ ...embedded, dataDir: '' });
    });

    it('mentions every key of the schema', function () {
      const text = readFileSync(EXAMPLE, 'utf8');
      const sections: Array<[string, string[]]> = [
        ['', Object.keys(configSchema.shape)],
        ['smtp.', Object.keys(smtpSchema.shape)],
        ['web.', Object.keys(webSchema.shape)],
        ['relay.', Object.keys(relaySchema.shape)],
        ['queue.', Object.keys(queueSchema.shape)],
      ];
      const missing = sections.flatMap(([prefix, keys]) =>
        keys.filter((key) => !new RegExp(`^[ #]*${key}:`, 'm').test(text)).map((key) => prefix + key),
      );
      expect(missing).to.deep.equal([]);
    });
  });

  describe('refusals', function () {
    it('names an unknown top-level key and the file it is in', function () {
      const file = makeConfigFile('smtpp:\n  port: 25\n');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd))
        .to.throw(ConfigError, /unknown key: smtpp/)
        .with.property('message')
        .that.includes(file);
    });

    it('names an unknown nested key with its path', function () {
      const file = makeConfigFile('smtp:\n  prot: 25\nqueue:\n  workerz: 3\n');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd))
        .to.throw(ConfigError, /unknown key: smtp\.prot/)
        .with.property('message')
        .that.matches(/unknown key: queue\.workerz/);
    });

    it('refuses a port that is not a number, naming the variable and value', function () {
      expect(() => loadConfig({ PHIGW_SMTP_PORT: 'abc' }, cwd)).to.throw(
        ConfigError,
        /PHIGW_SMTP_PORT must be a port number, got "abc"/,
      );
      expect(() => loadConfig({ PHIGW_WEB_PORT: '80a' }, cwd)).to.throw(
        ConfigError,
        /PHIGW_WEB_PORT must be a port number/,
      );
    });

    it('refuses a port out of range', function () {
      expect(() => loadConfig({ PHIGW_SMTP_PORT: '70000' }, cwd)).to.throw(ConfigError, /smtp\.port/);
    });

    it('refuses a port of the wrong type in the file', function () {
      const file = makeConfigFile('smtp:\n  port: abc\n');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd)).to.throw(ConfigError, /smtp\.port: .*number/);
    });

    it('refuses a relay that is not smtp:// or smtps://, without echoing its password', function () {
      expect(() => loadConfig({ PHIGW_RELAY_URL: 'http://x' }, cwd)).to.throw(
        ConfigError,
        /relay\.url: must start with smtp:\/\/ or smtps:\/\//,
      );
      expect(() => loadConfig({ PHIGW_RELAY_URL: 'http://gw:s3cret-pass@relay.example' }, cwd))
        .to.throw(ConfigError)
        .with.property('message')
        .that.does.not.include('s3cret-pass');
    });

    it('refuses a public URL that is not a URL and an unknown log level', function () {
      expect(() => loadConfig({ PHIGW_PUBLIC_URL: 'not a url' }, cwd)).to.throw(
        ConfigError,
        /web\.publicUrl/,
      );
      expect(() => loadConfig({ PHIGW_LOG_LEVEL: 'loud' }, cwd)).to.throw(ConfigError, /logLevel/);
    });

    it('refuses invalid YAML, naming the file', function () {
      const file = makeConfigFile('smtp: [1, 2\n');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd))
        .to.throw(ConfigError, /is not valid YAML/)
        .with.property('message')
        .that.includes(file);
    });

    it('refuses a file that is not a mapping', function () {
      const file = makeConfigFile('- smtp\n- web\n');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd)).to.throw(ConfigError, /must hold a mapping/);
    });

    it('refuses a missing file, naming it', function () {
      const file = path.join(tmp, 'does-not-exist.yaml');
      expect(() => loadConfig({ PHIGW_CONFIG: file }, cwd))
        .to.throw(ConfigError, /cannot read PHIGW_CONFIG file/)
        .with.property('message')
        .that.includes(file);
    });
  });
});
