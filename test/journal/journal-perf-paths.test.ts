// The fast paths of a large walk and copy must agree with the slow ones:
// orderBy (src/journal/order.ts)'s packed-key sort gives exactly the
// comparator sort's order — by key, then by index — whether it packs (sector
// multiples, other integers) or falls back (large, negative, fractional keys);
// decodeRecordHeader's two-u32 reads accept 2^53 - 1 and refuse 2^53.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecordHeader, encodeRecordHeader } from '../../src/journal/format.js';
import { orderBy } from '../../src/journal/order.js';

function reference(keys: number[]): number[] {
  return keys.map((_, i) => i).sort((a, b) => (keys[a] as number) - (keys[b] as number) || a - b);
}

describe('orderBy', () => {
  const cases: [string, fc.Arbitrary<number>][] = [
    ['sector multiples (packed, unit 512)', fc.integer({ min: 0, max: 1 << 22 }).map((k) => k * 512)],
    ['small integers with ties (packed, unit 1)', fc.integer({ min: 0, max: 40 })],
    ['offsets near 2^53 (comparator)', fc.integer({ min: 0, max: 1000 }).map((k) => Number.MAX_SAFE_INTEGER - k)],
    ['negative keys (comparator)', fc.integer({ min: -1000, max: 1000 })],
    ['fractional keys (comparator)', fc.double({ min: 0, max: 1e6, noNaN: true })],
  ];
  for (const [name, key] of cases) {
    it(`matches a comparator sort: ${name}`, () => {
      fc.assert(
        fc.property(fc.array(key, { maxLength: 300 }), (keys) => {
          expect([...orderBy(Float64Array.from(keys), keys.length)]).toEqual(reference(keys));
        }),
      );
    });
  }

  it('sorts only the first `count` keys', () => {
    expect([...orderBy([5 * 512, 1024, 0, 512], 2)]).toEqual([1, 0]);
  });
});

describe('decodeRecordHeader entry values', () => {
  const at = (field: number) => 25 + field * 8; // entry 0's joffset, offset, length
  for (const field of [0, 1, 2]) {
    it(`takes field ${field} up to 2^53 - 1 and refuses 2^53 and 2^64 - 1`, () => {
      const s = encodeRecordHeader({ journalId: 7, entries: [{ joffset: 1024, offset: 512, length: 512 }] }, 512);
      const max = Buffer.from(s);
      max.writeBigUInt64LE(2n ** 53n - 1n, at(field));
      const got = decodeRecordHeader(max);
      expect(got.ok && Object.values(got.record.entries[0] ?? {})[field]).toBe(Number.MAX_SAFE_INTEGER);
      for (const v of [2n ** 53n, 2n ** 64n - 1n]) {
        const over = Buffer.from(s);
        over.writeBigUInt64LE(v, at(field));
        expect(decodeRecordHeader(over)).toEqual({ ok: false, reason: 'entry 0 has a value beyond 2^53' });
      }
    });
  }
});
