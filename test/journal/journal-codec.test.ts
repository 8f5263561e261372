// The journal codecs against formats.md's tables: metadata (struct
// g_journal_metadata), journal header and record header. Expected bytes are
// assembled here by hand from the table offsets, never by the encoders under
// test; MD5s are computed here independently.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptError, GeomError } from '../../src/errors.js';
import {
  decodeJournalMetadata,
  dumpJournalMetadata,
  encodeJournalMetadata,
  encodeJournalMetadataSector,
  journalMetadataJson,
  validateJournalMetadata,
  type JournalMetadataFields,
} from '../../src/journal/metadata.js';
import {
  GJ_RECORD_MAX_ENTRIES,
  checkRecord,
  decodeJournalHeader,
  decodeRecordHeader,
  encodeJournalHeader,
  encodeRecordHeader,
  minJournalSize,
  recordMaxSize,
  validateOffset,
  type JournalEntry,
} from '../../src/journal/format.js';
import { u64Json } from '../../src/util/json.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 300);

/** formats.md's metadata table, written out byte by byte. */
function handMetadata(f: {
  id: number; type: number; jstart: bigint; jend: bigint; joffset: bigint; jid: number; flags: bigint; provider: string; provsize: bigint; version?: number;
}): Buffer {
  const b = Buffer.alloc(101);
  Buffer.from('GEOM::JOURNAL', 'latin1').copy(b, 0); // md_magic, NUL-padded to 16
  b.writeUInt32LE(f.version ?? 0, 16);
  b.writeUInt32LE(f.id, 20);
  b[24] = f.type;
  b.writeBigUInt64LE(f.jstart, 25);
  b.writeBigUInt64LE(f.jend, 33);
  b.writeBigUInt64LE(f.joffset, 41);
  b.writeUInt32LE(f.jid, 49);
  b.writeBigUInt64LE(f.flags, 53);
  Buffer.from(f.provider, 'latin1').copy(b, 61);
  b.writeBigUInt64LE(f.provsize, 77);
  createHash('md5').update(b.subarray(0, 85)).digest().copy(b, 85);
  return b;
}

const EXAMPLE = {
  id: 1886289645, type: 3, jstart: 3221224960n, jend: 4294966784n, joffset: 0n, jid: 0, flags: 1n, provider: '', provsize: 4294967296n,
};
const fields = (f: typeof EXAMPLE): JournalMetadataFields => ({ magic: 'GEOM::JOURNAL', version: 0, ...f });

describe('journal metadata layout', () => {
  it('encodes field by field as formats.md lays it out', () => {
    const cases = [
      EXAMPLE,
      { id: 0xffffffff, type: 1, jstart: 0n, jend: 1073741312n, joffset: 1048576n, jid: 0xdeadbeef, flags: 3n, provider: 'ada1', provsize: 2n ** 40n },
      { id: 7, type: 2, jstart: 0n, jend: 2n ** 63n + 5n, joffset: 2n ** 64n - 1n, jid: 1, flags: 2n ** 40n + 2n, provider: 'fifteen-bytes-x', provsize: 0n },
    ];
    for (const c of cases) expect(encodeJournalMetadata(fields(c)).toString('hex')).toBe(handMetadata(c).toString('hex'));
  });

  it('cuts a hardcoded name to 15 bytes and a NUL, as strlcpy does', () => {
    const enc = encodeJournalMetadata(fields({ ...EXAMPLE, provider: 'sixteen-bytes-xx' }));
    expect(enc.subarray(61, 77).toString('latin1')).toBe('sixteen-bytes-x\0');
  });

  it('writes a whole sector with zeros after the 101 bytes', () => {
    const sector = encodeJournalMetadataSector(fields(EXAMPLE), 4096);
    expect(sector.length).toBe(4096);
    expect(sector.subarray(0, 101).equals(handMetadata(EXAMPLE))).toBe(true);
    expect(sector.subarray(101).every((b) => b === 0)).toBe(true);
  });

  it('decodes what FreeBSD writes, with garbage after the NULs of the strings', () => {
    const raw = handMetadata(EXAMPLE);
    // journal_label's stack buffer: bytes after the magic's NUL are whatever was there.
    raw[15] = 0xaa;
    createHash('md5').update(raw.subarray(0, 85)).digest().copy(raw, 85);
    const md = decodeJournalMetadata(raw, 'data.img');
    expect(md).toMatchObject({ ...fields(EXAMPLE) });
    expect(md.hash.equals(raw.subarray(85))).toBe(true);
  });

  it('round-trips any metadata (fast-check)', () => {
    const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    const name = fc.string({ maxLength: 15 }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 15);
    fc.assert(
      fc.property(fc.record({
        id: fc.nat({ max: 0xffffffff }), type: fc.nat({ max: 255 }), jstart: u64, jend: u64, joffset: u64, jid: fc.nat({ max: 0xffffffff }), flags: u64, provider: name, provsize: u64,
      }), (f) => {
        const md = decodeJournalMetadata(encodeJournalMetadata(fields(f)), 'x.img');
        const { hash, ...rest } = md;
        expect(rest).toEqual(fields(f));
        expect(hash.length).toBe(16);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('journal metadata decode errors', () => {
  it('names the image on an MD5 mismatch', () => {
    const raw = handMetadata(EXAMPLE);
    raw[30] ^= 1;
    expect(() => decodeJournalMetadata(raw, 'data.img')).toThrow(expect.objectContaining({ code: 'CORRUPT', message: 'MD5 hash mismatch for data.img', hint: expect.stringContaining("'geomctl journal label -f'") }));
  });

  it('refuses a wrong magic, a newer version and a short buffer, naming the field', () => {
    const wrong = handMetadata(EXAMPLE);
    wrong.write('GEOM::VIRSTOR', 0, 'latin1');
    expect(() => decodeJournalMetadata(wrong, 'a.img')).toThrow(/a\.img.*md_magic/);
    const newer = handMetadata({ ...EXAMPLE, version: 1 });
    expect(() => decodeJournalMetadata(newer, 'b.img')).toThrow(/b\.img.*md_version 1/);
    expect(() => decodeJournalMetadata(Buffer.alloc(50), 'c.img')).toThrow(/c\.img.*truncated/);
  });

  it('never throws anything but CorruptError on garbage or corrupted sectors (fast-check)', () => {
    const valid = handMetadata(EXAMPLE);
    const corrupted = fc.array(fc.tuple(fc.nat({ max: 511 }), fc.nat({ max: 255 })), { maxLength: 8 }).map((flips) => {
      const s = Buffer.alloc(512);
      valid.copy(s);
      for (const [at, v] of flips) s[at] = v;
      return s;
    });
    const garbage = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(corrupted, garbage), (sector) => {
        try {
          decodeJournalMetadata(sector, 'fuzz.img');
        } catch (err) {
          expect(err).toBeInstanceOf(CorruptError);
          expect((err as CorruptError).message).toContain('fuzz.img');
        }
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('gjournal dump text', () => {
  it("matches cli.md's example exactly, MD5 line included (golden file)", () => {
    const golden = readFileSync(join(__dirname, '..', 'golden', 'journal-dump.txt'), 'utf8');
    const independentMd5 = handMetadata(EXAMPLE).subarray(85).toString('hex');
    expect(golden).toContain(`  MD5 hash: ${independentMd5}\n`);
    const md = decodeJournalMetadata(encodeJournalMetadata(fields(EXAMPLE)), 'data.img');
    expect(dumpJournalMetadata(md, 'data.img')).toBe(golden);
  });

  it('prints the hardcoded name, flags as (u_int), and u64s in full', () => {
    const f = { ...EXAMPLE, provider: 'ada1', flags: 2n ** 32n + 3n, jend: 2n ** 63n };
    const text = dumpJournalMetadata(decodeJournalMetadata(handMetadata(f), 'ada1'), 'ada1');
    expect(text).toContain('\nhcprovider: ada1\n');
    expect(text).toContain('\n     flags: 3\n');
    expect(text).toContain(`\n       end: ${2n ** 63n}\n`);
    expect(text.endsWith('\n\n')).toBe(true);
  });

  it('has a JSON form with lowerCamelCase names and big u64s as strings', () => {
    const f = { ...EXAMPLE, jend: 2n ** 60n, provider: 'ada1' };
    const json = journalMetadataJson(decodeJournalMetadata(handMetadata(f), 'x'));
    expect(json).toEqual({
      magic: 'GEOM::JOURNAL', version: 0, id: 1886289645, type: 3, jstart: 3221224960, jend: (2n ** 60n).toString(), joffset: 0, jid: 0, flags: 1,
      hcprovider: 'ada1', provsize: 4294967296, md5Hash: handMetadata(f).subarray(85).toString('hex'),
    });
  });
});

describe('u64Json', () => {
  it('is a number up to 2^53 - 1 and a decimal string beyond', () => {
    expect(u64Json(0n)).toBe(0);
    expect(u64Json(2n ** 53n - 1n)).toBe(Number.MAX_SAFE_INTEGER);
    expect(u64Json(2n ** 53n)).toBe('9007199254740992');
    expect(u64Json(2n ** 64n - 1n)).toBe('18446744073709551615');
  });
});

describe('validateJournalMetadata', () => {
  const image = { path: 'dir/data.img', name: 'data.img', size: 4294967296, sectorSize: 512 };
  const md = (over: Partial<JournalMetadataFields>) => decodeJournalMetadata(encodeJournalMetadata({ ...fields(EXAMPLE), ...over }), 'x');

  it('accepts what label writes', () => {
    expect(() => validateJournalMetadata(md({}), image)).not.toThrow();
    expect(() => validateJournalMetadata(md({ provsize: 0n }), image)).not.toThrow();
    expect(() => validateJournalMetadata(md({ provider: 'data.img' }), image)).not.toThrow();
    expect(() => validateJournalMetadata(md({ provider: '/dev/data.img' }), image)).not.toThrow();
  });

  const refusals: [string, Partial<JournalMetadataFields>, RegExp][] = [
    ['type 0', { type: 0 }, /md_type is 0/],
    ['type 4', { type: 4 }, /md_type is 4/],
    ['provsize', { provsize: 4294967297n }, /md_provsize 4294967297 does not match the image size 4294967296/],
    ['hardcoded', { provider: 'ada1' }, /hardcoded provider name 'ada1'.*-H/],
    ['jstart >= jend', { jstart: 4294966784n }, /md_jstart 4294966784 is not below md_jend/],
    ['unaligned jstart', { jstart: 1000n }, /md_jstart 1000 is not a multiple of the sector size 512/],
    ['jend past the end', { jend: 4294967296n }, /md_jend 4294967296 runs past/],
    ['empty data area', { jstart: 0n }, /md_jstart.*data area.*empty/],
  ];
  it.each(refusals)('refuses %s', (_what, over, message) => {
    let caught: unknown;
    try {
      validateJournalMetadata(md(over), image);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(GeomError);
    expect((caught as GeomError).line).toMatch(message);
    expect((caught as GeomError).message).toContain('dir/data.img');
  });

  it('lets -H accept a foreign hardcoded name', () => {
    expect(() => validateJournalMetadata(md({ provider: 'ada1' }), image, { ignoreHardcoded: true })).not.toThrow();
  });

  it('checks the journal against maxphys when asked', () => {
    const small = md({ type: 2, jstart: 0n, jend: 10n * 2n ** 20n, provsize: 0n });
    const j = { ...image, size: 10 * 2 ** 20 + 512 };
    expect(() => validateJournalMetadata(small, j, { maxphys: 131072 })).not.toThrow();
    expect(() => validateJournalMetadata(small, j, { maxphys: 1048576 })).toThrow(/smaller than the 41945088 bytes maxphys 1048576 needs/);
  });
});

describe('journal header', () => {
  it('lays out "GJHDR\\0", id at 6, next id at 10, zeros after', () => {
    const expected = Buffer.alloc(512);
    expected.write('GJHDR', 0, 'latin1');
    expected.writeUInt32LE(0x12345678, 6);
    expected.writeUInt32LE(0xfedcba98, 10);
    expect(encodeJournalHeader({ journalId: 0x12345678, nextId: 0xfedcba98 }, 512).equals(expected)).toBe(true);
    expect(decodeJournalHeader(expected)).toEqual({ journalId: 0x12345678, nextId: 0xfedcba98 });
  });

  it('is not a header without the exact magic', () => {
    const s = encodeJournalHeader({ journalId: 1, nextId: 2 }, 512);
    s[5] = 0x41; // "GJHDRA": the NUL is part of jh_magic
    expect(decodeJournalHeader(s)).toBeUndefined();
    expect(decodeJournalHeader(Buffer.alloc(4))).toBeUndefined();
  });

  it('round-trips and never throws on garbage (fast-check)', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (journalId, nextId) => {
      expect(decodeJournalHeader(encodeJournalHeader({ journalId, nextId }, 512))).toEqual({ journalId, nextId });
    }), { numRuns: RUNS });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (a) => {
      decodeJournalHeader(Buffer.from(a));
    }), { numRuns: RUNS });
  });
});

describe('record header', () => {
  const entries: JournalEntry[] = [
    { joffset: 1024, offset: 8192, length: 4096 },
    { joffset: 5120, offset: 2 ** 40, length: 512 },
  ];

  it('lays out magic, id at 7, zero padding, nentries at 15, sum at 17, entries from 25', () => {
    const expected = Buffer.alloc(512);
    expected.write('GJRHDR', 0, 'latin1');
    expected.writeUInt32LE(0xa1b2c3d4, 7);
    expected.writeUInt16LE(2, 15);
    Buffer.from('0102030405060708', 'hex').copy(expected, 17);
    entries.forEach((e, i) => {
      expected.writeBigUInt64LE(BigInt(e.joffset), 25 + 24 * i);
      expected.writeBigUInt64LE(BigInt(e.offset), 33 + 24 * i);
      expected.writeBigUInt64LE(BigInt(e.length), 41 + 24 * i);
    });
    const sum = Buffer.from('0102030405060708aabbccddeeff0011', 'hex'); // an MD5: only 8 bytes are kept
    expect(encodeRecordHeader({ journalId: 0xa1b2c3d4, entries, sum }, 512).equals(expected)).toBe(true);
    const d = decodeRecordHeader(expected);
    expect(d).toEqual({ ok: true, record: { journalId: 0xa1b2c3d4, sum: sum.subarray(0, 8), entries } });
  });

  it('leaves jrh_sum zero without a checksum and holds 20 entries in 505 bytes', () => {
    const many = Array.from({ length: GJ_RECORD_MAX_ENTRIES }, (_, i) => ({ joffset: 512 * (i + 1), offset: 0, length: 512 }));
    const s = encodeRecordHeader({ journalId: 1, entries: many }, 512);
    expect(s.subarray(17, 25).every((b) => b === 0)).toBe(true);
    expect(s.subarray(505).every((b) => b === 0)).toBe(true);
    expect(s.readBigUInt64LE(25 + 24 * 19 + 16)).toBe(512n);
    expect(() => encodeRecordHeader({ journalId: 1, entries: [...many, many[0] as JournalEntry] }, 512)).toThrow(RangeError);
  });

  it('is "not a record" with a reason: magic, nentries > 20, values past 2^53', () => {
    const s = encodeRecordHeader({ journalId: 1, entries }, 512);
    const noNul = Buffer.from(s);
    noNul[6] = 0x58;
    expect(decodeRecordHeader(noNul)).toEqual({ ok: false, reason: 'no GJRHDR magic' });
    const tooMany = Buffer.from(s);
    tooMany.writeUInt16LE(21, 15);
    expect(decodeRecordHeader(tooMany)).toEqual({ ok: false, reason: '21 entries (at most 20)' });
    const huge = Buffer.from(s);
    huge.writeBigUInt64LE(2n ** 60n, 33);
    expect(decodeRecordHeader(huge)).toMatchObject({ ok: false });
    expect(decodeRecordHeader(Buffer.alloc(100))).toMatchObject({ ok: false });
  });

  it('round-trips and never throws on garbage or corruption (fast-check)', () => {
    const entry = fc.record({ joffset: fc.nat({ max: Number.MAX_SAFE_INTEGER }), offset: fc.nat({ max: Number.MAX_SAFE_INTEGER }), length: fc.nat({ max: Number.MAX_SAFE_INTEGER }) });
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.array(entry, { maxLength: 20 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (journalId, es, sum) => {
      const d = decodeRecordHeader(encodeRecordHeader({ journalId, entries: es, sum: Buffer.from(sum) }, 512));
      expect(d).toEqual({ ok: true, record: { journalId, entries: es, sum: Buffer.from(sum) } });
    }), { numRuns: RUNS });
    const base = encodeRecordHeader({ journalId: 9, entries }, 512);
    fc.assert(fc.property(fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
      fc.array(fc.tuple(fc.nat({ max: 511 }), fc.nat({ max: 255 })), { maxLength: 6 }).map((flips) => {
        const s = Buffer.from(base);
        for (const [at, v] of flips) s[at] = v;
        return s;
      }),
    ), (sector) => {
      const d = decodeRecordHeader(sector);
      if (d.ok) {
        expect(d.record.entries.length).toBeLessThanOrEqual(20);
        const ctx = { recordOffset: 0, journalId: 9, sectorSize: 512, maxphys: 131072, jend: 1 << 20, dataSize: 1 << 20 };
        const reason = checkRecord(d.record, ctx);
        expect(reason === undefined || typeof reason === 'string').toBe(true);
      }
    }), { numRuns: RUNS * 3 });
  });
});

describe('checkRecord', () => {
  const ctx = { recordOffset: 4096, journalId: 5, sectorSize: 512, maxphys: 131072, jend: 1048576, dataSize: 65536 };
  const rec = (es: JournalEntry[], journalId = 5) => ({ journalId, sum: Buffer.alloc(8), entries: es });

  it('accepts contiguous, sector-sized entries inside the bounds', () => {
    expect(checkRecord(rec([{ joffset: 4608, offset: 0, length: 1024 }, { joffset: 5632, offset: 64512, length: 1024 }]), ctx)).toBeUndefined();
    expect(checkRecord(rec([]), ctx)).toBeUndefined();
  });

  it.each([
    [rec([], 6), /journal id 6 is not the current journal's 5/],
    [rec([{ joffset: 4608, offset: 0, length: 0 }]), /length 0/],
    [rec([{ joffset: 4608, offset: 0, length: 100 }]), /length 100/],
    [rec([{ joffset: 4608, offset: 0, length: 262144 }]), /over maxphys/],
    [rec([{ joffset: 5120, offset: 0, length: 512 }]), /not right after/],
    [rec([{ joffset: 4608, offset: 0, length: 512 }, { joffset: 4608, offset: 0, length: 512 }]), /entry 1's data is at 4608/],
    [rec([{ joffset: 4608, offset: 65024, length: 1024 }]), /outside the data area/],
    [rec([{ joffset: 4608, offset: 100, length: 512 }]), /outside the data area/],
  ])('refuses %#', (r, reason) => {
    expect(checkRecord(r, ctx)).toMatch(reason);
  });

  it('refuses data running past jend', () => {
    expect(checkRecord(rec([{ joffset: 4608, offset: 0, length: 131072 }]), { ...ctx, jend: 8192 })).toMatch(/runs past/);
  });
});

describe('journal space geometry', () => {
  it('GJ_VALIDATE_OFFSET wraps when the largest record would reach jend', () => {
    const rmax = 512 + 20 * 131072;
    expect(recordMaxSize(512, 131072)).toBe(rmax);
    expect(validateOffset(1000 * 512, 0, 1000 * 512 + rmax + 1, 512, 131072)).toBe(1000 * 512);
    expect(validateOffset(1000 * 512, 4096, 1000 * 512 + rmax, 512, 131072)).toBe(4096);
  });

  it('the smallest journal holds a header and two maximal records', () => {
    for (const [ss, maxphys] of [[512, 1048576], [512, 131072], [4096, 1048576]] as const) {
      const size = minJournalSize(ss, maxphys);
      const rmax = ss + 20 * maxphys;
      // Walk it: header at jstart, then two maximal records, no wrap for either.
      const jstart = 0;
      const jend = size;
      const first = validateOffset(jstart + ss, jstart, jend, ss, maxphys);
      const second = validateOffset(first + rmax, jstart, jend, ss, maxphys);
      expect([first, second]).toEqual([ss, ss + rmax]);
      // One sector less and the second record wraps onto the header.
      expect(validateOffset(ss + rmax, jstart, size - ss, ss, maxphys)).toBe(jstart);
    }
    expect(minJournalSize(512, 1048576)).toBe(2 * (512 + 20 * 1048576) + 1024); // 41945088
  });
});
