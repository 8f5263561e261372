// add, remove, stop, map and export, checked against the kernel model: after
// each, the model (the kernel) must taste the device complete and read the
// same bytes; refusals change nothing.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openVirstor } from '../../src/virstor/device.js';
import { bufferSource, writeVirstor } from '../../src/virstor/io.js';
import { VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_CURRENT } from '../../src/virstor/metadata.js';
import { checkDevice, stopDevice } from '../../src/virstor/check.js';
import { addComponents, removeComponents } from '../../src/virstor/components.js';
import { formatExtent, mapExtents } from '../../src/virstor/extents.js';
import { exportToFile } from '../../src/io/transfer.js';
import { virstorBlockProvider } from '../../src/virstor/provider.js';
import { MemHost, readRangeOf, gWrite, hashImages as hash, pattern } from './virstor-engine-host.js';
import { ModelKernel, modelImage, modelLabel, modelReadMetadata, type ModelImage } from '../model/virstor-kernel.js';

const K = 1024;
const CHUNK = 64 * K;
const V = 8 * 1024 * K;

function device(sizes = [15 * CHUNK, 6 * CHUNK, 9 * CHUNK]): ModelImage[] {
  const images = sizes.map((s, i) => modelImage(`c${i}.img`, s));
  modelLabel(images, { name: 'vs', chunkSize: CHUNK, virsize: V, id: 0x1234, maxphys: CHUNK });
  return images;
}




function gReadAll(images: ModelImage[]): Buffer {
  const dev = openVirstor(new MemHost(images), 'vs', { write: false, scan: false });
  try {
    return readRangeOf(dev, 0, dev.size);
  } finally {
    dev.close();
  }
}

const md = (img: ModelImage) => modelReadMetadata(img, 512);

describe('add', () => {
  it('appends components with label-rule chunk counts and updates md_count everywhere', () => {
    const images = device();
    gWrite(images, 0, pattern(3 * CHUNK, 1));
    const before = gReadAll(images);
    const fresh = [modelImage('n0.img', 10 * CHUNK), modelImage('n1.img', 7 * CHUNK + 512)];
    const result = addComponents(new MemHost([...images, ...fresh]), 'vs', ['n0.img', 'n1.img'], { hardcode: true, force: false });
    expect(result.added).toEqual([
      { path: 'n0.img', index: 3, chunkCount: 9 },
      { path: 'n1.img', index: 4, chunkCount: 7 },
    ]);
    const all = [...images, ...fresh];
    expect(all.map((i) => md(i).count)).toEqual([5, 5, 5, 5, 5]);
    expect(md(fresh[0]!)).toMatchObject({ no: 3, provider: 'n0.img', chunkNext: 0, chunkReserved: 0, flags: 0, chunkCount: 9, provsize: BigInt(10 * CHUNK), id: 0x1234, name: 'vs' });
    // The kernel tastes all five and reads the same device.
    const kernel = ModelKernel.taste(all);
    expect(kernel.components).toHaveLength(5);
    expect(kernel.readAll().equals(before)).toBe(true);
    // The new space is usable: 25 - 3 + 9 + 7 free chunks.
    gWrite(all, 3 * CHUNK, pattern(38 * CHUNK, 2));
    expect(checkDevice(new MemHost(all), 'vs')).toMatchObject({ errors: [], warnings: [] });
  });

  it('refuses components, too small images, GEOM metadata without -f and other sector sizes — changing nothing', () => {
    const images = device();
    const other = [modelImage('oc0.img', 15 * CHUNK)];
    modelLabel(other, { name: 'other', chunkSize: CHUNK, virsize: V, id: 77, maxphys: CHUNK });
    const small = modelImage('small.img', 4 * CHUNK);
    const odd = modelImage('odd.img', 8 * CHUNK + 100);
    const host = new MemHost([...images, other[0]!, small, odd]);
    const before = hash([...images, other[0]!, small]);
    expect(() => addComponents(host, 'vs', ['c1.img'], { hardcode: false, force: false })).toThrow('c1.img is already a component of virstor vs (component 1, c1.img)');
    expect(() => addComponents(host, 'vs', ['small.img'], { hardcode: false, force: false })).toThrow(/Provider too small: small.img holds 3 chunks/);
    expect(() => addComponents(host, 'vs', ['oc0.img'], { hardcode: false, force: false })).toThrow('oc0.img is component 0 of virstor other, which holds no allocated chunks');
    expect(() => addComponents(host, 'vs', ['odd.img'], { hardcode: false, force: false })).toThrow(/Sector size doesn't fit for odd.img/);
    expect(hash([...images, other[0]!, small])).toBe(before);
    addComponents(host, 'vs', ['oc0.img'], { hardcode: false, force: true });
    expect(md(other[0]!)).toMatchObject({ name: 'vs', no: 3, id: 0x1234 });
  });

  it('refuses an incomplete device', () => {
    const images = device();
    const host = new MemHost([images[0]!, images[1]!, modelImage('n.img', 8 * CHUNK)]);
    expect(() => addComponents(host, 'vs', ['n.img'], { hardcode: false, force: false })).toThrow('virstor vs is incomplete: component 2 of 3 not found');
  });

  it('never allocates the chunk a kernel-added component records over its last sector', () => {
    const images = device();
    const kernel = ModelKernel.taste(images);
    const extra = modelImage('k.img', 5 * CHUNK); // kernel's add: chunk_count 5, the 5th covers the metadata
    kernel.add([extra]);
    const all = [...images, extra];
    expect(md(extra).chunkCount).toBe(5);
    const dev = openVirstor(new MemHost(all), 'vs', { write: true, scan: true });
    expect(dev.warnings).toContain('k.img: chunk_count 5 includes the chunk that overlaps the metadata sector; geomctl never allocates it');
    expect(dev.allocator.freeChunks()).toBe(25 + 4);
    writeVirstor(dev, bufferSource(pattern(29 * CHUNK, 3)), { offset: 0, sparse: false });
    dev.close();
    expect(md(extra)).toMatchObject({ chunkNext: 4 });
    expect(md(extra).flags).toBe(VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT);
    expect(() => gWrite(all, 29 * CHUNK, Buffer.alloc(512, 1))).toThrow(/needs 1 new chunks, 0 are free/);
    expect(ModelKernel.taste(all).read(0, 29 * CHUNK).equals(pattern(29 * CHUNK, 3))).toBe(true);
  });
});

describe('remove', () => {
  it('removes a middle component: the rest are renumbered and the kernel still tastes a complete device', () => {
    const images = device([15 * CHUNK, 6 * CHUNK, 9 * CHUNK, 7 * CHUNK]);
    gWrite(images, 5 * CHUNK, pattern(4 * CHUNK, 5)); // data on c0 only
    const before = gReadAll(images);
    const r = removeComponents(new MemHost(images), 'vs', ['c2.img']);
    expect(r).toMatchObject({ removed: ['c2.img'], remaining: ['c0.img', 'c1.img', 'c3.img'] });
    expect(md(images[2]!).magic).toBe('');
    const rest = [images[0]!, images[1]!, images[3]!];
    expect(rest.map((i) => [md(i).no, md(i).count])).toEqual([[0, 3], [1, 3], [2, 3]]);
    const kernel = ModelKernel.taste([...rest, images[2]!]);
    expect(kernel.components).toHaveLength(3);
    expect(kernel.readAll().equals(before)).toBe(true);
    expect(gReadAll(rest).equals(before)).toBe(true);
    expect(checkDevice(new MemHost(rest), 'vs')).toMatchObject({ errors: [], warnings: [] });
  });

  it('removes several at once, and refuses the whole command for a component holding data', () => {
    const images = device([15 * CHUNK, 6 * CHUNK, 9 * CHUNK, 7 * CHUNK]);
    gWrite(images, 0, pattern(14 * CHUNK, 6)); // 12 chunks on c0, 2 on c1
    const before = hash(images);
    const host = new MemHost(images);
    expect(() => removeComponents(host, 'vs', ['c3.img', 'c1.img'])).toThrow('component c1.img of vs holds data and cannot be removed');
    expect(() => removeComponents(host, 'vs', ['c0.img'])).toThrow(/holds the allocation map/);
    expect(() => removeComponents(new MemHost([...images, modelImage('x.img', 8 * CHUNK)]), 'vs', ['x.img'])).toThrow('x.img is not a component of virstor vs');
    expect(hash(images)).toBe(before);
    removeComponents(host, 'vs', ['c3.img', 'c2.img']);
    expect([md(images[0]!).count, md(images[1]!).count, md(images[2]!).magic, md(images[3]!).magic]).toEqual([2, 2, '', '']);
    expect(ModelKernel.taste(images).read(0, 14 * CHUNK).equals(pattern(14 * CHUNK, 6))).toBe(true);
  });

  it('refuses a component whose ALLOCATED flag is missing on disk but holds chunks (after a kernel crash)', () => {
    const images = device();
    const kernel = ModelKernel.taste(images);
    kernel.writeNow(0, pattern(13 * CHUNK, 1)); // one chunk lands on c1; no update_metadata
    expect(md(images[1]!).flags).toBe(0);
    expect(() => removeComponents(new MemHost(images), 'vs', ['c1.img'])).toThrow(/holds data/);
  });
});

describe('stop', () => {
  it('updates stale metadata and reports the allocated count', () => {
    const images = device();
    const kernel = ModelKernel.taste(images);
    kernel.writeNow(0, pattern(13 * CHUNK, 1));
    const r = stopDevice(new MemHost(images), 'vs');
    expect(r).toMatchObject({ allocated: 13, errors: [], warnings: [] });
    expect(images.map((i) => md(i).chunkNext)).toEqual([14, 1, 0]);
    expect(images.map((i) => md(i).flags)).toEqual([VIRSTOR_PROVIDER_ALLOCATED, VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT, 0]);
  });
});

describe('map and export', () => {
  const dir = mkdtempSync(join(tmpdir(), 'geomctl-virstor-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists coalesced extents', () => {
    const images = device();
    gWrite(images, 10 * CHUNK, pattern(13 * CHUNK, 1)); // c0 chunks 2..13, then c1 chunk 0
    gWrite(images, 100 * CHUNK, pattern(CHUNK, 2)); // c1 chunk 1
    const dev = openVirstor(new MemHost(images), 'vs', { write: false, scan: false });
    const extents = [...mapExtents(dev)];
    dev.close();
    expect(extents.map((e) => [e.virtualChunk, e.chunks, e.component, e.physicalChunk])).toEqual([
      [10, 12, 0, 2],
      [22, 1, 1, 0],
      [100, 1, 1, 1],
    ]);
    expect(formatExtent(extents[0]!)).toBe('0xa0000         0xc0000         0x20000         c0.img (chunks 10-21 -> component 0 chunks 2-13)');
  });

  it('exports a sparse flat file of the device', () => {
    const images = device();
    gWrite(images, 3 * CHUNK, pattern(2 * CHUNK, 4));
    gWrite(images, 90 * CHUNK + 512, pattern(1024, 5));
    const out = join(dir, 'export.raw');
    writeFileSync(out, 'old contents');
    const dev = openVirstor(new MemHost(images), 'vs', { write: false, scan: false });
    const r = exportToFile(virstorBlockProvider(dev), out);
    dev.close();
    expect(r).toMatchObject({ bytes: V, allocated: 3 * CHUNK });
    const data = readFileSync(out);
    expect(data.equals(ModelKernel.taste(images).readAll())).toBe(true);
    // Holes: far fewer blocks than the 8 MiB the file spans.
    expect(statSync(out).blocks * 512).toBeLessThan(1024 * K);
  });
});
