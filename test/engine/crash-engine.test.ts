// Crash consistency of the flush engine (flush-engine.md, "Testing it"):
// thousands of simulated power losses over random multi-image transactions
// (some far larger than the cache limit), crashes during recovery itself,
// and an injected EIO at every write and barrier. After recovery, every
// image's VOLUME and META bytes must be exactly all-before or all-after.

import { describe, expect, it } from 'vitest';
import { CrashWorld, MemoryLogStore, type WorldState } from '../sim/memory-log.js';
import { recoverImages } from '../../src/engine/recovery.js';
import { GeomError, IoError } from '../../src/errors.js';
import { seededRng } from '../sim/crash.js';
import { FaultCounter, withFaults } from '../../src/provider/fault.js';
import type { Provider } from '../../src/provider/provider.js';
import {
  applyOps,
  engineOver,
  makeWorld,
  randomOps,
  recoverState,
  verdict,
  withIdentity,
  type ImageSpec,
  type Op,
  type World,
} from './engine-support.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 0) > 0 ? 4 : 1;

/** Cache limits: none reached, a few blocks (several cycles), about two blocks (a cycle every few writes). */
const LIMITS = [1 << 20, 16 * 1024, 8 * 1024];

interface Transaction {
  specs: ImageSpec[];
  ops: Op[];
  cacheLimit: number;
}

function randomTransaction(seed: number): Transaction {
  const rng = seededRng(seed);
  const sizes = [32, 64, 96].map((k) => k * 1024);
  const specs: ImageSpec[] = [0, 1, 2].map((i) => ({
    size: sizes[Math.floor(rng() * sizes.length)] as number,
    sectorSize: i === 2 && rng() < 0.5 ? 4096 : 512,
    fill: rng() < 0.3 ? 'zero' : Math.floor(rng() * 1e9) + 1,
  }));
  const probe = makeWorld(specs);
  const count = rng() < 0.3 ? 40 + Math.floor(rng() * 60) : 3 + Math.floor(rng() * 20);
  return { specs, ops: randomOps(rng, probe, count), cacheLimit: LIMITS[Math.floor(rng() * LIMITS.length)] as number };
}

/** Runs the transaction through an engine over fresh simulated images; checks reads against the model on the way. */
function run(tx: Transaction, faults?: FaultCounter): { w: World; before: Buffer[]; after: Buffer[]; error: unknown } {
  const w = makeWorld(tx.specs);
  const e = engineOver(w, { cacheLimit: tx.cacheLimit, faults });
  const before = w.initial;
  let model: Buffer[] = before.map((b) => Buffer.from(b));
  let error: unknown;
  try {
    for (const [k, op] of tx.ops.entries()) {
      e.write(op.image, op.offset, op.data, op.type);
      model = applyOps(model, [op]);
      if (k % 7 === 3) {
        const img = (k * 13) % tx.specs.length;
        expect(e.read(img, 0, (w.providers[img] as Provider).size).equals(model[img] as Buffer)).toBe(true);
      }
    }
    e.commit();
  } catch (err) {
    error = err;
  }
  return { w, before, after: applyOps(before, tx.ops), error };
}

describe('power loss during a transaction', () => {
  it('every sampled crash state recovers to all-before or all-after', () => {
    const transactions = 60 * RUNS;
    const perTransaction = 100;
    let states = 0;
    let good = 0;
    let rolledBack = 0;
    let multiCycle = 0;
    const tally = { before: 0, after: 0 };
    const failures: string[] = [];
    for (let t = 0; t < transactions; t++) {
      const tx = randomTransaction(7000 + t);
      const { w, before, after, error } = run(tx);
      expect(error).toBeUndefined();
      // No crash: exactly the model, every byte, and no log left.
      w.world.sim.finalState().forEach((img, i) => expect(img.equals(after[i] as Buffer)).toBe(true));
      expect(w.world.logs.files.size).toBe(0);
      if (w.world.logs.ops.filter((o) => o.op.kind === 'sync').length > 1) multiCycle++;
      for (const state of w.world.sample(perTransaction, t)) {
        const rec = recoverState(w, state);
        const v = verdict(rec.images, before, after, w.sectorSizes);
        states++;
        if (rec.recovered.length > 0) rolledBack++;
        if (v === 'neither') {
          if (failures.length < 5) failures.push(`transaction ${t}, cut ${state.cut} of ${w.world.cutCount - 1}`);
          continue;
        }
        good++;
        tally[v]++;
        expect(rec.logsLeft).toBe(0);
        if (state.cut === 0) expect(v).toBe('before');
        if (state.cut === w.world.cutCount - 1) expect(v).toBe('after');
      }
    }
    console.log(
      `crash states checked: ${states}, all-or-nothing: ${good} (before: ${tally.before}, after: ${tally.after}, rolled back: ${rolledBack}; ${multiCycle} of ${transactions} transactions ran several cycles)`,
    );
    expect(failures).toEqual([]);
    expect(good).toBe(states);
    expect(states).toBeGreaterThanOrEqual(5000);
    expect(multiCycle).toBeGreaterThan(5);
    expect(rolledBack).toBeGreaterThan(states / 4);
  });
});

/** The images of `state` in a new world recording the recovery's own writes, with the identities the log names. */
function recoveryWorld(w: World, images: Buffer[], logs: Map<string, Buffer>): { world: CrashWorld; providers: Provider[] } {
  const world = new CrashWorld(logs);
  const providers = images.map((img, i) => {
    const orig = w.providers[i] as Provider;
    return withIdentity(world.sim.addImage(orig.path, img, orig.mediaSectorSize), orig.identity);
  });
  return { world, providers };
}

describe('power loss during recovery', () => {
  it('recovery interrupted at any point, then run again, still rolls back all of it', () => {
    let checked = 0;
    let good = 0;
    let nested = 0;
    const transactions = 25 * RUNS;
    for (let t = 0; t < transactions; t++) {
      const tx = randomTransaction(9100 + t);
      const { w, before, after } = run(tx);
      // Crash states in which a rollback has work to do.
      const hot: WorldState[] = [];
      for (const s of w.world.sample(40, t)) {
        const probe = recoverImages({ store: new MemoryLogStore(() => 0, s.logs), providers: w.world.sim.reopen(s.images.map((b) => Buffer.from(b))), dirs: [], write: true });
        if (probe.recovered.length > 0) hot.push(s);
      }
      for (const [k, s] of hot.entries()) {
        if (k % 4 !== 0) continue;
        // Depth 1: a crash during recovery; depth 2 (some): a crash during the recovery after it.
        const check = (images: Buffer[], logs: Map<string, Buffer>, depth: number): void => {
          const { world, providers } = recoveryWorld(w, images, logs);
          const first = recoverImages({ store: world.logs, providers, dirs: [], write: true });
          // At depth 2 the interrupted recovery may already have deleted the log durably.
          if (depth === 1) expect(first.recovered.length).toBeGreaterThan(0);
          for (const crash of world.sample(depth === 1 ? 30 : 8, t * 100 + k)) {
            if (depth === 1 && crash.cut % 5 === 2) {
              nested++;
              check(crash.images, crash.logs, 2);
            }
            const again = recoveryWorld(w, crash.images, crash.logs);
            recoverImages({ store: again.world.logs, providers: again.providers, dirs: [], write: true });
            const v = verdict(again.world.sim.finalState(), before, after, w.sectorSizes);
            checked++;
            // The log was hot: whatever the interrupted recovery did, the rerun ends at "before".
            if (v === 'before' && again.world.logs.files.size === 0) good++;
          }
        };
        check(s.images.map((b) => Buffer.from(b)), s.logs, 1);
      }
    }
    console.log(`recovery crash states checked: ${checked} (${nested} of them inside a second recovery), all rolled back: ${good}`);
    expect(good).toBe(checked);
    expect(checked).toBeGreaterThan(1000);
  });

  it('a recovery that fails keeps the log and says so; the next one succeeds', () => {
    const tx = randomTransaction(4242);
    tx.ops = tx.ops.filter((o) => o.type !== 'DATA');
    const { w, before } = run(tx);
    const removeAt = w.world.timeline().findIndex((x) => x.source === 'log' && x.op.kind === 'remove');
    const s = w.world.crashState(removeAt, seededRng(1));
    const counter = new FaultCounter({ action: 'eio', on: 'write', n: 2 });
    const { world, providers } = recoveryWorld(w, s.images, s.logs);
    let err: unknown;
    try {
      recoverImages({ store: world.logs, providers: providers.map((p) => withFaults(p, counter)), dirs: [], write: true });
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(GeomError);
    expect((err as GeomError).code).toBe('RECOVERY');
    expect((err as GeomError).message).toMatch(/rolling back the unfinished transaction in \/sim\/c0\.img\.geomctl-undo failed: write of .* failed: EIO/);
    expect((err as GeomError).hint).toMatch(/undo log stays/);
    expect(world.logs.files.size).toBe(1);
    const again = recoverImages({ store: world.logs, providers, dirs: [], write: true });
    expect(again.recovered).toHaveLength(1);
    expect(verdict(world.sim.finalState(), before, before, w.sectorSizes)).toBe('before');
    expect(world.logs.files.size).toBe(0);
  });
});

describe('I/O errors', () => {
  it('EIO (and ENOSPC) at every write and barrier: the command fails cleanly and the next open rolls back', () => {
    let injected = 0;
    let clean = 0;
    const transactions = 12 * RUNS;
    for (let t = 0; t < transactions; t++) {
      const tx = randomTransaction(5300 + t);
      const dry = new FaultCounter({ action: 'eio', on: 'write', n: 1e9 });
      const base = run(tx, dry);
      expect(base.error).toBeUndefined();
      for (const on of ['write', 'barrier'] as const) {
        for (let n = 1; n <= dry.counts[on]; n++) {
          const action = n % 5 === 0 ? 'enospc' : 'eio';
          const { w, before, after, error } = run(tx, new FaultCounter({ action, on, n }));
          injected++;
          expect(error, `${action}@${on}:${n} of transaction ${t}`).toBeInstanceOf(IoError);
          expect((error as IoError).errno).toBe(action === 'eio' ? 'EIO' : 'ENOSPC');
          // The next command: images and logs as they are (no power loss).
          const logs = new Map(w.world.logs.files);
          const rec = recoverState(w, { images: w.world.sim.finalState(), logs });
          const v = verdict(rec.images, before, after, w.sectorSizes);
          // With its log still there the transaction rolls back; only a failure after its commit point leaves it done.
          const want = logs.size > 0 ? 'before' : w.world.logs.ops.some((o) => o.op.kind === 'remove') ? 'after' : 'before';
          if (v === want && rec.logsLeft === 0) clean++;
        }
      }
    }
    console.log(`I/O errors injected: ${injected}, clean failures rolled back on the next open: ${clean}`);
    expect(clean).toBe(injected);
    expect(injected).toBeGreaterThan(100);
  });
});
