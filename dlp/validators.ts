// Checksums and range checks for identifier recognizers: pure functions of the matched text.
// They never see more than the match, keep no state, and never throw on odd input (they return false).

/** The ASCII digits of a string, in order. */
export function digitsOf(text: string): string {
  return text.replace(/[^0-9]/g, '');
}

/** Luhn (mod 10) over a string of digits: payment cards, and NPIs with their 80840 prefix. */
export function luhnValid(digits: string): boolean {
  if (!/^[0-9]{2,}$/.test(digits)) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Numbers published as examples or used on sample cards; they are never a person's. */
const SAMPLE_SSNS = new Set([
  '078051120', // the Woolworth wallet-card number
  '219099999', // printed in a Social Security Board pamphlet
  '123456789',
  '987654320',
  '457555462', // published in a well-known advertising campaign
]);

/** A plausible SSN: area not 000, 666 or 900–999; group not 00; serial not 0000; not a known sample or a repeated digit. */
export function isValidSsn(text: string): boolean {
  const d = digitsOf(text);
  if (d.length !== 9) return false;
  const area = Number(d.slice(0, 3));
  if (area === 0 || area === 666 || area >= 900) return false;
  if (d.slice(3, 5) === '00' || d.slice(5) === '0000') return false;
  if (/^(\d)\1{8}$/.test(d)) return false;
  return !SAMPLE_SSNS.has(d);
}

/** An ITIN: 9XX-GG-SSSS with the group in 50–65, 70–88, 90–92 or 94–99. */
export function isValidItin(text: string): boolean {
  const d = digitsOf(text);
  if (d.length !== 9 || d[0] !== '9') return false;
  const g = Number(d.slice(3, 5));
  return (g >= 50 && g <= 65) || (g >= 70 && g <= 88) || (g >= 90 && g <= 92) || (g >= 94 && g <= 99);
}

/** An NPI: 10 digits starting with 1 or 2 whose check digit is the Luhn digit over "80840" + the first nine. */
export function isValidNpi(text: string): boolean {
  const d = digitsOf(text);
  return d.length === 10 && (d[0] === '1' || d[0] === '2') && luhnValid(`80840${d}`);
}

/**
 * A DEA registration number: a registrant-type letter, a second letter (last name initial, or 9), seven digits where
 * the last is the final digit of (d1 + d3 + d5) + 2 × (d2 + d4 + d6).
 */
export function isValidDea(text: string): boolean {
  const m = /^[A-Z][A-Z9]([0-9]{7})$/.exec(text.toUpperCase());
  const d = m?.[1];
  if (!d) return false;
  const n = (i: number) => d.charCodeAt(i) - 48;
  const sum = n(0) + n(2) + n(4) + 2 * (n(1) + n(3) + n(5));
  return sum % 10 === n(6);
}

/** A payment card number: 13–19 digits, a known issuer prefix for that length, and a valid Luhn digit. */
export function isValidCardNumber(text: string): boolean {
  const d = digitsOf(text);
  const len = d.length;
  if (len < 13 || len > 19 || !luhnValid(d)) return false;
  if (/^(\d)\1+$/.test(d)) return false;
  const p2 = Number(d.slice(0, 2));
  const p3 = Number(d.slice(0, 3));
  const p4 = Number(d.slice(0, 4));
  if (d[0] === '4') return len === 13 || len === 16 || len === 19; // Visa
  if (p2 >= 51 && p2 <= 55) return len === 16; // Mastercard
  if (p4 >= 2221 && p4 <= 2720) return len === 16; // Mastercard 2-series
  if (p2 === 34 || p2 === 37) return len === 15; // American Express
  if ((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39 || p4 === 3095) return len >= 14; // Diners Club
  if (p4 >= 3528 && p4 <= 3589) return len >= 16; // JCB
  if (p4 === 1800 || p4 === 2131) return len === 15; // JCB (old)
  if (d[0] === '6') return len >= 16 || p2 === 63 || p2 === 67; // Discover, UnionPay (16–19); Maestro (13–19)
  if (p2 === 50 || (p2 >= 56 && p2 <= 58)) return true; // Maestro
  return false;
}

/** A dotted IPv4 address: four decimal octets 0–255 without leading zeros. */
export function isValidIpv4(text: string): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** An IPv6 address in full (8 groups) or compressed form (one "::" and at least three groups in all). */
export function isValidIpv6(text: string): boolean {
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  if (!groups.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  if (halves.length === 1) return groups.length === 8;
  return groups.length >= 3 && groups.length <= 7;
}

// prettier-ignore
const VIN_VALUES: Record<string, number> = {
  A: 1, B: 2, C: 3, D: 4, E: 5, F: 6, G: 7, H: 8, J: 1, K: 2, L: 3, M: 4, N: 5, P: 7, R: 9, S: 2, T: 3, U: 4, V: 5, W: 6, X: 7, Y: 8, Z: 9,
};
const VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/** A North American VIN: 17 characters without I, O or Q, letters and digits both present, and a valid check digit (position 9). */
export function isValidVin(text: string): boolean {
  const vin = text.toUpperCase();
  if (!/^[A-HJ-NPR-Z0-9]{17}$/.test(vin) || !/[A-Z]/.test(vin) || !/[0-9]/.test(vin)) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const c = vin[i]!;
    const v = c >= '0' && c <= '9' ? Number(c) : VIN_VALUES[c];
    if (v === undefined) return false;
    sum += v * VIN_WEIGHTS[i]!;
  }
  const check = sum % 11;
  return vin[8] === (check === 10 ? 'X' : String(check));
}

/** A phone number's digits (without an extension) in a plausible count, and not shaped like a date. */
export function isPlausiblePhone(text: string, minDigits: number, maxDigits: number): boolean {
  // The text before its first letter (an extension), and its digits, counted in one loop (no strings made).
  let n = 0;
  let length = 0;
  for (; length < text.length; length++) {
    const c = text.charCodeAt(length);
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) break;
    if (c >= 48 && c <= 57) n++;
  }
  if (n < minDigits || n > maxDigits) return false;
  const main = text.slice(0, length);
  const bare = main.trim();
  return !/^(\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4})$/.test(bare);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function realDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const days = [
    31,
    year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28,
    31,
    30,
    31,
    30,
    31,
    31,
    30,
    31,
    30,
    31,
  ][month - 1]!;
  return day <= days;
}

/**
 * A calendar date written in one of the usual ways (2/12/2008, 02-12-2008, 6/10/98, 2008-02-12, Feb 12, 2008,
 * 12 February 2008, 12FEB2008) that exists, with a four-digit year in [minYear, maxYear]. Month and day may be in
 * either order when both readings are possible; a two-digit year is always in range.
 */
export function isPlausibleDate(text: string, minYear: number, maxYear: number): boolean {
  const lower = text.toLowerCase();
  const numbers = lower.match(/[0-9]+/g) ?? [];
  const yearOk = (y: string) =>
    y.length === 2 || (y.length === 4 && Number(y) >= minYear && Number(y) <= maxYear);
  const fullYear = (y: string) => (y.length === 2 ? 2000 + Number(y) : Number(y));
  const word = /[a-z]{3,}/.exec(lower)?.[0];
  const monthIndex = word ? MONTHS.indexOf(word.slice(0, 3)) : -1;
  if (word) {
    const [day, year] = numbers;
    if (monthIndex < 0 || numbers.length !== 2 || !day || !year || day.length > 2 || !yearOk(year))
      return false;
    return realDate(fullYear(year), monthIndex + 1, Number(day));
  }
  const [a, b, c] = numbers;
  if (numbers.length !== 3 || !a || !b || !c) return false;
  if (a.length === 4)
    return yearOk(a) && b.length <= 2 && c.length <= 2 && realDate(Number(a), Number(b), Number(c));
  if (a.length > 2 || b.length > 2 || (c.length !== 2 && c.length !== 4) || !yearOk(c)) return false;
  const y = fullYear(c);
  return realDate(y, Number(a), Number(b)) || realDate(y, Number(b), Number(a));
}
