// Bad input for the virstor engine (quality.md, "Reliability"): devices with
// corrupted metadata and maps, truncated components, absurd offsets. Every
// verb either works or throws a GeomError (one line, a code) — never another
// exception — and a refused command changes nothing.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GeomError } from '../../src/errors.js';
import { openVirstor } from '../../src/virstor/device.js';
import { bufferSource, writeVirstor } from '../../src/virstor/io.js';
import { checkDevice, stopDevice } from '../../src/virstor/check.js';
import { addComponents, removeComponents } from '../../src/virstor/components.js';
import { mapExtents } from '../../src/virstor/extents.js';
import { MemHost, readRangeOf, hashImages as hash } from './virstor-engine-host.js';
import { ModelKernel, modelImage, modelLabel, type ModelImage } from '../model/virstor-kernel.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 150);
const CHUNK = 64 * 1024;

function device(): ModelImage[] {
  const images = [15, 6, 9].map((n, i) => modelImage(`c${i}.img`, n * CHUNK));
  modelLabel(images, { name: 'vs', chunkSize: CHUNK, virsize: 8 << 20, id: 5, maxphys: CHUNK });
  const k = ModelKernel.taste(images);
  k.writeNow(0, Buffer.alloc(14 * CHUNK, 0x5a));
  k.close();
  return [...images, modelImage('spare.img', 8 * CHUNK)];
}


/** Runs `fn`; a GeomError is an acceptable outcome, anything else fails the property. */
function tolerated(fn: () => void): GeomError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof GeomError) {
      expect(err.line).not.toContain('\n');
      return err;
    }
    throw err;
  }
}

const corruption = fc.record({
  image: fc.integer({ min: 0, max: 2 }),
  /** Where: the metadata sector (92 bytes) or the map (first 1 KiB of c0). */
  where: fc.constantFrom('metadata', 'map'),
  at: fc.nat(),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
});

describe('virstor engine on corrupted devices', () => {
  it('only ever throws GeomErrors, and refusals change nothing', () => {
    fc.assert(
      fc.property(fc.array(corruption, { minLength: 1, maxLength: 4 }), fc.integer({ min: -2, max: (8 << 20) / 512 + 2 }), (hits, sector) => {
        const images = device();
        for (const h of hits) {
          const img = h.where === 'map' ? images[0]! : images[h.image]!;
          const base = h.where === 'map' ? 0 : img.data.length - 512;
          const span = h.where === 'map' ? 1024 : 92;
          Buffer.from(h.bytes).copy(img.data, base + (h.at % span));
        }
        const host = new MemHost(images);
        tolerated(() => void checkDevice(host, 'vs'));
        tolerated(() => {
          const dev = openVirstor(host, 'vs', { write: false, scan: false });
          try {
            readRangeOf(dev, Math.max(0, sector) * 512, 4096);
            for (const e of mapExtents(dev)) expect(e.chunks).toBeGreaterThan(0);
          } finally {
            dev.close();
          }
        });
        const before = hash(images);
        const err = tolerated(() => {
          const dev = openVirstor(host, 'vs', { write: true, scan: true });
          try {
            writeVirstor(dev, bufferSource(Buffer.alloc(1024, 7)), { offset: sector * 512, sparse: false });
          } finally {
            dev.close();
          }
        });
        if (err) expect(hash(images)).toBe(before);
        tolerated(() => void stopDevice(host, 'vs'));
        tolerated(() => void addComponents(host, 'vs', ['spare.img'], { hardcode: false, force: false }));
        tolerated(() => void removeComponents(host, 'vs', ['c2.img']));
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses truncated or missing components with one line', () => {
    const images = device();
    const cut = { name: 'c1.img', data: images[1]!.data.subarray(0, 3 * CHUNK) };
    const err = tolerated(() => void openVirstor(new MemHost([images[0]!, cut, images[2]!]), 'vs', { write: false, scan: true }));
    expect(err?.line).toBe("virstor vs is incomplete: component 1 of 3 not found; name the directory that holds it with -d DIR");
    const none = tolerated(() => void openVirstor(new MemHost([images[3]!]), 'vs', { write: false, scan: true }));
    expect(none?.code).toBe('NOT_FOUND');
  });
});
