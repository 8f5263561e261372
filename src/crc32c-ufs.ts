// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as FreeBSD's
// calculate_crc32c(crc, buf, len) computes it (sys/libkern/crc32.c): the bare
// register update, with neither the initial nor the final complement applied
// by the function itself. UFS's ffs_calc_sbhash starts it at 0xFFFFFFFF and
// keeps the result as is, i.e. the bitwise NOT of the standard CRC-32C.
// (Kept apart from the flush engine's CRC so ufs.ts has no engine dependency;
// the two can be merged.)

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32C register after feeding `data` into `crc` (no complements). */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}
