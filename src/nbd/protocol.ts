// The Network Block Device protocol's wire format: the constants and byte
// layouts of the NetworkBlockDevice project's doc/proto.md (fixed newstyle
// handshake, simple and structured replies, base:allocation). Pure encoders
// and decoders: the handshake and transmission modules do the talking.
// All integers are big-endian ("network byte order"), as proto.md says.

/** "NBDMAGIC": the first eight bytes a server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": the newstyle magic, sent by the server and before every client option. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Before every option reply. */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server) and client flags. */
export const FLAG_FIXED_NEWSTYLE = 1 << 0;
export const FLAG_NO_ZEROES = 1 << 1;
export const CLIENT_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const CLIENT_FLAG_NO_ZEROES = 1 << 1;

/** Options (NBD_OPT_*). */
export const OPT = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
  EXTENDED_HEADERS: 11,
} as const;

/** Option reply types (NBD_REP_*); errors have bit 31 set. */
export const REP = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
} as const;

/** NBD_INFO_* items of an INFO or GO reply. */
export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** Transmission flags (NBD_FLAG_*), sent with the export's size. */
export const TFLAG = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
} as const;

/** Request types (NBD_CMD_*). */
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;

/** Command flags (NBD_CMD_FLAG_*). */
export const CMD_FLAG = { FUA: 1 << 0, NO_HOLE: 1 << 1, DF: 1 << 2, REQ_ONE: 1 << 3, FAST_ZERO: 1 << 4 } as const;

/** Structured reply chunk types and flags. */
export const REPLY_FLAG_DONE = 1;
export const REPLY_TYPE = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: 0x8001, ERROR_OFFSET: 0x8002 } as const;

/** The errno values the protocol carries (Linux's numbers, as proto.md fixes them). */
export const NBD_ERR = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ENOTSUP: 95, ESHUTDOWN: 108 } as const;

/** base:allocation's status bits. */
export const STATE_HOLE = 1 << 0;
export const STATE_ZERO = 1 << 1;
export const BASE_ALLOCATION = 'base:allocation';

/** Sizes of the fixed parts. */
export const REQUEST_HEADER_SIZE = 28;
export const OPTION_HEADER_SIZE = 16;

/** The server's greeting: NBDMAGIC, IHAVEOPT, handshake flags. */
export function encodeGreeting(flags: number): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBD_MAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(flags, 16);
  return b;
}

export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

export function decodeOptionHeader(b: Buffer): OptionHeader {
  return { magic: b.readBigUInt64BE(0), option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

/** One option reply: magic, the option it answers, the reply type, the data. */
export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  data.copy(b, 20);
  return b;
}

/** An error reply with a human-readable message (proto.md: "MAY contain a string"). */
export function encodeOptionError(option: number, type: number, message: string): Buffer {
  return encodeOptionReply(option, type, Buffer.from(message, 'utf8'));
}

/** NBD_REP_SERVER for LIST: the export name (and a description, which geomctl leaves out). */
export function encodeServerReply(name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const data = Buffer.alloc(4 + n.length);
  data.writeUInt32BE(n.length, 0);
  n.copy(data, 4);
  return encodeOptionReply(OPT.LIST, REP.SERVER, data);
}

/** NBD_INFO_EXPORT: size and transmission flags. */
export function encodeInfoExport(option: number, size: bigint, flags: number): Buffer {
  const data = Buffer.alloc(12);
  data.writeUInt16BE(INFO.EXPORT, 0);
  data.writeBigUInt64BE(size, 2);
  data.writeUInt16BE(flags, 10);
  return encodeOptionReply(option, REP.INFO, data);
}

/** NBD_INFO_NAME or NBD_INFO_DESCRIPTION: a string. */
export function encodeInfoString(option: number, item: typeof INFO.NAME | typeof INFO.DESCRIPTION, text: string): Buffer {
  const t = Buffer.from(text, 'utf8');
  const data = Buffer.alloc(2 + t.length);
  data.writeUInt16BE(item, 0);
  t.copy(data, 2);
  return encodeOptionReply(option, REP.INFO, data);
}

export interface BlockSizes {
  minimum: number;
  preferred: number;
  maximum: number;
}

export function encodeInfoBlockSize(option: number, sizes: BlockSizes): Buffer {
  const data = Buffer.alloc(14);
  data.writeUInt16BE(INFO.BLOCK_SIZE, 0);
  data.writeUInt32BE(sizes.minimum, 2);
  data.writeUInt32BE(sizes.preferred, 6);
  data.writeUInt32BE(sizes.maximum, 10);
  return encodeOptionReply(option, REP.INFO, data);
}

/** NBD_REP_META_CONTEXT: the id the server gives a context, and its name. */
export function encodeMetaContextReply(option: number, id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const data = Buffer.alloc(4 + n.length);
  data.writeUInt32BE(id, 0);
  n.copy(data, 4);
  return encodeOptionReply(option, REP.META_CONTEXT, data);
}

/** The reply to NBD_OPT_EXPORT_NAME (oldstyle-like): size, flags, and 124 zeros unless NO_ZEROES. */
export function encodeExportNameReply(size: bigint, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(size, 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

/** The data of INFO and GO: an export name and the NBD_INFO items asked for. Throws on a malformed payload. */
export function decodeInfoRequest(data: Buffer): { name: string; items: number[] } {
  if (data.length < 6) throw new RangeError('INFO/GO payload too short');
  const nameLength = data.readUInt32BE(0);
  if (4 + nameLength + 2 > data.length) throw new RangeError('INFO/GO export name passes the payload');
  const name = data.toString('utf8', 4, 4 + nameLength);
  const count = data.readUInt16BE(4 + nameLength);
  if (4 + nameLength + 2 + 2 * count !== data.length) throw new RangeError('INFO/GO item count does not match the payload');
  const items: number[] = [];
  for (let i = 0; i < count; i++) items.push(data.readUInt16BE(4 + nameLength + 2 + 2 * i));
  return { name, items };
}

/** The data of LIST_META_CONTEXT and SET_META_CONTEXT: an export name and the queries. */
export function decodeMetaContextRequest(data: Buffer): { name: string; queries: string[] } {
  if (data.length < 8) throw new RangeError('META_CONTEXT payload too short');
  const nameLength = data.readUInt32BE(0);
  let at = 4 + nameLength;
  if (at + 4 > data.length) throw new RangeError('META_CONTEXT export name passes the payload');
  const name = data.toString('utf8', 4, at);
  const count = data.readUInt32BE(at);
  at += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) throw new RangeError('META_CONTEXT query passes the payload');
    const n = data.readUInt32BE(at);
    at += 4;
    if (at + n > data.length) throw new RangeError('META_CONTEXT query passes the payload');
    queries.push(data.toString('utf8', at, at + n));
    at += n;
  }
  if (at !== data.length) throw new RangeError('META_CONTEXT payload has trailing bytes');
  return { name, queries };
}

export interface Request {
  magic: number;
  flags: number;
  type: number;
  /** The client's opaque handle ("cookie"), echoed in the reply. */
  cookie: Buffer;
  /** Past 2^53 the offset is Infinity: beyond any export, so refused as past the end. */
  offset: number;
  length: number;
}

export function decodeRequest(b: Buffer): Request {
  const offset = b.readBigUInt64BE(16);
  return {
    magic: b.readUInt32BE(0),
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    cookie: Buffer.from(b.subarray(8, 16)),
    offset: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(offset),
    length: b.readUInt32BE(24),
  };
}

export function encodeRequest(r: { flags?: number; type: number; cookie: Buffer; offset: bigint | number; length: number }): Buffer {
  const b = Buffer.alloc(REQUEST_HEADER_SIZE);
  b.writeUInt32BE(REQUEST_MAGIC, 0);
  b.writeUInt16BE(r.flags ?? 0, 4);
  b.writeUInt16BE(r.type, 6);
  r.cookie.copy(b, 8, 0, 8);
  b.writeBigUInt64BE(BigInt(r.offset), 16);
  b.writeUInt32BE(r.length, 24);
  return b;
}

/** A simple reply's header (a READ's data follows it). */
export function encodeSimpleReply(error: number, cookie: Buffer): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8, 0, 8);
  return b;
}

/** A structured reply chunk's header; `length` bytes of payload follow. */
export function encodeChunkHeader(flags: number, type: number, cookie: Buffer, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8, 0, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** The header and offset of an OFFSET_DATA chunk whose `length` data bytes follow. */
export function encodeOffsetDataHeader(flags: number, cookie: Buffer, offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(28);
  encodeChunkHeader(flags, REPLY_TYPE.OFFSET_DATA, cookie, 8 + length).copy(b, 0);
  b.writeBigUInt64BE(BigInt(offset), 20);
  return b;
}

/** An OFFSET_HOLE chunk: `length` bytes at `offset` read as zeros. */
export function encodeOffsetHole(flags: number, cookie: Buffer, offset: number, length: number): Buffer {
  const payload = Buffer.alloc(12);
  payload.writeBigUInt64BE(BigInt(offset), 0);
  payload.writeUInt32BE(length, 8);
  return Buffer.concat([encodeChunkHeader(flags, REPLY_TYPE.OFFSET_HOLE, cookie, 12), payload]);
}

/** An ERROR chunk (always the last). */
export function encodeErrorChunk(cookie: Buffer, error: number, message: string): Buffer {
  const m = Buffer.from(message, 'utf8').subarray(0, 4096);
  const payload = Buffer.alloc(6 + m.length);
  payload.writeUInt32BE(error, 0);
  payload.writeUInt16BE(m.length, 4);
  m.copy(payload, 6);
  return Buffer.concat([encodeChunkHeader(REPLY_FLAG_DONE, REPLY_TYPE.ERROR, cookie, payload.length), payload]);
}

export interface Extent {
  length: number;
  flags: number;
}

/** A BLOCK_STATUS chunk for one meta context. */
export function encodeBlockStatus(flags: number, cookie: Buffer, contextId: number, extents: readonly Extent[]): Buffer {
  const payload = Buffer.alloc(4 + 8 * extents.length);
  payload.writeUInt32BE(contextId, 0);
  extents.forEach((e, i) => {
    payload.writeUInt32BE(e.length, 4 + 8 * i);
    payload.writeUInt32BE(e.flags, 8 + 8 * i);
  });
  return Buffer.concat([encodeChunkHeader(flags, REPLY_TYPE.BLOCK_STATUS, cookie, payload.length), payload]);
}
