// fs-ext (flock and lseek, src/platform/lock.ts and src/provider/file.ts) is a native
// addon, and an optional one: it is built at install time, which needs a C++
// compiler, and `npm install --ignore-scripts` (or an npm that does not
// approve its install script) skips the build; built for another Node.js
// major, it fails to load with ERR_DLOPEN_FAILED. Without it geomctl locks
// with lock files (src/platform/lock-files.ts) and finds the holes of sparse images by
// reading them: slower, and exact.
//
// Loading it costs start-up time that verbs opening no image (--version,
// --help, completion) need not pay (quality.md, "Performance": load nothing a
// verb does not use). It is loaded on first use instead.

import { createRequire } from 'node:module';
import type FsExt from 'fs-ext';

export type FsExtModule = typeof FsExt;

/** Whether fs-ext is in use, and if not, why not (for `geomctl --version -v`). */
export type NativeStatus = { loaded: true; module: FsExtModule; version: string } | { loaded: false; reason: string };

let status: NativeStatus | undefined;

/** Why loading failed, in words a user can act on. */
function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND') return 'fs-ext is not installed (or was installed without building it)';
  if (code === 'ERR_DLOPEN_FAILED') return `fs-ext does not load in Node.js ${process.versions.node} (ERR_DLOPEN_FAILED: built for another Node.js; 'npm rebuild fs-ext' builds it for this one)`;
  return `fs-ext does not load (${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)})`;
}

/**
 * Loads fs-ext once. GEOMCTL_NO_NATIVE=1 leaves it unloaded, so that the
 * fallbacks can be used (and tested) on a machine that has it.
 */
export function nativeStatus(env: NodeJS.ProcessEnv = process.env): NativeStatus {
  if (status) return status;
  if (env.GEOMCTL_NO_NATIVE === '1') return (status = { loaded: false, reason: 'turned off by GEOMCTL_NO_NATIVE=1' });
  const require = createRequire(import.meta.url);
  try {
    const module = require('fs-ext') as FsExtModule;
    let version = '?';
    try {
      version = (require('fs-ext/package.json') as { version: string }).version;
    } catch {
      // an fs-ext that loads but hides its package.json is still fs-ext
    }
    status = { loaded: true, module, version };
  } catch (err) {
    status = { loaded: false, reason: reasonOf(err) };
  }
  return status;
}

/** fs-ext when it loads in this Node.js, else undefined (the callers fall back). */
export function fsExt(): FsExtModule | undefined {
  const s = nativeStatus();
  return s.loaded ? s.module : undefined;
}
