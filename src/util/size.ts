// Size strings as FreeBSD's expand_number(3) reads them, and sizes printed as
// geom(8) prints them (humanize_number with HN_AUTOSCALE | HN_B | HN_NOSPACE |
// HN_DECIMAL, as in "3221224960 (3.0G)").

import { UsageError } from '../errors.js';

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
  if (value >= 1n << 64n) throw new UsageError(`size '${text}' for ${what} does not fit in 64 bits`, 'use a size below 16E');
  return value;
}

/** A byte count in words: "1 byte", "512 bytes". */
export function byteCount(n: number): string {
  return `${n} byte${n === 1 ? '' : 's'}`;
}

/** As parseSizeBig, for sizes that must be exact JavaScript numbers (≤ 2^53). */
export function parseSize(text: string, what: string): number {
  const v = parseSizeBig(text, what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`size '${text}' for ${what} is too large`, 'use a size below 8P');
  return Number(v);
}

/**
 * geom(8)'s humanize_number(buf, 5, n, "", HN_AUTOSCALE, HN_B|HN_NOSPACE|HN_DECIMAL):
 * "3.0G", "512B", "100M", "16E". As FreeBSD's libutil does it: divide by 1024
 * while the quotient has more than 3 digits (or is 999 about to round up),
 * keeping only the last division's remainder, then round that remainder to
 * one decimal below 10 (HN_DECIMAL) or to a whole number otherwise — so
 * 2093974066 is "1.9G", not a correctly rounded 2.0G.
 */
export function humanize(bytes: number | bigint): string {
  const prefixes = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  const maxscale = 6;
  const divisor = 1024n;
  const divisordeccut = 973n; // ceil(.95 * 1024)
  const max = 1000n; // 10^(len - baselen): 5 bytes of buffer, one digit and the NUL
  let quotient = BigInt(bytes); // sizes: never negative
  let remainder = 0n;
  let i = 0;
  while ((quotient >= max || (quotient === max - 1n && (remainder >= divisordeccut || remainder >= divisor / 2n))) && i < maxscale) {
    remainder = quotient % divisor;
    quotient /= divisor;
    i++;
  }
  if (((quotient === 9n && remainder < divisordeccut) || quotient < 9n) && i > 0) {
    const tenths = (remainder * 10n + divisor / 2n) / divisor;
    return `${quotient + tenths / 10n}.${tenths % 10n}${prefixes[i]}`;
  }
  return `${quotient + (remainder + divisor / 2n) / divisor}${prefixes[i]}`;
}
