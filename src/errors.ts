// One error hierarchy for the whole tool (quality.md, "Code"). Every error a
// user can meet is a GeomError: a stable `code` scripts may rely on, a one-line
// message that names the image, and where the user can act, a hint. The single
// top-level handler in commands/ maps them to stderr and an exit status; the
// library never prints and never exits.

export type ErrorCode =
  | 'USAGE' // bad option, argument or size string (exit 2)
  | 'NOT_FOUND' // an image path that does not exist
  | 'NOT_IMAGE' // a directory, a socket, an image too small to hold a sector
  | 'PERMISSION' // no read or write permission
  | 'LOCKED' // another geomctl process holds the image
  | 'IO' // a read, write or fsync failed (the engine goes critical)
  | 'NO_METADATA' // no GEOM metadata where a class needs it
  | 'CORRUPT' // metadata or on-disk structures that do not decode or validate
  | 'MISMATCH' // images that do not belong together
  | 'REFUSED' // a request FreeBSD would refuse too (too small, holds UFS, ...)
  | 'UNFINISHED' // a hot undo log a read-only verb cannot roll back
  | 'RECOVERY' // rolling back a hot undo log failed
  | 'NO_SPACE' // a virstor write needs more chunks than are free
  | 'BROKEN' // a journal with no finished journal, without -f
  | 'CHECK' // check found problems
  | 'CRITICAL'; // the flush engine stopped writing after an earlier failure

export class GeomError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** geom(8): 1 when the operation failed, 2 for usage errors. */
  readonly exitStatus: 1 | 2;

  constructor(code: ErrorCode, message: string, hint?: string, exitStatus: 1 | 2 = 1) {
    // Names read off an image (a virstor md_name, a hardcoded provider) may hold
    // any byte: control characters are escaped so every message stays one line.
    super(oneLine(message));
    this.name = 'GeomError';
    this.code = code;
    this.hint = hint === undefined ? undefined : oneLine(hint);
    this.exitStatus = exitStatus;
  }

  /**
   * The one line the user sees after "geomctl: ". A message quoted from
   * FreeBSD ends with a full stop; before the hint it would read ".;".
   */
  get line(): string {
    return this.hint ? `${this.message.replace(/(?<!\.)\.$/, '')}; ${this.hint}` : this.message;
  }
}

/** Escapes control characters (a newline becomes \x0a). */
function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export class UsageError extends GeomError {
  constructor(message: string, hint?: string) {
    super('USAGE', message, hint, 2);
    this.name = 'UsageError';
  }
}

/**
 * What an errno means and what to do about it, for the errors whose name
 * alone tells a user nothing to act on. The call site's own hint (which
 * option named the file, what happens to the images) follows the advice.
 */
const ERRNO_ADVICE: Record<string, { meaning: string; advice: string }> = {
  ELOOP: { meaning: 'too many levels of symbolic links', advice: "a symbolic link on the path leads back to itself: fix or remove the loop ('ls -l' shows where each link points)" },
  EFBIG: { meaning: 'file too large', advice: "the file would grow past its file system's largest file or the file size limit ('ulimit -f'): raise the limit or write to another file system" },
  ENAMETOOLONG: { meaning: 'file name too long', advice: 'use a shorter path' },
};

/** A failed read, write or fsync on an image: names the image, offset and errno. */
export class IoError extends GeomError {
  readonly errno: string;
  /** The image or file (or 'stdout') the operation was on. */
  readonly image: string;
  constructor(image: string, op: string, offset: number | undefined, errno: string, hint?: string) {
    const where = offset === undefined ? '' : ` at offset ${offset}`;
    const known = ERRNO_ADVICE[errno];
    super('IO', `${op} of ${image}${where} failed: ${errno}${known ? ` (${known.meaning})` : ''}`, known ? [known.advice, hint].filter(Boolean).join('; ') : hint);
    this.name = 'IoError';
    this.errno = errno;
    this.image = image;
  }
}

/** Something on disk does not decode or validate; names the image and field. */
export class CorruptError extends GeomError {
  constructor(message: string, hint?: string) {
    super('CORRUPT', message, hint);
    this.name = 'CorruptError';
  }
}

/** Several images were processed and some failed: geom's "Not fully done". */
export class PartialFailure extends GeomError {
  readonly failures: GeomError[];
  constructor(failures: GeomError[]) {
    super(failures[0]?.code ?? 'IO', `${failures.length} images failed: ${failures.map((f) => f.line).join('; ')}`);
    this.name = 'PartialFailure';
    this.failures = failures;
  }
}

/** Turns a Node system error into the errno name (EIO, ENOSPC, ...). */
export function errnoOf(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return err instanceof Error ? err.message : String(err);
}
