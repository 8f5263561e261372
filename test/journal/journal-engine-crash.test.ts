// Power loss at every event of journal write, write --sync, sync and the
// repair of a broken journal (flush-engine.md, "Testing it"), on the real
// flush engine with its undo log in the same simulated timeline (CrashWorld).
// After a crash, the next command's recovery runs (undo rollback), then the
// journaled provider must read exactly as before or after the command — or,
// for a write larger than one journal, as before plus a prefix of the input
// ending where a journal ended — and the device is never left BROKEN by a
// command that did not start from a broken one. Each state is checked
// read-only (replay in memory) and after a real replay.

import { describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.js';
import { CrashWorld, MemoryLogStore, type WorldState } from '../sim/memory-log.js';
import { recoverImages } from '../../src/engine/recovery.js';
import { minJournalSize } from '../../src/journal/format.js';
import { JournalDevice } from '../../src/journal/device.js';
import { seededRng } from '../sim/crash.js';
import type { Provider } from '../../src/provider/provider.js';
import { KernelJournal, kRandom, kReadMetadata, type KDisk } from '../model/journal-kernel.js';
import { K, M, labeled, modelWrites, randomBytes } from './journal-engine-support.js';

const MAXPHYS = 16 * K;
/** At least this many crash states per test (each verb runs on one and on two images). */
const MIN_STATES = 600;

type Kind = 'before' | 'after' | 'prefix';
type Outcome = Record<Kind, number> & { states: number };

function open(providers: Provider[], store: MemoryLogStore): JournalDevice {
  const engine = createEngine({ providers, cacheLimit: 256 * K, logStore: store, blockSize: 4096 });
  return JournalDevice.open(engine, { maxphys: MAXPHYS, cacheLimit: 64 * K, random: kRandom(77) });
}

interface Recorded {
  world: CrashWorld;
  before: Buffer;
  after: Buffer;
}

/** Runs `command` in a CrashWorld over copies of `disk`; returns the journaled provider before and after. */
function record(disk: KDisk, command: (dev: JournalDevice) => void): Recorded {
  const world = new CrashWorld();
  const images = disk.d === disk.j ? [disk.d] : [disk.d, disk.j];
  const providers = images.map((b, i) => world.sim.addImage(`/sim/${i === 0 ? 'data' : 'journal'}.img`, b));
  const dev = open(providers, world.logs);
  const before = dev.read(0, dev.dataSize);
  command(dev);
  dev.engine.close();
  const after = reopen(world, { images: world.sim.finalState(), logs: new Map(world.logs.files) });
  return { world, before, after: after.read(0, after.dataSize) };
}

/** What the next command sees after a crash: its session rolls back hot undo logs, then the device opens. */
function reopen(world: CrashWorld, state: Pick<WorldState, 'images' | 'logs'>): JournalDevice {
  const store = new MemoryLogStore(() => 0, state.logs);
  const providers = world.sim.reopen(state.images);
  recoverImages({ store, providers, dirs: [], write: true });
  return open(providers, store);
}

/** Every cut point, several tearings each. */
function crashAll(world: CrashWorld, accept: (dev: JournalDevice, seen: Buffer) => Kind | undefined, notBroken = true): Outcome {
  const out: Outcome = { states: 0, before: 0, after: 0, prefix: 0 };
  const rng = seededRng(1234);
  const perCut = Math.max(2, Math.ceil(MIN_STATES / world.cutCount));
  for (let cut = 0; cut < world.cutCount; cut++) {
    for (let s = 0; s < perCut; s++) {
      const dev = reopen(world, world.crashState(cut, rng));
      if (notBroken) expect(dev.state, `cut ${cut}`).not.toBe('BROKEN');
      const seen = dev.read(0, dev.dataSize);
      const kind = accept(dev, seen);
      expect(kind, `cut ${cut} of ${world.cutCount - 1}`).toBeDefined();
      out[kind as Kind]++;
      out.states++;
      if (dev.state !== 'BROKEN') {
        dev.recover(false);
        expect(dev.read(0, dev.dataSize).equals(seen)).toBe(true);
      }
    }
  }
  return out;
}

function beforeOrAfter(before: Buffer, after: Buffer) {
  return (_dev: JournalDevice, seen: Buffer): Kind | undefined => (seen.equals(after) ? 'after' : seen.equals(before) ? 'before' : undefined);
}

/** The k for which `seen` is `before` with input[0, k) applied at `offset`, if any. */
function prefixLength(seen: Buffer, before: Buffer, input: Buffer, offset: number): number | undefined {
  let k = 0;
  while (k < input.length && seen.subarray(offset + k, offset + k + 512).equals(input.subarray(k, k + 512))) k += 512;
  const want = Buffer.from(before);
  input.copy(want, offset, 0, k);
  return seen.equals(want) ? k : undefined;
}

function report(name: string, o: Outcome): void {
  // The suite prints its crash-state counts (quality.md, "Reliability").
  console.log(`journal crash states for ${name}: ${o.states} (before ${o.before}, after ${o.after}, prefix ${o.prefix})`);
}

/** A UFS2 superblock at 65536 that findUfsSuperblock accepts. */
function writeUfs2(img: Buffer): void {
  const sb = Buffer.alloc(8192);
  sb.writeInt32LE(32768, 48);
  sb.writeInt32LE(4096, 52);
  sb.writeInt32LE(3, 100);
  sb.writeInt32LE(2048, 104);
  sb.writeInt8(1, 209);
  sb.writeBigInt64LE(65536n, 1000);
  sb.writeBigInt64LE(64n, 1080);
  sb.writeUInt32LE(0x19540119, 1372);
  sb.copy(img, 65536);
}

describe('journal crash consistency (flush engine, undo log)', { timeout: 60_000 }, () => {
  for (const two of [false, true]) {
    const name = two ? 'two images' : 'one image';
    const layout = { two, dataSize: 512 * K, jsize: minJournalSize(512, MAXPHYS) + 32 * K };

    it(`write within one journal is all or nothing (${name})`, () => {
      const disk = labeled(layout);
      randomBytes(kRandom(9), layout.dataSize).copy(disk.d);
      const rnd = kRandom(10);
      const r = record(disk, (dev) => {
        dev.recover(false);
        const w = dev.writer();
        for (let i = 0; i < 12; i++) w.write((rnd() % 900) * 512, randomBytes(rnd, (1 + (rnd() % 40)) * 512));
        w.finish();
      });
      expect(r.after.equals(r.before)).toBe(false);
      const o = crashAll(r.world, beforeOrAfter(r.before, r.after));
      report(`write (${name})`, o);
      expect(o.before).toBeGreaterThan(0);
      expect(o.after).toBeGreaterThan(0);
    });

    it(`a write of three journals leaves a prefix of whole journals (${name})`, () => {
      const disk = labeled({ ...layout, dataSize: 3 * layout.jsize + 64 * K });
      const input = randomBytes(kRandom(12), 3 * layout.jsize);
      const r = record(disk, (dev) => {
        dev.recover(false);
        const w = dev.writer();
        for (let o = 0; o < input.length; o += MAXPHYS) w.write(4096 + o, input.subarray(o, o + MAXPHYS));
        w.finish();
      });
      // The prefixes a crash may leave: what the device shows when every
      // operation up to some point reached the disk — at journal boundaries.
      const allowed = new Set<number>();
      for (let cut = 0; cut < r.world.cutCount; cut++) {
        const dev = reopen(r.world, r.world.crashState(cut, () => 0));
        const k = prefixLength(dev.read(0, dev.dataSize), r.before, input, 4096);
        expect(k).toBeDefined();
        allowed.add(k as number);
      }
      expect(allowed.size).toBeGreaterThan(3);
      const o = crashAll(r.world, (_dev, seen) => {
        if (seen.equals(r.before)) return 'before';
        const k = prefixLength(seen, r.before, input, 4096);
        if (k === undefined || !allowed.has(k)) return undefined;
        return k === input.length ? 'after' : 'prefix';
      });
      report(`write of 3x the journal (${name})`, o);
      expect(o.prefix).toBeGreaterThan(0);
    });

    it(`write --sync: before or after, CLEAN at the end (${name})`, () => {
      const disk = labeled(layout);
      const rnd = kRandom(13);
      const r = record(disk, (dev) => {
        dev.recover(false);
        const w = dev.writer();
        for (let i = 0; i < 8; i++) w.write((rnd() % 900) * 512, randomBytes(rnd, (1 + (rnd() % 60)) * 512));
        w.sync();
      });
      expect(reopen(r.world, { images: r.world.sim.finalState(), logs: new Map() }).state).toBe('CLEAN');
      const o = crashAll(r.world, beforeOrAfter(r.before, r.after));
      report(`write --sync (${name})`, o);
    });

    it(`sync of a kernel journal with several terminated journals keeps the contents (${name})`, () => {
      const disk = labeled({ ...layout, jsize: layout.jsize + M });
      const rnd = kRandom(14);
      const k = new KernelJournal(disk, { maxphys: MAXPHYS, random: rnd });
      k.openWrite();
      for (let i = 0; i < 3; i++) {
        modelWrites(k, rnd, 8, MAXPHYS);
        k.switchJournal({ metadata: i === 0, copy: i === 0 });
      }
      modelWrites(k, rnd, 3, MAXPHYS);
      k.flushAll();
      const r = record(disk, (dev) => {
        expect(dev.state).toBe('DIRTY');
        expect(dev.choice?.walk.finished).toBe(3);
        dev.recover(false);
      });
      expect(r.after.equals(r.before)).toBe(true);
      expect(reopen(r.world, { images: r.world.sim.finalState(), logs: new Map() }).state).toBe('CLEAN');
      const o = crashAll(r.world, beforeOrAfter(r.before, r.after));
      report(`sync of 3 kernel journals (${name})`, o);
    });

    it(`sync -f of a broken journal: UFS dirty and CLEAN together, or neither (${name})`, () => {
      const disk = labeled(layout);
      writeUfs2(disk.d);
      const k = new KernelJournal(disk, { maxphys: MAXPHYS, random: kRandom(15) });
      k.openWrite();
      modelWrites(k, kRandom(16), 10, MAXPHYS);
      k.flushAll();
      const r = record(disk, (dev) => {
        expect(dev.state).toBe('BROKEN');
        dev.recover(true);
      });
      const ufsClean = (dev: JournalDevice): number => dev.engine.read(0, 65536, 512).readInt8(209);
      const o = crashAll(
        r.world,
        (dev, seen) => {
          const clean = (kReadMetadata(dev.engine.read(0, (dev.engine.providers[0] as Provider).size - 512, 512), 512).flags & 1) === 1;
          // Before: BROKEN with a clean UFS. After: CLEAN with the UFS marked dirty.
          if (dev.state === 'BROKEN' && !clean && ufsClean(dev) === 1 && seen.equals(r.before)) return 'before';
          if (dev.state === 'CLEAN' && clean && ufsClean(dev) === 0) return 'after';
          return undefined;
        },
        false,
      );
      report(`sync -f of a broken journal (${name})`, o);
      expect(o.before).toBeGreaterThan(0);
      expect(o.after).toBeGreaterThan(0);
    });
  }
});
