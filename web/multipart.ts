// A small multipart/form-data parser for bounded bodies already in memory (the secure-reply form): no
// streaming, no nested multiparts. Refuses anything malformed rather than guessing.

export interface MultipartFile {
  field: string;
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface MultipartForm {
  fields: Map<string, string>;
  files: MultipartFile[];
}

export class MultipartError extends Error {
  override name = 'MultipartError';
}

/** The boundary from a `multipart/form-data; boundary=…` content type, or null. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function param(header: string, name: string): string | null {
  const m =
    new RegExp(`;\\s*${name}="((?:[^"\\\\]|\\\\.)*)"`, 'i').exec(header) ??
    new RegExp(`;\\s*${name}=([^;\\s"]+)`, 'i').exec(header);
  return m ? m[1]!.replace(/\\(.)/g, '$1') : null;
}

/**
 * Parses `body`. Fields are UTF-8 text; file parts (those with a filename) keep their bytes. Parts with an
 * empty filename and no content (an untouched file input) are dropped. Limits: part count and file count.
 */
export function parseMultipart(
  body: Buffer,
  boundary: string,
  limits: { maxParts: number; maxFiles: number },
): MultipartForm {
  const delimiter = Buffer.from(`--${boundary}`);
  const fields = new Map<string, string>();
  const files: MultipartFile[] = [];
  const next = Buffer.from(`\r\n--${boundary}`);
  // The first delimiter opens the body, or follows a preamble on a line of its own.
  let pos = body.subarray(0, delimiter.length).equals(delimiter) ? 0 : body.indexOf(next);
  if (pos === -1) throw new MultipartError('no boundary');
  if (pos > 0) pos += 2;
  let parts = 0;
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing delimiter
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw new MultipartError('bad delimiter line');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd === -1) throw new MultipartError('unterminated part headers');
    const headers = body.subarray(pos, headerEnd).toString('utf8').split('\r\n');
    const end = body.indexOf(next, headerEnd + 4);
    if (end === -1) throw new MultipartError('unterminated part');
    const content = body.subarray(headerEnd + 4, end);
    if (++parts > limits.maxParts) throw new MultipartError('too many parts');
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? '';
    const type = headers
      .find((h) => /^content-type:/i.test(h))
      ?.replace(/^content-type:\s*/i, '')
      .trim();
    const name = param(disposition, 'name');
    if (!/^content-disposition:\s*form-data/i.test(disposition) || name === null)
      throw new MultipartError('part without form-data name');
    // Browsers send `"`, CR and LF in names as %22, %0D, %0A (HTML multipart/form-data encoding).
    const filename = param(disposition, 'filename')
      ?.replace(/%22/g, '"')
      .replace(/%0D/gi, '\r')
      .replace(/%0A/gi, '\n');
    if (filename === undefined) fields.set(name, content.toString('utf8'));
    else if (filename !== '' || content.length > 0) {
      if (files.length >= limits.maxFiles) throw new MultipartError('too many files');
      files.push({
        field: name,
        filename,
        contentType: type || 'application/octet-stream',
        content: Buffer.from(content),
      });
    }
    pos = end + 2;
  }
  return { fields, files };
}
