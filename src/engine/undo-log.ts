// The undo log: geomctl's own format (flush-engine.md, "The undo log"),
// modelled on HAMMER's UNDO FIFO (hammer_undo.c) and SQLite's rollback
// journal. No FreeBSD structure corresponds to it: FreeBSD knows nothing of
// these files. A log is a header (one or more 512-byte sectors) followed by
// records appended in the order their ranges were first modified.
//
// Header (HEADER_FIELDS below, then the image table, zero-padded to 512):
//   every integer little-endian; the CRC32C covers the whole padded header
//   with its own field zeroed.
// Record (RECORD_FIELDS, then `length` old bytes unless the ZERO flag says
//   they were all zero): the CRC32C covers the record's first 28 bytes, its
//   payload and the header's nonce, so a record of an older log that happens
//   to lie in the file's tail (or a torn one) is never trusted.

import nodePath from 'node:path';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { IoError, errnoOf } from '../errors.js';
import { crc32c } from '../crc32c.js';
import type { ProviderIdentity } from '../provider/provider.js';
import type { UndoRegistry } from './undo-registry.js';

export const UNDO_SUFFIX = '.geomctl-undo';
export const UNDO_VERSION = 1;
const MAGIC = Buffer.from('GEOMUNDO', 'latin1');
const RECORD_MAGIC = 0x52444e55; // "UNDR"
const SECTOR = 512;
/** The record flag: the old bytes were all zero and are not stored. */
const FLAG_ZERO = 1;

/** The header's fixed part: [offset, size] of each field. */
const HEADER_FIELDS = {
  magic: [0, 8],
  version: [8, 4],
  headerLength: [12, 4],
  nonce: [16, 8],
  imageCount: [24, 4],
  crc: [28, 4],
} as const;
const HEADER_FIXED = 32;
/** One image-table entry: size, dev, ino (u64 each), then two u16 lengths and the UTF-8 paths. */
const IMAGE_FIELDS = { size: [0, 8], dev: [8, 8], ino: [16, 8], pathLength: [24, 2], absLength: [26, 2] } as const;
const IMAGE_FIXED = 28;

const RECORD_FIELDS = {
  magic: [0, 4],
  image: [4, 4],
  offset: [8, 8],
  length: [16, 8],
  flags: [24, 4],
  crc: [28, 4],
} as const;
export const RECORD_HEADER = 32;

/**
 * The path with every symlink, `.` and `..` resolved; undefined when it cannot
 * be resolved (no such file: a simulated image in tests).
 */
export function realPath(path: string): string | undefined {
  try {
    return fs.realpathSync.native(path);
  } catch {
    return undefined;
  }
}

/**
 * The undo log of a transaction whose first image is `image`: beside its real
 * path, so that a symlink, a relative path or `..` to the same file finds it
 * there (providers.md, "Crash safety across layers"); undo-registry.ts covers
 * the paths that do not resolve to it (hard links, bind mounts).
 */
export function undoLogPathFor(image: string): string {
  return `${realPath(image) ?? image}${UNDO_SUFFIX}`;
}

/** An image as the log's header names it. */
export interface UndoImage {
  /** The path as the user gave it (for messages). */
  path: string;
  /** The real path (absolute), to find an image the current command did not name. */
  abs: string;
  size: number;
  dev: number;
  ino: number;
}

export interface UndoHeader {
  version: number;
  headerLength: number;
  nonce: Buffer;
  images: UndoImage[];
}

/** A record's place in the log: its payload starts at `payloadAt` unless `zero`. */
export interface UndoRecord {
  image: number;
  offset: number;
  length: number;
  zero: boolean;
  payloadAt: number;
}

function u64(buf: Buffer, at: number, value: number): void {
  buf.writeBigUInt64LE(BigInt(value), at);
}

function readU64(buf: Buffer, at: number): number {
  const v = buf.readBigUInt64LE(at);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.NaN;
}

export function encodeHeader(nonce: Buffer, images: readonly UndoImage[]): Buffer {
  const entries = images.map((img) => {
    const p = Buffer.from(img.path, 'utf8');
    const a = Buffer.from(img.abs, 'utf8');
    if (p.length > 0xffff || a.length > 0xffff) throw new RangeError(`image path too long for the undo log: ${img.path}`);
    const e = Buffer.alloc(IMAGE_FIXED + p.length + a.length);
    u64(e, IMAGE_FIELDS.size[0], img.size);
    u64(e, IMAGE_FIELDS.dev[0], img.dev);
    u64(e, IMAGE_FIELDS.ino[0], img.ino);
    e.writeUInt16LE(p.length, IMAGE_FIELDS.pathLength[0]);
    e.writeUInt16LE(a.length, IMAGE_FIELDS.absLength[0]);
    p.copy(e, IMAGE_FIXED);
    a.copy(e, IMAGE_FIXED + p.length);
    return e;
  });
  const used = HEADER_FIXED + entries.reduce((n, e) => n + e.length, 0);
  const length = Math.ceil(used / SECTOR) * SECTOR;
  const buf = Buffer.alloc(length);
  MAGIC.copy(buf, HEADER_FIELDS.magic[0]);
  buf.writeUInt32LE(UNDO_VERSION, HEADER_FIELDS.version[0]);
  buf.writeUInt32LE(length, HEADER_FIELDS.headerLength[0]);
  nonce.copy(buf, HEADER_FIELDS.nonce[0]);
  buf.writeUInt32LE(images.length, HEADER_FIELDS.imageCount[0]);
  let at = HEADER_FIXED;
  for (const e of entries) {
    e.copy(buf, at);
    at += e.length;
  }
  buf.writeUInt32LE(crc32c(buf), HEADER_FIELDS.crc[0]);
  return buf;
}

/** Decodes a header; undefined when it is not a complete, valid one (a log torn while being created). */
export function decodeHeader(read: (offset: number, length: number) => Buffer | undefined): UndoHeader | undefined {
  const fixed = read(0, HEADER_FIXED);
  if (!fixed || !fixed.subarray(0, 8).equals(MAGIC)) return undefined;
  const version = fixed.readUInt32LE(HEADER_FIELDS.version[0]);
  const headerLength = fixed.readUInt32LE(HEADER_FIELDS.headerLength[0]);
  if (version !== UNDO_VERSION || headerLength < SECTOR || headerLength % SECTOR !== 0 || headerLength > 64 * 1024 * 1024) return undefined;
  const buf = read(0, headerLength);
  if (!buf) return undefined;
  const stored = buf.readUInt32LE(HEADER_FIELDS.crc[0]);
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(0, HEADER_FIELDS.crc[0]);
  if (crc32c(copy) !== stored) return undefined;
  const count = buf.readUInt32LE(HEADER_FIELDS.imageCount[0]);
  const images: UndoImage[] = [];
  let at = HEADER_FIXED;
  for (let i = 0; i < count; i++) {
    if (at + IMAGE_FIXED > headerLength) return undefined;
    const pl = buf.readUInt16LE(at + IMAGE_FIELDS.pathLength[0]);
    const al = buf.readUInt16LE(at + IMAGE_FIELDS.absLength[0]);
    if (at + IMAGE_FIXED + pl + al > headerLength) return undefined;
    images.push({
      size: readU64(buf, at + IMAGE_FIELDS.size[0]),
      dev: readU64(buf, at + IMAGE_FIELDS.dev[0]),
      ino: readU64(buf, at + IMAGE_FIELDS.ino[0]),
      path: buf.toString('utf8', at + IMAGE_FIXED, at + IMAGE_FIXED + pl),
      abs: buf.toString('utf8', at + IMAGE_FIXED + pl, at + IMAGE_FIXED + pl + al),
    });
    at += IMAGE_FIXED + pl + al;
  }
  return { version, headerLength, nonce: Buffer.from(buf.subarray(HEADER_FIELDS.nonce[0], HEADER_FIELDS.nonce[0] + 8)), images };
}

function recordCrc(head: Buffer, payload: Buffer | undefined, nonce: Buffer): number {
  let crc = crc32c(head.subarray(0, RECORD_FIELDS.crc[0]));
  if (payload) crc = crc32c(payload, crc);
  return crc32c(nonce, crc);
}

/** One record: the old bytes of [offset, offset + length) of image `image`, or none when `old` is undefined (all zero). */
export function encodeRecord(nonce: Buffer, image: number, offset: number, length: number, old: Buffer | undefined): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER + (old ? old.length : 0));
  buf.writeUInt32LE(RECORD_MAGIC, RECORD_FIELDS.magic[0]);
  buf.writeUInt32LE(image, RECORD_FIELDS.image[0]);
  u64(buf, RECORD_FIELDS.offset[0], offset);
  u64(buf, RECORD_FIELDS.length[0], length);
  buf.writeUInt32LE(old ? 0 : FLAG_ZERO, RECORD_FIELDS.flags[0]);
  if (old) old.copy(buf, RECORD_HEADER);
  buf.writeUInt32LE(recordCrc(buf, old, nonce), RECORD_FIELDS.crc[0]);
  return buf;
}

/**
 * The records of a log whose header is valid, in the order they were
 * appended, up to the first one that is torn, foreign (another nonce) or out
 * of range: nothing after it can have been made durable before the changes it
 * covers reached an image.
 */
export function scanRecords(log: LogReader, header: UndoHeader): UndoRecord[] {
  const out: UndoRecord[] = [];
  let at = header.headerLength;
  while (at + RECORD_HEADER <= log.size) {
    const head = log.read(at, RECORD_HEADER);
    if (head.readUInt32LE(RECORD_FIELDS.magic[0]) !== RECORD_MAGIC) break;
    const image = head.readUInt32LE(RECORD_FIELDS.image[0]);
    const offset = readU64(head, RECORD_FIELDS.offset[0]);
    const length = readU64(head, RECORD_FIELDS.length[0]);
    const flags = head.readUInt32LE(RECORD_FIELDS.flags[0]);
    const img = header.images[image];
    if (!img || (flags & ~FLAG_ZERO) !== 0 || !(offset >= 0 && length > 0 && offset + length <= img.size)) break;
    const zero = (flags & FLAG_ZERO) !== 0;
    const end = at + RECORD_HEADER + (zero ? 0 : length);
    if (end > log.size) break;
    const payload = zero ? undefined : log.read(at + RECORD_HEADER, length);
    if (recordCrc(head, payload, header.nonce) !== head.readUInt32LE(RECORD_FIELDS.crc[0])) break;
    out.push({ image, offset, length, zero, payloadAt: at + RECORD_HEADER });
    at = end;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Where logs live. The engine and recovery reach the file system only through
// a LogStore, so that the crash tests can simulate power loss on the log as
// they do on the images (test/sim/memory-log.ts).

export interface LogReader {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (inside `size`). */
  read(offset: number, length: number): Buffer;
  close(): void;
}

export interface LogWriter {
  /** Appends at the end of the file. */
  append(data: Buffer): void;
  /** fsync(2) of the file. */
  sync(): void;
  close(): void;
}

export interface LogStore {
  /** The undo logs (names ending in UNDO_SUFFIX) directly inside `dir`; none when it cannot be read. */
  list(dir: string): string[];
  /** An existing log, for reading; undefined when there is none. */
  open(path: string): LogReader | undefined;
  /** Creates a new, empty log; fails when one exists. */
  create(path: string): LogWriter;
  /** Unlinks a log (a missing one is fine). */
  remove(path: string): void;
  /** fsync(2) of a directory: makes a creation or removal in it durable. */
  syncDir(dir: string): void;
}

/** The production store: files next to the images. Errors are IoErrors naming the log. */
export const fileLogStore: LogStore = {
  list(dir) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return [];
    }
    return names.filter((n) => n.endsWith(UNDO_SUFFIX)).map((n) => nodePath.join(dir, n));
  },
  open(path) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw new IoError(path, 'open', undefined, errnoOf(err));
    }
    const size = fs.fstatSync(fd).size;
    return {
      size,
      read(offset, length) {
        const buf = Buffer.alloc(length);
        let done = 0;
        try {
          while (done < length) {
            const n = fs.readSync(fd, buf, done, length - done, offset + done);
            if (n === 0) break;
            done += n;
          }
        } catch (err) {
          throw new IoError(path, 'read', offset + done, errnoOf(err));
        }
        return buf;
      },
      close() {
        fs.closeSync(fd);
      },
    };
  },
  create(path) {
    let fd: number;
    try {
      fd = fs.openSync(path, 'wx', 0o644);
    } catch (err) {
      throw new IoError(path, 'create', undefined, errnoOf(err));
    }
    let end = 0;
    return {
      append(data) {
        let done = 0;
        try {
          while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, end + done);
        } catch (err) {
          throw new IoError(path, 'write', end + done, errnoOf(err));
        }
        end += data.length;
      },
      sync() {
        try {
          fs.fsyncSync(fd);
        } catch (err) {
          throw new IoError(path, 'fsync', undefined, errnoOf(err));
        }
      },
      close() {
        fs.closeSync(fd);
      },
    };
  },
  remove(path) {
    try {
      fs.unlinkSync(path);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw new IoError(path, 'unlink', undefined, errnoOf(err));
    }
  },
  syncDir(dir) {
    let fd: number;
    try {
      fd = fs.openSync(dir, 'r');
    } catch (err) {
      throw new IoError(dir, 'open', undefined, errnoOf(err));
    }
    try {
      fs.fsyncSync(fd);
    } catch (err) {
      // Some file systems cannot fsync a directory; the log's own fsync is all they offer.
      const errno = errnoOf(err);
      if (errno !== 'EINVAL' && errno !== 'EISDIR') throw new IoError(dir, 'fsync', undefined, errno);
    } finally {
      fs.closeSync(fd);
    }
  },
};

/**
 * One transaction's log, created on the first append (header first) and
 * deleted at the commit point. The first sync also syncs the directory, so
 * that the file's name is as durable as its contents before any image
 * metadata depends on it. With a registry, every image is pointed at the log
 * durably before the log is created, and the pointers go after it is deleted
 * (undo-registry.ts).
 */
export class UndoLogWriter {
  readonly nonce = randomBytes(8);
  private file: LogWriter | undefined;
  private onDisk = false;
  private dirSynced = false;
  private unsynced = false;

  constructor(
    private readonly store: LogStore,
    readonly path: string,
    private readonly images: readonly UndoImage[],
    private readonly registry?: UndoRegistry,
  ) {}

  private get identities(): ProviderIdentity[] {
    return this.images.map(({ dev, ino }) => ({ dev, ino }));
  }

  /** True once the file exists (it may then hold records of this transaction). */
  get created(): boolean {
    return this.onDisk;
  }

  /** Appends encoded records; creates the file with its header first. Returns the bytes written. */
  append(records: Buffer): number {
    let data = records;
    if (!this.file) {
      this.registry?.record(this.identities, nodePath.resolve(this.path));
      this.file = this.store.create(this.path);
      this.onDisk = true;
      data = Buffer.concat([encodeHeader(this.nonce, this.images), records]);
    }
    this.file.append(data);
    this.unsynced = true;
    return data.length;
  }

  /** Makes everything appended durable; returns how many fsyncs that took. */
  sync(): number {
    if (!this.file || !this.unsynced) return 0;
    this.file.sync();
    this.unsynced = false;
    if (this.dirSynced) return 1;
    this.store.syncDir(nodePath.dirname(this.path));
    this.dirSynced = true;
    return 2;
  }

  /** The commit point: the log disappears, durably. */
  remove(): void {
    this.close();
    if (!this.onDisk) return;
    this.store.remove(this.path);
    this.onDisk = false;
    this.store.syncDir(nodePath.dirname(this.path));
    this.registry?.forget(this.identities, nodePath.resolve(this.path));
  }

  close(): void {
    const f = this.file;
    this.file = undefined;
    f?.close();
  }
}

/** Reads a whole small range of a log, or undefined past its end (for decodeHeader). */
export function readerRange(log: LogReader): (offset: number, length: number) => Buffer | undefined {
  return (offset, length) => (offset + length <= log.size ? log.read(offset, length) : undefined);
}
