// The server's pool of write payloads lent to a journal provider
// (src/nbd/transmission.ts, Lender): a buffer is never handed out again
// before the provider settles, even when the write that borrowed it threw,
// and the free pool stays bounded whatever sizes the clients send.

import { describe, expect, it } from 'vitest';
import { Lender } from '../../src/nbd/transmission.js';

const KiB = 1024;

function lender(bytes: number): { lender: Lender; settles: () => number } {
  let settles = 0;
  return { lender: new Lender({ request: 64 * KiB, bytes, settle: () => settles++ }), settles: () => settles };
}

describe('Lender', () => {
  it('hands no lent buffer out again before the provider settles, and reuses them after', () => {
    const { lender: l, settles } = lender(256 * KiB);
    const first = [l.take(64 * KiB), l.take(64 * KiB), l.take(64 * KiB)];
    for (const b of first) l.lend(b, () => {});
    expect(settles()).toBe(0);
    const fourth = l.take(64 * KiB);
    expect(first).not.toContain(fourth);
    l.lend(fourth, () => {});
    // 256 KiB lent: the provider settled, and every buffer is free again.
    expect(settles()).toBe(1);
    expect(l.usage).toEqual({ lent: 0, free: 256 * KiB });
    const again = new Set([l.take(64 * KiB), l.take(64 * KiB), l.take(64 * KiB), l.take(64 * KiB)]);
    expect(again).toEqual(new Set([...first, fourth]));
  });

  it('keeps a buffer whose write threw out of the pool until the settle', () => {
    const { lender: l } = lender(1024 * KiB);
    const b = l.take(64 * KiB);
    expect(() =>
      l.lend(b, () => {
        throw new RangeError('past the end');
      }),
    ).toThrow('past the end');
    expect(l.usage.lent).toBe(64 * KiB);
    expect(l.take(64 * KiB)).not.toBe(b);
  });

  it('bounds the free pool however many sizes the clients send', () => {
    const bound = 256 * KiB;
    const { lender: l } = lender(bound);
    for (let size = 4 * KiB; size <= 4096 * KiB; size += 4 * KiB) l.lend(l.take(size), () => {});
    expect(l.usage.free).toBeLessThanOrEqual(bound + 8 * 1024 * KiB);
    expect(l.usage.free).toBeGreaterThan(0);
  });
});
