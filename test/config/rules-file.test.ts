// Where the DLP rules live: the configured file, else <dataDir>/dlp-rules.yaml once an admin has published,
// else the shipped pack; and a RulesSource that starts on the shipped pack follows the data-dir file once
// it appears (what a first publish does to a running gateway).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../config/load.js';
import { activeRulesFile, rulesFileInForce, SHIPPED_RULES_FILE } from '../../config/rules-file.js';
import { RulesSource } from '../../gateway/rules.js';
import { removeDir, tempDir, writeConfig } from '../support/gateway.js';

describe('config/rules-file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(() => removeDir(dir));

  it('uses the shipped pack until <dataDir>/dlp-rules.yaml exists, then that file', async () => {
    const config = loadConfig({ PHIGW_DATA_DIR: dir });
    expect(activeRulesFile(config)).to.equal(path.join(dir, 'dlp-rules.yaml'));
    expect(rulesFileInForce(config)).to.equal(SHIPPED_RULES_FILE);
    await writeFile(path.join(dir, 'dlp-rules.yaml'), readFileSync(SHIPPED_RULES_FILE));
    expect(rulesFileInForce(config)).to.equal(path.join(dir, 'dlp-rules.yaml'));
  });

  it('uses dlp.rulesFile when set, even before it exists (a missing configured file is an error, not a fallback)', async () => {
    const file = await writeConfig(dir, { dataDir: dir, dlp: { rulesFile: 'mine.yaml' } });
    const config = loadConfig({ PHIGW_CONFIG: file });
    expect(activeRulesFile(config)).to.equal(path.join(dir, 'mine.yaml'));
    expect(rulesFileInForce(config)).to.equal(path.join(dir, 'mine.yaml'));
    expect(() => new RulesSource(rulesFileInForce(config))).to.throw(/cannot read rules file/);
  });

  it('a RulesSource on the data-dir file reads the shipped pack, then follows the file once it is written', async () => {
    const active = path.join(dir, 'dlp-rules.yaml');
    const source = new RulesSource(active, undefined, SHIPPED_RULES_FILE);
    expect(source.analyzer.ruleSet.deny).to.deep.equal([]);
    source.watch(30);
    try {
      const pack = parse(readFileSync(SHIPPED_RULES_FILE, 'utf8')) as Record<string, unknown>;
      await writeFile(active, stringify({ ...pack, deny: ['Project Bluebird'] }));
      const end = Date.now() + 5000;
      while (!source.analyzer.ruleSet.deny.includes('Project Bluebird')) {
        if (Date.now() > end) throw new Error('not reloaded');
        await new Promise((r) => setTimeout(r, 20));
      }
      await writeFile(active, 'rules: [');
      await new Promise((r) => setTimeout(r, 300));
      expect(source.error).to.match(/not valid YAML/);
      expect(source.analyzer.ruleSet.deny).to.deep.equal(['Project Bluebird']);
    } finally {
      source.close();
    }
  });
});
