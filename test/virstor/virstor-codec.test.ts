// The virstor metadata and map entry codecs against bytes assembled by hand
// from formats.md's tables (not from the encoder), gvirstor dump's golden
// text, and fast-check properties: round trips, and a decoder that only ever
// throws CorruptError whatever the sector holds.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptError } from '../../src/errors.js';
import {
  decodeMapBlock,
  decodeMapEntry,
  encodeMapBlock,
  encodeMapEntry,
  isAllocated,
  mapGeometry,
  type MapEntry,
} from '../../src/virstor/map.js';
import {
  decodeVirstorMetadata,
  dumpVirstorMetadata,
  encodeVirstorMetadata,
  newVirstorMetadata,
  virstorMetadataJson,
  type VirstorMetadata,
} from '../../src/virstor/metadata.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 300);

/** A component's metadata sector written field by field at formats.md's offsets. */
function handSector(): Buffer {
  const s = Buffer.alloc(512);
  s.write('GEOM::VIRSTOR', 0, 'latin1'); // md_magic, 16 bytes NUL-padded
  s.writeUInt32LE(1, 16); // md_version
  s.write('mydata', 20, 'latin1'); // md_name
  s.writeBigUInt64LE(2n << 40n, 36); // md_virsize: 2 TiB
  s.writeUInt32LE(4 << 20, 44); // md_chunk_size: 4 MiB
  s.writeUInt32LE(0xdeadbeef, 48); // md_id
  s.writeUInt16LE(2, 52); // md_count
  s.write('ada1', 54, 'latin1'); // provider
  s.writeUInt16LE(1, 70); // no
  s.writeBigUInt64LE(8n << 30n, 72); // provsize: 8 GiB
  s.writeUInt32LE(2047, 80); // chunk_count
  s.writeUInt32LE(10, 84); // chunk_next
  s.writeUInt16LE(0, 88); // chunk_reserved
  s.writeUInt16LE(1, 90); // flags: ALLOCATED
  return s;
}

const HAND: VirstorMetadata = {
  magic: 'GEOM::VIRSTOR',
  version: 1,
  name: 'mydata',
  virsize: 2n << 40n,
  chunkSize: 4 << 20,
  id: 0xdeadbeef,
  count: 2,
  provider: 'ada1',
  no: 1,
  provsize: 8n << 30n,
  chunkCount: 2047,
  chunkNext: 10,
  chunkReserved: 0,
  flags: 1,
};

describe('virstor metadata layout', () => {
  it('decodes bytes assembled from the format table', () => {
    expect(decodeVirstorMetadata(handSector(), 'c1.img')).toEqual(HAND);
  });

  it('encodes exactly those bytes, 92 of them', () => {
    const encoded = encodeVirstorMetadata(HAND);
    expect(encoded.length).toBe(92);
    expect(encoded.equals(handSector().subarray(0, 92))).toBe(true);
    expect(encodeVirstorMetadata(HAND, Buffer.alloc(512)).equals(handSector())).toBe(true);
  });

  it('accepts a hardcoded name filling all 16 bytes (the kernel strncpy()s it)', () => {
    const s = handSector();
    s.write('abcdefghijklmnop', 54, 'latin1');
    expect(decodeVirstorMetadata(s, 'c1.img').provider).toBe('abcdefghijklmnop');
  });

  it('ignores whatever follows the NUL of a string field', () => {
    const s = handSector();
    s[30] = 0x41;
    expect(decodeVirstorMetadata(s, 'c1.img').name).toBe('mydata');
  });

  it('accepts chunk_next and chunk_reserved above chunk_count (FreeBSD labels a small component 0 so)', () => {
    const s = handSector();
    s.writeUInt32LE(4, 80);
    s.writeUInt32LE(8, 84);
    s.writeUInt16LE(8, 88);
    expect(decodeVirstorMetadata(s, 'c1.img').chunkReserved).toBe(8);
  });
});

describe('virstor metadata validation', () => {
  const cases: Array<[string, (s: Buffer) => void, string]> = [
    ['magic', (s) => s.write('GEOM::JOURNAL', 0, 'latin1'), 'md_magic is not GEOM::VIRSTOR'],
    ['version', (s) => s.writeUInt32LE(2, 16), 'md_version is 2, geomctl reads version 1'],
    ['name without NUL', (s) => s.write('0123456789abcdef', 20, 'latin1'), 'md_name is not NUL-terminated'],
    ['empty name', (s) => s.fill(0, 20, 36), 'md_name is empty'],
    ['name not UTF-8', (s) => s.writeUInt8(0xff, 20), 'md_name is not valid UTF-8'],
    ['chunk size 0', (s) => s.writeUInt32LE(0, 44), 'md_chunk_size is 0 (nonsensical metadata)'],
    ['chunk size off sector', (s) => s.writeUInt32LE(1000, 44), 'md_chunk_size 1000 is not a multiple of the sector size 512'],
    ['virsize below chunk', (s) => s.writeBigUInt64LE(1024n, 36), 'md_virsize 1024 is smaller than md_chunk_size 4194304 (nonsensical metadata)'],
    ['count 0', (s) => s.writeUInt16LE(0, 52), 'md_count is 0 (nonsensical metadata)'],
    ['no out of range', (s) => s.writeUInt16LE(2, 70), 'no 2 is not below md_count 2'],
    ['provsize 0', (s) => s.writeBigUInt64LE(0n, 72), 'provsize is 0'],
    ['chunk_count beyond provsize', (s) => s.writeUInt32LE(2049, 80), 'chunk_count 2049 of 4194304 bytes exceeds provsize 8589934592'],
    ['unknown flag', (s) => s.writeUInt16LE(5, 90), 'flags 0x5 has unknown bits'],
  ];
  for (const [what, spoil, problem] of cases) {
    it(`refuses ${what}, naming the image and the field`, () => {
      const s = handSector();
      spoil(s);
      expect(() => decodeVirstorMetadata(s, 'c1.img')).toThrow(new CorruptError(`c1.img: virstor metadata: ${problem}`));
    });
  }

  it('refuses a buffer shorter than the structure', () => {
    expect(() => decodeVirstorMetadata(Buffer.alloc(91), 'x.img')).toThrow(CorruptError);
  });

  it('checks the chunk size against the sector it was read from', () => {
    const s = Buffer.alloc(4096);
    handSector().copy(s);
    s.writeUInt32LE(4 << 20, 44);
    expect(decodeVirstorMetadata(s, 'c1.img').chunkSize).toBe(4 << 20);
    s.writeUInt32LE((4 << 20) + 512, 44);
    expect(() => decodeVirstorMetadata(s, 'c1.img')).toThrow(/multiple of the sector size 4096/);
  });
});

describe('gvirstor dump', () => {
  it('prints what FreeBSD prints (golden)', () => {
    const golden = readFileSync(fileURLToPath(new URL('../golden/virstor-dump.txt', import.meta.url)), 'utf8');
    expect(dumpVirstorMetadata(decodeVirstorMetadata(handSector(), 'c1.img'), 'c1.img')).toBe(golden);
  });

  it('says "(not hardcoded)" for an empty provider and casts as FreeBSD does', () => {
    const md = { ...HAND, provider: '', virsize: (5n << 50n) + (3n << 20n), chunkSize: 1536 * 1024 };
    const text = dumpVirstorMetadata(md, 'c0.img');
    expect(text).toContain('\n    Hardcoded provider: (not hardcoded)\n');
    // (unsigned int)(md_virsize / 1 MiB): 5 PiB + 3 MiB is 5 * 2^30 + 3 MiB, truncated to 32 bits.
    expect(text).toContain(`\n          Virtual size: ${Number(((5n << 30n) + 3n) & 0xffffffffn)} MB\n`);
    expect(text).toContain('\n            Chunk size: 1536 kB\n');
  });

  it('gives a JSON form with lowerCamelCase keys and exact 64-bit values', () => {
    const json = virstorMetadataJson({ ...HAND, virsize: (1n << 60n) + 1n });
    expect(json).toMatchObject({ name: 'mydata', chunkSize: 4194304, chunkCount: 2047, provsize: 8589934592, virsize: '1152921504606846977' });
  });
});

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const cname = (max: number) => fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789/._-'), minLength: 1, maxLength: max });

/** Metadata that passes validation: the round trip must be exact. */
const validMetadata: fc.Arbitrary<VirstorMetadata> = fc
  .record({
    name: cname(15),
    chunkSectors: fc.integer({ min: 1, max: Math.floor(0xffffffff / 512) }),
    virChunks: fc.bigInt({ min: 1n, max: 1n << 40n }),
    id: u32,
    count: fc.integer({ min: 1, max: 0xffff }),
    provider: fc.oneof(fc.constant(''), cname(16)),
    noFrac: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    chunkCount: u32,
    slack: fc.bigInt({ min: 0n, max: 1n << 40n }),
    chunkNext: u32,
    chunkReserved: u16,
    flags: fc.integer({ min: 0, max: 3 }),
  })
  .map((r) => {
    const chunkSize = r.chunkSectors * 512;
    const chunk = BigInt(chunkSize);
    const U64_MAX = (1n << 64n) - 1n;
    const maxChunks = U64_MAX / chunk;
    const provsize = BigInt(r.chunkCount) * chunk + r.slack + (r.chunkCount === 0 ? 1n : 0n);
    return newVirstorMetadata({
      name: r.name,
      virsize: (r.virChunks > maxChunks ? maxChunks : r.virChunks) * chunk,
      chunkSize,
      id: r.id,
      count: r.count,
      provider: r.provider,
      no: Math.floor(r.noFrac * r.count),
      provsize: provsize > U64_MAX ? U64_MAX : provsize,
      chunkCount: r.chunkCount,
      chunkNext: r.chunkNext,
      chunkReserved: r.chunkReserved,
      flags: r.flags,
    });
  });

describe('virstor metadata properties', () => {
  it('decode(encode(md)) is md', () => {
    fc.assert(
      fc.property(validMetadata, (md) => {
        expect(decodeVirstorMetadata(encodeVirstorMetadata(md, Buffer.alloc(512)), 'p.img')).toEqual(md);
      }),
      { numRuns: RUNS },
    );
  });

  it('any sector decodes or throws CorruptError, never anything else', () => {
    const sector = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a)),
      // Valid metadata with a few bytes changed: reaches the field checks.
      fc.tuple(validMetadata, fc.array(fc.tuple(fc.integer({ min: 0, max: 91 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })).map(([md, edits]) => {
        const s = encodeVirstorMetadata(md, Buffer.alloc(512));
        for (const [at, v] of edits) s[at] = v;
        return s;
      }),
    );
    fc.assert(
      fc.property(sector, (s) => {
        try {
          const md = decodeVirstorMetadata(s, 'fuzz.img');
          // Whatever decodes re-encodes to the same fields.
          expect(decodeVirstorMetadata(encodeVirstorMetadata(md, Buffer.alloc(s.length)), 'fuzz.img')).toEqual(md);
          dumpVirstorMetadata(md, 'fuzz.img');
        } catch (err) {
          if (!(err instanceof CorruptError)) throw err;
          expect(err.message.startsWith('fuzz.img: virstor metadata: ')).toBe(true);
          expect(err.message).not.toContain('\n');
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('virstor map entries', () => {
  it('match bytes assembled from the format table', () => {
    const b = Buffer.from([0x01, 0x00, 0x02, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const entries = decodeMapBlock(b);
    expect(entries).toEqual([
      { flags: 1, providerNo: 2, providerChunk: 0x12345678 },
      { flags: 0, providerNo: 0, providerChunk: 0 },
    ]);
    expect(isAllocated(entries[0]!)).toBe(true);
    expect(isAllocated(entries[1]!)).toBe(false);
    expect(encodeMapBlock(entries).equals(b)).toBe(true);
    const one = Buffer.alloc(24);
    encodeMapEntry({ flags: 1, providerNo: 0xffff, providerChunk: 0xffffffff }, one, 8);
    expect(one.subarray(8, 16).equals(Buffer.from([1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe(true);
    expect(decodeMapEntry(one, 8)).toEqual({ flags: 1, providerNo: 0xffff, providerChunk: 0xffffffff });
  });

  it('round-trip as blocks', () => {
    const entry: fc.Arbitrary<MapEntry> = fc.record({ flags: u16, providerNo: u16, providerChunk: u32 });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 70 }), (entries) => {
        expect(decodeMapBlock(encodeMapBlock(entries))).toEqual(entries);
      }),
      { numRuns: RUNS },
    );
  });

  it('give the map geometry gvirstor label uses', () => {
    expect(mapGeometry(2n << 40n, 4 << 20, 512)).toEqual({ virtualChunks: 524288, mapSize: 4 << 20, mapChunks: 1, reserved: 2, entriesPerSector: 64 });
    // 1 PiB of 4 MiB chunks: a 2 GiB map in 512 chunks, 1024 reserved.
    expect(mapGeometry(1n << 50n, 4 << 20, 4096)).toMatchObject({ virtualChunks: 1 << 28, mapSize: 2 ** 31, mapChunks: 512, reserved: 1024, entriesPerSector: 512 });
    // A map one byte... one entry over a chunk takes a second chunk.
    expect(mapGeometry(BigInt((1 << 20) / 8 + 1) * BigInt(1 << 20), 1 << 20, 512).mapChunks).toBe(2);
  });
});
