// Options verbs of both classes share, declared once so that they parse and
// read alike: `--sectorsize 4k` is a size for journal and virstor label both.

import type { OptionSpec } from './framework.js';

export const SECTORSIZE_OPTION: OptionSpec = { long: 'sectorsize', value: 'N', kind: 'size', description: "sector size to label with (default: the medium's, 512 for files)" };

export const ID_OPTION: OptionSpec = { long: 'id', value: 'N', kind: 'int', description: 'md_id to use instead of a random one' };

/** read and export: -f lets -O overwrite another geom's image (never the device's own). */
export const FORCE_OUTPUT_OPTION: OptionSpec = { short: 'f', long: 'force', kind: 'flag', description: 'let -O overwrite an image that holds GEOM metadata' };
