// A file's identity: its device and inode. Undo logs, locks, the check that
// two paths name one image and that an input is not an image being written
// all compare files this way, never by path (providers.md, "Crash safety
// across layers": a symlink, a hard link or a relative path is the same file).

export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** "dev:ino", a Map key for a file. */
export function identityKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}

/**
 * "dev-ino", a file's name in a directory of keys shared by every geomctl
 * process (lock files, the undo registry's pointers): an on-disk format, so
 * it never changes. A bigint stat's fields give the same text.
 */
export function identityFileName(id: { readonly dev: number | bigint; readonly ino: number | bigint }): string {
  return `${id.dev}-${id.ino}`;
}

export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
