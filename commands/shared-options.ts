// Options verbs of both classes share, declared once so that they parse, check
// and read alike: `--sectorsize 4k` is a size for journal and virstor label
// both, and a bad --sectorsize or --id is the same usage error in each.

import { checkIdOption, checkSectorSizeOption } from '../src/geom/label-options.js';
import type { OptionSpec } from './framework.js';

export const SECTORSIZE_OPTION = {
  long: 'sectorsize',
  value: 'N',
  kind: 'size',
  check: checkSectorSizeOption,
  description: "sector size to label with (default: the medium's, 512 for files)",
} as const satisfies OptionSpec;

export const ID_OPTION = { long: 'id', value: 'N', kind: 'count', check: checkIdOption, description: 'md_id to use instead of a random one' } as const satisfies OptionSpec;

/** label's and add's -h: FreeBSD's hardcode (md_provider), which makes -h no help flag there. */
export const HARDCODE_OPTION = { short: 'h', long: 'hardcode', kind: 'flag', description: "record each image's name: only an image of that name is accepted" } as const satisfies OptionSpec;

/** read and export: -f lets -O overwrite another geom's image (never the device's own). */
export const FORCE_OUTPUT_OPTION = { short: 'f', long: 'force', kind: 'flag', description: 'let -O overwrite an image that holds GEOM metadata' } as const satisfies OptionSpec;
