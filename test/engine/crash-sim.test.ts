// The power-loss simulator: durable prefixes per image, subsets and tears of
// unflushed writes, later-wins ordering, and cheap sampling of many states.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CrashSimulator, seededRng, type CrashEvent } from '../sim/crash.js';

const S = 512;
const fill = (byte: number, sectors = 1) => Buffer.alloc(sectors * S, byte);
/** The byte at the start of each 512-byte sector: tests fill whole sectors with one byte. */
const sectors = (buf: Buffer) => Array.from({ length: buf.length / S }, (_, i) => buf[i * S]!);
/** Buffer lists compared with Buffer.equals (vitest's deep equality walks bytes one by one: slow). */
const same = (a: readonly Buffer[], b: readonly Buffer[]) => a.length === b.length && a.every((x, i) => x.equals(b[i]!));

/** An rng replaying fixed values (then 0): drives keep (<1/3), drop (<2/3), tear (else) exactly. */
function script(...values: number[]): () => number {
  let i = 0;
  return () => values[i++] ?? 0;
}
const KEEP = 0;
const DROP = 0.5;
const TEAR = 0.9;

describe('CrashSimulator', () => {
  it('records writes (copied) and barriers in one log across images', () => {
    const sim = new CrashSimulator();
    const a = sim.addImage('a.img', fill(0, 4));
    const b = sim.addImage('b.img', fill(0, 4));
    const data = fill(1);
    a.write(0, data);
    data.fill(9); // the log keeps what was written then
    b.barrier();
    expect(sim.events.map((e) => `${e.kind}:${e.image}`)).toEqual(['write:0', 'barrier:1']);
    expect((sim.events[0] as Extract<CrashEvent, { kind: 'write' }>).data).toEqual(fill(1));
    expect(sim.stateCount).toBe(3);
    expect(a.read(0, S)).toEqual(fill(1)); // the recording provider shows the live state
  });

  it('keeps every write before the last barrier and any subset after it', () => {
    const sim = new CrashSimulator();
    const p = sim.addImage('a.img', fill(0, 4));
    p.write(0, fill(1));
    p.barrier();
    p.write(S, fill(2));
    const seen = new Set<string>();
    const rng = seededRng(1);
    for (let i = 0; i < 200; i++) {
      const [img] = sim.crashState(3, rng);
      const s = sectors(img!);
      expect(s[0]).toBe(1); // durable
      expect([0, 2]).toContain(s[1]);
      seen.add(s.join());
    }
    expect(seen).toEqual(new Set(['1,0,0,0', '1,2,0,0']));
    // Before the barrier, even the first write may be lost.
    expect(new Set(Array.from({ length: 100 }, () => sectors(sim.crashState(1, rng)[0]!)[0]))).toEqual(new Set([0, 1]));
    expect(same(sim.crashState(0, rng), [fill(0, 4)])).toBe(true);
  });

  it('tears a multi-sector write at 512-byte boundaries: whole, none, or some sectors', () => {
    const sim = new CrashSimulator();
    const p = sim.addImage('a.img', fill(0, 4), 4096);
    p.write(0, fill(7, 4));
    const outcomes = new Set<string>();
    const rng = seededRng(2);
    for (let i = 0; i < 600; i++) outcomes.add(sectors(sim.crashState(1, rng)[0]!).join(''));
    // Every one of the 16 subsets of the four sectors occurs; nothing else does.
    expect(outcomes.size).toBe(16);
    for (const o of outcomes) expect(o).toMatch(/^[07]{4}$/);
    expect(sectors(sim.crashState(1, script(TEAR, 0, 0.9, 0, 0.9))[0]!)).toEqual([7, 0, 7, 0]);
  });

  it('tears an unaligned write at absolute sector boundaries', () => {
    const sim = new CrashSimulator();
    const p = sim.addImage('a.img', fill(0, 2));
    p.write(256, Buffer.alloc(512, 5));
    // Tear: keep the piece in sector 0 ([256, 512)), drop the piece in sector 1.
    const [img] = sim.crashState(1, script(TEAR, 0, 0.9));
    expect(img!.subarray(0, 256)).toEqual(Buffer.alloc(256));
    expect(img!.subarray(256, 512)).toEqual(Buffer.alloc(256, 5));
    expect(img!.subarray(512)).toEqual(Buffer.alloc(512));
  });

  it('applies unflushed writes in issue order: of two kept writes the later wins', () => {
    const sim = new CrashSimulator();
    const p = sim.addImage('a.img', fill(0));
    p.barrier();
    p.write(0, fill(0xaa));
    p.write(0, fill(0xbb));
    expect(sectors(sim.crashState(3, script(KEEP, KEEP))[0]!)).toEqual([0xbb]);
    expect(sectors(sim.crashState(3, script(KEEP, DROP))[0]!)).toEqual([0xaa]);
    expect(sectors(sim.crashState(3, script(DROP, KEEP))[0]!)).toEqual([0xbb]);
    expect(sectors(sim.crashState(3, script(DROP, DROP))[0]!)).toEqual([0]);
  });

  it('a barrier makes only its own image durable', () => {
    const sim = new CrashSimulator();
    const a = sim.addImage('a.img', fill(0));
    const b = sim.addImage('b.img', fill(0));
    a.write(0, fill(1));
    b.write(0, fill(2));
    a.barrier();
    b.write(0, fill(3));
    // After a's barrier: a is durable, b's write is not (all dropped).
    expect(sim.crashState(3, script(DROP)).map((x) => x[0])).toEqual([1, 0]);
    expect(sim.crashState(4, script(DROP, DROP)).map((x) => x[0])).toEqual([1, 0]);
    b.barrier();
    expect(sim.crashState(5, script(DROP)).map((x) => x[0])).toEqual([1, 3]);
    expect(sim.finalState().map((x) => x[0])).toEqual([1, 3]);
  });

  it('refuses cut points outside the log', () => {
    const sim = new CrashSimulator();
    sim.addImage('a.img', fill(0)).barrier();
    expect(() => sim.crashState(2, Math.random)).toThrow(RangeError);
    expect(() => sim.crashState(-1, Math.random)).toThrow(RangeError);
  });

  it('reopens a state with the recorded paths, sector sizes and identities', () => {
    const sim = new CrashSimulator();
    const a = sim.addImage('/d/a.img', fill(0, 8), 4096);
    const [p] = sim.reopen(sim.finalState());
    expect(p!.path).toBe('/d/a.img');
    expect(p!.mediaSectorSize).toBe(4096);
    expect(p!.identity).toEqual(a.identity);
  });
});

// An independent, naive model of the same semantics, to check the
// incremental cursor against: replay the first `cut` events from scratch.
type Op = { kind: 'write'; image: number; sector: number; count: number; byte: number } | { kind: 'barrier'; image: number };

function naive(initial: Buffer[], ops: Op[], cut: number, keepAll: boolean): Buffer[] {
  const lastBarrier = initial.map((_, i) => ops.slice(0, cut).map((o) => o.kind === 'barrier' && o.image === i).lastIndexOf(true));
  const out = initial.map((b) => Buffer.from(b));
  ops.slice(0, cut).forEach((o, idx) => {
    if (o.kind === 'write' && (keepAll || idx < lastBarrier[o.image]!)) out[o.image]!.fill(o.byte, o.sector * S, (o.sector + o.count) * S);
  });
  return out;
}

const opArb = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), image: fc.integer({ min: 0, max: 1 }), sector: fc.integer({ min: 0, max: 5 }), count: fc.integer({ min: 1, max: 2 }), byte: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('barrier' as const), image: fc.integer({ min: 0, max: 1 }) }),
);

describe('CrashSimulator against a naive model', () => {
  function record(ops: Op[]): { sim: CrashSimulator; initial: Buffer[] } {
    const initial = [fill(0, 8), fill(0, 8)];
    const sim = new CrashSimulator();
    const provs = initial.map((b, i) => sim.addImage(`i${i}.img`, b));
    for (const o of ops) {
      if (o.kind === 'write') provs[o.image]!.write(o.sector * S, fill(o.byte, o.count));
      else provs[o.image]!.barrier();
    }
    return { sim, initial };
  }

  it('all-kept and all-dropped states equal the full prefix and the durable prefix, in any call order', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), (ops, picks) => {
        const { sim, initial } = record(ops);
        expect(same(sim.finalState(), naive(initial, ops, ops.length, true))).toBe(true);
        // Random (often decreasing) cut order exercises the cursor's reset.
        for (const pick of picks) {
          const cut = pick % sim.stateCount;
          expect(same(sim.crashState(cut, () => KEEP), naive(initial, ops, cut, true))).toBe(true);
          expect(same(sim.crashState(cut, () => DROP), naive(initial, ops, cut, false))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('every sector of a sampled state is its durable value or one written since the barrier', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.integer(), (ops, seed) => {
        const { sim, initial } = record(ops);
        for (const { eventCount, images } of sim.sampleStates(20, seed)) {
          const durable = naive(initial, ops, eventCount, false);
          images.forEach((img, i) => {
            const lastBarrier = ops.slice(0, eventCount).map((o) => o.kind === 'barrier' && o.image === i).lastIndexOf(true);
            sectors(img).forEach((value, s) => {
              const allowed = new Set([durable[i]![s * S]]);
              ops.slice(lastBarrier + 1, eventCount).forEach((o) => {
                if (o.kind === 'write' && o.image === i && s >= o.sector && s < o.sector + o.count) allowed.add(o.byte);
              });
              expect(allowed).toContain(value);
            });
          });
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('sampleStates', () => {
  function busySim(events: number): CrashSimulator {
    const sim = new CrashSimulator();
    const a = sim.addImage('a.img', fill(0, 128));
    const b = sim.addImage('b.img', fill(0, 128));
    const rng = seededRng(7);
    for (let i = 0; i < events; i++) {
      const p = rng() < 0.5 ? a : b;
      if (rng() < 0.2) p.barrier();
      else p.write(Math.floor(rng() * 120) * S, fill(1 + (i % 255), 1 + Math.floor(rng() * 8)));
    }
    return sim;
  }

  it('visits every cut point when asked for at least as many states, in ascending order', () => {
    const sim = busySim(20);
    const cuts = [...sim.sampleStates(50, 1)].map((s) => s.eventCount);
    expect(new Set(cuts)).toEqual(new Set(Array.from({ length: 21 }, (_, i) => i)));
    expect(cuts).toEqual([...cuts].sort((x, y) => x - y));
  });

  it('with fewer states: ascending, including the first and last cut, deterministic per seed', () => {
    const sim = busySim(500);
    const run = (seed: number) => [...sim.sampleStates(40, seed)];
    const one = run(3);
    const cuts = one.map((s) => s.eventCount);
    expect(cuts[0]).toBe(0);
    expect(cuts.at(-1)).toBe(500);
    expect(cuts).toEqual([...cuts].sort((x, y) => x - y));
    expect(new Set(cuts).size).toBeGreaterThan(30);
    const again = run(3);
    expect(again.map((s) => s.eventCount)).toEqual(cuts);
    expect(again.every((s, i) => same(s.images, one[i]!.images))).toBe(true);
    expect(run(4).map((s) => s.eventCount)).not.toEqual(cuts);
  });

  it('samples thousands of states of a long log quickly', () => {
    const sim = busySim(2000);
    const started = Date.now();
    let n = 0;
    for (const state of sim.sampleStates(5000, 11)) {
      expect(state.images).toHaveLength(2);
      n++;
    }
    expect(n).toBe(5000);
    // Incremental: about one copy of two 64 KiB images per state, not a replay of the log.
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
