// The server's pool of write payloads (src/nbd/transmission.ts, PayloadPool):
// a buffer lent to a borrowing provider (a journal) is never handed out again
// before the provider settles, even when the write that borrowed it threw; a
// provider that does not borrow has its payload back when its write returns;
// and the free pool stays bounded whatever sizes the clients send.

import { describe, expect, it } from 'vitest';
import type { WriteOpts } from '../../src/provider/block.js';
import { PayloadPool } from '../../src/nbd/transmission.js';

const KiB = 1024;

function borrowing(bytes: number): { pool: PayloadPool; settles: () => number } {
  let settles = 0;
  return { pool: new PayloadPool({ request: 64 * KiB, bytes, settle: () => settles++ }), settles: () => settles };
}

describe('PayloadPool', () => {
  it('lends to a borrowing provider and hands no lent buffer out again before it settles', () => {
    const { pool, settles } = borrowing(256 * KiB);
    const seen: WriteOpts[] = [];
    const first = [pool.take(64 * KiB), pool.take(64 * KiB), pool.take(64 * KiB)];
    for (const b of first) pool.write(b, (o) => seen.push(o));
    expect(seen).toEqual([{ lent: true }, { lent: true }, { lent: true }]);
    expect(settles()).toBe(0);
    const fourth = pool.take(64 * KiB);
    expect(first).not.toContain(fourth);
    pool.write(fourth, () => {});
    // 256 KiB lent: the provider settled, and every buffer is free again.
    expect(settles()).toBe(1);
    expect(pool.usage).toEqual({ lent: 0, free: 256 * KiB });
    const again = new Set([pool.take(64 * KiB), pool.take(64 * KiB), pool.take(64 * KiB), pool.take(64 * KiB)]);
    expect(again).toEqual(new Set([...first, fourth]));
  });

  it('keeps a buffer whose write threw out of the pool until the settle', () => {
    const { pool } = borrowing(1024 * KiB);
    const b = pool.take(64 * KiB);
    expect(() =>
      pool.write(b, () => {
        throw new RangeError('past the end');
      }),
    ).toThrow('past the end');
    expect(pool.usage.lent).toBe(64 * KiB);
    expect(pool.take(64 * KiB)).not.toBe(b);
  });

  it('has the payload back at once from a provider that does not borrow', () => {
    const pool = new PayloadPool(undefined);
    const b = pool.take(64 * KiB);
    let opts: WriteOpts | undefined;
    pool.write(b, (o) => (opts = o));
    expect(opts).toEqual({});
    expect(pool.usage).toEqual({ lent: 0, free: 64 * KiB });
    expect(pool.take(64 * KiB)).toBe(b);
  });

  it('bounds the free pool however many sizes the clients send', () => {
    const bound = 256 * KiB;
    const { pool } = borrowing(bound);
    for (let size = 4 * KiB; size <= 4096 * KiB; size += 4 * KiB) pool.write(pool.take(size), () => {});
    expect(pool.usage.free).toBeLessThanOrEqual(bound + 8 * 1024 * KiB);
    expect(pool.usage.free).toBeGreaterThan(0);
  });
});
