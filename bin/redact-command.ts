// `phi-gateway redact`: redacts PHI in images (OCR + dlp) or applies given boxes, one output per input.
// It never prints recognised text, and never writes an image that may still show PHI.
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../config/errors.js';
import type { ResolvedConfig } from '../config/load.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { applyDicomBoxes, isDicom } from '../redaction/dicom.js';
import { applyBoxes, redactImage, redactOptionsFromConfig, type Box } from '../redaction/redact.js';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';

/** Exit codes: 0 all written, 1 an output could not be written, 2 some input unreadable or unsupported, 3 some image could not be made safe (not written). */
export const EXIT_UNREADABLE = 2;
export const EXIT_UNSAFE = 3;

export class RedactUsageError extends Error {}

const boxesSchema = z.array(
  z.strictObject({
    x: z.number().int().min(0),
    y: z.number().int().min(0),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    type: z.string().max(100).default('BOX'),
  }),
);

interface Args {
  json: boolean;
  boxesFile?: string;
  out?: string;
  outDir?: string;
  inputs: string[];
}

function parseArgs(args: readonly string[]): Args {
  const out: Args = { json: false, inputs: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new RedactUsageError(`redact: ${a} needs a value`);
      return v;
    };
    if (a === '--json') out.json = true;
    else if (a === '--boxes') out.boxesFile = value();
    else if (a === '-o' || a === '--out') out.out = value();
    else if (a === '--out-dir') out.outDir = value();
    else if (a.startsWith('-') && a !== '-') throw new RedactUsageError(`redact: unknown option ${a}`);
    else out.inputs.push(a);
  }
  if (out.inputs.length === 0) throw new RedactUsageError('redact needs an input image');
  if (out.out !== undefined && out.outDir !== undefined)
    throw new RedactUsageError('redact takes -o OUT or --out-dir DIR, not both');
  if (out.out !== undefined && out.inputs.length !== 1)
    throw new RedactUsageError('redact -o OUT takes exactly one input (use --out-dir DIR for several)');
  if (out.out === undefined && out.outDir === undefined)
    throw new RedactUsageError('redact needs -o OUT or --out-dir DIR');
  return out;
}

async function writeAtomically(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function say(message: string): void {
  process.stderr.write(`phi-gateway: ${message}\n`);
}

export async function redactCommand(config: ResolvedConfig, argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  let boxes: Box[] | undefined;
  if (args.boxesFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(args.boxesFile, 'utf8'));
    } catch (err) {
      say(
        `cannot read boxes file ${args.boxesFile}: ${(err as NodeJS.ErrnoException).code ?? 'not valid JSON'}`,
      );
      return EXIT_UNREADABLE;
    }
    const result = boxesSchema.safeParse(parsed);
    if (!result.success) {
      say(
        `boxes file ${args.boxesFile} must be a JSON array of {"x","y","width","height","type"} with whole, non-negative numbers`,
      );
      return EXIT_UNREADABLE;
    }
    boxes = result.data;
  }

  const base = redactOptionsFromConfig(config.redaction);
  const analyzer = boxes ? undefined : loadAnalyzer(config.dlp.rulesFile ?? DEFAULT_RULES_FILE);
  const pool =
    analyzer &&
    new OcrPool({
      size: Math.min(config.redaction.workers || args.inputs.length, args.inputs.length, 4),
      jobTimeoutMs: config.redaction.timeout,
    });
  let unreadable = 0;
  let unsafe = 0;
  let failed = 0;
  try {
    for (const file of args.inputs) {
      const out = args.out ?? path.join(args.outDir!, path.basename(file));
      if (path.resolve(out) === path.resolve(file)) {
        say(`${file}: the output would overwrite the input; choose another output`);
        unreadable++;
        continue;
      }
      let input: Buffer;
      try {
        input = await readFile(file);
      } catch (err) {
        say(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
        unreadable++;
        continue;
      }
      try {
        const result =
          boxes !== undefined
            ? isDicom(input)
              ? await applyDicomBoxes(input, boxes, base)
              : await applyBoxes(input, boxes, base)
            : await redactImage(input, { ...base, pool: pool!, analyzer: analyzer! });
        try {
          await writeAtomically(out, result.output);
        } catch (err) {
          say(`cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
          failed++;
          continue;
        }
        const line = {
          file,
          out,
          boxes: result.boxes.map((b) => ({
            x: b.x,
            y: b.y,
            width: b.width,
            height: b.height,
            type: b.type,
          })),
        };
        if (args.json) process.stdout.write(JSON.stringify(line) + '\n');
        else
          process.stdout.write(
            `${file} -> ${out}: ${line.boxes.length} region(s) redacted${result.verified ? ', checked by OCR' : ''}\n`,
          );
      } catch (err) {
        const code = err instanceof GatewayError ? err.code : undefined;
        if (code === 'REDACT_UNSUPPORTED' || code === 'REDACT_UNREADABLE' || code === 'REDACT_TOO_LARGE') {
          say(`${file}: ${err instanceof Error ? err.message : String(err)}`);
          unreadable++;
        } else if (code === 'REDACT_UNSAFE') {
          say(`${file}: PHI is still readable after redaction; nothing written (review it by hand)`);
          unsafe++;
        } else if (code === 'OCR_TIMEOUT' || code === 'OCR_FAILED') {
          say(`${file}: could not be checked (${code}); nothing written`);
          unsafe++;
        } else throw err;
      }
    }
  } finally {
    await pool?.close();
  }
  return unsafe > 0 ? EXIT_UNSAFE : unreadable > 0 ? EXIT_UNREADABLE : failed > 0 ? 1 : 0;
}
