// The Dockerfile without Docker (no engine here): its properties (non-root, health check, no secrets,
// unprivileged ports, one writable volume) and its steps, run in temp dirs the way the stages would run them,
// ending with the runtime layout started from its CMD and probed by its own HEALTHCHECK command.
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, readdir, readFile, rename, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ROOT, freePort, removeDir, tempDir } from '../support/gateway.js';

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name: string;
  steps: Instruction[];
}

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+/g, ' ');
    if (op === 'FROM') {
      const f = /^(\S+)(?: AS (\S+))?$/i.exec(rest)!;
      const image = f[1]!.replace(/\$\{(\w+)\}/g, (_s, n: string) => args.get(n) ?? '');
      stages.push({ image, name: f[2] ?? String(stages.length), steps: [] });
    } else if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args.set(k!, v ?? '');
    } else {
      const current = stages[stages.length - 1];
      if (!current) throw new Error(`${op} before FROM`);
      current.steps.push({ op, args: rest });
    }
  }
  return { args, stages };
}

/** ENV lines in both forms (`K=V K2=V2` and `K V`). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const s of stage.steps.filter((i) => i.op === 'ENV')) {
    if (s.args.includes('=')) for (const kv of s.args.split(' ')) env[kv.split('=')[0]!] = kv.split('=')[1]!;
    else env[s.args.split(' ')[0]!] = s.args.split(' ').slice(1).join(' ');
  }
  return env;
}

/** The .dockerignore patterns this repository uses: root names, `*.ext` at the root, `**\/pattern` anywhere. */
function ignoredBy(patterns: string[]): (rel: string) => boolean {
  const toRe = (glob: string) =>
    new RegExp(
      '^' +
        glob
          .replace(/[.+^$()|[\]{}]/g, '\\$&')
          .replace(/\*\*\//g, '(?:.*/)?')
          .replace(/\*/g, '[^/]*') +
        '(?:/.*)?$',
    );
  const res = patterns.map(toRe);
  return (rel) => res.some((r) => r.test(rel));
}

async function listTree(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (r === 'node_modules') continue; // checked separately (large)
    out.push(r);
    if (e.isDirectory()) out.push(...(await listTree(dir, r)));
  }
  return out.sort();
}

const SECRET_NAME = /KEY|SECRET|PASS|TOKEN|CREDENTIAL|PRIVATE/i;

describe('Dockerfile', function () {
  this.timeout(240000);
  let text: string;
  let stages: Stage[];
  let runtime: Stage;
  let ignore: string[];

  before(async () => {
    text = await readFile(path.join(ROOT, 'Dockerfile'), 'utf8');
    const parsed = parseDockerfile(text);
    stages = parsed.stages;
    for (const name of parsed.args.keys()) expect(name, `ARG ${name}`).not.to.match(SECRET_NAME);
    runtime = stages[stages.length - 1]!;
    ignore = (await readFile(path.join(ROOT, '.dockerignore'), 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  });

  describe('properties', () => {
    it('is multi-stage on node:20-bookworm-slim, with build, deps and runtime stages', () => {
      expect(stages.map((s) => s.name)).to.deep.equal(['build', 'deps', 'runtime']);
      for (const s of stages) expect(s.image).to.equal('node:20-bookworm-slim');
    });

    it('builds with npm ci + tsc and installs production dependencies only for the runtime', () => {
      const runs = (s: Stage) =>
        s.steps
          .filter((i) => i.op === 'RUN')
          .map((i) => i.args)
          .join('\n');
      expect(runs(stages[0]!)).to.match(/npm ci\b/);
      expect(runs(stages[0]!)).to.match(/npm run build/);
      expect(runs(stages[1]!)).to.match(/npm ci --omit=dev\b/);
      expect(runs(runtime)).not.to.match(/npm (ci|install)|apt-get|g\+\+/);
    });

    it('runs as a non-root user', () => {
      const users = runtime.steps.filter((i) => i.op === 'USER').map((i) => i.args);
      expect(users, 'USER in the runtime stage').to.have.length.greaterThan(0);
      const last = users[users.length - 1]!.split(':')[0]!;
      expect(['root', '0']).not.to.include(last);
    });

    it('has a HEALTHCHECK on /healthz through node (no curl or wget)', () => {
      const hc = runtime.steps.find((i) => i.op === 'HEALTHCHECK');
      expect(hc, 'HEALTHCHECK').to.not.equal(undefined);
      expect(hc!.args).to.contain('/healthz');
      expect(hc!.args).to.match(/CMD \["node"/);
      expect(hc!.args).not.to.match(/curl|wget/);
    });

    it('exposes only unprivileged ports, 2525 and 8080', () => {
      const ports = runtime.steps.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(' '));
      expect(ports.sort()).to.deep.equal(['2525', '8080']);
      expect(envOf(runtime)).to.include({ PHIGW_SMTP_PORT: '2525', PHIGW_WEB_PORT: '8080' });
    });

    it('keeps all state in the /data volume (read-only root filesystem friendly)', () => {
      expect(runtime.steps.filter((i) => i.op === 'VOLUME').map((i) => i.args)).to.deep.equal(['["/data"]']);
      expect(envOf(runtime).PHIGW_DATA_DIR).to.equal('/data');
    });

    it('bakes in no secret: no ENV/ARG named like one, no relay credentials, no key or data files copied', () => {
      for (const s of stages) {
        for (const i of s.steps.filter((x) => x.op === 'ENV' || x.op === 'ARG')) {
          for (const name of Object.keys(envOf({ ...s, steps: [i] })))
            expect(name, `${i.op} ${name}`).not.to.match(SECRET_NAME);
        }
        for (const i of s.steps.filter((x) => x.op === 'COPY' || x.op === 'ADD'))
          expect(i.args).not.to.match(/\.pem|\.key|master|data\/|first-admin|\.phigw-backup/);
      }
      expect(text).not.to.match(/PHIGW_MASTER_KEY|PHIGW_BACKUP_PASSPHRASE|smtps?:\/\/[^ ]*:[^ ]*@/);
    });

    it('.dockerignore keeps state, secrets, VCS and build output out of the context', () => {
      const ignored = ignoredBy(ignore);
      for (const p of [
        '.git/config',
        'node_modules/x',
        'dist/bin/cli.js',
        'data/master.key',
        'data/phi-gateway.sqlite',
        'tls/privkey.pem',
        'deploy/x.key',
        'backups/nightly.phigw-backup',
        'config.yaml',
        'first-admin.txt',
      ])
        expect(ignored(p), p).to.equal(true);
      for (const p of [
        'package.json',
        'bin/cli.ts',
        'dlp/data/person-names.ts',
        'config/dlp-rules.yaml',
        'web/static/portal.css',
      ])
        expect(ignored(p), p).to.equal(false);
    });
  });

  describe('steps, run outside Docker', () => {
    let work: string;
    let src: string;
    let deps: string;
    let app: string;

    before(async () => {
      work = await tempDir('phigw-docker-');
      src = path.join(work, 'src');
      deps = path.join(work, 'deps');
      app = path.join(work, 'app');
      await mkdir(deps);
      await mkdir(app);
      const ignored = ignoredBy(ignore);
      // COPY . . with .dockerignore applied.
      await cp(ROOT, src, {
        recursive: true,
        filter: (from) => {
          const rel = path.relative(ROOT, from).split(path.sep).join('/');
          return rel === '' || !ignored(rel);
        },
      });
      expect(await stat(path.join(src, 'node_modules')).catch(() => undefined)).to.equal(undefined);
      expect(await stat(path.join(src, 'dist')).catch(() => undefined)).to.equal(undefined);

      const runOf = (s: Stage) => s.steps.filter((i) => i.op === 'RUN').map((i) => i.args);
      // build: `npm ci --ignore-scripts … && npm rebuild better-sqlite3` gives exactly the tree the
      // repository's node_modules already is (same lockfile), so it is linked rather than installed again;
      // the compile step after `COPY . .` runs as written.
      const [buildInstall, buildCompile] = runOf(stages[0]!).slice(-2);
      expect(buildInstall).to.match(/^npm ci --ignore-scripts .*&& npm rebuild better-sqlite3$/);
      await symlink(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'), 'dir');
      // deps: run as written, except offline-first (speed), and `npm rebuild better-sqlite3`, which here
      // compiles from source for minutes (no prebuilt download), stands in as a copy of the same addon.
      const depsCmd = runOf(stages[1]!).at(-1)!;
      const parts = depsCmd.split(' && ');
      expect(parts).to.deep.equal([
        'npm ci --omit=dev --ignore-scripts --no-audit --no-fund',
        'npm rebuild better-sqlite3',
        'npm cache clean --force',
      ]);
      await cp(path.join(ROOT, 'package.json'), path.join(deps, 'package.json'));
      await cp(path.join(ROOT, 'package-lock.json'), path.join(deps, 'package-lock.json'));
      await Promise.all([
        run('sh', ['-c', buildCompile!], { cwd: src, maxBuffer: 1 << 24 }),
        run('sh', ['-c', `${parts[0]} --prefer-offline`], { cwd: deps, maxBuffer: 1 << 24 }).then(() =>
          cp(
            path.join(ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
            path.join(deps, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
          ).catch(async () => {
            await mkdir(path.join(deps, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
            await cp(
              path.join(ROOT, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
              path.join(deps, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
            );
          }),
        ),
      ]);
      // runtime: the COPY --from lines, with /src = build stage, /app = deps stage, WORKDIR /app = app.
      const stageRoot: Record<string, string> = { build: src, deps };
      for (const c of runtime.steps.filter((i) => i.op === 'COPY')) {
        const m = /^--from=(\w+) (\S+) (\S+)$/.exec(c.args);
        expect(m, `COPY ${c.args}`).to.not.equal(null);
        const from = path.join(stageRoot[m![1]!]!, m![2]!.replace(/^\/(src|app)\/?/, ''));
        const to = path.join(app, m![3]!);
        await mkdir(path.dirname(to), { recursive: true });
        if (m![1] === 'deps') await rename(from, to);
        else await cp(from, to, { recursive: true });
      }
    });
    after(() => (work ? removeDir(work) : undefined));

    it('the runtime has production dependencies only and no test or build leftovers', async () => {
      const nm = await readdir(path.join(app, 'node_modules'));
      for (const dev of ['typescript', 'mocha', 'chai', 'eslint', 'playwright-core', 'prettier'])
        expect(nm, dev).not.to.include(dev);
      for (const prod of ['better-sqlite3', 'express', 'smtp-server', 'knex'])
        expect(nm, prod).to.include(prod);
      const tree = await listTree(app);
      expect(tree).to.include('dist/bin/cli.js');
      expect(
        tree.filter(
          (p) => /^dist\/(test|bench|scripts)\b|\.tsbuildinfo$|\.ts$/.test(p) && !p.endsWith('.d.ts'),
        ),
      ).to.deep.equal([]);
    });

    it('starts from its CMD with its ENV, passes its own HEALTHCHECK, and writes only to the data dir', async () => {
      const cmd = JSON.parse(runtime.steps.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];
      expect(cmd[0]).to.equal('node');
      const hc = JSON.parse(
        /CMD (\[.*\])$/.exec(runtime.steps.find((i) => i.op === 'HEALTHCHECK')!.args)![1]!,
      ) as string[];
      const before = await listTree(app);
      const [smtpPort, webPort] = [await freePort(), await freePort()];
      const env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: work,
        ...envOf(runtime),
        // A container has its own network namespace; here the listeners stay on loopback and free ports.
        PHIGW_SMTP_HOST: '127.0.0.1',
        PHIGW_WEB_HOST: '127.0.0.1',
        PHIGW_SMTP_PORT: String(smtpPort),
        PHIGW_WEB_PORT: String(webPort),
        PHIGW_DATA_DIR: path.join(work, 'data'),
      };
      const child = spawn(process.execPath, cmd.slice(1), {
        cwd: app,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout.resume();
      try {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`did not start:\n${err}`)), 60000);
          const check = () => {
            if (err.includes('phi-gateway: web on')) {
              clearTimeout(t);
              resolve();
            }
          };
          child.stderr.on('data', check);
          child.once('exit', (code) => reject(new Error(`exited ${code}:\n${err}`)));
        });
        const health = await run(process.execPath, hc.slice(1), { env }).then(
          () => 0,
          (e: { code?: number }) => e.code ?? 1,
        );
        expect(health, err).to.equal(0);
        // The same check against a port where nothing listens fails (it can fail).
        const down = await run(process.execPath, hc.slice(1), {
          env: { ...env, PHIGW_WEB_PORT: String(await freePort()) },
        }).then(
          () => 0,
          (e: { code?: number }) => e.code ?? 1,
        );
        expect(down).to.equal(1);
        expect(await readdir(path.join(work, 'data'))).to.include.members([
          'master.key',
          'phi-gateway.sqlite',
        ]);
        expect(await listTree(app)).to.deep.equal(before);
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
      }
    });
  });
});
