// virstor list and status: the kernel's dumpconf fields in geom(8)'s layout,
// checked against text written by hand from g_virstor_dumpconf and
// list_one_geom, and the guards for incomplete and full devices.

import { describe, expect, it } from 'vitest';
import { renderVirstorList, virstorListingJson, virstorStatusRow, type VirstorListingDevice } from '../../src/virstor/listing.js';
import type { TextStyle } from '../../src/util/style.js';

/** A style that shows its markup as text: what a terminal would colour, and how. */
const MARKED: TextStyle = { tone: (t, tone) => `<${tone}>${t}</${tone}>`, heading: (t) => `*${t}*`, column: (t, i) => `[${i}:${t}]` };

const GiB = 1024 ** 3;

function device(over: Partial<VirstorListingDevice> = {}): VirstorListingDevice {
  return {
    name: 'mydata',
    componentCount: 2,
    chunkSize: 4 * 1024 * 1024,
    virsize: 2n << 40n,
    sectorSize: 512,
    components: [
      { index: 1, providerName: 'c1.img', path: 'd/c1.img', mediasize: GiB, sectorSize: 512, chunkCount: 255, chunkNext: 0, chunkReserved: 0 },
      { index: 0, providerName: 'c0.img', path: 'd/c0.img', mediasize: GiB, sectorSize: 512, chunkCount: 255, chunkNext: 12, chunkReserved: 2 },
    ],
    ...over,
  };
}

const LIST = `Geom name: mydata
Status: Components=2, Online=2
State: 98% physical free
ChunkSize: 4194304
PhysicalFree: 98%
ChunkPhysicalCount: 510
ChunkVirtualCount: 524288
PhysicalBacking: 0%
PhysicalBackingSize: 2147483648
VirtualSize: 2199023255552
Providers:
1. Name: virstor/mydata
   Mediasize: 2199023255552 (2.0T)
   Sectorsize: 512
   Mode: r0w0e0
Consumers:
1. Name: c0.img
   Mediasize: 1073741824 (1.0G)
   Sectorsize: 512
   Mode: r0w0e0
   ComponentIndex: 0
   ChunkCount: 255
   ChunksUsed: 12
   ChunksReserved: 2
   StorageFree: 95%
2. Name: c1.img
   Mediasize: 1073741824 (1.0G)
   Sectorsize: 512
   Mode: r0w0e0
   ComponentIndex: 1
   ChunkCount: 255
   ChunksUsed: 0
   ChunksReserved: 0
   StorageFree: 100%

`;

describe('virstor list', () => {
  it('prints the dumpconf fields as geom list does', () => {
    expect(renderVirstorList([device()])).toBe(LIST);
  });

  it('shows an incomplete device without a provider and without dividing by its missing counts', () => {
    const dev = device({ componentCount: 3, components: [device().components[0]!] });
    const text = renderVirstorList([dev]);
    expect(text).toContain('Status: Components=3, Online=1\nState: 100% physical free\n');
    expect(text).toContain('ChunkVirtualCount: 0\nPhysicalBacking: 0%\nPhysicalBackingSize: 1073741824\n');
    expect(text).not.toContain('Providers:');
    expect(text).not.toMatch(/NaN|Infinity/);
    expect(virstorStatusRow(dev)).toEqual({ name: 'mydata', geom: 'mydata', hasProvider: false, status: '100% physical free', tone: 'bad', components: ['c1.img'] });
    expect(virstorListingJson(dev)).toMatchObject({ provider: null, complete: false, componentsTotal: 3, componentsOnline: 1, chunkVirtualCount: 0 });
  });

  it('clamps the percentages where the kernel wraps, and guards empty components', () => {
    const c = { index: 0, providerName: 'c0.img', path: 'c0.img', mediasize: GiB, sectorSize: 512, chunkCount: 255, chunkNext: 255, chunkReserved: 10 };
    const full = renderVirstorList([device({ componentCount: 1, components: [c] })]);
    expect(full).toContain('State: 0% physical free\n');
    expect(full).toContain('StorageFree: 0%\n');
    const empty = renderVirstorList([device({ componentCount: 1, components: [{ ...c, chunkCount: 0, chunkNext: 2, chunkReserved: 2 }] })]);
    expect(empty).toContain('State: 0% physical free\n');
    expect(empty).toContain('PhysicalBacking: 0%\n');
    expect(empty).not.toMatch(/NaN|Infinity/);
  });

  it('marks up headings and statuses by meaning for a terminal: room good, running out caution, unusable bad', () => {
    const marked = renderVirstorList([device()], MARKED);
    expect(marked.replace(/<\/?good>|\*/g, '')).toBe(LIST);
    expect(marked).toMatch(/^\*Geom name: mydata\*\nStatus: <good>Components=2, Online=2<\/good>\nState: <good>98% physical free<\/good>\n/);
    expect(marked).toContain('\n*Providers:*\n');
    expect(marked).toContain('\n*Consumers:*\n');
    const incomplete = device({ componentCount: 3, components: [device().components[0]!] });
    expect(renderVirstorList([incomplete], MARKED)).toContain('Status: <bad>Components=3, Online=1</bad>\nState: <bad>100% physical free</bad>\n');
    const twice = device({ components: [...device().components, { ...device().components[1]!, path: 'e/c0.img' }] });
    expect(virstorStatusRow(twice).tone).toBe('bad');
    // Fewer free chunks than the kernel's chunk_watermark (100), though 19% free...
    const c = { index: 0, providerName: 'c0.img', path: 'c0.img', mediasize: GiB, sectorSize: 512, chunkCount: 500, chunkNext: 400, chunkReserved: 2 };
    expect(virstorStatusRow(device({ componentCount: 1, components: [c] })).tone).toBe('caution');
    // ...or under 10% free, though thousands of chunks.
    expect(virstorStatusRow(device({ componentCount: 1, components: [{ ...c, chunkCount: 100_000, chunkNext: 91_000 }] })).tone).toBe('caution');
    expect(virstorStatusRow(device({ componentCount: 1, components: [{ ...c, chunkCount: 100_000, chunkNext: 89_000 }] })).tone).toBe('good');
  });

  it('gives status rows and JSON', () => {
    expect(virstorStatusRow(device())).toEqual({ name: 'virstor/mydata', geom: 'mydata', hasProvider: true, status: '98% physical free', tone: 'good', components: ['c0.img', 'c1.img'] });
    const json = virstorListingJson(device({ virsize: 1n << 60n }));
    expect(json).toMatchObject({
      name: 'mydata',
      provider: { name: 'virstor/mydata', mediasize: '1152921504606846976', sectorsize: 512, mode: 'r0w0e0' },
      state: '98% physical free',
      physicalFreePercent: 98,
      chunkPhysicalCount: 510,
      virtualSize: '1152921504606846976',
    });
    expect((json.consumers as Array<Record<string, unknown>>)[0]).toMatchObject({ name: 'c0.img', path: 'd/c0.img', componentIndex: 0, chunksUsed: 12, storageFreePercent: 95 });
  });
});
