// The live rule set: the shipped pack loads, an edited file is picked up without a restart, and a broken
// edit is refused with its reason while the rules in force stay in force.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { DEFAULT_RULES_FILE, loadAnalyzer, RulesSource } from '../../gateway/rules.js';
import { removeDir, tempDir } from '../support/gateway.js';

describe('gateway rules source', () => {
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(() => removeDir(dir));

  it('loads the shipped rule pack', () => {
    const analyzer = loadAnalyzer(DEFAULT_RULES_FILE);
    const ids = analyzer.ruleSet.rules.map((r) => r.id);
    expect(ids).to.include.members([
      'strong-identifier-in-care',
      'identifier-near-health',
      'clinical-payload',
      'unreadable-attachment',
    ]);
  });

  it('picks up a changed file without a restart and keeps the old rules when the new file is invalid', async () => {
    const file = path.join(dir, 'rules.yaml');
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as { deny: string[] };
    await writeFile(file, stringify(pack));
    const source = new RulesSource(file);
    source.watch(50);
    try {
      const text = [{ id: 'text', text: 'Notes on Project Bluebird', kind: 'body' as const }];
      expect(source.analyzer.analyze(text).phi).to.equal(false);

      pack.deny = ['Project Bluebird'];
      await writeFile(file, stringify(pack));
      const end = Date.now() + 5000;
      while (Date.now() < end && !source.analyzer.analyze(text).phi)
        await new Promise((r) => setTimeout(r, 25));
      expect(source.analyzer.analyze(text).phi, 'new rule in force').to.equal(true);

      await writeFile(file, 'version: 1\nrules:\n  - id: Bad Id\n    conditions: []\n');
      const end2 = Date.now() + 5000;
      // A poll may see the file truncated mid-write first (refused too); wait for the written file's reason.
      while (Date.now() < end2 && !/rules\.0\.id/.test(source.error ?? ''))
        await new Promise((r) => setTimeout(r, 25));
      expect(source.error).to.match(/rules\.0\.id/);
      expect(source.analyzer.analyze(text).phi, 'previous rules still in force').to.equal(true);
    } finally {
      source.close();
    }
  });

  it('refuses a file whose rule has an unsafe pattern, naming the file, the rule and the field', async () => {
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as { rules: unknown[] };
    pack.rules.push({
      id: 'study',
      keywords: ['Project Bluebird'],
      patterns: [{ name: 'p', regex: '(a|aa)+' }],
    });
    const file = path.join(dir, 'rules.yaml');
    await writeFile(file, stringify(pack));
    expect(() => loadAnalyzer(file)).to.throw(
      /rules\.yaml: rules are invalid:\n {2}rules\.6\.patterns\.0\.regex: rule "study", pattern "p": refused/,
    );
  });

  it('refuses a missing or non-YAML file with a clear message', async () => {
    expect(() => loadAnalyzer(path.join(dir, 'nope.yaml'))).to.throw(/cannot read rules file .*ENOENT/);
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'rules: [unclosed');
    expect(() => loadAnalyzer(bad)).to.throw(/not valid YAML/);
  });
});
