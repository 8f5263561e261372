// Size strings as FreeBSD's expand_number(3) reads them, and sizes printed as
// geom(8) prints them (humanize_number with HN_AUTOSCALE | HN_B | HN_NOSPACE |
// HN_DECIMAL, as in "3221224960 (3.0G)").

import { UsageError } from './errors.js';

const SUFFIX_SHIFT: Record<string, number> = { k: 10, m: 20, g: 30, t: 40, p: 50, e: 60 };

/**
 * Parses "1G", "512k", "4mb", "0x1000" (expand_number(3)): a non-negative
 * integer, decimal or 0x hex, an optional case-insensitive k/m/g/t/p/e suffix
 * (powers of 1024) and an optional trailing b. Returns a bigint so that 8P and
 * beyond survive; callers check ranges. `what` names the option in errors.
 */
export function parseSizeBig(text: string, what: string): bigint {
  const m = /^(0x[0-9a-f]+|[0-9]+)([kmgtpe])?b?$/i.exec(text.trim());
  if (!m || text.trim() === '') {
    throw new UsageError(`invalid size '${text}' for ${what}`, 'use a number with an optional k, m, g, t, p or e suffix, e.g. 512k or 1G');
  }
  const digits = m[1] as string;
  const base = BigInt(digits.toLowerCase().startsWith('0x') ? digits : digits.replace(/^0+(?=\d)/, ''));
  const suffix = m[2]?.toLowerCase();
  const value = suffix ? base << BigInt(SUFFIX_SHIFT[suffix] as number) : base;
  if (value >= 1n << 64n) throw new UsageError(`size '${text}' for ${what} does not fit in 64 bits`);
  return value;
}

/** As parseSizeBig, for sizes that must be exact JavaScript numbers (≤ 2^53). */
export function parseSize(text: string, what: string): number {
  const v = parseSizeBig(text, what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`size '${text}' for ${what} is too large`);
  return Number(v);
}

/**
 * geom(8)'s humanize_number(buf, 5, n, "", HN_AUTOSCALE, HN_B|HN_NOSPACE|HN_DECIMAL):
 * "3.0G", "512B", "100M", "16E". At most 4 characters of number.
 */
export function humanize(bytes: number | bigint): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let n = BigInt(bytes);
  // humanize_number rounds: it works in tenths with +5 before each division.
  let i = 0;
  let divisor = 1n;
  // Find the scale at which the rounded value fits in the 4 digits the buffer holds (as humanize_number does).
  while (i < units.length - 1 && (n * 10n + 5n * divisor) / (divisor * 10n) >= 1000n) {
    divisor *= 1024n;
    i++;
  }
  if (i === 0) return `${n}B`;
  // HN_DECIMAL: one decimal when the value is below 10 in its unit.
  const tenths = (n * 10n + divisor / 2n) / divisor;
  if (tenths < 100n) return `${tenths / 10n}.${tenths % 10n}${units[i]}`;
  n = (n + divisor / 2n) / divisor;
  return `${n}${units[i]}`;
}
