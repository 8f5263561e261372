// fs-ext (flock and lseek, src/lock.ts and src/provider/file.ts) is a native
// addon: loading it costs start-up time that verbs opening no image
// (--version, --help, completion) need not pay (quality.md, "Performance":
// load nothing a verb does not use). It is loaded on first use instead.

import { createRequire } from 'node:module';
import type FsExt from 'fs-ext';

let loaded: typeof FsExt | undefined;

export function fsExt(): typeof FsExt {
  return (loaded ??= createRequire(import.meta.url)('fs-ext') as typeof FsExt);
}
