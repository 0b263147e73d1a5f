// The redaction API for staff sending images from the web: propose boxes for an image (OCR + PHI
// detection, nothing changed or stored), then apply the boxes the person kept, added or removed and get the
// redacted image back (irreversible fill, metadata stripped). Nothing uploaded is stored or logged.
// Reads the DLP rules in force through gateway/rules.ts (read-only use; the web never speaks SMTP).
import os from 'node:os';
import express, { type Request, type Response } from 'express';
import { errorCode, GatewayError } from '../config/errors.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { applyBoxes, detectBoxes, redactOptionsFromConfig, type Box } from '../redaction/redact.js';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';
import type { StaffAuth } from './staff-auth.js';

const MAX_IMAGE_BYTES = 25 * 1024 * 1024;

function statusOf(err: unknown): number {
  const code = errorCode(err);
  if (code === 'REDACT_UNSUPPORTED') return 415;
  if (code === 'REDACT_TOO_LARGE') return 413;
  if (code === 'REDACT_UNREADABLE') return 422;
  if (code === 'OCR_TIMEOUT') return 503;
  return 500;
}

function isBox(v: unknown): v is Box {
  const b = v as Record<string, unknown>;
  return (
    !!b &&
    ['x', 'y', 'width', 'height'].every((k) => typeof b[k] === 'number' && Number.isFinite(b[k])) &&
    (b.type === undefined || typeof b.type === 'string')
  );
}

export function createRedactApi(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): {
  router: express.Router;
  close(): Promise<void>;
} {
  const { config, store, log, auth } = opts;
  let pool: OcrPool | undefined;
  const limits = redactOptionsFromConfig(config.redaction);
  const r = express.Router();
  const staff = auth.require(['staff', 'admin']);
  const image = express.raw({ type: 'image/*', limit: MAX_IMAGE_BYTES });
  const json = express.json({ limit: Math.ceil(MAX_IMAGE_BYTES * 1.4) });

  const fail = (res: Response, err: unknown) => {
    const status = statusOf(err);
    if (status === 500)
      log.error({ evt: 'REDACT_API_FAILED', code: errorCode(err) }, 'redaction request failed');
    res
      .status(status)
      .json({ error: err instanceof GatewayError ? err.message : 'redaction failed', code: errorCode(err) });
  };

  r.post(
    '/api/me/redact/preview',
    auth.load,
    staff,
    auth.csrf,
    image,
    async (req: Request, res: Response) => {
      if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
        res.status(400).json({ error: 'send the image as the request body with an image/* Content-Type' });
        return;
      }
      try {
        pool ??= new OcrPool({
          size: config.redaction.workers || Math.max(1, Math.min(2, os.cpus().length)),
        });
        const analyzer = loadAnalyzer(config.dlp.rulesFile ?? DEFAULT_RULES_FILE);
        const found = await detectBoxes(req.body, { ...limits, pool, analyzer });
        await store.write((trx) =>
          appendAudit(trx, {
            type: 'redaction.previewed',
            actor: req.staff!.email,
            detail: { boxes: found.boxes.length },
          }),
        );
        res.set('Cache-Control', 'no-store').json(found);
      } catch (err) {
        fail(res, err);
      }
    },
  );

  r.post('/api/me/redact/apply', auth.load, staff, json, auth.csrf, async (req: Request, res: Response) => {
    const body = req.body as { image?: unknown; boxes?: unknown };
    if (typeof body.image !== 'string' || !Array.isArray(body.boxes) || !body.boxes.every(isBox)) {
      res
        .status(400)
        .json({ error: 'send {"image": "<base64>", "boxes": [{"x","y","width","height","type"}]}' });
      return;
    }
    try {
      const input = Buffer.from(body.image, 'base64');
      const out = await applyBoxes(input, body.boxes, {
        mode: limits.mode,
        maxInputPixels: limits.maxInputPixels,
      });
      await store.write((trx) =>
        appendAudit(trx, {
          type: 'redaction.applied',
          actor: req.staff!.email,
          detail: { boxes: out.boxes.length },
        }),
      );
      res.set('Cache-Control', 'no-store').type(`image/${out.format}`).send(out.output);
    } catch (err) {
      fail(res, err);
    }
  });

  return {
    router: r,
    async close() {
      await pool?.close();
      pool = undefined;
    },
  };
}
