// The practice logo: an upload is checked by its bytes (PNG or JPEG only; SVG can carry script), re-encoded
// with sharp (metadata stripped, dimensions bounded) and served at one stable path. It never serves what
// was uploaded as is, and never anything but image/png or image/jpeg.
import express from 'express';
import sharp from 'sharp';
import type { ResolvedConfig } from '../config/load.js';
import { LOGO_MAX_BYTES, uiSettings, type Logo } from '../store/settings.js';
import type { Store } from '../store/store.js';

/** Where the logo is served; pages add `?v=<etag>` so a new logo is fetched at once. */
export const LOGO_PATH = '/branding/logo';
/** Largest upload accepted, in bytes. */
export const LOGO_UPLOAD_MAX_BYTES = 200 * 1024;
/** The re-encoded logo fits in this box (pixels), never enlarged. */
export const LOGO_MAX_WIDTH = 600;
export const LOGO_MAX_HEIGHT = 200;
/** Images with more pixels than this are refused before decoding (decompression bombs). */
const LOGO_MAX_INPUT_PIXELS = 25_000_000;

export class LogoError extends Error {
  override name = 'LogoError';
}

/** The upload as a logo to store, or a LogoError with a sentence for the admin. */
export async function processLogo(input: Buffer): Promise<Pick<Logo, 'contentType' | 'bytes'>> {
  if (input.length === 0) throw new LogoError('Choose an image file to upload.');
  if (input.length > LOGO_UPLOAD_MAX_BYTES)
    throw new LogoError(`The image is too large: at most ${LOGO_UPLOAD_MAX_BYTES / 1024} KB.`);
  const isPng = input.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const isJpeg = input[0] === 0xff && input[1] === 0xd8 && input[2] === 0xff;
  if (!isPng && !isJpeg)
    throw new LogoError('Use a PNG or JPEG image (SVG and other formats are not accepted).');
  try {
    const img = sharp(input, { limitInputPixels: LOGO_MAX_INPUT_PIXELS, failOn: 'error' })
      .rotate()
      .resize({ width: LOGO_MAX_WIDTH, height: LOGO_MAX_HEIGHT, fit: 'inside', withoutEnlargement: true });
    // sharp drops EXIF, XMP, ICC comments and text chunks unless asked to keep them.
    const bytes = isPng
      ? await img.png({ compressionLevel: 9, palette: false }).toBuffer()
      : await img.jpeg({ quality: 85 }).toBuffer();
    if (bytes.length > LOGO_MAX_BYTES)
      throw new LogoError('The image stays too large after resizing; use a simpler image.');
    return { contentType: isPng ? 'image/png' : 'image/jpeg', bytes };
  } catch (err) {
    if (err instanceof LogoError) throw err;
    throw new LogoError('The image could not be read. Use a PNG or JPEG file.');
  }
}

/** GET /branding/logo: the current logo (public: it is shown on pickup pages before any password). */
export function createLogoRoute(opts: { config: ResolvedConfig; store: Store }): express.Router {
  const settings = uiSettings(opts.store, opts.config);
  const r = express.Router();
  r.get(LOGO_PATH, async (req, res) => {
    const logo = (await settings.current()).logo;
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Content-Security-Policy', "default-src 'none'; sandbox");
    if (!logo) {
      res.set('Cache-Control', 'no-cache');
      res.status(404).type('text').send('No logo');
      return;
    }
    const etag = `"${logo.etag}"`;
    // A versioned URL (?v=<etag> of the current logo) never changes: cache it for a day. The bare path is
    // revalidated, so a new logo shows at once.
    res.set(
      'Cache-Control',
      req.query.v === logo.etag ? 'public, max-age=86400, immutable' : 'public, max-age=0, must-revalidate',
    );
    res.set('ETag', etag);
    if (req.get('if-none-match') === etag) {
      res.status(304).end();
      return;
    }
    res.type(logo.contentType).send(logo.bytes);
  });
  return r;
}
