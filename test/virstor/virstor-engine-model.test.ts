// geomctl's virstor engine against the independent kernel model
// (test/model/virstor-kernel.ts): geomctl reads exactly what the model
// (the kernel) wrote, the model reads exactly what geomctl wrote, and for the
// same writes both leave byte-identical images. Plus the crash leftovers the
// kernel is known to leave (stale chunk_next, missing ALLOCATED, a lost map
// sector), and the refusals of virstor.md.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GeomError } from '../../src/errors.js';
import { openVirstor, type VirstorDevice } from '../../src/virstor/device.js';
import { VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_CURRENT, decodeVirstorMetadata } from '../../src/virstor/metadata.js';
import { checkDevice } from '../../src/virstor/check.js';
import { MemHost, gRead, gWrite, hashImages as hash, pattern } from './virstor-engine-host.js';
import {
  ModelKernel,
  modelImage,
  modelLabel,
  modelReadMetadata,
  modelWriteMetadata,
  type ModelImage,
} from '../model/virstor-kernel.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 60);
const K = 1024;
const CHUNK = 64 * K;
/** 128 virtual chunks: a two-sector map (64 entries per 512-byte sector), one map chunk, two reserved. */
const V = 8 * 1024 * K;

/** Three components, 64 KiB chunks (maxphys 64k): c0 has 14 usable chunks (2 reserved), c1 5, c2 8 — 25 free. */
function device(sizes = [15 * CHUNK, 6 * CHUNK, 9 * CHUNK], virsize = V, id = 0x1234): ModelImage[] {
  const images = sizes.map((s, i) => modelImage(`c${i}.img`, s));
  modelLabel(images, { name: 'vs', chunkSize: CHUNK, virsize, id, maxphys: CHUNK });
  return images;
}

function clone(images: ModelImage[]): ModelImage[] {
  return images.map((i) => ({ name: i.name, data: Buffer.from(i.data) }));
}


function open(images: ModelImage[], write = true, extra?: string[]): VirstorDevice {
  return openVirstor(new MemHost(images), 'vs', { write, scan: true, extraPaths: extra });
}




/**
 * Byte-identical images, except one deliberate divergence in the flags: when
 * a component became current at open (the previous one exactly full) the
 * kernel allocates from it without flagging it; geomctl flags it
 * ALLOCATED|CURRENT (virstor.md, "open"). So: ALLOCATED where the kernel has
 * it or the component holds chunks, and CURRENT on exactly the last
 * component that holds chunks.
 */
function expectSameAsKernel(ours: ModelImage[], theirs: ModelImage[]): void {
  const kernel = ModelKernel.taste(clone(theirs));
  const holding = kernel.components.map((_c, i) => i === 0 || kernel.map.some((e) => e.flags & 1 && e.providerNo === i));
  const last = holding.lastIndexOf(true);
  ours.forEach((img, i) => {
    const flagsAt = img.data.length - 512 + 90;
    const a = Buffer.from(img.data);
    const b = Buffer.from((theirs[i] as ModelImage).data);
    const ourFlags = a.readUInt16LE(flagsAt);
    const theirFlags = b.readUInt16LE(flagsAt);
    a.writeUInt16LE(0, flagsAt);
    b.writeUInt16LE(0, flagsAt);
    expect(a.equals(b), `${img.name} differs from the kernel's`).toBe(true);
    const allocated = holding[i] || (theirFlags & VIRSTOR_PROVIDER_ALLOCATED) !== 0 ? VIRSTOR_PROVIDER_ALLOCATED : 0;
    expect(ourFlags, `${img.name} flags (kernel: ${theirFlags})`).toBe(allocated | (i === last ? VIRSTOR_PROVIDER_CURRENT : 0));
  });
}

/** Writes (sector-aligned) that stay within the physical space of device(). */
const writesArb = fc.array(
  fc.record({
    sector: fc.integer({ min: 0, max: V / 512 - 1 }),
    sectors: fc.integer({ min: 1, max: 400 }),
    seed: fc.integer({ min: 1, max: 1000 }),
    zero: fc.boolean(),
  }),
  { minLength: 1, maxLength: 8 },
);

describe('geomctl and the kernel model agree', () => {
  it('leaves byte-identical images for the same writes, and each reads the other', () => {
    fc.assert(
      fc.property(writesArb, (writes) => {
        const ours = device();
        const theirs = clone(ours);
        const expected = Buffer.alloc(V);
        for (const w of writes) {
          const offset = w.sector * 512;
          const length = Math.min(w.sectors * 512, expected.length - offset);
          const data = w.zero ? Buffer.alloc(length) : pattern(length, w.seed);
          const model = ModelKernel.taste(theirs);
          let modelOk = true;
          try {
            model.writeNow(offset, data);
            model.close();
          } catch {
            modelOk = false;
          }
          if (!modelOk) {
            // The kernel would park the bio; geomctl refuses and changes nothing.
            const before = hash(ours);
            expect(() => gWrite(ours, offset, data)).toThrow(/out of physical space/);
            expect(hash(ours)).toBe(before);
            return;
          }
          gWrite(ours, offset, data);
          data.copy(expected, offset);
          expectSameAsKernel(ours, theirs);
        }
        expect(gRead(theirs).equals(expected)).toBe(true);
        expect(ModelKernel.taste(ours).readAll().equals(expected)).toBe(true);
        const report = checkDevice(new MemHost(ours), 'vs');
        expect(report.errors).toEqual([]);
        expect(report.warnings).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('reads a device the model filled across all three components', () => {
    const images = device();
    const model = ModelKernel.taste(images);
    const expected = Buffer.alloc(model.virsize);
    // 25 free chunks: fill 24, scattered over the device.
    for (let i = 0; i < 24; i++) {
      const v = (i * 37) % 128;
      const data = pattern(CHUNK, i + 1);
      model.writeNow(v * CHUNK, data);
      data.copy(expected, v * CHUNK);
    }
    model.close();
    expect(model.components.map((c) => c.flags)).toEqual([VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT]);
    expect(gRead(images).equals(expected)).toBe(true);
    // Unaligned reads go through the same map.
    expect(gRead(images, 12345, 200000).equals(expected.subarray(12345, 212345))).toBe(true);
    expect(checkDevice(new MemHost(images), 'vs')).toMatchObject({ errors: [], warnings: [], allocated: 24 });
  });

  it('writes a request crossing chunks and components the way the kernel does', () => {
    const ours = device();
    const theirs = clone(ours);
    const data = pattern(20 * CHUNK + 1024, 9);
    const model = ModelKernel.taste(theirs);
    model.writeNow(3 * CHUNK - 512, data);
    model.close();
    const r = gWrite(ours, 3 * CHUNK - 512, data);
    expect(r.newChunks).toBe(22);
    expectSameAsKernel(ours, theirs);
  });
});

describe('4096-byte sectors', () => {
  it('agrees with the kernel on a device labeled with 4096-byte sectors', () => {
    const make = () => {
      const images = [modelImage('c0.img', 15 * CHUNK), modelImage('c1.img', 6 * CHUNK)];
      modelLabel(images, { name: 'vs', chunkSize: CHUNK, virsize: 64 * 1024 * K, id: 9, maxphys: CHUNK, sectorSize: 4096 });
      return images;
    };
    const ours = make();
    const theirs = make();
    const data = pattern(15 * CHUNK, 3);
    const model = ModelKernel.taste(theirs, 4096);
    model.writeNow(700 * CHUNK - 8192, data);
    model.close();
    const r = gWrite(ours, 700 * CHUNK - 8192, data);
    expect(r.newChunks).toBe(16);
    ours.forEach((img, i) => expect(img.data.equals(theirs[i]!.data)).toBe(true));
    expect(() => gWrite(ours, 512, Buffer.alloc(512))).toThrow(/not a multiple of the sector size \(4096\)/);
    // A partial last sector is completed to 4096 bytes with the device's own bytes.
    gWrite(ours, 700 * CHUNK, Buffer.alloc(100, 0xab));
    const expected = Buffer.from(data.subarray(8192, 8192 + 4096));
    expected.fill(0xab, 0, 100);
    expect(ModelKernel.taste(ours, 4096).read(700 * CHUNK, 4096).equals(expected)).toBe(true);
  });
});

describe('write', () => {
  it('completes a partial last sector with the device bytes', () => {
    const images = device();
    gWrite(images, 0, pattern(4096, 3));
    gWrite(images, 512, Buffer.alloc(1000, 0xee));
    const got = gRead(images, 0, 4096);
    const expected = pattern(4096, 3);
    expected.fill(0xee, 512, 1512);
    expect(got.equals(expected)).toBe(true);
    expect(ModelKernel.taste(images).read(0, 4096).equals(expected)).toBe(true);
  });

  it('keeps the rest of a new chunk reading as zeros even when the image held leftovers', () => {
    const images = device();
    // Leftovers in c0's first free chunk (e.g. from a write lost in a crash).
    images[0]!.data.fill(0x55, 2 * CHUNK, 3 * CHUNK);
    gWrite(images, 5 * CHUNK + 1024, Buffer.alloc(512, 0x11));
    const got = gRead(images, 5 * CHUNK, CHUNK);
    const expected = Buffer.alloc(CHUNK);
    expected.fill(0x11, 1024, 1536);
    expect(got.equals(expected)).toBe(true);
  });

  it('refuses a write past the end or at an unaligned offset before changing anything', () => {
    const images = device();
    const before = hash(images);
    expect(() => gWrite(images, V - 512, Buffer.alloc(1024))).toThrow(/goes past the end of virstor vs/);
    expect(() => gWrite(images, 100, Buffer.alloc(512))).toThrow(/not a multiple of the sector size/);
    expect(hash(images)).toBe(before);
  });

  it('refuses a write that needs more chunks than are free, writing nothing', () => {
    const images = device();
    gWrite(images, 0, pattern(21 * CHUNK, 1));
    const before = hash(images);
    let err: unknown;
    try {
      gWrite(images, 30 * CHUNK, pattern(5 * CHUNK, 2));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GeomError);
    expect((err as GeomError).code).toBe('NO_SPACE');
    expect((err as GeomError).line).toBe("virstor vs is out of physical space: this write needs 5 new chunks, 4 are free; add a component with 'geomctl virstor add vs IMAGE'");
    expect(hash(images)).toBe(before);
    // Overwriting allocated chunks needs no free chunk.
    gWrite(images, 0, pattern(21 * CHUNK, 7));
  });

  it('--sparse allocates only the chunks whose input is not all zeros', () => {
    const images = device();
    const input = Buffer.alloc(10 * CHUNK);
    pattern(100, 5).copy(input, 2 * CHUNK + 300);
    pattern(CHUNK, 6).copy(input, 7 * CHUNK);
    const r = gWrite(images, CHUNK, input, true);
    expect(r).toMatchObject({ newChunks: 2, skippedChunks: 8 });
    expect(gRead(images, CHUNK, 10 * CHUNK).equals(input)).toBe(true);
    // A zero piece over an allocated chunk is written (it overwrites data).
    const r2 = gWrite(images, 3 * CHUNK, Buffer.alloc(CHUNK), true);
    expect(r2.newChunks).toBe(0);
    expect(gRead(images, 3 * CHUNK, CHUNK).equals(Buffer.alloc(CHUNK))).toBe(true);
    expect(ModelKernel.taste(images).allocatedCount()).toBe(2);
  });

  it("reports the kernel's watermarks", () => {
    const images = device();
    const r = gWrite(images, 0, pattern(13 * CHUNK, 1));
    expect(r.warnings).toContain('Device vs running out of components (switching to 2/3: c1.img)');
    expect(r.warnings).toContain('Component c1.img of vs is running out of free space (4 chunks left)');
  });
});

describe('open after a kernel crash', () => {
  it('recomputes a stale chunk_next and a missing ALLOCATED flag, and fixes them on the next write', () => {
    const images = device();
    const model = ModelKernel.taste(images);
    const first = pattern(15 * CHUNK, 4); // fills c0 (12 free) and 3 chunks of c1
    model.writeNow(0, first);
    // No update_metadata: the kernel crashed before the last close.
    const c1 = modelReadMetadata(images[1]!, 512);
    expect(c1.flags).toBe(0);
    expect(c1.chunkNext).toBe(0);
    const report = checkDevice(new MemHost(images), 'vs');
    expect(report.errors).toEqual([]);
    expect(report.warnings.join('\n')).toMatch(/component 0 \(c0.img\): chunk_next on disk is 2, the map says 14/);
    expect(report.warnings.join('\n')).toMatch(/component 1 \(c1.img\) holds 3 chunks but lacks the ALLOCATED flag/);
    const dev = open(images);
    expect(dev.components.map((c) => c.chunkNext)).toEqual([14, 3, 0]);
    expect(dev.allocator.current).toBe(1);
    dev.close();
    gWrite(images, 20 * CHUNK, pattern(CHUNK, 8));
    const md = images.map((i) => modelReadMetadata(i, 512));
    expect(md.map((m) => m.chunkNext)).toEqual([14, 4, 0]);
    expect(md[1]!.flags & VIRSTOR_PROVIDER_ALLOCATED).toBe(VIRSTOR_PROVIDER_ALLOCATED);
    const expected = Buffer.alloc(V);
    first.copy(expected, 0);
    pattern(CHUNK, 8).copy(expected, 20 * CHUNK);
    expect(gRead(images).equals(expected)).toBe(true);
    expect(checkDevice(new MemHost(images), 'vs')).toMatchObject({ errors: [], warnings: [] });
  });

  it('never reuses a chunk whose map sector survived when an earlier one was lost', () => {
    const images = device();
    const model = ModelKernel.taste(images);
    // Virtual chunks 0 and 70 are in different map sectors (64 entries per 512-byte sector)...
    const a = model.write(0, pattern(CHUNK, 1));
    const b = model.write(CHUNK * 70, pattern(CHUNK, 2));
    // ...the first map sector is lost in the crash, the second reached the disk.
    model.apply([...a.filter((io) => io.kind !== 'map'), ...b]);
    // The kernel itself would count one allocated entry and hand out chunk 3 again:
    const kernel = ModelKernel.taste(clone(images));
    expect(kernel.components[0]!.chunkNext).toBe(3);
    const dev = open(images);
    expect(dev.components[0]!.chunkNext).toBe(4);
    dev.close();
    expect(checkDevice(new MemHost(images), 'vs').warnings.join('\n')).toMatch(/1 leaked chunks below chunk_next 4/);
    gWrite(images, CHUNK * 10, pattern(CHUNK, 3));
    expect(gRead(images, CHUNK * 70, CHUNK).equals(pattern(CHUNK, 2))).toBe(true);
    expect(gRead(images, CHUNK * 10, CHUNK).equals(pattern(CHUNK, 3))).toBe(true);
  });
});

describe('open refusals', () => {
  it('names the missing component of an incomplete device', () => {
    const images = device();
    expect(() => open(images.filter((i) => i.name !== 'c2.img'))).toThrow('virstor vs is incomplete: component 2 of 3 not found');
  });

  it('refuses two images claiming one index, and components that disagree', () => {
    const images = device();
    const dup = { name: 'copy.img', data: Buffer.from(images[1]!.data) };
    expect(() => open([...images, dup])).toThrow(/c1.img and copy.img both claim component 1/);
    const other = device();
    const md = modelReadMetadata(other[2]!, 512);
    md.chunkSize = 32 * K;
    other[2]!.data.fill(0, other[2]!.data.length - 512);
    modelWriteMetadata(other[2]!, md, 512);
    expect(() => open(other)).toThrow(/components c0.img and c2.img disagree: chunk size 32768 vs 65536/);
  });

  it('uses the complete set when a stale set has the same name, and refuses when it cannot choose', () => {
    const images = device();
    const stale = device([15 * CHUNK, 6 * CHUNK], V, 0x999).map((i) => ({ name: `old-${i.name}`, data: i.data }));
    const dev = open([...images, stale[0]!]);
    expect(dev.id).toBe(0x1234);
    expect(dev.warnings.join('\n')).toMatch(/ignoring stale components id 2457 \(old-c0.img\)/);
    dev.close();
    expect(() => open([...images, ...stale])).toThrow(/components with different ids: .*each of them is complete/);
    expect(() => open([images[0]!, stale[0]!])).toThrow(/none of them is complete/);
  });

  it('ignores with a warning an image whose provsize differs, and hardcoded names unless -H', () => {
    const images = device();
    const grown = { name: 'c2.img', data: Buffer.concat([images[2]!.data.subarray(0, images[2]!.data.length - 512), Buffer.alloc(512), images[2]!.data.subarray(images[2]!.data.length - 512)]) };
    let err: unknown;
    const host = new MemHost([images[0]!, images[1]!, grown]);
    try {
      openVirstor(host, 'vs', { write: false, scan: false });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe('virstor vs is incomplete: component 2 of 3 not found (c2.img: ignored: its metadata records provsize 589824 but the image has 590336 bytes (the kernel ignores it too))');
    const hard = device().map((i) => i);
    modelLabel(hard, { name: 'vs', chunkSize: CHUNK, virsize: V, id: 7, maxphys: CHUNK, hardcode: true });
    const renamed = hard.map((i) => ({ name: `x${i.name}`, data: i.data }));
    expect(() => openVirstor(new MemHost(renamed), 'vs', { write: false, scan: false })).toThrow(/no virstor device named vs/);
    const dev = openVirstor(new MemHost(renamed, { ignoreHardcoded: true }), 'vs', { write: false, scan: false });
    expect(dev.components.map((c) => c.path)).toEqual(['xc0.img', 'xc1.img', 'xc2.img']);
    dev.close();
  });

  it("refuses a map entry out of range (the kernel's Invalid entry); check reports it", () => {
    const images = device();
    gWrite(images, 0, pattern(CHUNK, 1));
    images[0]!.data.writeUInt16LE(1, 5 * 8); // entry 5: allocated...
    images[0]!.data.writeUInt16LE(7, 5 * 8 + 2); // ...on component 7
    expect(() => open(images)).toThrow('virstor vs: invalid map entry 5 points to component 7, but the device has 3');
    const report = checkDevice(new MemHost(images), 'vs');
    expect(report.errors).toContain('invalid map entry 5 points to component 7, but the device has 3');
  });

  it('check finds doubly mapped chunks, mappings into the reserved area and components out of order', () => {
    const images = device();
    gWrite(images, 0, pattern(3 * CHUNK, 1));
    const c0 = images[0]!.data;
    // entry 10 -> c0 chunk 2 (already mapped by entry 0); entry 11 -> c0 chunk 1 (the map's reserve); entry 12 -> c2 chunk 0.
    for (const [v, no, chunk] of [[10, 0, 2], [11, 0, 1], [12, 2, 0]] as const) {
      c0.writeUInt16LE(1, v * 8);
      c0.writeUInt16LE(no, v * 8 + 2);
      c0.writeUInt32LE(chunk, v * 8 + 4);
    }
    const { errors } = checkDevice(new MemHost(images), 'vs');
    expect(errors).toEqual([
      'map entry 10 maps to chunk 2 of component 0 (c0.img), which an earlier entry maps too',
      'map entry 11 maps to chunk 1 of component 0, inside the 2 chunks reserved for the map',
      'component 2 (c2.img) holds chunks but component 1 (c1.img) before it holds none',
    ]);
  });
});

describe('metadata codec agreement', () => {
  it("geomctl's decoder reads the model's metadata", () => {
    const images = device();
    const md = decodeVirstorMetadata(images[0]!.data.subarray(images[0]!.data.length - 512), 'c0.img');
    expect(md).toMatchObject({ name: 'vs', chunkSize: CHUNK, count: 3, no: 0, chunkCount: 14, chunkReserved: 2, chunkNext: 2 });
  });
});
