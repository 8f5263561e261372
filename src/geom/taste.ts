// Tasting, as the kernel does it: read the last sector of a candidate and look
// for a class's magic (cli.md, "Tasting"). The sector size of an image file is
// not recorded anywhere, so it is discovered by trying 512, 1024, ... 65536 and
// taking the first whose last sector starts with a known magic.

import type { Provider } from '../provider/provider.js';

export type ClassName = 'JOURNAL' | 'VIRSTOR';

/** The magic strings at offset 0 of the last sector (g_journal.h, g_virstor_md.h). */
export const MAGICS: Readonly<Record<ClassName, string>> = {
  JOURNAL: 'GEOM::JOURNAL',
  VIRSTOR: 'GEOM::VIRSTOR',
};

export const SECTOR_SIZES: readonly number[] = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

export interface Tasted {
  className: ClassName;
  /** The sector size at which the magic was found. */
  sectorSize: number;
  /** The whole last sector at that size. */
  sector: Buffer;
}

function startsWithMagic(sector: Buffer, magic: string): boolean {
  // The magic field is 16 bytes, NUL-padded: compare the string and its NUL.
  return sector.subarray(0, magic.length + 1).equals(Buffer.from(`${magic}\0`, 'latin1'));
}

/** The class magic at the start of `sector`, if any. */
export function magicOf(sector: Buffer): ClassName | undefined {
  for (const cls of Object.keys(MAGICS) as ClassName[]) {
    if (startsWithMagic(sector, MAGICS[cls])) return cls;
  }
  return undefined;
}

/**
 * Finds GEOM metadata in the last sector of `provider`, trying every sector
 * size from the medium's own up to 65536 whose multiple the image is.
 * Returns undefined for an image without metadata.
 */
export function tasteProvider(provider: Provider): Tasted | undefined {
  for (const sectorSize of SECTOR_SIZES) {
    if (sectorSize < provider.mediaSectorSize) continue;
    if (provider.size < sectorSize || provider.size % sectorSize !== 0) continue;
    const sector = provider.read(provider.size - sectorSize, sectorSize);
    const className = magicOf(sector);
    if (className) return { className, sectorSize, sector };
  }
  return undefined;
}
