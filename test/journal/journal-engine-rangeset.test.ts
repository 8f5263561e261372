// Property tests for the journal's range set against a naive byte-array model
// of g_journal_insert's newest-wins semantics.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet, type Range } from '../../src/journal/rangeset.js';
import { EntryLog, newestWins } from '../../src/journal/newest.js';

interface Val {
  id: number;
  delta: number;
}
const slice = (v: Val, d: number): Val => ({ id: v.id, delta: v.delta + d });

const U = 160; // the universe of offsets the model covers

type Op =
  | { kind: 'insert'; start: number; len: number }
  | { kind: 'delete'; start: number; len: number }
  | { kind: 'shift'; k: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('insert' as const), start: fc.integer({ min: 0, max: U - 1 }), len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), start: fc.integer({ min: 0, max: U - 1 }), len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('shift' as const), k: fc.integer({ min: 0, max: 4 }) }) },
);

/** Per byte: [id, position within its write], or undefined. */
type Model = ([number, number] | undefined)[];

function fromSet(set: RangeSet<Val>): Model {
  const m: Model = new Array(U + 40).fill(undefined);
  for (const r of set.entries()) for (let p = r.start; p < r.end; p++) m[p] = [r.value.id, r.value.delta + (p - r.start)];
  return m;
}

function checkShape(set: RangeSet<Val>): Range<Val>[] {
  const all = [...set.entries()];
  let bytes = 0;
  for (let i = 0; i < all.length; i++) {
    const r = all[i] as Range<Val>;
    expect(r.end).toBeGreaterThan(r.start);
    if (i > 0) expect(r.start).toBeGreaterThanOrEqual((all[i - 1] as Range<Val>).end);
    bytes += r.end - r.start;
  }
  expect(set.size).toBe(all.length);
  expect(set.bytes).toBe(bytes);
  return all;
}

describe('RangeSet', () => {
  it('matches a byte-array model under inserts, deletes and shifts', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const set = new RangeSet<Val>(slice);
        const model: Model = new Array(U + 40).fill(undefined);
        ops.forEach((op, id) => {
          if (op.kind === 'shift') {
            const before = checkShape(set);
            const taken = set.shift(op.k);
            expect(taken).toEqual(before.slice(0, op.k));
            for (const r of taken) for (let p = r.start; p < r.end; p++) model[p] = undefined;
            return;
          }
          const end = op.start + op.len;
          let covered = 0;
          for (let p = op.start; p < end; p++) if (model[p]) covered++;
          if (op.kind === 'insert') {
            expect(set.insert(op.start, end, { id, delta: 0 })).toBe(covered);
            for (let p = op.start; p < end; p++) model[p] = [id, p - op.start];
          } else {
            expect(set.delete(op.start, end)).toBe(covered);
            for (let p = op.start; p < end; p++) model[p] = undefined;
          }
          checkShape(set);
          expect(fromSet(set)).toEqual(model);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('find, first and clipped entries agree with the model', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ start: fc.integer({ min: 0, max: U - 1 }), len: fc.integer({ min: 1, max: 30 }) }), { maxLength: 30 }),
        fc.integer({ min: 0, max: U }),
        fc.integer({ min: 0, max: 60 }),
        (ins, from, span) => {
          const set = new RangeSet<Val>(slice);
          ins.forEach((w, id) => set.insert(w.start, w.start + w.len, { id, delta: 0 }));
          const model = fromSet(set);
          for (let p = 0; p < U + 40; p++) {
            const r = set.find(p);
            const m = model[p];
            if (!m) expect(r).toBeUndefined();
            else expect([r?.value.id, (r?.value.delta ?? 0) + p - (r?.start ?? 0)]).toEqual(m);
          }
          const all = [...set.entries()];
          expect(set.first()).toEqual(all[0]);
          const to = from + span;
          const clipped = [...set.entries(from, to)];
          const expected: Model = new Array(U + 40).fill(undefined);
          for (let p = from; p < to && p < U + 40; p++) expected[p] = model[p];
          const got: Model = new Array(U + 40).fill(undefined);
          for (const r of clipped) {
            expect(r.start).toBeGreaterThanOrEqual(from);
            expect(r.end).toBeLessThanOrEqual(to);
            for (let p = r.start; p < r.end; p++) got[p] = [r.value.id, r.value.delta + p - r.start];
          }
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('runs group touching ranges greedily up to the limit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ start: fc.integer({ min: 0, max: U - 1 }), len: fc.integer({ min: 1, max: 30 }) }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 70 }),
        (ins, limit) => {
          const set = new RangeSet<Val>(slice);
          ins.forEach((w, id) => set.insert(w.start, w.start + w.len, { id, delta: 0 }));
          const groups = [...set.runs(limit)];
          expect(groups.flat()).toEqual([...set.entries()]);
          let prev: Range<Val>[] | undefined;
          for (const g of groups) {
            const first = g[0] as Range<Val>;
            const last = g[g.length - 1] as Range<Val>;
            for (let i = 1; i < g.length; i++) expect((g[i] as Range<Val>).start).toBe((g[i - 1] as Range<Val>).end);
            if (g.length > 1) expect(last.end - first.start).toBeLessThanOrEqual(limit);
            if (prev) {
              // Greedy: a new group starts only where the ranges do not touch or the limit would be passed.
              const p0 = prev[0] as Range<Val>;
              const pl = prev[prev.length - 1] as Range<Val>;
              expect(pl.end !== first.start || first.end - p0.start > limit).toBe(true);
            }
            prev = g;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays fast with 200,000 scattered overlapping inserts (O(log n) each)', () => {
    const set = new RangeSet<Val>(slice);
    let x = 12345;
    const rnd = (): number => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const t0 = performance.now();
    for (let i = 0; i < 200_000; i++) {
      const start = Math.floor(rnd() * 1e9) * 512;
      set.insert(start, start + (1 + Math.floor(rnd() * 8)) * 512, { id: i, delta: 0 });
    }
    const ms = performance.now() - t0;
    expect(set.size).toBeGreaterThan(150_000);
    expect(ms).toBeLessThan(5000);
  });

  it('newestWins over a log equals inserting the entries one by one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ start: fc.integer({ min: 0, max: U - 1 }), len: fc.integer({ min: 1, max: 30 }), j: fc.integer({ min: 0, max: 3 }) }), { maxLength: 40 }),
        fc.nat(),
        (ins, cut) => {
          const log = new EntryLog();
          const set = new RangeSet<number>((v, d) => v + d);
          const count = ins.length ? cut % (ins.length + 1) : 0;
          // Journal offsets: some entries contiguous with the previous one, so joins happen.
          let joff = 0;
          ins.forEach((w, i) => {
            joff = w.j === 0 ? joff : joff + 1000 * w.j;
            log.push(w.start, w.start + w.len, joff);
            if (i < count) set.insert(w.start, w.start + w.len, joff);
            joff += w.len;
          });
          const r = newestWins(log, count);
          const got: number[] = [];
          const want: number[] = [];
          r.starts.forEach((st, i) => {
            for (let p = st; p < (r.ends[i] as number); p++) got.push(p, (r.joffsets[i] as number) + p - st);
          });
          for (const x of set.entries()) for (let p = x.start; p < x.end; p++) want.push(p, x.value + p - x.start);
          expect(got).toEqual(want);
          // Output ranges are disjoint, ordered, and maximal where journal-contiguous.
          for (let i = 1; i < r.starts.length; i++) {
            expect(r.starts[i]).toBeGreaterThanOrEqual(r.ends[i - 1] as number);
            const joined = r.starts[i] === r.ends[i - 1] && (r.joffsets[i - 1] as number) + (r.ends[i - 1] as number) - (r.starts[i - 1] as number) === r.joffsets[i];
            expect(joined).toBe(false);
          }
          const built = RangeSet.fromSorted<number>((v, d) => v + d, r.starts, r.ends, (i) => r.joffsets[i] as number);
          expect(built.size).toBe(r.starts.length);
          built.insert(0, 3, -1); // a built set stays a working tree
          expect(built.find(1)?.value).toBe(-1);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('fromSorted rejects unsorted or overlapping input', () => {
    expect(() => RangeSet.fromSorted<number>((v) => v, [0, 5], [6, 8], () => 0)).toThrow(RangeError);
    expect(() => RangeSet.fromSorted<number>((v) => v, [4, 0], [5, 1], () => 0)).toThrow(RangeError);
  });

  it('rejects empty ranges', () => {
    const set = new RangeSet<Val>(slice);
    expect(() => set.insert(5, 5, { id: 0, delta: 0 })).toThrow(RangeError);
    expect(set.delete(5, 5)).toBe(0);
  });
});
