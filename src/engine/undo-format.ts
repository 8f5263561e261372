// The undo log: geomctl's own format (flush-engine.md, "The undo log"),
// modelled on HAMMER's UNDO FIFO (hammer_undo.c) and SQLite's rollback
// journal. No FreeBSD structure corresponds to it: FreeBSD knows nothing of
// these files. A log is a header (one or more 512-byte sectors) followed by
// records appended in the order their ranges were first modified.
//
// Header (HEADER below, then the image table, zero-padded to 512):
//   every integer little-endian; the CRC32C covers the whole padded header
//   with its own field zeroed.
// Record (RECORD, then `length` old bytes unless the ZERO flag says
//   they were all zero): the CRC32C covers the record's first 28 bytes, its
//   payload and the header's nonce, so a record of an older log that happens
//   to lie in the file's tail (or a torn one) is never trusted.//
// Where logs live is undo-store.ts; the writer of one transaction's log,
// undo-writer.ts.

import { crc32c } from '../util/crc32c.js';
import { defineStruct } from '../geom/struct.js';
import type { LogReader } from './undo-store.js';

export const UNDO_VERSION = 1;
const MAGIC = Buffer.from('GEOMUNDO', 'latin1');
const RECORD_MAGIC = 0x52444e55; // "UNDR"
const SECTOR = 512;
/** The record flag: the old bytes were all zero and are not stored. */
const FLAG_ZERO = 1;

/** The header's fixed part; the image table follows it. */
const HEADER = defineStruct('undo log header', 32, {
  magic: { kind: 'bytes', offset: 0, size: MAGIC.length },
  version: { kind: 'u32le', offset: 8 },
  headerLength: { kind: 'u32le', offset: 12 },
  nonce: { kind: 'bytes', offset: 16, size: 8 },
  imageCount: { kind: 'u32le', offset: 24 },
  /** CRC32C of the whole padded header with this field zeroed. */
  crc: { kind: 'u32le', offset: 28 },
});

/** One image-table entry; its two UTF-8 paths (the given one, then the real one) follow it. */
const IMAGE = defineStruct('undo log image', 28, {
  size: { kind: 'u64le', offset: 0 },
  dev: { kind: 'u64le', offset: 8 },
  ino: { kind: 'u64le', offset: 16 },
  pathLength: { kind: 'u16le', offset: 24 },
  absLength: { kind: 'u16le', offset: 26 },
});

/** A record's head; its payload (the old bytes, unless ZERO) follows it. */
const RECORD = defineStruct('undo log record', 32, {
  magic: { kind: 'u32le', offset: 0 },
  image: { kind: 'u32le', offset: 4 },
  offset: { kind: 'u64le', offset: 8 },
  length: { kind: 'u64le', offset: 16 },
  flags: { kind: 'u32le', offset: 24 },
  /** CRC32C of the bytes before it, the payload and the header's nonce. */
  crc: { kind: 'u32le', offset: 28 },
});
export const RECORD_HEADER = RECORD.size;

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

/** A u64 read from a log as a number; NaN when it is beyond 2^53 - 1 (no image is that large). */
function numberOf(v: bigint): number {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.NaN;
}

export function encodeHeader(nonce: Buffer, images: readonly UndoImage[]): Buffer {
  const entries = images.map((img) => {
    const p = Buffer.from(img.path, 'utf8');
    const a = Buffer.from(img.abs, 'utf8');
    if (p.length > 0xffff || a.length > 0xffff) throw new RangeError(`image path too long for the undo log: ${img.path}`);
    const e = Buffer.alloc(IMAGE.size + p.length + a.length);
    IMAGE.encode({ size: BigInt(img.size), dev: BigInt(img.dev), ino: BigInt(img.ino), pathLength: p.length, absLength: a.length }, e);
    p.copy(e, IMAGE.size);
    a.copy(e, IMAGE.size + p.length);
    return e;
  });
  const used = HEADER.size + entries.reduce((n, e) => n + e.length, 0);
  const length = Math.ceil(used / SECTOR) * SECTOR;
  const buf = Buffer.alloc(length);
  HEADER.encode({ magic: MAGIC, version: UNDO_VERSION, headerLength: length, nonce, imageCount: images.length, crc: 0 }, buf);
  let at = HEADER.size;
  for (const e of entries) {
    e.copy(buf, at);
    at += e.length;
  }
  HEADER.set.crc(buf, 0, crc32c(buf));
  return buf;
}

/** Decodes a header; undefined when it is not a complete, valid one (a log torn while being created). */
export function decodeHeader(read: (offset: number, length: number) => Buffer | undefined): UndoHeader | undefined {
  const fixed = read(0, HEADER.size);
  if (!fixed || fixed.length < HEADER.size) return undefined;
  const { magic, version, headerLength } = HEADER.decode(fixed);
  if (!magic.equals(MAGIC)) return undefined;
  if (version !== UNDO_VERSION || headerLength < SECTOR || headerLength % SECTOR !== 0 || headerLength > 64 * 1024 * 1024) return undefined;
  const buf = read(0, headerLength);
  if (!buf) return undefined;
  const h = HEADER.decode(buf);
  const copy = Buffer.from(buf);
  HEADER.set.crc(copy, 0, 0);
  if (crc32c(copy) !== h.crc) return undefined;
  const images: UndoImage[] = [];
  let at = HEADER.size;
  for (let i = 0; i < h.imageCount; i++) {
    if (at + IMAGE.size > headerLength) return undefined;
    const e = IMAGE.decode(buf, at);
    const paths = at + IMAGE.size;
    if (paths + e.pathLength + e.absLength > headerLength) return undefined;
    images.push({
      size: numberOf(e.size),
      dev: numberOf(e.dev),
      ino: numberOf(e.ino),
      path: buf.toString('utf8', paths, paths + e.pathLength),
      abs: buf.toString('utf8', paths + e.pathLength, paths + e.pathLength + e.absLength),
    });
    at = paths + e.pathLength + e.absLength;
  }
  return { version, headerLength, nonce: h.nonce, images };
}

function recordCrc(head: Buffer, payload: Buffer | undefined, nonce: Buffer): number {
  let crc = crc32c(head.subarray(0, RECORD.offset.crc));
  if (payload) crc = crc32c(payload, crc);
  return crc32c(nonce, crc);
}

/** One record: the old bytes of [offset, offset + length) of image `image`, or none when `old` is undefined (all zero). */
export function encodeRecord(nonce: Buffer, image: number, offset: number, length: number, old: Buffer | undefined): Buffer {
  const buf = Buffer.allocUnsafe(RECORD.size + (old ? old.length : 0));
  RECORD.encode({ magic: RECORD_MAGIC, image, offset: BigInt(offset), length: BigInt(length), flags: old ? 0 : FLAG_ZERO, crc: 0 }, buf);
  if (old) old.copy(buf, RECORD.size);
  RECORD.set.crc(buf, 0, recordCrc(buf, old, nonce));
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
  while (at + RECORD.size <= log.size) {
    const head = log.read(at, RECORD.size);
    const r = RECORD.decode(head);
    if (r.magic !== RECORD_MAGIC) break;
    const { image, flags } = r;
    const offset = numberOf(r.offset);
    const length = numberOf(r.length);
    const img = header.images[image];
    if (!img || (flags & ~FLAG_ZERO) !== 0 || !(offset >= 0 && length > 0 && offset + length <= img.size)) break;
    const zero = (flags & FLAG_ZERO) !== 0;
    const end = at + RECORD.size + (zero ? 0 : length);
    if (end > log.size) break;
    const payload = zero ? undefined : log.read(at + RECORD.size, length);
    if (recordCrc(head, payload, header.nonce) !== r.crc) break;
    out.push({ image, offset, length, zero, payloadAt: at + RECORD.size });
    at = end;
  }
  return out;
}

/** Reads a whole small range of a log, or undefined past its end (for decodeHeader). */
export function readerRange(log: LogReader): (offset: number, length: number) => Buffer | undefined {
  return (offset, length) => (offset + length <= log.size ? log.read(offset, length) : undefined);
}
