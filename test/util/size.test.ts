// humanize against FreeBSD's humanize_number(buf, 5, n, "", HN_AUTOSCALE,
// HN_B | HN_NOSPACE | HN_DECIMAL) as geom(8) calls it. Expected strings are
// worked out by hand from libutil's algorithm (divide by 1024 while the
// quotient has more than three digits, keep only the last remainder, one
// decimal below 10).

import { describe, expect, it } from 'vitest';
import { humanize } from '../../src/util/size.js';

describe('humanize (geom list Mediasize)', () => {
  it.each([
    [0, '0B'],
    [512, '512B'],
    [999, '999B'],
    [1000, '1.0K'], // 1000 >= 1000: 0 K remainder 1000 -> (10000+512)/1024 = 10 tenths
    [1536, '1.5K'],
    [9 * 1024 + 972, '9.9K'], // remainder below 973: still a decimal, truncated
    [9 * 1024 + 973, '10K'], // remainder 973: whole number, rounded up
    [999 * 1024, '999K'],
    [999 * 1024 + 512, '1.0M'], // 999 about to round up: divide once more
    [104857600, '100M'],
    [3221224960, '3.0G'],
    [4294967296, '4.0G'],
    [2093974066, '1.9G'], // 1.95 GiB: only the last remainder counts, so 1.9, not 2.0
  ])('%d -> %s', (n, text) => {
    expect(humanize(n)).toBe(text);
  });

  it('handles bigints up to 2^63 - 1', () => {
    expect(humanize(2n ** 63n - 1n)).toBe('8.0E');
    expect(humanize(2n ** 50n)).toBe('1.0P');
  });
});
