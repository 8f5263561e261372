// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of the
// undo log's header and records (flush-engine.md, "The undo log"), as HAMMER
// checksums its UNDO FIFO. Table-driven, slicing by 4 bytes at a time.
// crc32cUpdate is the bare register update of FreeBSD's calculate_crc32c
// (sys/libkern/crc32.c), without the initial and final complements, for
// callers such as UFS's ffs_calc_sbhash that apply them themselves.

const POLY = 0x82f63b78;

/** TABLES[k][b]: the register contribution of byte b followed by k zero bytes. */
const TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let k = 1; k < 4; k++) {
    const prev = tables[k - 1] as Uint32Array;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = ((prev[n] as number) >>> 8) ^ (t0[(prev[n] as number) & 0xff] as number);
    tables.push(t);
  }
  return tables;
})();

const [T0, T1, T2, T3] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** The CRC-32C register after feeding `data` into `register` (no complements). */
export function crc32cUpdate(register: number, data: Uint8Array): number {
  let c = register >>> 0;
  let i = 0;
  const n4 = data.length & ~3;
  for (; i < n4; i += 4) {
    c ^= (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    c = (T3[c & 0xff] as number) ^ (T2[(c >>> 8) & 0xff] as number) ^ (T1[(c >>> 16) & 0xff] as number) ^ (T0[c >>> 24] as number);
  }
  for (; i < data.length; i++) c = (T0[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/**
 * The standard CRC-32C of `data` (check value of "123456789": 0xE3069283).
 * Pass a previous result as `crc` to continue over several pieces.
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  return ~crc32cUpdate(~crc >>> 0, data) >>> 0;
}
