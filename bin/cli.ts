// The phi-gateway CLI: parses arguments and calls the modules; nothing else lives here.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import { ConfigError, loadConfig, type ResolvedConfig } from '../config/load.js';
import { createLogger } from '../config/log.js';
import { rulesFileInForce } from '../config/rules-file.js';
import { appendAudit, verifyAudit, type AuditRow } from '../store/audit.js';
import { Store } from '../store/store.js';
import { addUser, generatePassword, hashPassword, normaliseEmail, type Role } from '../store/users.js';
import { ensureUserKey, resetUserKey } from '../store/user-keys.js';
import { BACKUP_USAGE, backupCommand } from './backup-command.js';
import { KEYS_USAGE, keysCommand } from './keys-command.js';
import { MASTER_KEY_USAGE, masterKeyCommand } from './master-key-command.js';
import { PICKUPS_USAGE, pickupsCommand } from './pickups-command.js';

const USAGE = `usage: phi-gateway <command>

  start [smtp|web]                 run the gateway (both parts, or one of them)
  scan [--json] FILE…              check files for PHI (.eml as mail, anything else as text, - for stdin)
  redact [--json] [--boxes FILE] (IN -o OUT | --out-dir DIR IN…)
                                   hide PHI in images (png, jpeg, gif, tiff, webp)
  queue list [--json]              messages and deliveries not yet finished
  queue retry ID                   retry a deferred or held message now
  users add EMAIL --role staff|admin|auditor
                                   add an account; password from stdin, or generated and printed once
  users list [--json]              accounts with role, MFA and state
  users disable EMAIL              disable an account and end its sessions
  users reset-mfa EMAIL            remove an account's TOTP and passkeys (an admin enrols again at next sign-in)
  users reset-password EMAIL       set a new password (stdin, or generated and printed once) and end its
                                   sessions; pickups sent before can no longer be re-issued by this account
  audit verify                     check the audit log's hash chain
  audit export                     print the audit log as JSON lines
${KEYS_USAGE}${PICKUPS_USAGE}${BACKUP_USAGE}${MASTER_KEY_USAGE}
Configuration: PHIGW_CONFIG (YAML) and PHIGW_* variables; see README.md.
`;

class UsageError extends Error {}

function fail(message: string, code = 2): number {
  process.stderr.write(`phi-gateway: ${message}\n`);
  return code;
}

async function withStore<T>(config: ResolvedConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A new staff or admin account's key pair for pickup password re-issue, while its password is in hand. */
async function keyForNewUser(store: Store, email: string, role: Role, password: string): Promise<void> {
  if (role === 'auditor') return;
  const user = (await store
    .db('users')
    .where({ email: normaliseEmail(email) })
    .first('id')) as { id: number };
  await ensureUserKey(store, user.id, password);
}

async function ensureFirstAdmin(store: Store, config: ResolvedConfig): Promise<void> {
  const [row] = (await store.db('users').count({ n: '*' })) as Array<{ n: number | string }>;
  if (Number(row?.n ?? 0) > 0) return;
  const email = 'admin@phi-gateway.local';
  const password = generatePassword();
  try {
    await addUser(store.db, email, 'admin', password);
    await keyForNewUser(store, email, 'admin', password);
  } catch (err) {
    // Another process starting on the same data directory got there first.
    // (SQLite: "UNIQUE constraint failed"; PostgreSQL: unique_violation 23505.)
    if ((err as { code?: unknown }).code === '23505' || /already exists|UNIQUE/.test((err as Error).message))
      return;
    throw err;
  }
  const file = path.join(config.dataDir, 'first-admin.txt');
  await writeFile(file, `email: ${email}\npassword: ${password}\n`, { mode: 0o600 });
  process.stderr.write(
    `phi-gateway: first run: created admin account ${email}; its password is in ${file}\n`,
  );
}

/**
 * The old generation may grow to twice the live heap between full collections (V8's own factor here was ~1.4).
 * With a live heap of ~55 MB (the analyzer's word lists, the libraries) that left less room than the young generation
 * takes, so V8 started a full marking almost as soon as the last one ended: under 100 KB mail, 44 full collections per
 * 2000 messages on the main thread and 29 on the scan thread, their concurrent marking a sixth of the process's CPU.
 * At 2x: 12 and 2, the same peak RSS (measured, bench:peers). V8's flags are process-wide, so the scan threads started
 * later get it too; a value given on the command line wins.
 */
function tuneHeapGrowth(): void {
  if (
    process.execArgv.some(
      (a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'),
    )
  )
    return;
  v8.setFlagsFromString('--heap-growing-percent=100');
}

async function start(config: ResolvedConfig, which: string | undefined): Promise<number> {
  if (which !== undefined && which !== 'smtp' && which !== 'web')
    throw new UsageError(`start takes smtp or web, not "${which}"`);
  tuneHeapGrowth();
  // Loaded here, not at the top: the other commands should start fast without SMTP, MIME and HTTP code.
  const [{ Gateway }, { WebServer }] = await Promise.all([
    import('../gateway/gateway.js'),
    import('../web/server.js'),
  ]);
  const log = createLogger(config.logLevel);
  const store = await Store.open(config);
  await ensureFirstAdmin(store, config);
  const gateway = which === 'web' ? undefined : new Gateway({ config, store, log });
  const web = which === 'smtp' ? undefined : new WebServer({ config, store, log });
  let webAddr: { host: string; port: number } | undefined;
  try {
    await gateway?.start();
    webAddr = await web?.start();
  } catch (err) {
    // A port in use, a certificate that does not load: what did start (threads, timers, the queue's pumps)
    // stops again, so the command ends with the error instead of running on without listening.
    await web?.stop().catch(() => undefined);
    await gateway?.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }
  if (gateway) {
    const a = gateway.intake.address();
    process.stderr.write(
      `phi-gateway: SMTP on ${a.host}:${a.port} (next hop: ${config.relay.url ? 'relay' : 'built-in outbox'})\n`,
    );
  }
  if (webAddr)
    process.stderr.write(
      `phi-gateway: web on ${web?.https ? 'https' : 'http'}://${webAddr.host}:${webAddr.port}\n`,
    );

  // SIGHUP: certificate renewal. Open connections keep their TLS session; a pair that fails keeps the old.
  const reloadFailed = (err: unknown) =>
    log.error({ evt: 'TLS_RELOAD_FAILED', err }, 'TLS reload failed; the old certificate stays');
  const onHup = () => {
    gateway?.intake.reloadTls().catch(reloadFailed);
    web?.reloadTls().catch(reloadFailed);
    // A master key rotated by `phi-gateway master-key rotate`: seal new data with it from now on.
    store
      .reloadKeys()
      .catch((err: unknown) => log.error({ evt: 'MASTER_KEY_RELOAD_FAILED', err }, 'key reload failed'));
  };
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ evt: 'SHUTDOWN', signal }, 'shutting down');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHup);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await web?.stop();
  await gateway?.stop();
  await store.close();
  return 0;
}

interface ScanLine {
  file: string;
  phi: boolean;
  score: number;
  action: string;
  findings: Array<{
    type: string;
    part: string;
    start: number;
    end: number;
    score: number;
    rule: string | null;
  }>;
}

async function scan(config: ResolvedConfig, args: string[]): Promise<number> {
  const json = args.includes('--json');
  const files = args.filter((a) => a !== '--json');
  if (files.length === 0) throw new UsageError('scan needs at least one FILE (or - for standard input)');
  const [{ RulesSource }, { DlpScanner }, { simpleParser }, { readFile }, { PARSE_OPTIONS }] =
    await Promise.all([
      import('../gateway/rules.js'),
      import('../gateway/scan.js'),
      import('mailparser'),
      import('node:fs/promises'),
      import('../gateway/pipeline.js'),
    ]);
  const rules = new RulesSource(rulesFileInForce(config));
  const scanner = new DlpScanner(rules);
  let unreadable = 0;
  for (const file of files) {
    let data: Buffer;
    try {
      data = file === '-' ? readFileSync(0) : await readFile(file);
    } catch (err) {
      unreadable++;
      process.stderr.write(
        `phi-gateway: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
      );
      continue;
    }
    const verdict = file.toLowerCase().endsWith('.eml')
      ? // Parsed exactly as the gateway parses, so the verdict is the one the gateway would reach.
        await scanner.scan(await simpleParser(data, PARSE_OPTIONS))
      : rules.analyzer.analyze([{ id: 'text', text: data.toString('utf8'), kind: 'body' }]);
    const line: ScanLine = {
      file,
      phi: verdict.phi,
      score: verdict.score,
      action: verdict.action,
      findings: verdict.findings.map((f) => ({
        type: f.type,
        part: f.part,
        start: f.start,
        end: f.end,
        score: Math.round(f.score * 100) / 100,
        rule: f.rule,
      })),
    };
    if (json) {
      process.stdout.write(JSON.stringify(line) + '\n');
      continue;
    }
    process.stdout.write(
      `${file}: ${verdict.phi ? `PHI, ${verdict.action}` : verdict.action === 'log' ? 'logged' : 'clean'} (score ${verdict.score})\n`,
    );
    for (const e of verdict.explanation) {
      process.stdout.write(
        `  rule ${e.rule}${e.monitorOnly ? ' [monitor only]' : ''}: ${e.reason} — ${e.findingTypes.join(', ')} in ${e.parts.join(', ')}\n`,
      );
    }
    const counted = line.findings.filter((f) => f.rule === null);
    if (counted.length > 0) {
      const types = [...new Set(counted.map((f) => f.type))].sort();
      process.stdout.write(`  also found (no rule fired on them): ${types.join(', ')}\n`);
    }
  }
  return unreadable > 0 ? 2 : 0;
}

function formatTime(ms: number | null): string {
  return ms ? new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19) : '-';
}

interface QueueMessage {
  id: string;
  state: string;
  attempts: number;
  next_attempt_at: number;
  created_at: number;
  rcpt_to: string;
  reason: string | null;
}

interface QueueEnvelope {
  id: number;
  message_id: string | null;
  kind: string;
  state: string;
  attempts: number;
  next_attempt_at: number;
  last_code: number | null;
}

async function queueList(store: Store, json: boolean): Promise<number> {
  const messages = (await store
    .db('messages')
    .whereIn('state', ['queued', 'processing', 'deferred', 'held'])
    .orderBy('created_at')
    .select(
      'id',
      'state',
      'attempts',
      'next_attempt_at',
      'created_at',
      'rcpt_to',
      'reason',
    )) as QueueMessage[];
  const envelopes = (await store
    .db('envelopes')
    .whereIn('state', ['queued', 'sending', 'deferred', 'held'])
    .orderBy('created_at')
    .select(
      'id',
      'message_id',
      'kind',
      'state',
      'attempts',
      'next_attempt_at',
      'last_code',
    )) as QueueEnvelope[];
  if (json) {
    for (const m of messages) {
      process.stdout.write(
        JSON.stringify({
          type: 'message',
          id: m.id,
          state: m.state,
          attempts: m.attempts,
          recipients: (JSON.parse(m.rcpt_to) as string[]).length,
          received: formatTime(m.created_at),
          nextAttempt: formatTime(m.next_attempt_at),
          reason: m.reason,
        }) + '\n',
      );
    }
    for (const e of envelopes) {
      process.stdout.write(
        JSON.stringify({
          type: 'delivery',
          id: e.id,
          message: e.message_id,
          kind: e.kind,
          state: e.state,
          attempts: e.attempts,
          nextAttempt: formatTime(e.next_attempt_at),
          lastCode: e.last_code,
        }) + '\n',
      );
    }
    return 0;
  }
  process.stdout.write(
    `${messages.length} message(s) in processing, ${envelopes.length} delivery(ies) pending\n`,
  );
  if (messages.length > 0) {
    process.stdout.write(
      '\nMESSAGE                  STATE       TRIES  RCPTS  RECEIVED             NEXT ATTEMPT         REASON\n',
    );
    for (const m of messages) {
      process.stdout.write(
        `${m.id.padEnd(24)} ${m.state.padEnd(11)} ${String(m.attempts).padStart(5)}  ${String((JSON.parse(m.rcpt_to) as string[]).length).padStart(5)}  ${formatTime(m.created_at).padEnd(20)} ${formatTime(m.next_attempt_at).padEnd(20)} ${m.reason ?? ''}\n`,
      );
    }
  }
  if (envelopes.length > 0) {
    process.stdout.write(
      '\nDELIVERY  MESSAGE                  KIND      STATE       TRIES  NEXT ATTEMPT         LAST REPLY\n',
    );
    for (const e of envelopes) {
      process.stdout.write(
        `${String(e.id).padEnd(9)} ${(e.message_id ?? '-').padEnd(24)} ${e.kind.padEnd(9)} ${e.state.padEnd(11)} ${String(e.attempts).padStart(5)}  ${formatTime(e.next_attempt_at).padEnd(20)} ${e.last_code ?? ''}\n`,
      );
    }
  }
  return 0;
}

async function queueRetry(store: Store, id: string): Promise<number> {
  const now = Date.now();
  const changed = await store.write(async (trx) => {
    const m = await trx('messages')
      .where({ id })
      .whereIn('state', ['deferred', 'held'])
      .update({ state: 'queued', next_attempt_at: now, updated_at: now });
    const e = await trx('envelopes')
      .where((q) => {
        q.where({ message_id: id });
        if (/^\d+$/.test(id)) q.orWhere({ id: Number(id) });
      })
      .whereIn('state', ['deferred', 'held'])
      .update({ state: 'queued', next_attempt_at: now, updated_at: now });
    if (m + e > 0)
      await appendAudit(trx, {
        type: 'queue.retry',
        messageId: m > 0 ? id : null,
        actor: 'cli',
        detail: { messages: m, deliveries: e },
      });
    return m + e;
  });
  if (changed === 0) return fail(`nothing to retry for ${id} (unknown, or not deferred or held)`, 1);
  process.stdout.write(
    `${id}: scheduled for retry now (${changed} item(s)); a running gateway picks it up within a second\n`,
  );
  return 0;
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

async function usersAdd(store: Store, args: string[]): Promise<number> {
  const email = args[0];
  const roleAt = args.indexOf('--role');
  const role = roleAt >= 0 ? args[roleAt + 1] : undefined;
  if (!email || email.startsWith('-')) throw new UsageError('users add needs an EMAIL');
  if (role !== 'staff' && role !== 'admin' && role !== 'auditor')
    throw new UsageError('users add needs --role staff, admin or auditor');
  let password = process.stdin.isTTY ? '' : readStdin().replace(/\r?\n$/, '');
  const generated = password === '';
  if (generated) password = generatePassword();
  await addUser(store.db, email, role as Role, password);
  await keyForNewUser(store, email, role as Role, password);
  await store.write((trx) =>
    appendAudit(trx, { type: 'user.added', actor: 'cli', detail: { role: role as string } }),
  );
  process.stdout.write(`added ${role} ${email.trim().toLowerCase()}\n`);
  if (generated) process.stdout.write(`password: ${password}\n(shown once; it is stored only as a hash)\n`);
  return 0;
}

async function usersList(store: Store, json: boolean): Promise<number> {
  const rows = (await store
    .db('users')
    .orderBy('email')
    .select('email', 'role', 'disabled', 'totp_enrolled_at', 'created_at', 'locked_until')) as Array<{
    email: string;
    role: string;
    disabled: number | boolean;
    totp_enrolled_at: number | null;
    created_at: number;
    locked_until: number | null;
  }>;
  const now = Date.now();
  for (const r of rows) {
    const state = r.disabled ? 'disabled' : Number(r.locked_until ?? 0) > now ? 'locked' : 'active';
    const mfa = r.totp_enrolled_at ? 'totp' : 'none';
    if (json) process.stdout.write(JSON.stringify({ email: r.email, role: r.role, state, mfa }) + '\n');
    else process.stdout.write(`${r.email.padEnd(40)} ${r.role.padEnd(8)} ${state.padEnd(9)} mfa:${mfa}\n`);
  }
  if (!json && rows.length === 0) process.stdout.write('no accounts\n');
  return 0;
}

/**
 * An admin's reset of a forgotten password. The account's re-issue key is replaced: the old private key opened
 * only with the old password, so pickups sealed to it can no longer be re-issued by this account.
 */
async function usersResetPassword(store: Store, email: string): Promise<number> {
  const normalised = normaliseEmail(email);
  let password = process.stdin.isTTY ? '' : readStdin().replace(/\r?\n$/, '');
  const generated = password === '';
  if (generated) password = generatePassword();
  if (password.length < 12) return fail('password must be at least 12 characters');
  const user = (await store.db('users').where({ email: normalised }).first('id', 'role')) as
    { id: number; role: Role } | undefined;
  if (!user) return fail(`no account ${normalised}`, 1);
  const hash = await hashPassword(password);
  await store.write(async (trx) => {
    await trx('users')
      .where({ id: user.id })
      .update({ password_hash: hash, password_changed_at: Date.now(), failed_logins: 0, locked_until: null });
    if (user.role !== 'auditor') await resetUserKey(store, trx, user.id, password);
    await trx('web_sessions').where({ user_id: user.id }).delete();
    await appendAudit(trx, { type: 'user.password_reset', actor: 'cli', detail: { user: user.id } });
  });
  process.stdout.write(`${normalised}: password reset, signed out everywhere\n`);
  if (generated) process.stdout.write(`password: ${password}\n(shown once; it is stored only as a hash)\n`);
  return 0;
}

async function usersChange(store: Store, what: 'disable' | 'reset-mfa', email: string): Promise<number> {
  const normalised = email.trim().toLowerCase();
  const changed = await store.write(async (trx) => {
    const user = (await trx('users').where({ email: normalised }).first('id')) as { id: number } | undefined;
    if (!user) return false;
    await trx('users')
      .where({ id: user.id })
      .update(
        what === 'disable'
          ? { disabled: true }
          : { totp_secret: null, totp_enrolled_at: null, totp_last_step: null },
      );
    // A reset second factor includes passkeys: a lost device must not keep signing in.
    if (what === 'reset-mfa') await trx('passkeys').where({ user_id: user.id }).delete();
    // Either way the account's sessions end: a disabled user, or one whose second factor was reset.
    await trx('web_sessions').where({ user_id: user.id }).delete();
    await appendAudit(trx, {
      type: what === 'disable' ? 'user.disabled' : 'user.mfa_reset',
      actor: 'cli',
      detail: { user: user.id },
    });
    return true;
  });
  if (!changed) return fail(`no account ${normalised}`, 1);
  process.stdout.write(
    what === 'disable'
      ? `${normalised}: disabled, signed out everywhere\n`
      : `${normalised}: TOTP removed; enrol again at next sign-in\n`,
  );
  return 0;
}

async function audit(store: Store, sub: string | undefined): Promise<number> {
  if (sub === 'verify') {
    const result = await verifyAudit(store.db);
    if (result.ok) {
      process.stdout.write(`audit log intact: ${result.events} events, hash chain verified\n`);
      return 0;
    }
    process.stdout.write(
      `audit log BROKEN at event ${result.brokenAt}: ${result.problem} (${result.events} events verified before it)\n`,
    );
    return 1;
  }
  if (sub === 'export') {
    let last = 0;
    for (;;) {
      const rows = (await store
        .db('audit_events')
        .where('seq', '>', last)
        .orderBy('seq')
        .limit(5000)) as AuditRow[];
      for (const r of rows) {
        process.stdout.write(
          JSON.stringify({
            seq: r.seq,
            at: new Date(Number(r.at)).toISOString(),
            type: r.type,
            message: r.message_id,
            actor: r.actor,
            detail: JSON.parse(r.detail) as unknown,
            hash: r.hash,
          }) + '\n',
        );
        last = r.seq;
      }
      if (rows.length < 5000) return 0;
    }
  }
  throw new UsageError('audit takes verify or export');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  try {
    const config = loadConfig(env);
    switch (command) {
      case 'start':
        return await start(config, sub);
      case 'scan':
        return await scan(
          config,
          [sub, ...rest].filter((a): a is string => a !== undefined),
        );
      case 'redact': {
        const { redactCommand, RedactUsageError } = await import('./redact-command.js');
        return await redactCommand(
          config,
          [sub, ...rest].filter((a): a is string => a !== undefined),
        ).catch((err: unknown) => {
          throw err instanceof RedactUsageError ? new UsageError(err.message) : err;
        });
      }
      case 'queue':
        if (sub === 'list') return await withStore(config, (s) => queueList(s, rest.includes('--json')));
        if (sub === 'retry' && rest[0]) return await withStore(config, (s) => queueRetry(s, rest[0]!));
        throw new UsageError('queue takes list, or retry ID');
      case 'users':
        if (sub === 'add') return await withStore(config, (s) => usersAdd(s, rest));
        if (sub === 'list') return await withStore(config, (s) => usersList(s, rest.includes('--json')));
        if ((sub === 'disable' || sub === 'reset-mfa') && rest[0])
          return await withStore(config, (s) => usersChange(s, sub, rest[0]!));
        if (sub === 'reset-password' && rest[0])
          return await withStore(config, (s) => usersResetPassword(s, rest[0]!));
        throw new UsageError(
          'users takes add EMAIL --role staff|admin|auditor, list, disable EMAIL, reset-mfa EMAIL or reset-password EMAIL',
        );
      case 'pickups':
        return await pickupsCommand(config, sub, rest);
      case 'audit':
        return await withStore(config, (s) => audit(s, sub));
      case 'keys':
        return await keysCommand(config, sub, rest);
      case 'master-key':
        return await masterKeyCommand(config, sub, env);
      case 'backup':
      case 'restore':
        return await backupCommand(
          config,
          command,
          [sub, ...rest].filter((a) => a !== undefined),
          env,
        );
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(`${err.message}\n\n${USAGE}`);
    if (err instanceof ConfigError) return fail(err.message);
    return fail(err instanceof Error ? err.message : String(err), 1);
  }
}
