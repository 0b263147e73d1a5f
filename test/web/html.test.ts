// Pages are built only with the html tagged template, so its escaping is what stands between a crafted
// address or header in the queue and script running in an admin's browser.
import { expect } from 'chai';
import { SafeHtml, escapeHtml, html, page } from '../../web/html.js';

// The tag is used under another name so Prettier's embedded-HTML formatting leaves these literals
// byte for byte as written (it reflows html`…` and would even add closing tags).
const h = html;

/** Decodes the character references HTML would decode, to show escaping lost nothing. */
function decode(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, ref: string) => {
    if (ref.startsWith('#x') || ref.startsWith('#X')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    return named[ref.toLowerCase()] ?? m;
  });
}

describe('web/html', () => {
  describe('escaping interpolated values', () => {
    const values = [
      '<',
      '>',
      '&',
      '"',
      "'",
      '<script>alert(1)</script>',
      '"><img src=x onerror=alert(1)>',
      "' onmouseover='alert(1)",
      '&lt;already escaped&gt;',
      '&#60;',
      'Jane & John <jane@clinic.example>',
    ];
    for (const value of values) {
      it(`escapes ${JSON.stringify(value)} so none of < > & " ' survive and nothing is lost`, () => {
        const out = h`${value}`.value;
        for (const c of ['<', '>', '"', "'"]) expect(out, c).not.to.include(c);
        // Every & left is the start of a character reference we made.
        expect(out.replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, '')).not.to.include('&');
        expect(decode(out)).to.equal(value);
      });
    }

    it('keeps an attribute value inside its quotes', () => {
      const out = h`<a title="${'" onclick="steal()'}" href="/x">`.value;
      // Still exactly two attributes: the value could not close its quotes and start a handler.
      expect(out).to.match(/^<a title="[^"<>]*" href="\/x">$/);
      expect(decode(/title="([^"]*)"/.exec(out)![1]!)).to.equal('" onclick="steal()');
    });

    it('leaves the template text itself alone', () => {
      expect(h`<p class="a">${'x'}</p><br>`.value).to.equal('<p class="a">x</p><br>');
    });

    it('leaves plain text and non-ASCII alone', () => {
      expect(h`${'Zoë Müller, 12 results'}`.value).to.equal('Zoë Müller, 12 results');
    });

    const scalars: { name: string; value: Parameters<typeof html>[1]; out: string }[] = [
      { name: 'null', value: null, out: '' },
      { name: 'undefined', value: undefined, out: '' },
      { name: 'false', value: false, out: '' },
      { name: 'an empty string', value: '', out: '' },
      { name: 'zero', value: 0, out: '0' },
      { name: 'a number', value: 42.5, out: '42.5' },
    ];
    for (const s of scalars) {
      it(`renders ${s.name} as ${JSON.stringify(s.out)}`, () => {
        expect(h`[${s.value}]`.value).to.equal(`[${s.out}]`);
      });
    }

    it('does not trust an object that merely looks like SafeHtml', () => {
      const forged = {
        value: '<script>x</script>',
        toString: () => '<script>x</script>',
      } as unknown as SafeHtml;
      expect(h`${forged}`.value).not.to.include('<script>');
    });
  });

  describe('nesting', () => {
    it('inserts SafeHtml as it is, escaping inner values exactly once', () => {
      const inner = h`<b>${'a & <b>'}</b>`;
      const outer = h`<p>${inner}</p>`;
      expect(outer).to.be.instanceOf(SafeHtml);
      expect(outer.value).to.equal(`<p><b>${escapeHtml('a & <b>')}</b></p>`);
      expect(decode(outer.value)).to.equal('<p><b>a & <b></b></p>');
    });

    it('does not escape again through several levels', () => {
      const deep = h`<div>${h`<ul>${h`<li>${'<&>'}</li>`}</ul>`}</div>`;
      expect(deep.value.startsWith('<div><ul><li>')).to.equal(true);
      expect(decode(deep.value)).to.equal('<div><ul><li><&></li></ul></div>');
    });

    it('does not let a nested template trust its own values', () => {
      const inner = h`<i>${'<script>'}</i>`;
      expect(h`${inner}`.value).not.to.include('<script>');
    });
  });

  describe('arrays', () => {
    it('renders an array of templates in order, without separators', () => {
      const rows = ['<one>', 'two', '"three"'].map((x) => h`<li>${x}</li>`);
      const out = h`<ul>${rows}</ul>`.value;
      expect(out).to.equal(
        `<ul><li>${escapeHtml('<one>')}</li><li>two</li><li>${escapeHtml('"three"')}</li></ul>`,
      );
    });

    it('escapes plain strings inside arrays, and nested arrays', () => {
      const out = h`${['<a>', ['<b>', h`<i>ok</i>`], null, false, 7]}`.value;
      expect(out).not.to.include('<a>');
      expect(out).not.to.include('<b>');
      expect(out).to.include('<i>ok</i>');
      expect(decode(out)).to.equal('<a><b><i>ok</i>7');
    });

    it('renders an empty array as nothing', () => {
      expect(h`<ul>${[]}</ul>`.value).to.equal('<ul></ul>');
    });
  });

  describe('page', () => {
    it('escapes the title and inserts the body as it is', () => {
      const out = page('<Queue & "held">', h`<table><tr><td>${'<x>'}</td></tr></table>`);
      expect(out).to.match(/^<!doctype html>/);
      expect(out).to.include(`<title>${escapeHtml('<Queue & "held">')} · phi-gateway</title>`);
      expect(out).not.to.include('<Queue');
      expect(out).to.include(`<table><tr><td>${escapeHtml('<x>')}</td></tr></table>`);
    });
  });
});
