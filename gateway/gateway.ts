// The gateway process: SMTP intake, message workers and delivery, wired to one store. It never serves
// HTTP (web/ does). start() recovers anything a crash left behind before it accepts new mail.
import os from 'node:os';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import type { Knex } from 'knex';
import type { Store } from '../store/store.js';
import { GatewayError, errorCode } from '../config/errors.js';
import { activeRulesFile, SHIPPED_RULES_FILE } from '../config/rules-file.js';
import { Delivery, type EnvelopeRow } from './delivery.js';
import { Intake } from './intake.js';
import { scanStage, type Stage } from './pipeline.js';
import { actStage, routeStage, type Protection } from './protect.js';
import { createProtection } from './protection.js';
import type { PgpThread } from './pgp-thread.js';
import { createImageRedactor, type ImageRedactor } from './image-redaction.js';
import { PlainCache } from './plain-cache.js';
import { Pump } from './pump.js';
import { RulesSource } from './rules.js';
import { DlpScanner, type Scanner } from './scan.js';
import { ScanPool } from './scan-pool.js';
import { retryDelay } from './retry.js';
import { recoverSpool } from './spool.js';
import { SenderNotices } from './sender-notices.js';
import { startPickupPurger } from '../store/pickup-purger.js';
import { uiSettings } from '../store/settings.js';
import { OutboxTransport, RelayTransport, WebhookTransport, type Transport } from './transport.js';
import { MessageWorkers, type MessageRow } from './workers.js';

export interface GatewayOptions {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  scanner?: Scanner;
  stages?: Stage[];
  transport?: Transport;
  /** Keyring, PGP/MIME and pickups; built from the store when not given. */
  protection?: Protection;
  /** The thread that protection built from the store runs OpenPGP in (a new one when not given). */
  pgpThread?: PgpThread;
}

export class Gateway {
  readonly intake: Intake;
  private readonly transport: Transport;
  private readonly messagePump: Pump<MessageRow>;
  private readonly deliveryPump: Pump<EnvelopeRow[]>;
  private readonly workers: MessageWorkers;
  private readonly delivery: Delivery;
  readonly rules?: RulesSource;
  private readonly scanPool?: ScanPool;
  private sweeper?: NodeJS.Timeout;
  private readonly senderNotices: SenderNotices;
  private stopPurger?: () => void;
  private readonly cache = new PlainCache();
  readonly protection: Protection;
  private images?: ImageRedactor;

  constructor(private readonly opts: GatewayOptions) {
    const { config, store, log } = opts;
    const relayUrl = config.relay.url;
    this.transport =
      opts.transport ??
      (relayUrl
        ? new RelayTransport({ ...config.relay, url: relayUrl }, config.smtp.hostname ?? os.hostname())
        : new OutboxTransport(store));
    let scanner = opts.scanner;
    if (!scanner && !opts.stages) {
      // With no dlp.rulesFile, <dataDir>/dlp-rules.yaml (written by an admin's publish) once it exists.
      this.rules = new RulesSource(
        activeRulesFile(config),
        log,
        config.dlp.rulesFile ? undefined : SHIPPED_RULES_FILE,
      );
      const threads = config.dlp.scanThreads ?? (os.availableParallelism() >= 2 ? 1 : 0);
      if (threads > 0) scanner = this.scanPool = new ScanPool(this.rules, threads, log);
      else scanner = new DlpScanner(this.rules, {}, 'verdict');
    }
    const hostname = config.smtp.hostname ?? os.hostname();
    if (config.redaction.gateway !== 'off') {
      const rules = this.rules;
      const fallback = rules ? undefined : new RulesSource(config.dlp.rulesFile, log);
      this.images = createImageRedactor(config, () => (rules ?? fallback!).analyzer, log);
    }
    this.protection =
      opts.protection ?? createProtection(store, config, log, hostname, this.images, opts.pgpThread);
    // Admins' UI settings (practice name, expiry, password delivery, internal domains) apply from the next message.
    const settings = uiSettings(store, config);
    const currentConfig = () => settings.effectiveConfig();
    const stages = opts.stages ?? [
      scanStage(scanner!),
      routeStage(config, this.protection, currentConfig),
      actStage(config, store, this.protection, hostname, currentConfig),
    ];
    if (config.pickup.passwordDelivery === 'sms' && !config.pickup.smsWebhookUrl) {
      throw new GatewayError(
        'CONFIG_INVALID',
        'pickup.passwordDelivery is sms but pickup.smsWebhookUrl is not set',
      );
    }
    const sms = config.pickup.smsWebhookUrl
      ? new WebhookTransport(config.pickup.smsWebhookUrl, config.relay.timeout)
      : undefined;
    this.delivery = new Delivery(
      store,
      config,
      log,
      this.transport,
      () => this.deliveryPump.wake(),
      this.cache,
      sms,
    );
    this.workers = new MessageWorkers(
      store,
      config,
      log,
      stages,
      (groups) => this.deliveryPump.offer(groups),
      this.cache,
      () => this.deliveryPump.wake(),
    );
    this.messagePump = new Pump({
      name: 'pipeline',
      capacity: config.queue.workers,
      pollInterval: config.queue.pollInterval,
      log,
      claim: (n) => this.workers.claim(n),
      handle: (row) =>
        this.workers.handle(row).catch((err: unknown) => this.retryLater('messages', [row.id], err)),
    });
    this.deliveryPump = new Pump({
      name: 'delivery',
      capacity: config.queue.deliveryConcurrency,
      pollInterval: config.queue.pollInterval,
      log,
      claim: (n) => this.delivery.claim(n),
      handle: (group) =>
        this.delivery.handle(group).catch((err: unknown) =>
          this.retryLater(
            'envelopes',
            group.map((e) => e.id),
            err,
          ),
        ),
    });
    this.senderNotices = new SenderNotices(store, config, log, hostname, () => this.deliveryPump.wake());
    this.intake = new Intake({
      config,
      store,
      log,
      onSpooled: (message, plaintext) => {
        if (plaintext) this.cache.set(message.id, plaintext);
        this.messagePump.offer([message]);
      },
    });
  }

  /**
   * A handler that failed before it could record an outcome (the disk filled up, the database was locked)
   * leaves its rows leased for 10-15 minutes. Give them back, due after the first retry delay, as soon as a
   * write succeeds again; never at once, as an envelope the next hop already took would be sent again in a loop.
   */
  private retryLater(table: 'messages' | 'envelopes', ids: Array<string | number>, err: unknown): void {
    const { store, log, config } = this.opts;
    const leased = table === 'messages' ? 'processing' : 'sending';
    log.error(
      { evt: 'QUEUE_HANDLER_FAILED', table, count: ids.length, code: errorCode(err) },
      'handler failed',
    );
    let tries = 0;
    const attempt = () => {
      const delay = retryDelay(config.queue, ++tries);
      store
        .write((trx) =>
          trx(table)
            .whereIn('id', ids)
            .andWhere('state', leased)
            .update({ state: 'deferred', lease_until: null, next_attempt_at: Date.now() + delay }),
        )
        .catch(() => {
          // Still failing: try again later; the lease sweeper remains the last resort.
          if (tries < 10) setTimeout(attempt, delay).unref();
        });
    };
    setTimeout(attempt, 0).unref();
  }

  get transportName(): string {
    return this.transport.name;
  }

  async start(): Promise<void> {
    const { store, log } = this.opts;
    await recoverSpool(store, log);
    await store.startCheckpointer(log);
    await this.resumeOwnWork();
    this.rules?.watch(this.opts.config.dlp.reloadInterval);
    this.rules?.warm();
    await this.scanPool?.start();
    this.messagePump.start();
    this.deliveryPump.start();
    // Work abandoned by a crashed worker or node (expired lease) goes back to the queue.
    this.sweeper = setInterval(() => {
      Promise.all([this.workers.reclaimExpired(), this.delivery.reclaimExpired()])
        .then(([m, e]) => {
          if (m + e > 0) {
            log.warn(
              { evt: 'QUEUE_LEASES_EXPIRED', messages: m, envelopes: e },
              'reclaimed work whose lease expired',
            );
            this.messagePump.wake();
            this.deliveryPump.wake();
          }
        })
        .catch((err: unknown) => log.error({ evt: 'QUEUE_SWEEP_FAILED', err }, 'lease sweep failed'));
    }, 30_000);
    this.sweeper.unref();
    this.senderNotices.start(Math.max(this.opts.config.queue.pollInterval, 1000));
    this.stopPurger = startPickupPurger(store, this.opts.config, log);
    await this.intake.start();
    log.info({ evt: 'GATEWAY_STARTED', transport: this.transport.name }, 'gateway started');
  }

  /**
   * One node owns a SQLite store: whatever was in flight when it stopped was ours; resume it now. On
   * PostgreSQL other nodes work on the same queue: resume only the leases this node holds (it was stopped
   * or crashed, so none of that work is running); other nodes' leases are left to them or to expiry.
   */
  private async resumeOwnWork(): Promise<void> {
    const { store, log } = this.opts;
    const now = Date.now();
    const mine = <T extends Knex.QueryBuilder>(q: T): T =>
      store.engine === 'sqlite' ? q : (q.where('lease_owner', store.nodeId) as T);
    const resumed = await store.write(async (trx) => {
      const m = await mine(trx('messages').where('state', 'processing')).update({
        state: 'queued',
        lease_until: null,
        lease_owner: null,
        next_attempt_at: now,
      });
      const e = await mine(trx('envelopes').where('state', 'sending')).update({
        state: 'queued',
        lease_until: null,
        lease_owner: null,
        next_attempt_at: now,
      });
      return { messages: m, envelopes: e };
    });
    if (resumed.messages || resumed.envelopes)
      log.warn({ evt: 'QUEUE_RESUMED', ...resumed }, 'resumed work interrupted by a stop');
  }

  /** Graceful: stop taking mail, finish open SMTP transactions and work in flight, then close. */
  async stop(): Promise<void> {
    const { log } = this.opts;
    await this.intake.stop();
    this.rules?.close();
    if (this.sweeper) clearInterval(this.sweeper);
    this.stopPurger?.();
    await this.senderNotices.stop();
    const [unprocessed, undelivered] = await Promise.all([this.messagePump.stop(), this.deliveryPump.stop()]);
    await this.workers.release(unprocessed);
    await this.delivery.release(undelivered);
    await this.transport.close();
    await this.scanPool?.close();
    await this.protection.close?.();
    await this.images?.close();
    log.info({ evt: 'GATEWAY_STOPPED' }, 'gateway stopped');
  }
}
