// Opening a huge virstor device reads only the data of its map (virstor.md,
// "open": a 1 PiB device has a 2 GiB map, almost all hole on a sparse image):
// providers report their data regions (SEEK_DATA/SEEK_HOLE on files, nothing
// on memory), the fallbacks are exact, and a device whose few map entries lie
// far apart opens with the same chunk_next, usage, flags and map problems as
// when its whole map is read.

import { closeSync, openSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { openSession } from '../../src/engine/session.js';
import { openImage, type FileProvider } from '../../src/provider/file.js';
import { MemoryProvider } from '../sim/memory.js';
import type { Provider } from '../../src/provider/provider.js';
import type { Lockable } from '../../src/platform/lock.js';
import { FaultCounter, withFaults } from '../../src/provider/fault.js';
import { alignedDataRegions, SEEK_DATA, SEEK_HOLE, seekDataRegions, type Seek } from '../../src/provider/holes.js';
import { labelVirstor, planVirstorLabel } from '../../src/virstor/label.js';
import { openVirstor, type VirstorDevice } from '../../src/virstor/device.js';
import type { VirstorHost } from '../../src/virstor/host.js';
import { nonZeroEntries } from '../../src/virstor/map-scan.js';
import { bufferSource, writeVirstor } from '../../src/virstor/io.js';
import { analyzeMap, checkDevice } from '../../src/virstor/check.js';
import { mapExtents } from '../../src/virstor/extents.js';
import { scratch } from '../helpers/cli.js';

const K = 1024;
const M = 1024 * K;
const s = scratch('geomctl-map-holes-');
afterAll(() => s.cleanup());

/** A fake lseek over a file of `size` bytes whose data is `extents` ([start, end), ascending). */
function fakeSeek(size: number, extents: [number, number][]): Seek {
  return (offset, whence) => {
    if (offset >= size) throw Object.assign(new Error('ENXIO'), { code: 'ENXIO' });
    if (whence === SEEK_DATA) {
      const e = extents.find(([, b]) => b > offset);
      if (!e) throw Object.assign(new Error('ENXIO'), { code: 'ENXIO' });
      return Math.max(e[0], offset);
    }
    const inside = extents.find(([a, b]) => a <= offset && offset < b);
    return inside ? inside[1] : offset;
  };
}

const all = <T>(it: Iterable<T>): T[] => [...it];

describe('seekDataRegions (SEEK_DATA / SEEK_HOLE)', () => {
  const extents: [number, number][] = [
    [8 * K, 12 * K],
    [100 * K, 200 * K],
    [1 * M, 1 * M + 4 * K],
  ];
  const seek = fakeSeek(4 * M, extents);

  it('reports the data extents, clipped to the range asked for', () => {
    expect(all(seekDataRegions(seek, 0, 4 * M))).toEqual(extents);
    expect(all(seekDataRegions(seek, 10 * K, 140 * K))).toEqual([
      [10 * K, 12 * K],
      [100 * K, 150 * K],
    ]);
    expect(all(seekDataRegions(seek, 200 * K, 800 * K))).toEqual([]);
  });

  it('stops at ENXIO: no data after the offset', () => {
    expect(all(seekDataRegions(fakeSeek(4 * M, []), 0, 4 * M))).toEqual([]);
    expect(all(seekDataRegions(seek, 2 * M, 2 * M))).toEqual([]);
  });

  it('falls back to the rest of the range as data where the seek is unsupported or makes no sense', () => {
    const einval: Seek = () => {
      throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    };
    expect(all(seekDataRegions(einval, 4 * K, 60 * K))).toEqual([[4 * K, 64 * K]]);
    // Supported for SEEK_DATA only: the data found runs to the end.
    const dataOnly: Seek = (offset, whence) => {
      if (whence === SEEK_HOLE) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      return seek(offset, whence);
    };
    expect(all(seekDataRegions(dataOnly, 0, 4 * M))).toEqual([[8 * K, 4 * M]]);
    // Data before the offset asked for, or a hole before its data: trust nothing more.
    expect(all(seekDataRegions(() => 0, 4 * K, 4 * K))).toEqual([[4 * K, 8 * K]]);
    const backwards: Seek = (offset, whence) => (whence === SEEK_DATA ? offset + 4 * K : offset);
    expect(all(seekDataRegions(backwards, 0, 64 * K))).toEqual([[4 * K, 64 * K]]);
  });
});

describe('alignedDataRegions', () => {
  const regions = (list: [number, number][]) => ({ dataRegions: () => list }) as unknown as Provider;

  it('widens to the alignment, clips to the range and merges neighbours', () => {
    const p = regions([
      [8 * K, 12 * K],
      [70 * K, 72 * K],
      [130 * K, 131 * K],
      [400 * K, 500 * K],
    ]);
    expect(all(alignedDataRegions(p, 0, 450 * K, 64 * K))).toEqual([
      [0, 192 * K],
      [384 * K, 450 * K],
    ]);
  });

  it('is the whole range for a provider that cannot tell (memory images)', () => {
    const mem = new MemoryProvider('m.img', Buffer.alloc(256 * K));
    expect(all(alignedDataRegions(mem, 4 * K, 100 * K, 64 * K))).toEqual([[4 * K, 104 * K]]);
  });
});

describe('FileProvider.dataRegions', () => {
  const path = s.path('sparse.img');
  // Offsets past 4 GiB too: a 1 PiB device's 2 GiB map ends there, and lseek must take them whole.
  const writes = [100 * M, 100 * M + 1, 333 * M + 12345, 999 * M, 6 * 1024 * M + 5];
  writeFileSync(path, '');
  truncateSync(path, 8 * 1024 * M);
  const fd = openSync(path, 'r+');
  for (const at of writes) writeSync(fd, Buffer.from([0xa5]), 0, 1, at);
  closeSync(fd);

  it('covers every written byte, inside the range, and skips the holes', () => {
    const p = openImage(path, { write: false });
    try {
      const found = all(p.dataRegions(0, p.size));
      for (const at of writes) expect(found.some(([a, b]) => a <= at && at < b), `byte ${at}`).toBe(true);
      for (const [i, [a, b]] of found.entries()) {
        expect(a).toBeLessThan(b);
        if (i > 0) expect(a).toBeGreaterThanOrEqual((found[i - 1] as [number, number])[1]);
      }
      // A few file-system blocks each, not the gigabyte (ext4, xfs, btrfs and tmpfs all know their holes).
      expect(found.reduce((n, [a, b]) => n + b - a, 0)).toBeLessThanOrEqual(writes.length * 1 * M);
      expect(all(p.dataRegions(200 * M, 100 * M))).toEqual([]);
      expect(all(p.dataRegions(5 * 1024 * M, 1024 * M))).toEqual([]);
      const clipped = all(p.dataRegions(100 * M + 1, 1));
      expect(clipped).toEqual([[100 * M + 1, 100 * M + 2]]);
    } finally {
      p.close();
    }
  });

  it('is forwarded by the fault injector', () => {
    const p = openImage(path, { write: false });
    const faulty = withFaults(p, new FaultCounter({ action: 'eio', on: 'write', n: 1 }));
    try {
      expect(all(faulty.dataRegions?.(0, p.size) ?? [])).toEqual(all(p.dataRegions(0, p.size)));
      const mem = withFaults(new MemoryProvider('m.img', Buffer.alloc(4 * K)), new FaultCounter({ action: 'eio', on: 'write', n: 1 }));
      expect(all(mem.dataRegions?.(0, 4 * K) ?? [])).toEqual([[0, 4 * K]]);
    } finally {
      p.close();
    }
  });
});

/** The file provider without dataRegions: what the device sees on a medium that cannot tell. */
function withoutRegions(f: FileProvider): Provider & Lockable {
  return {
    path: f.path,
    name: f.name,
    size: f.size,
    mediaSectorSize: f.mediaSectorSize,
    writable: f.writable,
    identity: f.identity,
    fd: f.fd,
    read: (o, l) => f.read(o, l),
    readInto: (o, t) => f.readInto(o, t),
    write: (o, d) => f.write(o, d),
    barrier: () => f.barrier(),
    close: () => f.close(),
  };
}

function fileHost(paths: string[], holes: boolean): VirstorHost {
  const open = (p: string, write: boolean): Provider & Lockable => {
    const f = openImage(p, { write });
    return holes ? f : withoutRegions(f);
  };
  return {
    candidates: paths,
    probe: (p) => openImage(p, { write: false }),
    openSession: (ps, o) => openSession(ps, { write: o.write, wait: 0, cacheLimit: 64 * M, dirs: [s.dir], env: {}, open }),
    ignoreHardcoded: false,
  };
}

/** What a scan computed, for comparison (and the extents, which refuse an invalid map). */
function scanned(dev: VirstorDevice, extents = true) {
  return {
    components: dev.components.map((c) => ({ chunkNext: c.chunkNext, allocated: c.allocated, highest: c.highest, flags: c.flags })),
    problems: dev.mapProblems,
    report: analyzeMap(dev),
    extents: extents ? [...mapExtents(dev)] : [],
  };
}

describe('a 64 TiB device with a 512 MiB map and entries far apart', () => {
  const CHUNK = 1 * M;
  const VIRSIZE = 64n << 40n;
  const MAP = Number(VIRSIZE / BigInt(CHUNK)) * 8;
  const paths = [s.path('big0.img'), s.path('big1.img')];
  // Component 0: the 1024 chunks reserved for the map and 6 more; component 1 (at least the map's size, as label asks): 519 chunks.
  truncateSync((writeFileSync(paths[0] as string, ''), paths[0] as string), 1031 * M);
  truncateSync((writeFileSync(paths[1] as string, ''), paths[1] as string), 520 * M);
  const chunks = Number(VIRSIZE / BigInt(CHUNK));
  // First, last, and spread over the map: 10 chunks, 6 on component 0 and 4 on component 1.
  const targets = [0, chunks - 1, 7_777_777, 123_456, 40_000_000, 66_666_666, 13, 50_123_457, 1 << 25, 60_000_001];

  it('labels, writes and opens it reading a few MiB of the map, with what the full scan finds', () => {
    const session = openSession(paths, { write: true, wait: 0, cacheLimit: 64 * M, dirs: [s.dir], env: {} });
    try {
      const { plan } = planVirstorLabel({
        name: 'big',
        components: session.providers.map((p) => ({ path: p.path, name: p.name, size: p.size, sectorSize: 512, identity: p.identity })),
        chunkSize: BigInt(CHUNK),
        virsize: VIRSIZE,
        maxphys: 1 << 20,
        hardcode: false,
        id: 4242,
      });
      expect(plan.geometry.mapSize).toBe(MAP);
      labelVirstor(session.engine, plan);
      // The image's holes already read as zeros: label read none of the 512 MiB map.
      expect(session.engine.stats.readBytes).toBeLessThan(1 * M);
    } finally {
      session.close();
    }
    targets.forEach((v, i) => {
      const dev = openVirstor(fileHost(paths, true), 'big', { write: true, scan: true });
      try {
        writeVirstor(dev, bufferSource(Buffer.alloc(4 * K, i + 1)), { offset: v * CHUNK, sparse: false });
      } finally {
        dev.close();
      }
    });

    const fast = openVirstor(fileHost(paths, true), 'big', { write: false, scan: true });
    const full = openVirstor(fileHost(paths, false), 'big', { write: false, scan: true });
    try {
      const fastRead = fast.engine.stats.readBytes;
      expect(fastRead).toBeLessThan(16 * M);
      expect(full.engine.stats.readBytes).toBeGreaterThanOrEqual(MAP);
      const a = scanned(fast);
      expect(a).toEqual(scanned(full));
      expect(a.components.map((c) => c.allocated)).toEqual([6, 4]);
      expect(a.components.map((c) => c.chunkNext)).toEqual([1030, 4]);
      expect(a.report.allocated).toBe(10);
      expect(a.extents.map((e) => e.virtualChunk)).toEqual([...targets].sort((x, y) => x - y));
      // analyzeMap and mapExtents read only the data again.
      expect(fast.engine.stats.readBytes).toBeLessThan(3 * fastRead + 1 * M);
    } finally {
      fast.close();
      full.close();
    }
  });

  it('reports an out-of-range entry far from the others as the full scan does', () => {
    // Entry 50,000,000 names component 7 of 2 (written by hand: no geomctl verb would).
    const fd = openSync(paths[0] as string, 'r+');
    const bad = Buffer.alloc(8);
    bad.writeUInt16LE(1, 0);
    bad.writeUInt16LE(7, 2);
    bad.writeUInt32LE(3, 4);
    writeSync(fd, bad, 0, 8, 50_000_000 * 8);
    closeSync(fd);
    const fast = openVirstor(fileHost(paths, true), 'big', { write: false, scan: true, lenient: true });
    const full = openVirstor(fileHost(paths, false), 'big', { write: false, scan: true, lenient: true });
    try {
      expect(fast.mapProblems.map((p) => p.virtualChunk)).toEqual([50_000_000]);
      expect(scanned(fast, false)).toEqual(scanned(full, false));
    } finally {
      fast.close();
      full.close();
    }
    expect(() => openVirstor(fileHost(paths, true), 'big', { write: false, scan: true })).toThrow(/map entry 50000000 points to component 7/);
    const progress: [number, number][] = [];
    const report = checkDevice(fileHost(paths, true), 'big', (done, total) => progress.push([done, total]));
    expect(report.errors.join('\n')).toMatch(/map entry 50000000/);
    // Both passes, counted as one total: ascending, ending at twice the map.
    expect(progress.at(-1)).toEqual([2 * MAP, 2 * MAP]);
    expect(progress.every(([d, t], i) => t === 2 * MAP && (i === 0 || d >= (progress[i - 1] as [number, number])[0]))).toBe(true);
    // Put it back for the next test.
    const fd2 = openSync(paths[0] as string, 'r+');
    writeSync(fd2, Buffer.alloc(8), 0, 8, 50_000_000 * 8);
    closeSync(fd2);
  });

  it('streams a map changed in this command through the engine, not from the image', () => {
    const dev = openVirstor(fileHost(paths, true), 'big', { write: true, scan: true });
    try {
      // Entry 30,000,000 lies in a hole of the image; its new value waits in the engine's cache.
      dev.map.set(30_000_000, { flags: 1, providerNo: 1, providerChunk: 40 });
      dev.map.flush();
      const seen = (): number[] => [...nonZeroEntries(dev)].map(([, , v]) => v);
      expect(seen()).toContain(30_000_000);
      dev.engine.abort();
    } finally {
      dev.close();
    }
    const after = openVirstor(fileHost(paths, true), 'big', { write: true, scan: true });
    try {
      const seen = (): number[] => [...nonZeroEntries(after)].map(([, , v]) => v);
      expect(seen()).not.toContain(30_000_000);
      // Committed, the image holds it again (its data regions include the page cache's unflushed writes).
      after.map.set(30_000_001, { flags: 1, providerNo: 1, providerChunk: 4 });
      after.commit();
      expect(after.map.uncommitted).toBe(false);
      expect(seen()).toContain(30_000_001);
    } finally {
      after.close();
    }
  });
});
