// The options both classes' label verbs share, declared once so that they
// parse alike: `--sectorsize 4k` is a size for journal and virstor both.

import type { OptionSpec } from './framework.js';

export const SECTORSIZE_OPTION: OptionSpec = { long: 'sectorsize', value: 'N', kind: 'size', description: "sector size to label with (default: the medium's, 512 for files)" };

export const ID_OPTION: OptionSpec = { long: 'id', value: 'N', kind: 'int', description: 'md_id to use instead of a random one' };
