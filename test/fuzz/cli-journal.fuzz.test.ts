// Black-box fuzzing of the journal verbs with bad input (quality.md,
// "Reliability"): valid journals made by the built CLI — one image
// (-c, 100 MiB journal) and two images (-h, a 6 MiB journal used with
// maxphys 128k), both dirty with a finished journal pending — are corrupted
// (every metadata field, with and without a recomputed MD5, and the named
// cases: version 1, jstart >= jend, jend past the image, a journal too small
// for two maximal records, provsize and hardcoded-name mismatches, names
// without NUL; record headers (nentries, entries past jend or outside the
// data area, zero or unaligned lengths) and journal headers; a header loop
// over the whole journal space; a journal image of another journal, a copy,
// a symlink alias; truncated, grown, missing and non-file images; crashed
// transactions whose undo logs are intact, damaged or forged) and then 1-3
// random verbs run on them, label included, with random and often absurd
// options. support.ts's judge() states what every outcome must satisfy; the
// last block pins down the cases the fuzzer found.

import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HAS_DEV_FULL,
  SECTOR,
  Tally,
  type CommonOptions,
  commonOptionArbs,
  corruptAll,
  fuzzTemplates,
  globalArgs,
  problemsIn,
  readDestination,
  bytesAt,
  capture,
  crash,
  emptyImage,
  faultArb,
  forgeUndoLog,
  forgeryArb,
  mustRun,
  nameFieldArb,
  nameFieldBytes,
  numArb,
  pattern,
  readAt,
  readUint,
  replace,
  resolveNum,
  restore,
  runGeomctl,
  runSteps,
  sectorsStartingWith,
  showRecipe,
  sizeArb,
  sometimes,
  uintBytes,
  writeAt,
  type Entry,
  type Forgery,
  type Num,
  type Replacement,
  type Step,
  type UndoDamage,
  undoDamageArb,
} from './support.js';

const M = 1024 * 1024;
type FileEntry = Entry & { kind: 'file' };

// ---------------------------------------------------------------------------
// gjournal metadata (formats.md): the 101 bytes at the start of the last sector.

const META_FIELDS = [
  { name: 'magic', offset: 0, size: 16, kind: 'string' },
  { name: 'version', offset: 16, size: 4, kind: 'uint' },
  { name: 'id', offset: 20, size: 4, kind: 'uint' },
  { name: 'type', offset: 24, size: 1, kind: 'uint' },
  { name: 'jstart', offset: 25, size: 8, kind: 'uint' },
  { name: 'jend', offset: 33, size: 8, kind: 'uint' },
  { name: 'joffset', offset: 41, size: 8, kind: 'uint' },
  { name: 'jid', offset: 49, size: 4, kind: 'uint' },
  { name: 'flags', offset: 53, size: 8, kind: 'uint' },
  { name: 'provider', offset: 61, size: 16, kind: 'string' },
  { name: 'provsize', offset: 77, size: 8, kind: 'uint' },
  { name: 'hash', offset: 85, size: 16, kind: 'bytes' },
] as const;
type MetaFieldName = (typeof META_FIELDS)[number]['name'];
const HASHED = 85;

const HEADER_MAGIC = Buffer.from('GJHDR\0', 'latin1');
const RECORD_MAGIC = Buffer.from('GJRHDR\0', 'latin1');
const ENTRY_FIELDS = { joffset: 0, offset: 8, length: 16 } as const;

/** What a pristine template holds and where its journal structures sit. */
interface Template {
  kind: 'one' | 'two';
  files: Map<string, FileEntry>;
  data: string;
  journal: string;
  jstart: bigint;
  jend: bigint;
  /** End (exclusive) of the data area on the data image. */
  dataEnd: bigint;
  maxphys: bigint;
  headers: number[];
  records: number[];
}

/** The other device's images, for "a journal image of another journal". */
let foreign: Map<string, FileEntry>;
const templates: Partial<Record<'one' | 'two', Template>> = {};
let base: string;
const tally = new Tally();

function metaOf(e: FileEntry): Buffer {
  return bytesAt(e, e.size - SECTOR, SECTOR);
}

function buildTemplate(kind: 'one' | 'two', dir: string, names: { data: string; journal: string }, setup: string[][]): Template {
  for (const args of setup) mustRun(dir, args);
  const files = new Map<string, FileEntry>();
  for (const name of new Set([names.data, names.journal])) files.set(name, capture(join(dir, name)) as FileEntry);
  const d = metaOf(files.get(names.data) as FileEntry);
  const jstart = readUint(d, 25, 8);
  const jend = readUint(d, 33, 8);
  const dataEnd = kind === 'one' ? jstart : BigInt((files.get(names.data) as FileEntry).size - SECTOR);
  const j = files.get(names.journal) as FileEntry;
  return {
    kind,
    files,
    ...names,
    jstart,
    jend,
    dataEnd,
    maxphys: kind === 'one' ? BigInt(M) : 128n * 1024n,
    headers: sectorsStartingWith(j, HEADER_MAGIC, Number(jstart), Number(jend)),
    records: sectorsStartingWith(j, RECORD_MAGIC, Number(jstart), Number(jend)),
  };
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'geomctl-fuzz-journal-'));
  const dir = mkdtempSync(join(base, 'tpl-'));
  writeFileSync(join(dir, 'a.bin'), pattern(300_000, 1));
  writeFileSync(join(dir, 'big.bin'), pattern(3_000_000, 2));
  const trunc = (name: string, size: number) => emptyImage(join(dir, name), size);
  // The last write of each leaves its journal pending: one record of several
  // 1 MiB entries (one image), two records (two images, 128k entries).
  trunc('one.img', 104 * M);
  templates.one = buildTemplate('one', dir, { data: 'one.img', journal: 'one.img' }, [
    ['journal', 'label', '-c', '-s', '100M', '--id', '1111', 'one.img'],
    ['journal', 'write', '--sync', '-i', 'a.bin', 'one.img'],
    ['journal', 'write', '-o', '512', '-i', 'big.bin', 'one.img'],
  ]);
  trunc('d.img', 4 * M);
  trunc('j.img', 6 * M);
  templates.two = buildTemplate('two', dir, { data: 'd.img', journal: 'j.img' }, [
    ['--maxphys', '128k', 'journal', 'label', '-h', '--id', '2222', 'd.img', 'j.img'],
    ['--maxphys', '128k', 'journal', 'write', '-i', 'a.bin', 'd.img', 'j.img'],
    ['--maxphys', '128k', 'journal', 'write', '-o', '1M', '-i', 'big.bin', 'd.img', 'j.img'],
  ]);
  trunc('od.img', 4 * M);
  trunc('oj.img', 6 * M);
  mustRun(dir, ['--maxphys', '128k', 'journal', 'label', '--id', '3333', 'od.img', 'oj.img']);
  mustRun(dir, ['--maxphys', '128k', 'journal', 'write', '-i', 'a.bin', 'od.img', 'oj.img']);
  foreign = new Map([
    ['od.img', capture(join(dir, 'od.img')) as FileEntry],
    ['oj.img', capture(join(dir, 'oj.img')) as FileEntry],
  ]);
  // The templates must hold what the corruptions aim at.
  expect(templates.one.headers.length).toBeGreaterThanOrEqual(2);
  expect(templates.one.records.length).toBeGreaterThanOrEqual(1);
  expect(templates.two.headers.length).toBeGreaterThanOrEqual(2);
  expect(templates.two.records.length).toBeGreaterThanOrEqual(2);
}, 120_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Corruptions

type Role = 'data' | 'journal';

type Corruption =
  | { kind: 'meta'; image: Role | 'both'; writes: { field: MetaFieldName; num?: Num; name?: string; hash?: Uint8Array }[]; rehash: boolean; note: string }
  | { kind: 'metaBytes'; image: Role; at: number; bytes: Uint8Array; rehash: boolean }
  | { kind: 'record'; which: number; part: 'magic' | 'jid' | 'nentries' | 'sum' | 'entry'; entry: number; field: keyof typeof ENTRY_FIELDS; num: Num; bytes: Uint8Array }
  | { kind: 'header'; which: number; part: 'id' | 'next' | 'magic' | 'selfloop'; num: Num; bytes: Uint8Array }
  | { kind: 'garbage'; near: number; sectors: number; bytes: Uint8Array }
  | { kind: 'loop' }
  | { kind: 'truncate'; image: Role; num: Num }
  | { kind: 'replace'; image: Role; how: Replacement }
  | { kind: 'foreign'; how: 'swapJournal' | 'swapData' | 'addJournal' | 'addData' | 'cloneJournal' | 'alias' }
  | { kind: 'crash'; fault: string; damage: UndoDamage }
  | { kind: 'forge'; forgery: Forgery };

const METRIC_BASES = ['zero', 'one', 'orig', 'size', 'sector', 'jstart', 'jend', 'dataEnd', 'rmax', 'maxphys', 'max'] as const;
const fieldNames = META_FIELDS.map((f) => f.name);

const metaWrite = fc.record({
  field: fc.constantFrom(...fieldNames),
  num: numArb(METRIC_BASES),
  name: fc.oneof(nameFieldArb, fc.constant('<self>')),
  hash: fc.uint8Array({ minLength: 16, maxLength: 16 }),
});

const roleArb = fc.constantFrom<Role>('data', 'journal');
const rehashArb = fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) });

function named(note: string, image: Role | 'both', writes: { field: MetaFieldName; num?: Num; name?: string }[]): Corruption {
  return { kind: 'meta', image, writes, rehash: true, note };
}
const n = (b: string, delta = 0n): Num => ({ base: b, delta });
const sectors = fc.nat({ max: 64 }).map((k) => BigInt(k * SECTOR));

const namedScenarios: fc.Arbitrary<Corruption> = fc.oneof(
  fc.constant(named('version 1', 'both', [{ field: 'version', num: n('one') }])),
  fc.tuple(fc.constantFrom<Role | 'both'>('data', 'journal', 'both'), sectors).map(([img, d]) => named('jstart >= jend', img, [{ field: 'jstart', num: n('jend', d) }])),
  fc.tuple(fc.constantFrom<Role | 'both'>('data', 'journal', 'both'), sectors).map(([img, d]) => named('jend past the image', img, [{ field: 'jend', num: n('size', d) }])),
  fc.tuple(fc.constantFrom<Role | 'both'>('data', 'both'), fc.nat({ max: 4096 })).map(([img, k]) =>
    named('journal smaller than two maximal records', img, [{ field: 'jend', num: n('jstart', BigInt((k + 1) * SECTOR)) }]),
  ),
  fc.tuple(roleArb, fc.constantFrom(-SECTOR, SECTOR, -1, 1, -M)).map(([img, d]) => named('provsize != image size', img, [{ field: 'provsize', num: n('size', BigInt(d)) }])),
  roleArb.map((img) => named('hardcoded name mismatch', img, [{ field: 'provider', name: 'other.img' }])),
  roleArb.map((img) => named('name without NUL', img, [{ field: 'provider', name: '<no NUL>' }])),
  roleArb.map((img) => named('magic without NUL', img, [{ field: 'magic', name: '<no NUL>' }])),
  fc.tuple(roleArb, fc.constantFrom(0n, 1n, 2n, 3n, 4n, 255n)).map(([img, t]) => named(`type ${t}`, img, [{ field: 'type', num: n('zero', t) }])),
  fc.tuple(roleArb, fc.bigInt({ min: 0n, max: 0xffffffffn })).map(([img, id]) => named('id mismatch', img, [{ field: 'id', num: n('zero', id) }])),
  fc.tuple(fc.constantFrom(0n, 2n, 3n, 0xfffffffcn), numArb(METRIC_BASES), fc.bigInt({ min: 0n, max: 0xffffffffn })).map(([flags, joffset, jid]) =>
    named('dirty, joffset/jid anywhere', 'data', [
      { field: 'flags', num: n('zero', flags) },
      { field: 'joffset', num: joffset },
      { field: 'jid', num: n('zero', jid) },
    ]),
  ),
);

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 6, arbitrary: namedScenarios },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('meta' as const),
      image: fc.constantFrom<Role | 'both'>('data', 'journal', 'both'),
      writes: fc.array(metaWrite, { minLength: 1, maxLength: 3 }),
      rehash: rehashArb,
      note: fc.constant('random fields'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('metaBytes' as const),
      image: roleArb,
      at: fc.nat({ max: 100 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
      rehash: rehashArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('record' as const),
      which: fc.nat(),
      part: fc.constantFrom('magic', 'jid', 'nentries', 'sum', 'entry', 'entry', 'entry', 'entry'),
      entry: fc.nat({ max: 25 }),
      field: fc.constantFrom('joffset', 'offset', 'length'),
      num: fc.oneof(
        numArb(['orig', 'zero', 'jstart', 'jend', 'dataEnd', 'maxphys', 'size', 'max']),
        fc.constantFrom(n('orig', 1n), n('orig', 511n), n('orig', -512n), n('zero', 21n), n('zero', 65535n), n('jend', -512n)),
      ),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 7 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('header' as const),
      which: fc.nat(),
      part: fc.constantFrom('id', 'next', 'magic', 'selfloop'),
      num: numArb(['orig', 'zero', 'max']),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      near: fc.nat(),
      sectors: fc.nat({ max: 4 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 512 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'loop' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('truncate' as const),
      image: roleArb,
      num: fc.oneof(numArb(['zero', 'size', 'sector', 'jstart', 'jend', 'dataEnd']), fc.constant(n('zero')), fc.constant(n('size', -1n))),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      image: roleArb,
      how: fc.constantFrom<Replacement>('dir', 'fifo', 'missing', 'empty', 'unreadable', 'devnull'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('foreign' as const),
      how: fc.constantFrom('swapJournal', 'swapData', 'addJournal', 'addData', 'cloneJournal', 'alias'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), fault: faultArb, damage: undoDamageArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forge' as const), forgery: forgeryArb }) },
);

function imagesOf(tpl: Template, role: Role | 'both'): string[] {
  if (role === 'both') return [...new Set([tpl.data, tpl.journal])];
  return [role === 'data' ? tpl.data : tpl.journal];
}

function fileSize(tpl: Template, name: string): bigint {
  return BigInt((tpl.files.get(name) as FileEntry).size);
}

function anchors(tpl: Template, name: string, orig: bigint): Record<string, bigint> {
  const max = (1n << 64n) - 1n;
  return {
    zero: 0n,
    one: 1n,
    orig,
    size: fileSize(tpl, name),
    sector: BigInt(SECTOR),
    jstart: tpl.jstart,
    jend: tpl.jend,
    dataEnd: tpl.dataEnd,
    maxphys: tpl.maxphys,
    rmax: BigInt(SECTOR) + 20n * tpl.maxphys,
    max,
  };
}

function rehash(path: string, metaAt: number): void {
  const md = readAt(path, metaAt, HASHED);
  writeAt(path, metaAt + HASHED, createHash('md5').update(md).digest());
}

/** Applies one corruption in `dir`; returns the extra files it added (images too). */
function apply(dir: string, tpl: Template, c: Corruption): { extra: string[]; unprivileged: boolean } {
  const path = (name: string) => join(dir, name);
  const metaAt = (name: string) => Number(fileSize(tpl, name)) - SECTOR;
  const journalAnchors = (orig: bigint) => anchors(tpl, tpl.journal, orig);
  const isFile = (name: string) => capture(path(name)).kind === 'file';
  switch (c.kind) {
    case 'meta': {
      for (const name of imagesOf(tpl, c.image)) {
        if (!isFile(name)) continue;
        const at = metaAt(name);
        for (const w of c.writes) {
          const f = META_FIELDS.find((x) => x.name === w.field);
          if (!f) continue;
          let bytes: Buffer;
          if (f.kind === 'string') bytes = nameFieldBytes(w.name ?? '', name);
          else if (f.kind === 'bytes') bytes = Buffer.from(w.hash ?? new Uint8Array(16));
          else bytes = uintBytes(resolveNum(w.num ?? n('orig'), anchors(tpl, name, readUint(readAt(path(name), at + f.offset, f.size), 0, f.size))), f.size);
          writeAt(path(name), at + f.offset, bytes);
        }
        if (c.rehash && !c.writes.some((w) => w.field === 'hash')) rehash(path(name), at);
      }
      return { extra: [], unprivileged: false };
    }
    case 'metaBytes': {
      const name = imagesOf(tpl, c.image)[0] as string;
      if (isFile(name)) {
        writeAt(path(name), metaAt(name) + c.at, Buffer.from(c.bytes).subarray(0, 101 - c.at));
        if (c.rehash && c.at + c.bytes.length <= HASHED) rehash(path(name), metaAt(name));
      }
      return { extra: [], unprivileged: false };
    }
    case 'record': {
      const at = tpl.records[c.which % tpl.records.length] as number;
      const j = path(tpl.journal);
      if (!isFile(tpl.journal)) return { extra: [], unprivileged: false };
      if (c.part === 'magic') writeAt(j, at, Buffer.from(c.bytes));
      else if (c.part === 'jid') writeAt(j, at + 7, uintBytes(resolveNum(c.num, journalAnchors(readUint(readAt(j, at + 7, 4), 0, 4))), 4));
      else if (c.part === 'nentries') writeAt(j, at + 15, uintBytes(resolveNum(c.num, journalAnchors(readUint(readAt(j, at + 15, 2), 0, 2))), 2));
      else if (c.part === 'sum') writeAt(j, at + 17, Buffer.from(c.bytes));
      else {
        const off = at + 25 + 24 * (c.entry % 21) + ENTRY_FIELDS[c.field];
        writeAt(j, off, uintBytes(resolveNum(c.num, journalAnchors(readUint(readAt(j, off, 8), 0, 8))), 8));
      }
      return { extra: [], unprivileged: false };
    }
    case 'header': {
      const at = tpl.headers[c.which % tpl.headers.length] as number;
      const j = path(tpl.journal);
      if (!isFile(tpl.journal)) return { extra: [], unprivileged: false };
      if (c.part === 'magic') writeAt(j, at, Buffer.from(c.bytes));
      else if (c.part === 'selfloop') writeAt(j, at + 10, readAt(j, at + 6, 4));
      else {
        const off = at + (c.part === 'id' ? 6 : 10);
        writeAt(j, off, uintBytes(resolveNum(c.num, journalAnchors(readUint(readAt(j, off, 4), 0, 4))), 4));
      }
      return { extra: [], unprivileged: false };
    }
    case 'garbage': {
      const marks = [...tpl.headers, ...tpl.records].sort((a, b) => a - b);
      const at = (marks[c.near % marks.length] as number) + c.sectors * SECTOR;
      if (isFile(tpl.journal)) writeAt(path(tpl.journal), at, Buffer.from(c.bytes));
      return { extra: [], unprivileged: false };
    }
    case 'loop': {
      // The whole journal space (at maxphys 128k: a header may sit wherever
      // 20 maximal entries still fit before jend) filled with empty journals,
      // each finishing the one before, the last naming the first: a walk
      // that follows next ids goes round forever unless it is bounded.
      if (tpl.kind !== 'two' || !isFile(tpl.journal) || !isFile(tpl.data)) return { extra: [], unprivileged: false };
      const start = Number(tpl.jstart);
      const limit = Number(tpl.jend) - SECTOR - 20 * 128 * 1024;
      const count = Math.floor((limit - start) / SECTOR);
      const space = Buffer.alloc(count * SECTOR);
      const id = (k: number) => (0x10000 + (k % count)) >>> 0;
      for (let k = 0; k < count; k++) {
        HEADER_MAGIC.copy(space, k * SECTOR);
        space.writeUInt32LE(id(k), k * SECTOR + 6);
        space.writeUInt32LE(id(k + 1), k * SECTOR + 10);
      }
      writeAt(path(tpl.journal), start, space);
      const at = metaAt(tpl.data);
      writeAt(path(tpl.data), at + 41, uintBytes(tpl.jstart, 8));
      writeAt(path(tpl.data), at + 49, uintBytes(BigInt(id(0)), 4));
      writeAt(path(tpl.data), at + 53, uintBytes(0n, 8));
      rehash(path(tpl.data), at);
      return { extra: [], unprivileged: false };
    }
    case 'truncate': {
      const name = imagesOf(tpl, c.image)[0] as string;
      if (!isFile(name)) return { extra: [], unprivileged: false };
      let size = resolveNum(c.num, anchors(tpl, name, fileSize(tpl, name)));
      if (size < 0n) size = 0n;
      const cap = fileSize(tpl, name) + 16n * BigInt(M);
      if (size > cap) size = size % cap;
      truncateSync(path(name), Number(size));
      return { extra: [], unprivileged: false };
    }
    case 'replace': {
      const name = imagesOf(tpl, c.image)[0] as string;
      replace(path(name), c.how);
      return { extra: [], unprivileged: c.how === 'unreadable' };
    }
    case 'foreign': {
      const od = foreign.get('od.img') as FileEntry;
      const oj = foreign.get('oj.img') as FileEntry;
      switch (c.how) {
        case 'swapJournal':
          rmSync(path(tpl.journal), { recursive: true, force: true });
          restore(path(tpl.journal), oj);
          return { extra: [], unprivileged: false };
        case 'swapData':
          rmSync(path(tpl.data), { recursive: true, force: true });
          restore(path(tpl.data), od);
          return { extra: [], unprivileged: false };
        case 'addJournal':
          restore(path('oj.img'), oj);
          return { extra: ['oj.img'], unprivileged: false };
        case 'addData':
          restore(path('od.img'), od);
          return { extra: ['od.img'], unprivileged: false };
        case 'cloneJournal':
          if (isFile(tpl.journal)) copyFileSync(path(tpl.journal), path('copy.img'));
          return { extra: isFile('copy.img') ? ['copy.img'] : [], unprivileged: false };
        case 'alias':
          // Another name for the journal image: one file, two names.
          rmSync(path('alias.img'), { force: true });
          symlinkSync(tpl.journal, path('alias.img'));
          return { extra: ['alias.img'], unprivileged: false };
      }
    }
    case 'crash': {
      // A transaction killed half way (two-image clear; relabel of one image)
      // leaves a hot undo log, which is then damaged or not.
      const args = tpl.kind === 'two' ? ['journal', 'clear', tpl.data, tpl.journal] : ['journal', 'label', '-f', '-c', '-s', '100M', tpl.data];
      return { extra: crash(dir, args, c.fault, c.damage), unprivileged: false };
    }
    case 'forge':
      return { extra: forgeUndoLog(dir, tpl.data, c.forgery), unprivileged: false };
  }
  return { extra: [], unprivileged: false };
}

// ---------------------------------------------------------------------------
// Verbs

const READ_ONLY = ['dump', 'list', 'status', 'scan', 'check', 'read', 'export', 'taste', 'top-dump', 'top-list', 'top-status'] as const;
const WRITING = ['write', 'sync', 'stop', 'check-y', 'clear', 'label'] as const;
type Verb = (typeof READ_ONLY)[number] | (typeof WRITING)[number];

interface VerbCase extends CommonOptions {
  verb: Verb;
  targets: 'dj' | 'd' | 'jd' | 'dd' | 'j' | 'none' | 'd+missing' | 'd+extra' | 'newline';
  offset: string | null;
  length: string | null;
  /** A file name, or '<data>' / '<journal>': the image being read. */
  output: string | null;
  input: 'a.bin' | 'c.bin' | 'empty.bin' | 'missing.bin' | 'sub' | '<stdin>' | '<data>' | '<journal>';
  stdinLength: number;
  /** read without -O: stdout to /dev/full */
  stdoutFull: boolean;
  sync: boolean;
  force: boolean;
  all: boolean;
  maxphys: string | null;
  /** label's options */
  checksum: boolean;
  hardcode: boolean;
  jsize: string | null;
  id: string | null;
  sectorSize: string | null;
}

const offsets = sizeArb(['0', '512', '4k', '1M', '2M', '4193792', '4194304', '3M', '100M']);
const verbArb: fc.Arbitrary<VerbCase> = fc.record({
  verb: fc.constantFrom<Verb>(...READ_ONLY, ...WRITING, 'write', 'write', 'sync', 'read'),
  targets: fc.constantFrom('dj', 'dj', 'dj', 'dj', 'dj', 'd', 'd', 'jd', 'dd', 'j', 'none', 'd+missing', 'd+extra', 'newline'),
  offset: sometimes(offsets, 50),
  length: sometimes(sizeArb(['0', '512', '4k', '64k', '1M', '4M', '1']), 50),
  output: sometimes(fc.constantFrom('out.bin', 'out.bin', 'out.bin', 'out.bin', 'sub', 'nodir/out.bin', '.', '<data>', '<journal>', '/dev/full'), 60),
  input: fc.constantFrom('a.bin', 'a.bin', 'c.bin', 'empty.bin', 'missing.bin', 'sub', '<stdin>', '<stdin>', '<data>', '<journal>'),
  stdoutFull: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 9, arbitrary: fc.constant(false) }),
  stdinLength: fc.constantFrom(0, 1, 511, 512, 4096, 70_000),
  sync: fc.boolean(),
  force: fc.boolean(),
  all: fc.boolean(),
  ...commonOptionArbs,
  maxphys: sometimes(sizeArb(['128k', '1M', '1m', '131072', '1048576', '128K', '64k', '2M', '0', '4k']), 15),
  checksum: fc.boolean(),
  hardcode: fc.boolean(),
  jsize: sometimes(sizeArb(['100M', '100m', '99M', '101M', '104857600', '1G', '104857601']), 60),
  id: sometimes(fc.constantFrom('0', '1', '4294967295', '4294967296', '-1', 'abc', '0x10', '1e3', '99999999999999999999'), 30),
  sectorSize: sometimes(sizeArb(['512', '1024', '4096', '65536', '131072', '0', '513', '256']), 20),
});

function buildStep(tpl: Template, v: VerbCase, extra: string[], images: string[], unprivileged: boolean): { step: Step; name: string } {
  const targets: string[] = {
    dj: [tpl.data, tpl.journal],
    d: [tpl.data],
    jd: [tpl.journal, tpl.data],
    dd: [tpl.data, tpl.data],
    j: [tpl.journal],
    none: [],
    'd+missing': [tpl.data, 'nosuch.img'],
    'd+extra': [tpl.data, extra[0] ?? 'nosuch.img'],
    // A name with a control character: the message must stay one line.
    newline: ['new\nline.img'],
  }[v.targets];
  // A one-image journal names its image once.
  const imgs = tpl.kind === 'one' && v.targets === 'dj' ? [tpl.data] : targets;
  const global = globalArgs(v);
  if (v.maxphys !== null) global.push('--maxphys', v.maxphys);
  const fileArg = (f: string) => (f === '<data>' ? tpl.data : f === '<journal>' ? tpl.journal : f);
  const output = v.output === null ? null : fileArg(v.output);
  const local: string[] = [];
  if (v.verbose) local.push('-v');
  let outputs: string[] = [];
  let input: Buffer | undefined;
  let stdoutIsData = false;
  let stdoutFull = false;
  let args: string[];
  let maxErrorLines = 1;
  switch (v.verb) {
    case 'dump':
    case 'clear':
    case 'list':
    case 'status':
      args = ['journal', v.verb, ...local, ...imgs];
      maxErrorLines = Math.max(1, imgs.length);
      break;
    case 'top-dump':
    case 'top-list':
    case 'top-status':
    case 'taste':
      args = [v.verb.replace('top-', ''), ...imgs];
      maxErrorLines = Math.max(1, imgs.length);
      break;
    case 'scan':
      args = ['journal', 'scan', ...local, ...(v.all ? ['--all'] : []), ...imgs];
      break;
    case 'check':
      args = ['journal', 'check', ...local, ...imgs];
      break;
    case 'check-y':
      args = ['journal', 'check', '-y', ...local, ...imgs];
      break;
    case 'read': {
      args = ['journal', 'read', ...local];
      if (v.offset !== null) args.push('-o', v.offset);
      // Without -l a read is the whole provider: still small here.
      if (v.length !== null) args.push('-l', v.length);
      const to = readDestination(output, v.stdoutFull);
      ({ outputs, stdoutIsData, stdoutFull } = to);
      args.push(...to.args, ...imgs);
      break;
    }
    case 'export':
      args = ['journal', 'export', ...local, '-O', output ?? 'out.bin', ...imgs];
      outputs.push(output ?? 'out.bin');
      break;
    case 'write':
      args = ['journal', 'write', ...local];
      if (v.offset !== null) args.push('-o', v.offset);
      if (v.input === '<stdin>') input = Buffer.alloc(v.stdinLength, 0xa5);
      else args.push('-i', fileArg(v.input));
      if (v.sync) args.push('--sync');
      if (v.force) args.push('-f');
      args.push(...imgs);
      break;
    case 'sync':
    case 'stop':
      args = ['journal', v.verb, ...local, ...(v.force ? ['-f'] : []), ...imgs];
      break;
    case 'label':
      args = ['journal', 'label', ...local];
      if (v.checksum) args.push('-c');
      if (v.force) args.push('-f');
      if (v.hardcode) args.push('-h');
      if (v.jsize !== null) args.push('-s', v.jsize);
      if (v.id !== null) args.push('--id', v.id);
      if (v.sectorSize !== null) args.push('--sectorsize', v.sectorSize);
      args.push(...imgs);
      break;
  }
  const step: Step = {
    args: [...global, ...args],
    readOnly: (READ_ONLY as readonly string[]).includes(v.verb),
    outputs,
    maxErrorLines,
    images,
    stdoutIsData,
    stdoutFull,
    unprivileged,
    ...(input ? { input } : {}),
  };
  return { step, name: v.verb };
}

// ---------------------------------------------------------------------------
// The property

interface Case {
  corruptions: Corruption[];
  verbs: VerbCase[];
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  corruptions: fc.oneof(
    { weight: 2, arbitrary: fc.constant([] as Corruption[]) },
    { weight: 5, arbitrary: fc.array(corruptionArb, { minLength: 1, maxLength: 3 }) },
  ),
  verbs: fc.array(verbArb, { minLength: 1, maxLength: 3 }),
});

/** A fresh directory with the template's images and the inputs. */
function setUp(tpl: Template): string {
  const dir = mkdtempSync(join(base, `${tpl.kind}-`));
  for (const [name, e] of tpl.files) restore(join(dir, name), e);
  writeFileSync(join(dir, 'a.bin'), pattern(100_000, 4));
  writeFileSync(join(dir, 'c.bin'), pattern(700, 5));
  writeFileSync(join(dir, 'empty.bin'), Buffer.alloc(0));
  mkdirSync(join(dir, 'sub'));
  return dir;
}

function runCase(tpl: Template, c: Case): void {
  tally.cases++;
  const dir = setUp(tpl);
  try {
    const { extra, unprivileged } = corruptAll(dir, c.corruptions, (k) => apply(dir, tpl, k));
    const images = [...new Set([...tpl.files.keys(), ...extra])];
    const recipe = `template ${tpl.kind} (${[...tpl.files.keys()].join(', ')}), corruptions ${showRecipe(c.corruptions)}`;
    runSteps(tally, 'journal', dir, recipe, c.verbs.map((v) => buildStep(tpl, v, extra, images, unprivileged)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('journal verbs on bad input (black box)', () => {
  fuzzTemplates('journal', tally, caseArb, [
    { title: 'one-image journals: exit 0/1/2, one message, no hang, read-only verbs change nothing', run: (c) => runCase(templates.one as Template, c) },
    { title: 'two-image journals: exit 0/1/2, one message, no hang, read-only verbs change nothing', run: (c) => runCase(templates.two as Template, c) },
  ]);
});

// ---------------------------------------------------------------------------
// Cases the fuzzer found, pinned down so that they run every time.

describe('journal bad input: cases the fuzzer found', () => {
  function judged(kind: 'one' | 'two', args: string[], prepare?: (dir: string) => void, extra: Partial<Step> = {}): string[] {
    const tpl = templates[kind] as Template;
    const dir = setUp(tpl);
    try {
      prepare?.(dir);
      return problemsIn(dir, { args, readOnly: false, outputs: [], maxErrorLines: 1, images: [...tpl.files.keys()], ...extra });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('--maxphys 0 on a clean journal is refused, not an internal error', () => {
    const clean = (dir: string) => mustRun(dir, ['journal', 'sync', 'one.img']);
    expect(judged('one', ['--maxphys', '0', 'journal', 'write', '-i', 'c.bin', 'one.img'], clean)).toEqual([]);
  });

  it('a --maxphys no FreeBSD kernel uses does not make a healthy journal "broken" for -f to throw away', () => {
    // cli.md: --maxphys is 1M or 128k. With 0 or 4k the walk finds no
    // record, the pending journal looks broken, and sync -f reinitialises
    // it: the journaled provider loses every write still in the journal.
    for (const maxphys of ['0', '4k']) {
      const tpl = templates.one as Template;
      const dir = setUp(tpl);
      try {
        const provider = () => createHash('sha256').update(runGeomctl(['journal', 'read', 'one.img'], { cwd: dir }).stdout).digest('hex');
        const before = provider();
        const r = runGeomctl(['--maxphys', maxphys, 'journal', 'sync', '-f', 'one.img'], { cwd: dir });
        expect({ maxphys, provider: provider() }, r.stderr).toEqual({ maxphys, provider: before });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('a FIFO input with no writer does not keep a bad image from being reported', () => {
    const fifo = (dir: string) => replace(join(dir, 'in.fifo'), 'fifo');
    expect(judged('two', ['journal', 'write', '-i', 'in.fifo', 'nosuch.img'], fifo)).toEqual([]);
    expect(judged('two', ['journal', 'write', '-i', 'in.fifo', 'in.fifo'], fifo)).toEqual([]);
  }, 60_000);

  it('an unusable -i (a directory) fails with one message, before replaying the journal', () => {
    expect(judged('one', ['journal', 'write', '-i', 'sub', 'one.img'])).toEqual([]);
  });

  it.skipIf(!HAS_DEV_FULL)('an output that fails with ENOSPC (/dev/full) is an I/O error, not an internal error', () => {
    expect(judged('two', ['journal', 'read', '-l', '512', '-O', '/dev/full', 'd.img', 'j.img'], undefined, { readOnly: true })).toEqual([]);
    expect(judged('two', ['journal', 'read', '-l', '1M', 'd.img', 'j.img'], undefined, { readOnly: true, stdoutFull: true })).toEqual([]);
  });

  it('an image name with a newline still gives a one-line message', () => {
    expect(judged('two', ['journal', 'dump', 'new\nline.img'])).toEqual([]);
    expect(judged('two', ['journal', 'read', '-l', '512', 'd.img', 'new\nline.img'])).toEqual([]);
  });

  it('stdin longer than the journaled provider is an error before anything changes', () => {
    // journal.md, "write": "Past the end is an error before anything changes"
    // — with stdin the length is only known at its end, so it must be read
    // (or spooled) before journals are finished and copied.
    const dir = mkdtempSync(join(base, 'stdin-'));
    try {
      emptyImage(join(dir, 'd.img'), 16 * M);
      emptyImage(join(dir, 'j.img'), 6 * M);
      mustRun(dir, ['--maxphys', '128k', 'journal', 'label', 'd.img', 'j.img']);
      const provider = () => createHash('sha256').update(runGeomctl(['journal', 'read', 'd.img', 'j.img'], { cwd: dir }).stdout).digest('hex');
      const before = provider();
      const r = runGeomctl(['--maxphys', '128k', 'journal', 'write', 'd.img', 'j.img'], { cwd: dir, input: pattern(16 * M + SECTOR, 6) });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^geomctl: .*\n$/);
      expect(provider()).toBe(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
