import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHUNK_WATERMARK, ChunkAllocator, type AllocComponent } from '../../src/virstor/allocator.js';

const ALLOCATED = 1;
const CURRENT = 2;

const componentArb = fc
  .record({
    usable: fc.integer({ min: 0, max: 40 }),
    chunkReserved: fc.integer({ min: 0, max: 6 }),
    used: fc.integer({ min: 0, max: 45 }),
  })
  .map(({ usable, chunkReserved, used }) => ({ usable, chunkReserved, chunkNext: used, flags: 0 }));

/** Devices as open leaves them: at most one CURRENT flag, on the component current at open. */
const deviceArb = fc.array(componentArb, { minLength: 1, maxLength: 6 }).map((list) => {
  const comps: AllocComponent[] = list.map((c, i) => ({ ...c, name: `c${i}.img` }));
  const cur = ChunkAllocator.firstCurrent(comps);
  comps.forEach((c, i) => {
    if (i < cur) c.flags = ALLOCATED;
  });
  (comps[cur] as AllocComponent).flags = ALLOCATED | CURRENT;
  return comps;
});

/** The reference: every free chunk from the current component on, in order. */
function expectedOrder(comps: AllocComponent[], cur: number): string[] {
  const out: string[] = [];
  for (let i = cur; i < comps.length; i++) {
    const c = comps[i] as AllocComponent;
    for (let k = Math.max(c.chunkNext, c.chunkReserved); k < c.usable; k++) out.push(`${i}:${k}`);
  }
  return out;
}

describe('ChunkAllocator (allocate_chunk)', () => {
  it('hands out exactly the free chunks, in component then chunk order, never reserved ones or twice', () => {
    fc.assert(
      fc.property(deviceArb, fc.integer({ min: 0, max: 200 }), (comps, wanted) => {
        const copy = comps.map((c) => ({ ...c }));
        const a = new ChunkAllocator('vs', copy);
        const expected = expectedOrder(comps, a.current);
        expect(a.freeChunks()).toBe(expected.length);
        const got: string[] = [];
        for (let i = 0; i < wanted; i++) {
          if (a.freeChunks() === 0) {
            expect(() => a.allocate()).toThrow(RangeError);
            break;
          }
          const { component, chunk } = a.allocate();
          const c = copy[component] as AllocComponent;
          expect(chunk).toBeGreaterThanOrEqual(c.chunkReserved);
          expect(chunk).toBeLessThan(c.usable);
          got.push(`${component}:${chunk}`);
        }
        expect(got).toEqual(expected.slice(0, got.length));
        expect(a.freeChunks()).toBe(expected.length - got.length);
      }),
    );
  });

  it('keeps every component before the current one full and flags only the current one CURRENT', () => {
    fc.assert(
      fc.property(deviceArb, fc.integer({ min: 1, max: 120 }), (comps, n) => {
        const a = new ChunkAllocator('vs', comps);
        const touched = new Set<number>();
        for (let i = 0; i < n && a.freeChunks() > 0; i++) touched.add(a.allocate().component);
        for (let i = 0; i < a.current; i++) {
          const c = comps[i] as AllocComponent;
          expect(Math.max(c.chunkNext, c.chunkReserved)).toBeGreaterThanOrEqual(c.usable);
        }
        for (const i of touched) expect((comps[i] as AllocComponent).flags & ALLOCATED).toBe(ALLOCATED);
        if (touched.size > 0) {
          const currents = comps.map((c, i) => (c.flags & CURRENT ? i : -1)).filter((i) => i >= 0);
          expect(currents).toEqual([a.current]);
        }
      }),
    );
  });

  it('sets ALLOCATED|CURRENT on a component made current at open without flags, clearing the old CURRENT', () => {
    // Component 0 full at open: the kernel makes c1 current but never flags it.
    const comps: AllocComponent[] = [
      { name: 'c0', usable: 4, chunkReserved: 2, chunkNext: 4, flags: ALLOCATED | CURRENT },
      { name: 'c1', usable: 8, chunkReserved: 0, chunkNext: 0, flags: 0 },
    ];
    const a = new ChunkAllocator('vs', comps);
    expect(a.current).toBe(1);
    expect(a.allocate()).toEqual({ component: 1, chunk: 0 });
    expect(comps.map((c) => c.flags)).toEqual([ALLOCATED, ALLOCATED | CURRENT]);
  });

  it('skips the reserved chunks of the component it switches to', () => {
    const comps: AllocComponent[] = [
      { name: 'c0', usable: 3, chunkReserved: 0, chunkNext: 2, flags: ALLOCATED | CURRENT },
      { name: 'c1', usable: 8, chunkReserved: 5, chunkNext: 0, flags: 0 },
    ];
    const a = new ChunkAllocator('vs', comps);
    expect(a.allocate()).toEqual({ component: 0, chunk: 2 });
    expect(a.allocate()).toEqual({ component: 1, chunk: 5 });
    expect(comps[0]?.flags).toBe(ALLOCATED);
  });

  it('reports the watermarks: switching into the last components and a component low on chunks', () => {
    const comps: AllocComponent[] = [
      { name: 'c0.img', usable: 4, chunkReserved: 2, chunkNext: 3, flags: ALLOCATED | CURRENT },
      { name: 'c1.img', usable: 500, chunkReserved: 0, chunkNext: 0, flags: 0 },
      { name: 'c2.img', usable: 50, chunkReserved: 0, chunkNext: 0, flags: 0 },
    ];
    const a = new ChunkAllocator('vs', comps);
    a.allocate();
    // Component 0 has 0 chunks left now.
    expect(a.takeWarnings()).toEqual(['Component c0.img of vs is running out of free space (0 chunks left)']);
    a.allocate();
    const w = a.takeWarnings();
    expect(w).toEqual(['Device vs running out of components (switching to 2/3: c1.img)']);
    for (let i = 0; i < 499 - (CHUNK_WATERMARK - 3); i++) a.allocate();
    expect(a.takeWarnings()).toEqual([`Component c1.img of vs is running out of free space (${CHUNK_WATERMARK - 3} chunks left)`]);
  });
});
