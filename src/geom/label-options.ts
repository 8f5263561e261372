// Option values of the label verbs that can be judged without any image
// (--sectorsize, --id; cli.md: a bad value is a usage error). Their option
// specs (commands/shared-options.ts) check them as the command line is
// parsed, before an image is opened, locked or created, so a bad value
// leaves every image as it was; the classes' label code checks them again
// for callers that come without a command line.

import { GeomError, UsageError } from '../errors.js';

/** GEOM's sector sizes: powers of two from 512 to 65536 (the sizes tasting tries). */
export function checkSectorSizeOption(ss: number | undefined): void {
  if (ss === undefined) return;
  if (!Number.isInteger(ss) || ss < 512 || ss > 65536 || (ss & (ss - 1)) !== 0) {
    throw new UsageError(`invalid sector size ${ss} for --sectorsize`, 'use a power of two from 512 to 65536');
  }
}

/**
 * A --sectorsize the medium can take: not below its own sectors. The value
 * itself was well-formed, so this is about the image (exit 1), alike in
 * both classes.
 */
export function checkSectorSizeFits(ss: number, medium: { path: string; mediaSectorSize: number }): void {
  if (ss < medium.mediaSectorSize) {
    throw new GeomError('REFUSED', `${medium.path}: sector size ${ss} is smaller than the medium's ${medium.mediaSectorSize}`, `use --sectorsize ${medium.mediaSectorSize} or more`);
  }
}

/** md_id is a u32 in both classes' metadata. */
export function checkIdOption(id: number | undefined): void {
  if (id === undefined) return;
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new UsageError(`invalid --id ${id}`, 'use a number from 0 to 4294967295');
}
