// The processing pipeline: named stages in a fixed order, each returning one of a closed set of verdicts.
// A stage that throws or runs past its timeout defers the message; nothing passes because a stage failed.
import { simpleParser, type ParsedMail } from 'mailparser';
import { GatewayError } from '../config/errors.js';
import type { Scanner, Verdict } from './scan.js';

export interface MessageContext {
  id: string;
  mailFrom: string;
  rcptTo: string[];
  trace: string;
  raw: Buffer;
  parsed?: ParsedMail;
  verdict?: Verdict;
  routes?: Route[];
  plan?: PlannedEnvelope[];
}

/** What happens for one recipient. Only 'clean' exists until protection lands. */
export interface Route {
  rcpt: string;
  action: 'clean' | 'quarantine' | 'block';
  reason?: string;
}

export interface PlannedEnvelope {
  rcpt: string;
  kind: 'relay';
  content: 'spool';
  prefix: string;
}

export type StageVerdict =
  | { verdict: 'continue' }
  | { verdict: 'quarantine'; reason: string }
  | { verdict: 'reject'; reason: string }
  | { verdict: 'defer'; reason: string };

export interface Stage {
  readonly name: string;
  /** `signal` aborts when the stage times out: long work (extraction, OCR) should stop then. */
  run(ctx: MessageContext, signal: AbortSignal): Promise<StageVerdict>;
}

const CONTINUE: StageVerdict = { verdict: 'continue' };

export const parseStage: Stage = {
  name: 'parse',
  async run(ctx) {
    ctx.parsed = await simpleParser(ctx.raw, {
      skipImageLinks: true,
      skipTextLinks: true,
      maxHtmlLengthToParse: 10 * 1024 * 1024,
    });
    return CONTINUE;
  },
};

export function scanStage(scanner: Scanner): Stage {
  return {
    name: 'scan',
    async run(ctx, signal) {
      if (!ctx.parsed) throw new GatewayError('STAGE_FAILED', 'scan before parse');
      ctx.verdict = await scanner.scan(ctx.parsed, signal);
      return CONTINUE;
    },
  };
}

export const routeStage: Stage = {
  name: 'route',
  run(ctx) {
    const verdict = ctx.verdict;
    if (!verdict) throw new GatewayError('STAGE_FAILED', 'route before scan');
    // Fail closed until protection exists: PHI may not leave in clear, so it is held with the reason.
    if (
      verdict.phi ||
      verdict.action === 'quarantine' ||
      verdict.action === 'block' ||
      verdict.action === 'protect'
    ) {
      const reason =
        verdict.action === 'block'
          ? 'BLOCKED_BY_RULE'
          : verdict.action === 'quarantine'
            ? 'QUARANTINED_BY_RULE'
            : 'PHI_NO_PROTECTION';
      return Promise.resolve({ verdict: 'quarantine', reason } as const);
    }
    ctx.routes = ctx.rcptTo.map((rcpt) => ({ rcpt, action: 'clean' as const }));
    return Promise.resolve(CONTINUE);
  },
};

/** Trace headers added to clean mail, after the Received line; rule ids and type names only, never content. */
export function traceHeaders(ctx: MessageContext): string {
  const verdict = ctx.verdict;
  const monitored = verdict?.monitored.length ? `; monitored=${verdict.monitored.join(',')}` : '';
  const logged = verdict?.action === 'log' ? `; logged=${verdict.rules.join(',')}` : '';
  return `${ctx.trace}X-PHI-Gateway-Id: ${ctx.id}\r\nX-PHI-Gateway-Scan: ${verdict?.phi ? 'phi' : 'clean'}${logged}${monitored}\r\n`;
}

export const actStage: Stage = {
  name: 'act',
  run(ctx) {
    if (!ctx.routes) throw new GatewayError('STAGE_FAILED', 'act before route');
    const prefix = traceHeaders(ctx);
    ctx.plan = ctx.routes
      .filter((r) => r.action === 'clean')
      .map((r) => ({ rcpt: r.rcpt, kind: 'relay' as const, content: 'spool' as const, prefix }));
    return Promise.resolve(CONTINUE);
  },
};

export function defaultStages(scanner: Scanner): Stage[] {
  return [parseStage, scanStage(scanner), routeStage, actStage];
}

/** Runs one stage under a timeout. A timeout is an error like any other: the message is deferred. */
export async function runStage(stage: Stage, ctx: MessageContext, timeoutMs: number): Promise<StageVerdict> {
  let timer: NodeJS.Timeout | undefined;
  const controller = new AbortController();
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new GatewayError('STAGE_TIMEOUT', `stage ${stage.name} timed out`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([stage.run(ctx, controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
