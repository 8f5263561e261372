// Simulated power loss during the mutating virstor verbs (flush-engine.md,
// "Testing it"): every image and the undo log live in one CrashSimulator; for
// thousands of crash states (any prefix of the writes and barriers, later
// writes kept, dropped or torn sector by sector), the next geomctl command's
// recovery must leave every component's metadata, the map and the device's
// contents exactly as before the verb or exactly as after it, and check must
// find no error.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CrashSimulator } from '../sim/crash.js';
import { MemoryProvider } from '../sim/memory.js';
import type { Provider } from '../../src/provider/provider.js';
import { openSession } from '../../src/engine/session.js';
import { openVirstor } from '../../src/virstor/device.js';
import { bufferSource, writeVirstor } from '../../src/virstor/io.js';
import { checkDevice, stopDevice } from '../../src/virstor/check.js';
import { addComponents, removeComponents } from '../../src/virstor/components.js';
import { ImageLogStore, MemHost, gWrite, pattern } from './virstor-engine-host.js';
import { ModelKernel, modelImage, modelLabel, type ModelImage } from '../model/virstor-kernel.js';

const STATES = Number(process.env.GEOMCTL_CRASH_STATES ?? 1000);
const K = 1024;
const CHUNK = 64 * K;
const V = 4 * 1024 * K;
const LOG = 'c0.img.geomctl-undo';
const LOG_CAPACITY = 1024 * K;

function device(sizes: number[]): ModelImage[] {
  const images = sizes.map((s, i) => modelImage(`c${i}.img`, s * CHUNK));
  modelLabel(images, { name: 'vs', chunkSize: CHUNK, virsize: V, id: 0x4242, maxphys: CHUNK });
  return images;
}



/**
 * What "the device" is, for before/after comparisons: every image's metadata
 * (first 92 bytes of its last sector), the map, and the contents the kernel
 * reads (undefined when it cannot taste a device).
 */
function signature(images: ModelImage[]): string {
  const h = createHash('sha256');
  for (const img of images) h.update(img.data.subarray(img.data.length - 512, img.data.length - 512 + 92));
  h.update((images[0] as ModelImage).data.subarray(0, (V / CHUNK) * 8));
  try {
    const tasted = ModelKernel.taste(images.map((i) => ({ name: i.name, data: i.data })));
    h.update(`${tasted.components.length}`);
    // The contents: unallocated chunks read as zeros, so the allocated ones (and where they are) say it all.
    tasted.map.forEach((e, v) => {
      if (!(e.flags & 1)) return;
      h.update(`${v}:`);
      h.update(tasted.read(v * CHUNK, CHUNK));
    });
  } catch (err) {
    h.update(`untasteable: ${(err as Error).message}`);
  }
  return h.digest('hex');
}

interface CrashRun {
  states: number;
  before: number;
  after: number;
}

/**
 * Runs `verb` on `initial` inside a CrashSimulator, then recovers every
 * sampled crash state with a write session and checks it is all before or
 * all after. `names` are the images the verb may touch (components and new ones).
 */
function crashTest(initial: ModelImage[], verb: (host: MemHost) => void, seed: number): CrashRun {
  const sim = new CrashSimulator();
  const sims = new Map<string, Provider>();
  for (const img of initial) sims.set(img.name, sim.addImage(img.name, img.data));
  const logFile = sim.addImage(LOG, Buffer.alloc(LOG_CAPACITY));
  const host = new MemHost(
    initial.map((i) => ({ name: i.name, data: i.data })),
    { providers: sims, logStore: new ImageLogStore(LOG, logFile, false), cacheLimit: 128 * K },
  );
  verb(host);
  const names = initial.map((i) => i.name);
  const before = signature(initial);
  const final = sim.finalState();
  const after = signature(names.map((name, i) => ({ name, data: final[i] as Buffer })));
  expect(after).not.toBe(before);
  const run: CrashRun = { states: 0, before: 0, after: 0 };
  for (const state of sim.sampleStates(STATES, seed)) {
    const reopened = sim.reopen(state.images);
    const byName = new Map<string, Provider>(names.map((n, i) => [n, reopened[i] as MemoryProvider]));
    const store = new ImageLogStore(LOG, reopened[names.length] as MemoryProvider, true);
    // The next command: a write session over every image rolls back a hot log.
    openSession(names, { write: true, wait: 0, cacheLimit: 1 << 20, dirs: [], env: {}, logStore: store, open: (p) => byName.get(p) as MemoryProvider }).close();
    const recovered = names.map((name, i) => ({ name, data: state.images[i] as Buffer }));
    const sig = signature(recovered);
    if (sig === before) run.before++;
    else if (sig === after) run.after++;
    else throw new Error(`crash state at event ${state.eventCount} of ${sim.events.length} is neither before nor after`);
    const report = checkDevice(new MemHost(recovered), 'vs');
    expect(report.errors, `check after a crash at event ${state.eventCount}`).toEqual([]);
    run.states++;
  }
  // Both outcomes must be reachable, or the sampling proved little.
  expect(run.before).toBeGreaterThan(0);
  expect(run.after).toBeGreaterThan(0);
  return run;
}

function report(verb: string, r: CrashRun): void {
  console.log(`virstor ${verb}: ${r.states} crash states, ${r.before} rolled back, ${r.after} complete, 0 torn`);
}

describe('virstor crash consistency (simulated power loss)', () => {
  it('write: allocating across three components', () => {
    const images = device([15, 6, 9]);
    gWrite(images, 0, pattern(10 * CHUNK, 1)); // c0 has 2 chunks left
    const r = crashTest(
      images,
      (host) => {
        const dev = openVirstor(host, 'vs', { write: true, scan: true });
        try {
          // 9 new chunks: the last 2 of c0, all 5 of c1, 2 of c2 — and a partial first chunk.
          writeVirstor(dev, bufferSource(pattern(9 * CHUNK - 4096, 2)), { offset: 20 * CHUNK + 4096, sparse: false });
        } finally {
          dev.close();
        }
      },
      1,
    );
    report('write', r);
  });

  it('add: two new components, md_count on every one', () => {
    const images = [...device([15, 6]), modelImage('n0.img', 8 * CHUNK), modelImage('n1.img', 10 * CHUNK)];
    gWrite(images, 0, pattern(3 * CHUNK, 3));
    const r = crashTest(images, (host) => void addComponents(host, 'vs', ['n0.img', 'n1.img'], { hardcode: false, force: false }), 2);
    report('add', r);
  });

  it('remove: a middle component, the rest renumbered', () => {
    const images = device([15, 6, 9, 7]);
    gWrite(images, 0, pattern(3 * CHUNK, 4));
    const r = crashTest(images, (host) => void removeComponents(host, 'vs', ['c1.img']), 3);
    report('remove', r);
  });

  it('stop: stale metadata after a kernel crash brought up to date', () => {
    const images = device([15, 6, 9]);
    const kernel = ModelKernel.taste(images);
    kernel.writeNow(0, pattern(14 * CHUNK, 5)); // no update_metadata: stale chunk_next and flags
    const r = crashTest(images, (host) => void stopDevice(host, 'vs'), 4);
    report('stop', r);
  });
});
