// Redacts the images of a message before it is sealed as a pickup: each image attachment goes through
// redaction/ (OCR → PHI detection → irreversible fill), re-encoded without metadata. An image that still
// shows PHI after redaction throws REDACT_UNSAFE, which the act stage turns into quarantine. The OCR pool
// starts on the first image and is shared by all messages.
import os from 'node:os';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import type { Analyzer } from '../dlp/analyzer.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { ALLOWED_FORMATS, redactImage, redactOptionsFromConfig } from '../redaction/redact.js';
import type { PickupContent } from './protect.js';

const IMAGE_TYPES = new Set(
  ALLOWED_FORMATS.map((f) => `image/${f}`).concat(['image/jpg', 'image/tif', 'application/dicom']),
);

/** An attachment redaction can take: an accepted image type, or DICOM (by type or a .dcm name). */
export function redactable(a: { contentType: string; filename: string }): boolean {
  return IMAGE_TYPES.has(a.contentType.toLowerCase()) || /\.dcm$/i.test(a.filename);
}

export interface ImageRedactor {
  redact(
    content: PickupContent,
    signal: AbortSignal,
  ): Promise<{ content: PickupContent; redacted: number; boxes: number }>;
  close(): Promise<void>;
}

export function createImageRedactor(
  config: ResolvedConfig,
  analyzer: () => Analyzer,
  log: Logger,
): ImageRedactor {
  let pool: OcrPool | undefined;
  const options = redactOptionsFromConfig(config.redaction);
  return {
    async redact(content, signal) {
      let redacted = 0;
      let boxes = 0;
      const indexes: number[] = [];
      const attachments: PickupContent['attachments'] = [];
      for (const [index, a] of content.attachments.entries()) {
        if (!redactable(a)) {
          attachments.push(a);
          continue;
        }
        pool ??= new OcrPool({
          size: config.redaction.workers || Math.max(1, Math.min(2, os.cpus().length)),
        });
        const result = await redactImage(a.content, { ...options, pool, analyzer: analyzer(), signal });
        attachments.push({ ...a, content: result.output });
        if (result.boxes.length > 0) {
          redacted++;
          indexes.push(index + 1);
        }
        boxes += result.boxes.length;
        log.info({ evt: 'IMAGE_REDACTED', attachment: index, boxes: result.boxes.length }, 'image redacted');
      }
      return { content: { ...content, attachments }, redacted, boxes, indexes };
    },
    async close() {
      await pool?.close();
    },
  };
}
