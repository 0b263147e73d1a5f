// A tagged template for HTML that escapes every interpolated value unless it is already SafeHtml.
// Pages are built from it, so forgetting to escape is not possible by accident.

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Value = string | number | boolean | null | undefined | SafeHtml | Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** A whole page; `nav` (the signed-in sections and sign-out) goes into the top bar. */
export function page(title: string, body: SafeHtml, nav?: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · phi-gateway</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="top-inner"><a class="brand" href="/">phi-gateway</a>${nav ?? ''}</div></header>
<main id="main">
${body}
</main>
</body>
</html>
`.value;
}

/**
 * Gives every body cell of a table with a header row the text of its column header as data-label, and the
 * table the class "stack", so a phone shows each row as a small card of "label: value" lines (app.css).
 * It reads only our own markup: every interpolated value is escaped, so no "<td" or "<th" comes from data.
 */
export function labelTableCells(markup: string): string {
  return markup.replace(/<table>([\s\S]*?)<\/table>/g, (whole, inner: string) => {
    const head = /<thead>([\s\S]*?)<\/thead>/.exec(inner);
    if (!head) return whole;
    const labels = [...head[1]!.matchAll(/<th\b[^>]*>([\s\S]*?)<\/th>/g)].map((m) =>
      m[1]!
        .replace(/<span class="visually-hidden">[\s\S]*?<\/span>/g, '')
        .replace(/<[^>]+>/g, '')
        .trim(),
    );
    const body = inner
      .slice(head.index + head[0].length)
      .replace(/<tr>([\s\S]*?)<\/tr>/g, (_row, cells: string) => {
        let i = 0;
        return `<tr>${cells.replace(/<(td|th scope="row")(?=[\s>])/g, (open: string) => {
          const label = labels[i++] ?? '';
          return label ? `${open} data-label="${label}"` : open;
        })}</tr>`;
      });
    return `<table class="stack">${inner.slice(0, head.index + head[0].length)}${body}</table>`;
  });
}
