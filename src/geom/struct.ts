// One way to define an on-disk structure. A struct is a table of fields, each
// with a kind and a byte offset, written once; encode, decode, validation,
// `dump` lines, the JSON form and a fast per-field accessor for scanning
// large maps are all derived from that table, so no offset is ever written
// twice (issue 10, "One way to define an on-disk structure").
//
// Kinds: unsigned and signed integers of 8 to 64 bits in either byte order
// (64-bit ones as bigint), `u53` (a 64-bit integer held as a number, for
// offsets and lengths that must fit a double: a value beyond 2^53 - 1 reads
// as -1, which every caller's range check rejects), NUL-padded C strings of
// a fixed size, and raw byte arrays.
//
// Definition-time checks: every field must lie inside the struct and no two
// fields may overlap, so a mistyped offset fails at load, not on disk.

import { u64Json } from '../util/json.js';

type NumberKind = 'u8' | 'i8' | 'u16le' | 'u16be' | 'u32le' | 'u32be' | 'i32le' | 'i32be' | 'u53le' | 'u53be';
type BigKind = 'u64le' | 'u64be' | 'i64le' | 'i64be';
export type FieldKind = NumberKind | BigKind | 'cstring' | 'bytes';

interface FieldCommon {
  offset: number;
  /** The C member, used in messages ("md_name is not NUL-terminated"); the key by default. */
  c?: string;
  /** The label of the field's `dump` line; a field without one is not dumped. */
  label?: string;
  /** The field's key in the JSON form (the key by default); false leaves it out. */
  json?: string | false;
}

export type FieldSpec =
  | (FieldCommon & { kind: NumberKind | BigKind })
  | (FieldCommon & {
      kind: 'cstring';
      size: number;
      /**
       * 'required' (default): the value keeps a NUL, so it holds at most
       * size - 1 bytes and a stored value without one is a problem;
       * 'optional': the value may fill the field (strncpy's convention).
       */
      nul?: 'required' | 'optional';
      /** A stored value that is not UTF-8 is a problem (otherwise it decodes with replacement characters). */
      strictUtf8?: boolean;
    })
  | (FieldCommon & { kind: 'bytes'; size: number });

export type FieldSpecs = Readonly<Record<string, FieldSpec>>;

/** The value a field of kind K decodes to. */
export type FieldValue<F extends FieldSpec> = F['kind'] extends BigKind
  ? bigint
  : F['kind'] extends 'cstring'
    ? string
    : F['kind'] extends 'bytes'
      ? Buffer
      : number;

/** The decoded struct: one property per field. */
export type StructValue<F extends FieldSpecs> = { -readonly [K in keyof F]: FieldValue<F[K]> };

/** The decoded value of a defined struct: `ValueOf<typeof MAP_ENTRY>`. */
export type ValueOf<S> = S extends Struct<infer F> ? StructValue<F> : never;

export type Getter<T> = (buf: Buffer, base: number) => T;
export type Setter<T> = (buf: Buffer, base: number, value: T) => void;

/** A validation hook: what is wrong with a field of the decoded struct, or undefined. */
export type FieldCheck<F extends FieldSpecs, C> = (value: StructValue<F>, ctx: C) => string | undefined;

export interface StructOptions {
  /**
   * What encode does with an integer that does not fit its field: 'refuse'
   * (default) throws RangeError; 'wrap' keeps its low bits, as the C
   * encoders' implicit casts do.
   */
  overflow?: 'refuse' | 'wrap';
}

export interface FieldInfo {
  name: string;
  kind: FieldKind;
  offset: number;
  size: number;
  c: string;
}

export interface Struct<F extends FieldSpecs> {
  /** The C struct's name, for messages. */
  readonly name: string;
  /** Bytes the struct occupies. */
  readonly size: number;
  /** The fields in table order. */
  readonly fields: readonly FieldInfo[];
  readonly offset: { readonly [K in keyof F]: number };
  /**
   * Fast per-field readers over a struct at byte `base` of a buffer, with the
   * field's offset bound in: `get.flags(block, p)`. Hoist them out of hot
   * loops. A bytes field reads as a view of the buffer, not a copy.
   */
  readonly get: { readonly [K in keyof F]: Getter<FieldValue<F[K]>> };
  readonly set: { readonly [K in keyof F]: Setter<FieldValue<F[K]>> };
  /** Every field into `target` at `base` (a new zeroed buffer by default); bytes between fields are left as they are. */
  encode(value: StructValue<F>, target?: Buffer, base?: number): Buffer;
  /** Every field of the struct at `base`; RangeError when the buffer is too short. Never throws otherwise. */
  decode(buf: Buffer, base?: number): StructValue<F>;
  /**
   * A validator running, in field order, each string field's byte checks
   * (NUL, UTF-8: they need `raw`, the buffer decoded) then the field's hook:
   * the first problem found, or undefined.
   */
  validator<C>(checks: { readonly [K in keyof F]?: FieldCheck<F, C> }): (value: StructValue<F>, ctx: C, raw?: Buffer, base?: number) => string | undefined;
  /** The `label: value` lines of the fields that have a label, labels right-aligned to `width`. */
  dump(value: StructValue<F>, width: number, format?: { readonly [K in keyof F]?: (v: FieldValue<F[K]>) => string }): string[];
  /** The JSON form: 64-bit values through u64Json, bytes as hex. */
  json(value: StructValue<F>): Record<string, string | number>;
  /** The same layout read in the other byte order (a map written by a big-endian machine). */
  swapped(): Struct<F>;
}

/** One `dump` line: the label right-aligned to `width` columns, as FreeBSD's dump commands print. */
export function dumpLine(label: string, text: string, width: number): string {
  return `${label.padStart(width)}: ${text}`;
}

const NUMBER_SIZE: Readonly<Record<NumberKind | BigKind, number>> = {
  u8: 1, i8: 1, u16le: 2, u16be: 2, u32le: 4, u32be: 4, i32le: 4, i32be: 4, u53le: 8, u53be: 8,
  u64le: 8, u64be: 8, i64le: 8, i64be: 8,
};

const SWAP: Readonly<Partial<Record<FieldKind, FieldKind>>> = {
  u16le: 'u16be', u16be: 'u16le', u32le: 'u32be', u32be: 'u32le', i32le: 'i32be', i32be: 'i32le',
  u53le: 'u53be', u53be: 'u53le', u64le: 'u64be', u64be: 'u64le', i64le: 'i64be', i64be: 'i64le',
};

const TWO_32 = 0x100000000;

function sizeOf(spec: FieldSpec): number {
  return spec.kind === 'cstring' || spec.kind === 'bytes' ? spec.size : NUMBER_SIZE[spec.kind];
}

/** A u64 as a number when it is at most 2^53 - 1, else -1: two u32 reads, no BigInt (a walk reads millions). */
function u53(hi: number, lo: number): number {
  return hi < 0x200000 ? hi * TWO_32 + lo : -1;
}

function getterOf(spec: FieldSpec, off: number): Getter<unknown> {
  switch (spec.kind) {
    case 'u8': return (b, p) => b.readUInt8(p + off);
    case 'i8': return (b, p) => b.readInt8(p + off);
    case 'u16le': return (b, p) => b.readUInt16LE(p + off);
    case 'u16be': return (b, p) => b.readUInt16BE(p + off);
    case 'u32le': return (b, p) => b.readUInt32LE(p + off);
    case 'u32be': return (b, p) => b.readUInt32BE(p + off);
    case 'i32le': return (b, p) => b.readInt32LE(p + off);
    case 'i32be': return (b, p) => b.readInt32BE(p + off);
    case 'u53le': return (b, p) => u53(b.readUInt32LE(p + off + 4), b.readUInt32LE(p + off));
    case 'u53be': return (b, p) => u53(b.readUInt32BE(p + off), b.readUInt32BE(p + off + 4));
    case 'u64le': return (b, p) => b.readBigUInt64LE(p + off);
    case 'u64be': return (b, p) => b.readBigUInt64BE(p + off);
    case 'i64le': return (b, p) => b.readBigInt64LE(p + off);
    case 'i64be': return (b, p) => b.readBigInt64BE(p + off);
    case 'cstring': {
      const size = spec.size;
      return (b, p) => {
        const raw = b.subarray(p + off, p + off + size);
        const nul = raw.indexOf(0);
        // C string semantics: whatever follows the NUL is not part of the value.
        return (nul < 0 ? raw : raw.subarray(0, nul)).toString('utf8');
      };
    }
    case 'bytes': {
      const size = spec.size;
      return (b, p) => b.subarray(p + off, p + off + size);
    }
  }
}

function checkedU53(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} ${v} is not an integer in [0, 2^53)`);
  return v;
}

function setterOf(name: string, spec: FieldSpec, off: number, wrap: boolean): Setter<never> {
  const n = (v: number, bits: number, signed: boolean): number => {
    if (!wrap) return v;
    if (bits === 32) return signed ? v | 0 : v >>> 0;
    const m = v & ((1 << bits) - 1);
    return signed && m >= 1 << (bits - 1) ? m - (1 << bits) : m;
  };
  const big = (v: bigint, signed: boolean): bigint => (!wrap ? v : signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v));
  switch (spec.kind) {
    case 'u8': return ((b: Buffer, p: number, v: number) => void b.writeUInt8(n(v, 8, false), p + off)) as Setter<never>;
    case 'i8': return ((b: Buffer, p: number, v: number) => void b.writeInt8(n(v, 8, true), p + off)) as Setter<never>;
    case 'u16le': return ((b: Buffer, p: number, v: number) => void b.writeUInt16LE(n(v, 16, false), p + off)) as Setter<never>;
    case 'u16be': return ((b: Buffer, p: number, v: number) => void b.writeUInt16BE(n(v, 16, false), p + off)) as Setter<never>;
    case 'u32le': return ((b: Buffer, p: number, v: number) => void b.writeUInt32LE(n(v, 32, false), p + off)) as Setter<never>;
    case 'u32be': return ((b: Buffer, p: number, v: number) => void b.writeUInt32BE(n(v, 32, false), p + off)) as Setter<never>;
    case 'i32le': return ((b: Buffer, p: number, v: number) => void b.writeInt32LE(n(v, 32, true), p + off)) as Setter<never>;
    case 'i32be': return ((b: Buffer, p: number, v: number) => void b.writeInt32BE(n(v, 32, true), p + off)) as Setter<never>;
    case 'u53le':
      return ((b: Buffer, p: number, v: number) => {
        checkedU53(name, v);
        b.writeUInt32LE(v % TWO_32, p + off);
        b.writeUInt32LE(Math.floor(v / TWO_32), p + off + 4);
      }) as Setter<never>;
    case 'u53be':
      return ((b: Buffer, p: number, v: number) => {
        checkedU53(name, v);
        b.writeUInt32BE(Math.floor(v / TWO_32), p + off);
        b.writeUInt32BE(v % TWO_32, p + off + 4);
      }) as Setter<never>;
    case 'u64le': return ((b: Buffer, p: number, v: bigint) => void b.writeBigUInt64LE(big(v, false), p + off)) as Setter<never>;
    case 'u64be': return ((b: Buffer, p: number, v: bigint) => void b.writeBigUInt64BE(big(v, false), p + off)) as Setter<never>;
    case 'i64le': return ((b: Buffer, p: number, v: bigint) => void b.writeBigInt64LE(big(v, true), p + off)) as Setter<never>;
    case 'i64be': return ((b: Buffer, p: number, v: bigint) => void b.writeBigInt64BE(big(v, true), p + off)) as Setter<never>;
    case 'cstring': {
      const size = spec.size;
      const max = spec.nul === 'optional' ? size : size - 1;
      return ((b: Buffer, p: number, v: string) => {
        let bytes = Buffer.from(v, 'utf8');
        if (bytes.length > max) {
          // strlcpy's cut, or a refusal: a name that does not fit is the caller's bug.
          if (!wrap) throw new RangeError(`${name} '${v}' is longer than ${max} bytes`);
          bytes = bytes.subarray(0, max);
        }
        b.fill(0, p + off, p + off + size);
        bytes.copy(b, p + off);
      }) as Setter<never>;
    }
    case 'bytes': {
      const size = spec.size;
      return ((b: Buffer, p: number, v: Buffer) => {
        if (v.length > size) throw new RangeError(`${name} holds ${size} bytes, not ${v.length}`);
        b.fill(0, p + off, p + off + size);
        v.copy(b, p + off);
      }) as Setter<never>;
    }
  }
}

/** What is wrong with a stored string field's bytes, or undefined. */
function stringProblem(spec: FieldSpec, c: string, raw: Buffer): string | undefined {
  if (spec.kind !== 'cstring') return undefined;
  const nul = raw.indexOf(0);
  if (nul < 0 && spec.nul !== 'optional') return `${c} is not NUL-terminated`;
  if (spec.strictUtf8) {
    try {
      strictUtf8.decode(nul < 0 ? raw : raw.subarray(0, nul));
    } catch {
      return `${c} is not valid UTF-8`;
    }
  }
  return undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function jsonOf(v: unknown): string | number {
  if (typeof v === 'bigint') return u64Json(v);
  if (Buffer.isBuffer(v)) return v.toString('hex');
  return v as string | number;
}

function textOf(v: unknown): string {
  return Buffer.isBuffer(v) ? v.toString('hex') : String(v);
}

/**
 * Defines a struct of `size` bytes from its field table (key order is field
 * order: dump and JSON follow it). Throws RangeError for a field past the end,
 * overlapping another, or at a negative or fractional offset.
 */
export function defineStruct<const F extends FieldSpecs>(name: string, size: number, specs: F, options: StructOptions = {}): Struct<F> {
  const wrap = options.overflow === 'wrap';
  const keys = Object.keys(specs) as Array<keyof F & string>;
  const fields: FieldInfo[] = keys.map((key) => {
    const spec = specs[key] as FieldSpec;
    const fieldSize = sizeOf(spec);
    if (!Number.isInteger(spec.offset) || spec.offset < 0 || !Number.isInteger(fieldSize) || fieldSize <= 0) {
      throw new RangeError(`${name}.${key}: offset ${spec.offset} and size ${fieldSize} must be a non-negative integer and a positive one`);
    }
    if (spec.offset + fieldSize > size) {
      throw new RangeError(`${name}.${key}: ${fieldSize} bytes at offset ${spec.offset} run past the end of the ${size}-byte struct`);
    }
    return { name: key, kind: spec.kind, offset: spec.offset, size: fieldSize, c: spec.c ?? key };
  });
  const byOffset = [...fields].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1] as FieldInfo;
    const cur = byOffset[i] as FieldInfo;
    if (prev.offset + prev.size > cur.offset) throw new RangeError(`${name}.${cur.name} at offset ${cur.offset} overlaps ${name}.${prev.name}`);
  }

  const offset = {} as Record<string, number>;
  const get = {} as Record<string, Getter<unknown>>;
  const set = {} as Record<string, Setter<never>>;
  for (const f of fields) {
    const spec = specs[f.name] as FieldSpec;
    offset[f.name] = f.offset;
    get[f.name] = getterOf(spec, f.offset);
    set[f.name] = setterOf(f.c, spec, f.offset, wrap);
  }

  const needs = (buf: Buffer, base: number): void => {
    if (base < 0 || buf.length < base + size) throw new RangeError(`${name} needs ${size} bytes at offset ${base}, the buffer holds ${buf.length}`);
  };

  const struct: Struct<F> = {
    name,
    size,
    fields,
    offset: offset as Struct<F>['offset'],
    get: get as unknown as Struct<F>['get'],
    set: set as unknown as Struct<F>['set'],
    encode(value, target = Buffer.alloc(size), base = 0) {
      needs(target, base);
      const v = value as Record<string, never>;
      for (const f of fields) (set[f.name] as Setter<never>)(target, base, v[f.name] as never);
      return target;
    },
    decode(buf, base = 0) {
      needs(buf, base);
      const out: Record<string, unknown> = {};
      for (const f of fields) {
        const v = (get[f.name] as Getter<unknown>)(buf, base);
        // A decoded value owns its bytes: the buffer may be reused.
        out[f.name] = Buffer.isBuffer(v) ? Buffer.from(v) : v;
      }
      return out as StructValue<F>;
    },
    validator(checks) {
      return (value, ctx, raw, base = 0) => {
        for (const f of fields) {
          const problem =
            (raw ? stringProblem(specs[f.name] as FieldSpec, f.c, raw.subarray(base + f.offset, base + f.offset + f.size)) : undefined) ??
            (checks[f.name] as FieldCheck<F, typeof ctx> | undefined)?.(value, ctx);
          if (problem) return problem;
        }
        return undefined;
      };
    },
    dump(value, width, format = {}) {
      const lines: string[] = [];
      const v = value as Record<string, unknown>;
      const fmt = format as Record<string, ((x: never) => string) | undefined>;
      for (const f of fields) {
        const label = (specs[f.name] as FieldSpec).label;
        if (label === undefined) continue;
        const formatter = fmt[f.name];
        lines.push(dumpLine(label, formatter ? formatter(v[f.name] as never) : textOf(v[f.name]), width));
      }
      return lines;
    },
    json(value) {
      const out: Record<string, string | number> = {};
      const v = value as Record<string, unknown>;
      for (const f of fields) {
        const key = (specs[f.name] as FieldSpec).json;
        if (key === false) continue;
        out[key ?? f.name] = jsonOf(v[f.name]);
      }
      return out;
    },
    swapped() {
      const other: Record<string, FieldSpec> = {};
      for (const f of fields) {
        const spec = specs[f.name] as FieldSpec;
        other[f.name] = { ...spec, kind: SWAP[spec.kind] ?? spec.kind } as FieldSpec;
      }
      return defineStruct(`${name} (byte-swapped)`, size, other as unknown as F, options);
    },
  };
  return struct;
}
