// Black-box fuzzing of the virstor verbs with bad input (quality.md,
// "Reliability"): valid devices made by the built CLI — three components
// with data on all of them, and two hardcoded (-h) components with data on
// the first only — are corrupted (every metadata field of any component;
// count 0, chunk 0, virsize < chunk, absurd virsize and chunk size,
// duplicated and missing indices, provsize and hardcoded-name mismatches,
// names without NUL; map entries out of range or duplicated; stale
// components of another device of the same name; a symlink alias; truncated,
// grown, missing and non-file components; crashed transactions whose undo
// logs are intact, damaged or forged) and then 1-3 random verbs run on them,
// label included, with random and often absurd options. support.ts's judge()
// states what every outcome must satisfy; write, add, remove and label are
// all or nothing, so when they fail the images must be byte-identical. The
// last block pins down the cases the fuzzer found.

import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
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
  judge,
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
  runSteps,
  runWatched,
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

const K = 1024;
const M = 1024 * K;
type FileEntry = Entry & { kind: 'file' };

// ---------------------------------------------------------------------------
// virstor metadata (formats.md): 92 bytes at the start of the last sector.

const META_FIELDS = [
  { name: 'magic', offset: 0, size: 16, kind: 'string' },
  { name: 'version', offset: 16, size: 4, kind: 'uint' },
  { name: 'name', offset: 20, size: 16, kind: 'string' },
  { name: 'virsize', offset: 36, size: 8, kind: 'uint' },
  { name: 'chunk_size', offset: 44, size: 4, kind: 'uint' },
  { name: 'id', offset: 48, size: 4, kind: 'uint' },
  { name: 'count', offset: 52, size: 2, kind: 'uint' },
  { name: 'provider', offset: 54, size: 16, kind: 'string' },
  { name: 'no', offset: 70, size: 2, kind: 'uint' },
  { name: 'provsize', offset: 72, size: 8, kind: 'uint' },
  { name: 'chunk_count', offset: 80, size: 4, kind: 'uint' },
  { name: 'chunk_next', offset: 84, size: 4, kind: 'uint' },
  { name: 'chunk_reserved', offset: 88, size: 2, kind: 'uint' },
  { name: 'flags', offset: 90, size: 2, kind: 'uint' },
] as const;
type MetaFieldName = (typeof META_FIELDS)[number]['name'];
/** Map entries: flags u16, provider_no u16, provider_chunk u32. */
const MAP_FIELDS = { flags: { offset: 0, size: 2 }, provider_no: { offset: 2, size: 2 }, provider_chunk: { offset: 4, size: 4 } } as const;

interface Template {
  kind: 'three' | 'two';
  name: string;
  /** Components in index order. */
  components: string[];
  files: Map<string, FileEntry>;
  /** A device of the same name, another id and the same geometry (stale components). */
  stale: Map<string, FileEntry>;
  chunk: bigint;
  virsize: bigint;
  /** Virtual chunks whose map entry is allocated in the template. */
  allocated: number[];
}

const templates: Partial<Record<'three' | 'two', Template>> = {};
let base: string;
const tally = new Tally();

function metaOf(e: FileEntry): Buffer {
  return bytesAt(e, e.size - SECTOR, SECTOR);
}

function buildTemplate(kind: 'three' | 'two', name: string, sizes: number[], label: string[], writes: string[][]): Template {
  const build = (prefix: string, id: string, withWrites: boolean) => {
    const dir = mkdtempSync(join(base, `tpl-${prefix}-`));
    writeFileSync(join(dir, 'a.bin'), pattern(1_500_000, 1));
    writeFileSync(join(dir, 'b.bin'), pattern(300_000, 2));
    const names = sizes.map((_, i) => `${prefix}${i}.img`);
    names.forEach((n, i) => emptyImage(join(dir, n), sizes[i] as number));
    mustRun(dir, ['--maxphys', '128k', 'virstor', 'label', ...label, '--id', id, name, ...names]);
    if (withWrites) for (const w of writes) mustRun(dir, ['virstor', 'write', ...w, name]);
    return new Map(names.map((n) => [n, capture(join(dir, n)) as FileEntry]));
  };
  const prefix = kind === 'three' ? 'c' : 'a';
  const files = build(prefix, kind === 'three' ? '7' : '8', true);
  // The stale device's components carry the same file names, so that one can stand in for another.
  const staleFiles = build(prefix, '99', false);
  const c0 = files.get(`${prefix}0.img`) as FileEntry;
  const md = metaOf(c0);
  const chunk = readUint(md, 44, 4);
  const virsize = readUint(md, 36, 8);
  const map = bytesAt(c0, 0, Number((virsize / chunk) * 8n));
  const allocated: number[] = [];
  for (let i = 0; i * 8 < map.length; i++) if (((map[i * 8] as number) & 1) === 1) allocated.push(i);
  return { kind, name, components: [...files.keys()], files, stale: staleFiles, chunk, virsize, allocated };
}

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'geomctl-fuzz-virstor-'));
  // 128k chunks (labels use maxphys 128k), a 64 MiB device whose map fills one
  // chunk; two writes that fill c0 and spill onto c1 and c2.
  templates.three = buildTemplate('three', 'vs', [2 * M, 1 * M, 1536 * K], ['-m', '128k', '-s', '64M'], [
    ['-o', '1M', '-i', 'a.bin'],
    ['-o', '40M', '-i', 'a.bin'],
  ]);
  // 256k chunks, hardcoded names, data on a0 only: a1 can be removed.
  templates.two = buildTemplate('two', 'vt', [2 * M, 2 * M], ['-h', '-m', '256k', '-s', '32M'], [['-o', '0', '-i', 'b.bin']]);
  expect(templates.three.allocated.length).toBeGreaterThan(20);
  expect(templates.two.allocated.length).toBeGreaterThan(1);
}, 120_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// Corruptions

type Corruption =
  | { kind: 'meta'; component: number | 'all'; writes: { field: MetaFieldName; num?: Num; name?: string }[]; note: string }
  | { kind: 'metaBytes'; component: number; at: number; bytes: Uint8Array }
  | { kind: 'map'; entry: number; allocatedOnly: boolean; field: keyof typeof MAP_FIELDS; num: Num }
  | { kind: 'mapDuplicate'; from: number; to: number }
  | { kind: 'mapBytes'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; component: number; num: Num }
  | { kind: 'replace'; component: number; how: Replacement }
  | { kind: 'stale'; component: number; how: 'swap' | 'add' }
  | { kind: 'alias'; component: number }
  | { kind: 'crash'; verb: 'write' | 'add' | 'remove'; offset: number; fault: string; damage: UndoDamage }
  | { kind: 'forge'; forgery: Forgery };

const BASES = ['zero', 'one', 'orig', 'size', 'sector', 'chunk', 'virsize', 'chunks', 'count', 'max'] as const;
const n = (b: string, delta = 0n): Num => ({ base: b, delta });
const comp = fc.nat({ max: 2 });
const named = (note: string, component: number | 'all', writes: { field: MetaFieldName; num?: Num; name?: string }[]): Corruption => ({
  kind: 'meta',
  component,
  writes,
  note,
});
const oneOrAll = fc.oneof(comp, fc.constant('all' as const));

const namedScenarios: fc.Arbitrary<Corruption> = fc.oneof(
  oneOrAll.map((c) => named('count 0', c, [{ field: 'count', num: n('zero') }])),
  oneOrAll.map((c) => named('chunk 0', c, [{ field: 'chunk_size', num: n('zero') }])),
  fc.tuple(oneOrAll, fc.constantFrom(1n, 512n, 4096n)).map(([c, d]) => named('virsize < chunk', c, [{ field: 'virsize', num: n('chunk', -d) }])),
  fc.tuple(oneOrAll, fc.constantFrom(1n << 62n, (1n << 64n) - 1n, 1n << 50n)).map(([c, v]) => named('absurd virsize', c, [{ field: 'virsize', num: n('zero', v) }])),
  fc.tuple(oneOrAll, fc.constantFrom(1n, 100n, 1000n, 4096n, 1n << 31n, 0xffffffffn)).map(([c, v]) => named('odd chunk size', c, [{ field: 'chunk_size', num: n('zero', v) }])),
  comp.map((c) => named('name without NUL', c, [{ field: 'name', name: '<no NUL>' }])),
  comp.map((c) => named('magic without NUL', c, [{ field: 'magic', name: '<no NUL>' }])),
  comp.map((c) => named('hardcoded name mismatch', c, [{ field: 'provider', name: 'other.img' }])),
  comp.map((c) => named('hardcoded name without NUL', c, [{ field: 'provider', name: '<no NUL>' }])),
  fc.tuple(comp, comp).map(([c, to]) => named('duplicated index', c, [{ field: 'no', num: n('zero', BigInt(to)) }])),
  fc.tuple(comp, fc.constantFrom(3n, 4n, 100n, 65535n)).map(([c, no]) => named('index out of range', c, [{ field: 'no', num: n('zero', no) }])),
  fc.tuple(oneOrAll, fc.constantFrom(1n, 2n, 4n, 65535n)).map(([c, k]) => named('count disagrees', c, [{ field: 'count', num: n('zero', k) }])),
  fc.tuple(comp, fc.constantFrom(-512n, 512n, -1n, 1n, -(1n << 20n))).map(([c, d]) => named('provsize != image size', c, [{ field: 'provsize', num: n('size', d) }])),
  fc.tuple(oneOrAll, fc.constantFrom(0n, 1n, 0xffffn, 0xffffffffn), fc.constantFrom<MetaFieldName>('chunk_count', 'chunk_next', 'chunk_reserved')).map(([c, v, f]) =>
    named(`${f} absurd`, c, [{ field: f, num: n('zero', v) }]),
  ),
  fc.tuple(comp, fc.constantFrom(1n, -1n, 2n)).map(([c, d]) => named('chunk_count off by some', c, [{ field: 'chunk_count', num: n('chunks', d) }])),
  fc.tuple(oneOrAll, fc.nat({ max: 0xffff })).map(([c, f]) => named('flags', c, [{ field: 'flags', num: n('zero', BigInt(f)) }])),
  fc.tuple(oneOrAll, fc.constantFrom(0n, 2n, 0xffffffffn)).map(([c, v]) => named('version', c, [{ field: 'version', num: n('zero', v) }])),
  fc.tuple(comp, fc.bigInt({ min: 0n, max: 0xffffffffn })).map(([c, id]) => named('id mismatch', c, [{ field: 'id', num: n('zero', id) }])),
);

const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 8, arbitrary: namedScenarios },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('meta' as const),
      component: oneOrAll,
      writes: fc.array(
        fc.record({
          field: fc.constantFrom(...META_FIELDS.map((f) => f.name)),
          num: numArb(BASES),
          name: fc.oneof(nameFieldArb, fc.constant('<self>'), fc.constantFrom('vs', 'vt', 'nosuch')),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      note: fc.constant('random fields'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('metaBytes' as const), component: comp, at: fc.nat({ max: 91 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      entry: fc.nat(),
      allocatedOnly: fc.boolean(),
      field: fc.constantFrom('flags', 'provider_no', 'provider_chunk', 'provider_chunk'),
      num: fc.oneof(
        numArb(['zero', 'one', 'orig', 'count', 'chunks', 'max']),
        fc.constantFrom(n('count'), n('chunks'), n('zero', 1n), n('zero'), n('orig', 1n), n('max')),
      ),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('mapDuplicate' as const), from: fc.nat(), to: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('mapBytes' as const), at: fc.nat({ max: 4095 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('truncate' as const),
      component: comp,
      num: fc.oneof(numArb(['zero', 'size', 'sector', 'chunk']), fc.constant(n('zero')), fc.constant(n('size', -1n))),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      component: comp,
      how: fc.constantFrom<Replacement>('dir', 'fifo', 'missing', 'empty', 'unreadable', 'devnull'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stale' as const), component: comp, how: fc.constantFrom('swap', 'add') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('alias' as const), component: comp }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      verb: fc.constantFrom('write', 'write', 'add', 'remove'),
      offset: fc.nat({ max: 31 }),
      fault: faultArb,
      damage: undoDamageArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forge' as const), forgery: forgeryArb }) },
);

function componentsOf(tpl: Template, c: number | 'all'): string[] {
  return c === 'all' ? tpl.components : [tpl.components[c % tpl.components.length] as string];
}

function anchors(tpl: Template, name: string, orig: bigint): Record<string, bigint> {
  const size = BigInt((tpl.files.get(name) as FileEntry).size);
  return {
    zero: 0n,
    one: 1n,
    orig,
    size,
    sector: BigInt(SECTOR),
    chunk: tpl.chunk,
    virsize: tpl.virsize,
    chunks: size / tpl.chunk,
    count: BigInt(tpl.components.length),
    max: (1n << 64n) - 1n,
  };
}

/** Applies one corruption in `dir`; returns the extra images it added. */
function apply(dir: string, tpl: Template, c: Corruption): { extra: string[]; unprivileged: boolean } {
  const path = (name: string) => join(dir, name);
  const isFile = (name: string) => capture(path(name)).kind === 'file';
  const metaAt = (name: string) => (tpl.files.get(name) as FileEntry).size - SECTOR;
  const c0 = tpl.components[0] as string;
  const none = { extra: [], unprivileged: false };
  switch (c.kind) {
    case 'meta':
      for (const name of componentsOf(tpl, c.component)) {
        if (!isFile(name)) continue;
        for (const w of c.writes) {
          const f = META_FIELDS.find((x) => x.name === w.field);
          if (!f) continue;
          const at = metaAt(name) + f.offset;
          const bytes =
            f.kind === 'string'
              ? nameFieldBytes(w.name ?? '', name)
              : uintBytes(resolveNum(w.num ?? n('orig'), anchors(tpl, name, readUint(readAt(path(name), at, f.size), 0, f.size))), f.size);
          writeAt(path(name), at, bytes);
        }
      }
      return none;
    case 'metaBytes': {
      const name = componentsOf(tpl, c.component)[0] as string;
      if (isFile(name)) writeAt(path(name), metaAt(name) + c.at, Buffer.from(c.bytes).subarray(0, 92 - c.at));
      return none;
    }
    case 'map': {
      if (!isFile(c0)) return none;
      const entries = Number(tpl.virsize / tpl.chunk);
      const entry = c.allocatedOnly ? (tpl.allocated[c.entry % tpl.allocated.length] as number) : c.entry % entries;
      const f = MAP_FIELDS[c.field];
      const at = entry * 8 + f.offset;
      const orig = readUint(readAt(path(c0), at, f.size), 0, f.size);
      writeAt(path(c0), at, uintBytes(resolveNum(c.num, anchors(tpl, c0, orig)), f.size));
      return none;
    }
    case 'mapDuplicate': {
      // Two virtual chunks mapped onto one physical chunk.
      if (!isFile(c0)) return none;
      const from = tpl.allocated[c.from % tpl.allocated.length] as number;
      const to = c.to % Number(tpl.virsize / tpl.chunk);
      writeAt(path(c0), to * 8, readAt(path(c0), from * 8, 8));
      return none;
    }
    case 'mapBytes':
      if (isFile(c0)) writeAt(path(c0), c.at % Number((tpl.virsize / tpl.chunk) * 8n), Buffer.from(c.bytes));
      return none;
    case 'truncate': {
      const name = componentsOf(tpl, c.component)[0] as string;
      if (!isFile(name)) return none;
      const size0 = BigInt((tpl.files.get(name) as FileEntry).size);
      let size = resolveNum(c.num, anchors(tpl, name, size0));
      if (size < 0n) size = 0n;
      const cap = size0 + 16n * BigInt(M);
      if (size > cap) size %= cap;
      truncateSync(path(name), Number(size));
      return none;
    }
    case 'replace':
      replace(path(componentsOf(tpl, c.component)[0] as string), c.how);
      return { extra: [], unprivileged: c.how === 'unreadable' };
    case 'stale': {
      const name = componentsOf(tpl, c.component)[0] as string;
      const stale = tpl.stale.get(name) as FileEntry;
      if (c.how === 'swap') {
        rmSync(path(name), { recursive: true, force: true });
        restore(path(name), stale);
        return none;
      }
      // The whole stale device beside the live one: same name, another id.
      const extra: string[] = [];
      for (const [other, e] of tpl.stale) {
        restore(path(`stale-${other}`), e);
        extra.push(`stale-${other}`);
      }
      return { extra, unprivileged: false };
    }
    case 'alias': {
      // A second name for a component in the tasted directory: one file, two names.
      rmSync(path('alias.img'), { force: true });
      symlinkSync(componentsOf(tpl, c.component)[0] as string, path('alias.img'));
      return { extra: ['alias.img'], unprivileged: false };
    }
    case 'crash': {
      // A transaction killed part way leaves a hot undo log, then damaged or not.
      const last = tpl.components[tpl.components.length - 1] as string;
      const args = {
        write: ['virstor', 'write', '-o', `${c.offset}M`, '-i', 'a.bin', tpl.name],
        add: ['virstor', 'add', tpl.name, 'spare.img'],
        remove: ['virstor', 'remove', tpl.name, last],
      }[c.verb];
      return { extra: crash(dir, args, c.fault, c.damage), unprivileged: false };
    }
    case 'forge':
      return { extra: forgeUndoLog(dir, c0, c.forgery), unprivileged: false };
  }
}

// ---------------------------------------------------------------------------
// Verbs

const READ_ONLY = ['dump', 'list', 'status', 'check', 'read', 'map', 'export', 'taste', 'top-dump', 'top-list', 'top-status'] as const;
const WRITING = ['write', 'stop', 'add', 'remove', 'clear', 'label'] as const;
type Verb = (typeof READ_ONLY)[number] | (typeof WRITING)[number];

interface VerbCase extends CommonOptions {
  verb: Verb;
  name: 'self' | 'other' | 'nosuch' | 'empty' | 'long' | 'self+nosuch' | 'newline';
  /** Which components (by index, 3 = a spare or stale image, 4 = a missing file). */
  images: number[];
  offset: string | null;
  length: string | null;
  /** A file name, or '<c0>': the first component. */
  output: string | null;
  input: 'a.bin' | 'zero.bin' | 'c.bin' | 'empty.bin' | 'missing.bin' | 'sub' | '<stdin>' | '<c0>' | '<c1>';
  stdinLength: number;
  /** read without -O: stdout to /dev/full */
  stdoutFull: boolean;
  sparse: boolean;
  force: boolean;
  hardcode: boolean;
  spareSize: number;
  /** label's options */
  chunkSize: string | null;
  virsize: string | null;
  id: string | null;
  sectorSize: string | null;
  maxphys: string | null;
}

const verbArb: fc.Arbitrary<VerbCase> = fc.record({
  verb: fc.constantFrom<Verb>(...READ_ONLY, ...WRITING, 'write', 'write', 'add', 'remove', 'read'),
  name: fc.oneof(
    { weight: 12, arbitrary: fc.constant('self' as const) },
    { weight: 1, arbitrary: fc.constantFrom('other', 'nosuch', 'empty', 'long', 'self+nosuch', 'newline') },
  ),
  images: fc.array(fc.constantFrom(0, 0, 1, 1, 2, 2, 3, 3, 4), { minLength: 0, maxLength: 3 }),
  offset: sometimes(sizeArb(['0', '512', '128k', '1M', '40M', '63M', '64M', '67108352', '32M', '100M']), 50),
  length: sometimes(sizeArb(['0', '512', '4k', '1M', '64M', '1']), 50),
  output: sometimes(fc.constantFrom('out.bin', 'out.bin', 'out.bin', 'out.bin', 'sub', 'nodir/out.bin', '.', '<c0>', '/dev/full'), 60),
  input: fc.constantFrom('a.bin', 'a.bin', 'a.bin', 'zero.bin', 'c.bin', 'empty.bin', 'missing.bin', 'sub', '<stdin>', '<stdin>', '<c0>', '<c1>'),
  stdoutFull: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 9, arbitrary: fc.constant(false) }),
  stdinLength: fc.constantFrom(0, 1, 511, 512, 4096, 200_000),
  sparse: fc.boolean(),
  force: fc.boolean(),
  hardcode: fc.boolean(),
  spareSize: fc.constantFrom(0, 512, 100 * K, 512 * K, 2 * M, 2 * M + 100, 3 * M),
  ...commonOptionArbs,
  chunkSize: sometimes(sizeArb(['128k', '256k', '1M', '4M', '0', '1', '512', '100k', '4G', '16E']), 60),
  virsize: sometimes(sizeArb(['1M', '32M', '64M', '1G', '2T', '1P', '8P', '16E', '0', '512', '128k']), 60),
  id: sometimes(fc.constantFrom('0', '1', '4294967295', '4294967296', '-1', 'abc', '0x10', '1e3', '99999999999999999999'), 30),
  sectorSize: sometimes(sizeArb(['512', '1024', '4096', '65536', '131072', '0', '513', '256']), 20),
  maxphys: sometimes(sizeArb(['128k', '1M', '64k', '2M', '0', '4k', '513']), 30),
});

function buildStep(tpl: Template, v: VerbCase, extra: string[], images: string[], unprivileged: boolean): { step: Step; name: string } {
  const other = tpl.kind === 'three' ? 'vt' : 'vs';
  const names = {
    self: [tpl.name],
    other: [other],
    nosuch: ['nosuch'],
    empty: [''],
    long: ['a-name-longer-than-15-bytes'],
    'self+nosuch': [tpl.name, 'nosuch'],
    // A name with a control character: the message must stay one line.
    newline: [`${tpl.name}\nx`],
  }[v.name];
  const imgs = v.images.map((i) => (i < tpl.components.length ? (tpl.components[i] as string) : i === 3 ? (extra[0] ?? 'spare.img') : 'nosuch.img'));
  const global = globalArgs(v);
  const fileArg = (f: string) => (f === '<c0>' ? (tpl.components[0] as string) : f === '<c1>' ? (tpl.components[1] as string) : f);
  const output = v.output === null ? null : fileArg(v.output);
  const local = v.verbose ? ['-v'] : [];
  let notes: RegExp | undefined;
  let outputs: string[] = [];
  let input: Buffer | undefined;
  let stdoutIsData = false;
  let stdoutFull = false;
  let maxErrorLines = 1;
  let atomicOnFailure = false;
  let args: string[];
  const first = names[0] as string;
  switch (v.verb) {
    case 'dump':
    case 'clear':
      args = ['virstor', v.verb, ...local, ...imgs];
      maxErrorLines = Math.max(1, imgs.length);
      break;
    case 'taste':
    case 'top-dump':
    case 'top-list':
    case 'top-status':
      args = [v.verb.replace('top-', ''), ...imgs];
      maxErrorLines = Math.max(1, imgs.length);
      break;
    case 'list':
    case 'status':
    case 'stop':
      args = ['virstor', v.verb, ...local, ...(v.verb === 'stop' && v.force ? ['-f'] : []), ...names];
      maxErrorLines = names.length;
      break;
    case 'check':
    case 'map':
      args = ['virstor', v.verb, ...local, first];
      break;
    case 'read': {
      args = ['virstor', 'read', ...local];
      if (v.offset !== null) args.push('-o', v.offset);
      // Without -l a read is the whole 32-64 MiB device: bound it.
      args.push('-l', v.length ?? '256k');
      const to = readDestination(output, v.stdoutFull);
      ({ outputs, stdoutIsData, stdoutFull } = to);
      args.push(...to.args, first);
      break;
    }
    case 'export':
      args = ['virstor', 'export', ...local, '-O', output ?? 'out.bin', first];
      outputs.push(output ?? 'out.bin');
      break;
    case 'write':
      args = ['virstor', 'write', ...local];
      if (v.offset !== null) args.push('-o', v.offset);
      if (v.input === '<stdin>') input = pattern(v.stdinLength, 9);
      else args.push('-i', fileArg(v.input));
      if (v.sparse) args.push('--sparse');
      args.push(first);
      atomicOnFailure = true;
      break;
    case 'add':
      args = ['virstor', 'add', ...local, ...(v.force ? ['-f'] : []), ...(v.hardcode ? ['-h'] : []), first, ...(imgs.length > 0 ? imgs : ['spare.img'])];
      atomicOnFailure = true;
      break;
    case 'remove':
      args = ['virstor', 'remove', ...local, first, ...(imgs.length > 0 ? imgs : [tpl.components[tpl.components.length - 1] as string])];
      atomicOnFailure = true;
      break;
    case 'label':
      // gvirstor label's resizing notes and its WARNING are FreeBSD's own unprefixed lines.
      notes = /^(Resizing |New chunk size|WARNING: )/;
      if (v.maxphys !== null) global.push('--maxphys', v.maxphys);
      args = ['virstor', 'label', ...local];
      if (v.hardcode) args.push('-h');
      if (v.chunkSize !== null) args.push('-m', v.chunkSize);
      if (v.virsize !== null) args.push('-s', v.virsize);
      if (v.id !== null) args.push('--id', v.id);
      if (v.sectorSize !== null) args.push('--sectorsize', v.sectorSize);
      args.push(first, ...(imgs.length > 0 ? imgs : ['spare.img']));
      atomicOnFailure = true;
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
    atomicOnFailure,
    unprivileged,
    ...(input ? { input } : {}),
    ...(notes ? { notes } : {}),
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

/** A fresh directory with the template's images, the inputs and a spare image. */
function setUp(tpl: Template, spareSize: number): string {
  const dir = mkdtempSync(join(base, `${tpl.kind}-`));
  for (const [name, e] of tpl.files) restore(join(dir, name), e);
  writeFileSync(join(dir, 'a.bin'), pattern(200_000, 4));
  writeFileSync(join(dir, 'c.bin'), pattern(700, 5));
  writeFileSync(join(dir, 'zero.bin'), Buffer.alloc(512 * K));
  writeFileSync(join(dir, 'empty.bin'), Buffer.alloc(0));
  mkdirSync(join(dir, 'sub'));
  emptyImage(join(dir, 'spare.img'), spareSize);
  return dir;
}

function runCase(tpl: Template, c: Case): void {
  tally.cases++;
  // The image `add` gets: its size is the first verb's choice.
  const spareSize = c.verbs[0]?.spareSize ?? 2 * M;
  const dir = setUp(tpl, spareSize);
  try {
    const { extra, unprivileged } = corruptAll(dir, c.corruptions, (k) => apply(dir, tpl, k));
    const images = [...new Set([...tpl.files.keys(), 'spare.img', ...extra])];
    const recipe = `template ${tpl.kind} (device ${tpl.name}: ${tpl.components.join(', ')}; spare.img ${spareSize} bytes), corruptions ${showRecipe(c.corruptions)}`;
    runSteps(tally, 'virstor', dir, recipe, c.verbs.map((v) => buildStep(tpl, v, extra, images, unprivileged)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('virstor verbs on bad input (black box)', () => {
  fuzzTemplates('virstor', tally, caseArb, [
    { title: 'three components: exit 0/1/2, one message, no hang, read-only verbs change nothing, refusals change nothing', run: (c) => runCase(templates.three as Template, c) },
    { title: 'two hardcoded components: exit 0/1/2, one message, no hang, read-only verbs change nothing, refusals change nothing', run: (c) => runCase(templates.two as Template, c) },
  ]);
});

// ---------------------------------------------------------------------------
// Cases the fuzzer found, pinned down so that they run every time.

describe('virstor bad input: cases the fuzzer found', () => {
  function judged(args: string[], extra: Partial<Step> = {}): string[] {
    const tpl = templates.three as Template;
    const dir = setUp(tpl, 2 * M);
    try {
      return problemsIn(dir, { args, readOnly: false, outputs: [], maxErrorLines: 1, images: [...tpl.files.keys(), 'spare.img'], ...extra });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('read -O naming a component refuses, as export does, and leaves the component whole', () => {
    expect(judged(['virstor', 'read', '-l', '4k', '-O', 'c0.img', 'vs'], { readOnly: true, outputs: ['c0.img'] })).toEqual([]);
    expect(judged(['virstor', 'read', '-o', '64M', '-l', '4k', '-O', 'c0.img', 'vs'], { readOnly: true, outputs: ['c0.img'] })).toEqual([]);
  });

  it('a device or image name with a newline still gives a one-line message', () => {
    expect(judged(['virstor', 'status', 'vs\nx'])).toEqual([]);
    expect(judged(['virstor', 'read', '-l', '512', 'vs\nx'])).toEqual([]);
    expect(judged(['virstor', 'dump', 'new\nline.img'])).toEqual([]);
  });

  it('a FIFO input with no writer does not keep a bad device from being reported', () => {
    const tpl = templates.three as Template;
    const dir = setUp(tpl, 2 * M);
    try {
      replace(join(dir, 'in.fifo'), 'fifo');
      const j = judge(dir, { args: ['virstor', 'write', '-i', 'in.fifo', 'nosuch'], readOnly: false, outputs: [], maxErrorLines: 1, images: tpl.components });
      expect(j.problems).toEqual([]);
      expect(j.run.status).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('an endless stdin is refused once it passes the device, not spooled until the disk is full', async () => {
    const tpl = templates.three as Template;
    const dir = setUp(tpl, 2 * M);
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const zero = openSync('/dev/zero', 'r');
    try {
      // The device is 64 MiB: spooling four times that is already too much.
      const r = await runWatched(['virstor', 'write', 'vs'], { cwd: dir, watch: tmp, limit: 256 * M, stdin: zero });
      expect({ overLimit: r.overLimit, timedOut: r.timedOut, peakMiB: Math.ceil(r.peak / M) }).toEqual({ overLimit: false, timedOut: false, peakMiB: expect.any(Number) });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^geomctl: .*\n$/);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      closeSync(zero);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('an interrupted write (SIGINT while reading stdin) leaves no spool file behind', async () => {
    const tpl = templates.three as Template;
    const dir = setUp(tpl, 2 * M);
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    try {
      const started = Date.now();
      const r = await runWatched(['virstor', 'write', 'vs'], {
        cwd: dir,
        watch: tmp,
        limit: 256 * M,
        stdin: 'pipe',
        // Interrupt once it spools (or after 3 s if it does not).
        when: () => readdirSync(tmp).length > 0 || Date.now() - started > 3000,
        during: (pid) => process.kill(pid, 'SIGINT'),
      });
      expect(r.timedOut).toBe(false);
      expect(r.signal === 'SIGINT' || r.status !== 0).toBe(true);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
