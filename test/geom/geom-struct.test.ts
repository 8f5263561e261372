// src/geom/struct.ts, the one way geomctl defines an on-disk structure:
// round trips of every kind (fast-check), byte placement checked against
// Node's own readers at hand-written offsets, the definition-time refusals
// (a field past the end, overlapping fields), the validator's order, and the
// dump and JSON text.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defineStruct, dumpLine } from '../../src/geom/struct.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 300);

const EVERY_KIND = defineStruct('every_kind', 96, {
  a: { kind: 'u8', offset: 0 },
  b: { kind: 'i8', offset: 1 },
  c: { kind: 'u16le', offset: 2 },
  d: { kind: 'u16be', offset: 4 },
  e: { kind: 'u32le', offset: 6 },
  f: { kind: 'u32be', offset: 10 },
  g: { kind: 'i32le', offset: 14 },
  h: { kind: 'i32be', offset: 18 },
  i: { kind: 'u53le', offset: 22 },
  j: { kind: 'u53be', offset: 30 },
  k: { kind: 'u64le', offset: 38 },
  l: { kind: 'u64be', offset: 46 },
  m: { kind: 'i64le', offset: 54 },
  n: { kind: 'i64be', offset: 62 },
  s: { kind: 'cstring', offset: 70, size: 8 },
  t: { kind: 'bytes', offset: 78, size: 4 },
  // 82..96: a gap encode never touches.
});

const everyValue = fc.record({
  a: fc.integer({ min: 0, max: 0xff }),
  b: fc.integer({ min: -128, max: 127 }),
  c: fc.integer({ min: 0, max: 0xffff }),
  d: fc.integer({ min: 0, max: 0xffff }),
  e: fc.integer({ min: 0, max: 0xffffffff }),
  f: fc.integer({ min: 0, max: 0xffffffff }),
  g: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  h: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  i: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  j: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  k: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  l: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  m: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  n: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  s: fc.string({ maxLength: 7 }).filter((x) => !x.includes('\0') && Buffer.byteLength(x) <= 7),
  t: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)),
});

describe('defineStruct: encode and decode', () => {
  it('round-trips every kind, at any base, leaving the gap and the bytes around it alone', () => {
    fc.assert(
      fc.property(everyValue, fc.nat({ max: 40 }), fc.integer({ min: 1, max: 255 }), (v, base, fill) => {
        const buf = Buffer.alloc(base + EVERY_KIND.size + 8, fill);
        EVERY_KIND.encode(v, buf, base);
        expect(EVERY_KIND.decode(buf, base)).toEqual(v);
        expect(buf.subarray(0, base).every((x) => x === fill)).toBe(true);
        expect(buf.subarray(base + 82).every((x) => x === fill)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('puts each field where Node reads it, in its byte order', () => {
    const v = {
      a: 0xab, b: -2, c: 0x1234, d: 0x1234, e: 0xdeadbeef, f: 0xdeadbeef, g: -5, h: -5,
      i: 2 ** 40 + 7, j: 2 ** 40 + 7, k: 2n ** 63n + 1n, l: 2n ** 63n + 1n, m: -9n, n: -9n, s: 'GJHDR', t: Buffer.from([1, 2, 3, 4]),
    };
    const b = EVERY_KIND.encode(v);
    expect(b.length).toBe(96);
    expect([b.readUInt8(0), b.readInt8(1), b.readUInt16LE(2), b.readUInt16BE(4)]).toEqual([0xab, -2, 0x1234, 0x1234]);
    expect([b.readUInt32LE(6), b.readUInt32BE(10), b.readInt32LE(14), b.readInt32BE(18)]).toEqual([0xdeadbeef, 0xdeadbeef, -5, -5]);
    expect([b.readBigUInt64LE(22), b.readBigUInt64BE(30)]).toEqual([2n ** 40n + 7n, 2n ** 40n + 7n]);
    expect([b.readBigUInt64LE(38), b.readBigUInt64BE(46), b.readBigInt64LE(54), b.readBigInt64BE(62)]).toEqual([2n ** 63n + 1n, 2n ** 63n + 1n, -9n, -9n]);
    expect(b.subarray(70, 78).toString('latin1')).toBe('GJHDR\0\0\0');
    expect(b.subarray(78, 82)).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(EVERY_KIND.offset.k).toBe(38);
  });

  it('reads a u53 beyond 2^53 - 1 as -1, and refuses to write one', () => {
    const b = Buffer.alloc(96);
    b.writeBigUInt64LE(2n ** 53n, 22);
    expect(EVERY_KIND.get.i(b, 0)).toBe(-1);
    b.writeBigUInt64LE(2n ** 53n - 1n, 22);
    expect(EVERY_KIND.get.i(b, 0)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => EVERY_KIND.set.i(b, 0, 2 ** 53)).toThrow(RangeError);
    expect(() => EVERY_KIND.set.i(b, 0, -1)).toThrow(RangeError);
  });

  it('decodes a C string up to its NUL, and a bytes field as a copy', () => {
    const b = Buffer.alloc(96);
    b.write('ab\0cd', 70, 'latin1');
    const v = EVERY_KIND.decode(b);
    expect(v.s).toBe('ab');
    b[78] = 7;
    expect(v.t[0]).toBe(0);
    expect(EVERY_KIND.get.t(b, 0)[0]).toBe(7); // the accessor reads a view
  });

  it('refuses a buffer too short for the struct at that base', () => {
    expect(() => EVERY_KIND.decode(Buffer.alloc(95))).toThrow(/every_kind needs 96 bytes at offset 0, the buffer holds 95/);
    expect(() => EVERY_KIND.decode(Buffer.alloc(100), 5)).toThrow(RangeError);
    expect(() => EVERY_KIND.encode(EVERY_KIND.decode(Buffer.alloc(96)), Buffer.alloc(96), 1)).toThrow(RangeError);
  });

  it("refuses an overlong string and an integer that does not fit, unless told to wrap as C's casts do", () => {
    const strict = defineStruct('strict', 8, { n: { kind: 'u16le', offset: 0 }, s: { kind: 'cstring', offset: 2, size: 4 } });
    expect(() => strict.encode({ n: 0x10000, s: '' })).toThrow(RangeError);
    expect(() => strict.encode({ n: 1, s: 'abcd' })).toThrow(/s 'abcd' is longer than 3 bytes/);
    const wrapping = defineStruct('wrapping', 8, { n: { kind: 'u16le', offset: 0 }, s: { kind: 'cstring', offset: 2, size: 4 } }, { overflow: 'wrap' });
    const b = wrapping.encode({ n: 0x12345, s: 'abcd' });
    expect(b.readUInt16LE(0)).toBe(0x2345);
    expect(b.subarray(2, 6).toString('latin1')).toBe('abc\0'); // strlcpy's cut
    const full = defineStruct('full', 4, { s: { kind: 'cstring', offset: 0, size: 4, nul: 'optional' } });
    expect(full.decode(full.encode({ s: 'abcd' })).s).toBe('abcd');
  });
});

describe('defineStruct: definition-time refusals', () => {
  it('refuses a field past the end of the struct', () => {
    expect(() => defineStruct('short', 8, { a: { kind: 'u32le', offset: 4 }, b: { kind: 'u16le', offset: 7 } })).toThrow(
      /short\.b: 2 bytes at offset 7 run past the end of the 8-byte struct/,
    );
    expect(() => defineStruct('short', 8, { s: { kind: 'cstring', offset: 0, size: 9 } })).toThrow(RangeError);
  });

  it('refuses overlapping fields and impossible offsets', () => {
    expect(() => defineStruct('overlap', 16, { a: { kind: 'u64le', offset: 0 }, b: { kind: 'u32le', offset: 4 } })).toThrow(/overlap\.b at offset 4 overlaps overlap\.a/);
    expect(() => defineStruct('neg', 16, { a: { kind: 'u8', offset: -1 } })).toThrow(RangeError);
    expect(() => defineStruct('frac', 16, { a: { kind: 'u8', offset: 1.5 } })).toThrow(RangeError);
    expect(() => defineStruct('empty', 16, { a: { kind: 'bytes', offset: 0, size: 0 } })).toThrow(RangeError);
  });
});

describe('defineStruct: the fast accessor', () => {
  const ENTRY = defineStruct('entry', 8, { flags: { kind: 'u16le', offset: 0 }, no: { kind: 'u16le', offset: 2 }, chunk: { kind: 'u32le', offset: 4 } });

  it('reads and writes single fields of the n-th struct in a block, as decode and encode do', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ flags: fc.nat(0xffff), no: fc.nat(0xffff), chunk: fc.nat(0xffffffff) }), { minLength: 1, maxLength: 32 }), (entries) => {
        const block = Buffer.alloc(entries.length * 8);
        entries.forEach((e, i) => ENTRY.encode(e, block, i * 8));
        const { flags, no, chunk } = ENTRY.get;
        entries.forEach((e, i) => expect({ flags: flags(block, i * 8), no: no(block, i * 8), chunk: chunk(block, i * 8) }).toEqual(e));
        const copy = Buffer.alloc(block.length);
        entries.forEach((e, i) => {
          ENTRY.set.flags(copy, i * 8, e.flags);
          ENTRY.set.no(copy, i * 8, e.no);
          ENTRY.set.chunk(copy, i * 8, e.chunk);
        });
        expect(copy).toEqual(block);
      }),
      { numRuns: RUNS },
    );
  });

  it('swapped() reads the same layout in the other byte order', () => {
    const b = Buffer.from('0001000200000003', 'hex');
    expect(ENTRY.swapped().decode(b)).toEqual({ flags: 1, no: 2, chunk: 3 });
    expect(ENTRY.decode(b)).toEqual({ flags: 0x100, no: 0x200, chunk: 0x3000000 });
  });
});

describe('defineStruct: validation, dump and JSON', () => {
  const MD = defineStruct('md', 40, {
    magic: { kind: 'cstring', offset: 0, size: 8, c: 'md_magic', label: 'magic' },
    name: { kind: 'cstring', offset: 8, size: 8, c: 'md_name', label: 'name', strictUtf8: true },
    size: { kind: 'u64le', offset: 16, c: 'md_size', label: 'size', json: 'mediaSize' },
    flags: { kind: 'u32le', offset: 24, label: 'flags' },
    hash: { kind: 'bytes', offset: 28, size: 4, label: 'hash' },
    pad: { kind: 'bytes', offset: 32, size: 8, json: false },
  });
  const value = { magic: 'MAGIC', name: 'disk', size: 2n ** 60n, flags: 3, hash: Buffer.from('cafe0042', 'hex'), pad: Buffer.alloc(8) };
  const validate = MD.validator<{ max: number }>({
    magic: (v) => (v.magic === 'MAGIC' ? undefined : 'md_magic is wrong'),
    flags: (v, ctx) => (v.flags > ctx.max ? `flags ${v.flags} is over ${ctx.max}` : undefined),
  });

  it('runs byte checks and hooks in field order, and reports the first problem', () => {
    const raw = MD.encode(value);
    expect(validate(MD.decode(raw), { max: 7 }, raw)).toBeUndefined();
    expect(validate(MD.decode(raw), { max: 1 }, raw)).toBe('flags 3 is over 1');
    const unterminated = Buffer.from(raw);
    unterminated.write('12345678', 8, 'latin1');
    expect(validate(MD.decode(unterminated), { max: 1 }, unterminated)).toBe('md_name is not NUL-terminated');
    const badUtf8 = Buffer.from(raw);
    badUtf8[8] = 0xff;
    expect(validate(MD.decode(badUtf8), { max: 7 }, badUtf8)).toBe('md_name is not valid UTF-8');
    const both = Buffer.from(badUtf8);
    both.write('WRONG', 0, 'latin1');
    expect(validate(MD.decode(both), { max: 7 }, both)).toBe('md_magic is wrong'); // earlier field first
    expect(validate(MD.decode(badUtf8), { max: 7 })).toBeUndefined(); // byte checks need the raw bytes
  });

  it('dumps the labelled fields, right-aligned, with per-field formats', () => {
    expect(MD.dump(value, 6, { flags: (f) => `0x${f.toString(16)}` })).toEqual([
      ' magic: MAGIC',
      '  name: disk',
      '  size: 1152921504606846976',
      ' flags: 0x3',
      '  hash: cafe0042',
    ]);
    expect(dumpLine('Chunk size', '4096 kB', 12)).toBe('  Chunk size: 4096 kB');
  });

  it('gives JSON with 64-bit values exact (strings beyond 2^53), bytes as hex, and leaves out json: false', () => {
    expect(MD.json(value)).toEqual({ magic: 'MAGIC', name: 'disk', mediaSize: '1152921504606846976', flags: 3, hash: 'cafe0042' });
    expect(MD.json({ ...value, size: 4096n }).mediaSize).toBe(4096);
    expect(JSON.stringify(MD.json(value))).toBe('{"magic":"MAGIC","name":"disk","mediaSize":"1152921504606846976","flags":3,"hash":"cafe0042"}');
  });
});
