// Every --json document against its JSON Schema (schemas/, draft 2020-12;
// cli.md, "JSON"): real output of the built bin/geomctl on journals with one
// and two images, clean and dirty, virstor devices of one to three
// components, an incomplete one and one whose virtual offsets pass 2^53.
// Each document must be exactly one JSON value on stdout, carry its `command`,
// use lowerCamelCase keys only, and validate; the schemas themselves must be
// closed (a renamed field fails), describe every property, and cover every
// verb of the command tables.

import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage, flipByte } from '../helpers/cli.js';
import { FS, FS_METACKHASH, handSuperblock, SB_OFFSET, sbHash } from '../helpers/ufs.js';
import { journalClass } from '../../commands/journal.js';
import { virstorClass } from '../../commands/virstor.js';
import { topLevelCommands } from '../../commands/toplevel.js';

const M = 1024 * 1024;
const SCHEMA_DIR = resolve(__dirname, '../../schemas');
const COMMON = 'common.schema.json';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Doc = { [key: string]: Json };

const schemaFiles = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.schema.json'));
const schemas = new Map<string, Record<string, unknown>>(schemaFiles.map((f) => [f, JSON.parse(readFileSync(join(SCHEMA_DIR, f), 'utf8')) as Record<string, unknown>]));

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
for (const [, schema] of schemas) ajv.addSchema(schema);

/** "journal label" -> "journal-label.schema.json". */
function schemaFileOf(command: string): string {
  return `${command.replace(/ /g, '-')}.schema.json`;
}

/** Every key of every object in `value` that is not lowerCamelCase, with its path. */
function badKeys(value: Json, path = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => badKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(/^[a-z][a-zA-Z0-9]*$/.test(k) ? [] : [`${path}.${k}`]), ...badKeys(v, `${path}.${k}`)]);
}

function validate(command: string, doc: Json): string | undefined {
  const validator = ajv.getSchema(schemaFileOf(command));
  if (!validator) return `no schema ${schemaFileOf(command)}`;
  return validator(doc) ? undefined : ajv.errorsText(validator.errors, { separator: '\n' });
}

const s = scratch('geomctl-json-');
afterAll(() => s.cleanup());

/** The documents validated, by command: the coverage check and the mutation tests use them. */
const validated = new Map<string, Doc[]>();

/**
 * Runs `geomctl --json args` in the scratch directory and checks the document:
 * the exit status, stdout is one JSON document, its command, its keys, its schema.
 */
function json(args: string[], command: string, opts: { status?: number; input?: Buffer } = {}): Doc {
  const r = geomctl(['--json', ...args], { cwd: s.dir, ...(opts.input ? { input: opts.input } : {}) });
  const status = opts.status ?? 0;
  expect(r.status, `geomctl --json ${args.join(' ')}: ${r.stderr}`).toBe(status);
  // Success leaves stderr to warnings at most (notes are silent under --json).
  if (status === 0) expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('geomctl: warning: '))).toEqual([]);
  let doc: Doc;
  try {
    doc = JSON.parse(r.stdout) as Doc; // the whole of stdout: two documents would not parse
  } catch (err) {
    throw new Error(`geomctl --json ${args.join(' ')}: stdout is not one JSON document (${String(err)}):\n${r.stdout}`);
  }
  expect(typeof doc, 'a document is an object').toBe('object');
  expect(Array.isArray(doc)).toBe(false);
  expect(typeof doc.command).toBe('string');
  expect(doc.command).toBe(command);
  expect(badKeys(doc), 'keys that are not lowerCamelCase').toEqual([]);
  const errors = validate(command, doc);
  expect(errors, `${command} against ${schemaFileOf(command)}:\n${JSON.stringify(doc, null, 2)}`).toBeUndefined();
  validated.set(command, [...(validated.get(command) ?? []), doc]);
  return doc;
}

const J = (args: string[], opts?: { status?: number; input?: Buffer }) => json(['journal', ...args], `journal ${args.find((a) => !a.startsWith('-'))}`, opts);
const V = (args: string[], opts?: { status?: number; input?: Buffer }) => json(['virstor', ...args], `virstor ${args.find((a) => !a.startsWith('-'))}`, opts);

function plain(args: string[]): void {
  const r = geomctl(args, { cwd: s.dir });
  expect(r.status, r.stderr).toBe(0);
}

describe('the schemas', () => {
  it('are draft 2020-12, named after their $id, and compile', () => {
    expect(schemaFiles.length).toBeGreaterThan(20);
    for (const [file, schema] of schemas) {
      expect(schema.$schema, file).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.$id, file).toBe(file);
      expect(typeof schema.description, file).toBe('string');
      if (file !== COMMON) expect(ajv.getSchema(file), file).toBeTypeOf('function');
    }
  });

  it('describe every property and close every object (a renamed field fails)', () => {
    const problems: string[] = [];
    const walk = (node: unknown, where: string, openByDesign: boolean): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`, false));
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (o.properties && typeof o.properties === 'object') {
        for (const [k, v] of Object.entries(o.properties as Record<string, Record<string, unknown>>)) {
          if (typeof v.description !== 'string' || v.description.length < 3) problems.push(`${where}/properties/${k}: no description`);
        }
        // Open "…Fields" definitions are closed by the schemas that extend them (unevaluatedProperties).
        if (!openByDesign && o.additionalProperties !== false && o.unevaluatedProperties !== false) problems.push(`${where}: object is not closed`);
      }
      if (o.$ref && o.type === 'object' && o.unevaluatedProperties !== false && !openByDesign) problems.push(`${where}: extends ${String(o.$ref)} without closing it`);
      for (const [k, v] of Object.entries(o)) {
        if (k === '$defs') for (const [name, def] of Object.entries(v as Record<string, unknown>)) walk(def, `${where}/$defs/${name}`, name.endsWith('Fields'));
        else if (k !== 'properties') walk(v, `${where}/${k}`, false);
        else for (const [name, p] of Object.entries(v as Record<string, unknown>)) walk(p, `${where}/properties/${name}`, false);
      }
    };
    for (const [file, schema] of schemas) walk(schema, file, false);
    expect(problems).toEqual([]);
  });

  it('give every document a constant command named after the file', () => {
    for (const [file, schema] of schemas) {
      if (file === COMMON) continue;
      const props = schema.properties as Record<string, { const?: string }>;
      expect(props.command?.const, file).toBe(file.replace(/\.schema\.json$/, '').replace(/-/g, ' '));
      expect(schema.required as string[], file).toContain('command');
    }
  });

  it('exist for every verb of the command tables, and for nothing else', () => {
    const expected = [
      ...[journalClass, virstorClass].flatMap((cls) => cls.commands.map((c) => schemaFileOf(`${cls.name} ${c.name}`))),
      ...topLevelCommands([journalClass, virstorClass]).map((c) => schemaFileOf(c.name)),
    ].sort();
    expect(schemaFiles.filter((f) => f !== COMMON).sort()).toEqual(expected);
  });

  it('accept 64-bit values as numbers or digit strings, and nothing else', () => {
    const u64 = ajv.getSchema(`${COMMON}#/$defs/u64`);
    expect(u64).toBeTypeOf('function');
    for (const good of [0, 512, Number.MAX_SAFE_INTEGER, '18446744073709551615']) expect(u64?.(good), String(good)).toBe(true);
    for (const bad of [-1, 1.5, '', '0x10', '-5', '1e3', null]) expect(u64?.(bad), String(bad)).toBe(false);
  });
});

describe('journal documents', () => {
  const data = randomBytes(3 * M);
  beforeAll(() => {
    sparseImage(s.path('j1.img'), 300 * M);
    sparseImage(s.path('d2.img'), 200 * M);
    sparseImage(s.path('j2.img'), 200 * M);
    sparseImage(s.path('jc.img'), 300 * M);
  });

  it('label, dump, list, status, scan and check of a clean one-image journal', () => {
    const label = J(['label', '-s', '100M', '--id', '1001', 'j1.img']);
    expect(label.images).toHaveLength(1);
    const dump = J(['dump', 'j1.img']);
    expect((dump.images as Doc[])[0]?.path).toBe('j1.img');
    const list = J(['list', 'j1.img']);
    expect((list.geoms as Doc[])[0]?.state).toBe('CLEAN');
    J(['status', 'j1.img']);
    J(['scan', 'j1.img']);
    J(['check', 'j1.img']);
  });

  it('write (dirty), list, status, scan --all, check and check -y of a dirty checksummed journal', () => {
    J(['label', '-c', '-s', '100M', '--id', '1002', 'jc.img']);
    const w = J(['write', 'jc.img'], { input: data });
    expect(w.state).toBe('DIRTY');
    const st = J(['status', 'jc.img']);
    expect((st.geoms as Doc[])[0]?.pendingJournals).toBeGreaterThan(0);
    J(['list']);
    const scan = J(['scan', '--all', 'jc.img']);
    expect((scan.found as Doc[]).length).toBeGreaterThan(0);
    J(['check', 'jc.img']);
    const fixed = J(['check', '-y', 'jc.img']);
    expect(fixed.repaired).toBeDefined();
  });

  it('label -J and tunefs -J of a UFS (a hand-made superblock with a check-hash), and list showing it', () => {
    const sb = handSuperblock();
    sb.writeInt32LE(sb.readInt32LE(FS.flags) | FS_METACKHASH, FS.flags);
    sb.writeUInt32LE(sbHash(sb), FS.ckhash);
    const content = Buffer.alloc(2 * M);
    sb.copy(content, SB_OFFSET);
    sparseImage(s.path('dt.img'), 2 * M + 512, content);
    sparseImage(s.path('jt.img'), 200 * M);
    const label = J(['label', '-J', '--id', '1005', 'dt.img', 'jt.img']);
    expect((label.gjournal as Doc).changed).toBe(true);
    expect(((J(['list', 'dt.img']).geoms as Doc[])[0]?.ufs as Doc).gjournal).toBe(true);
    const off = J(['tunefs', '-J', 'disable', 'dt.img']);
    expect(off.gjournal).toBe(false);
    expect(J(['tunefs', '-J', 'disable', 'dt.img']).changed).toBe(false);
  });

  it('a two-image journal: label, write --sync, write, read, export, sync, stop, scan, clear', () => {
    const label = J(['label', '--id', '1003', 'd2.img', 'j2.img']);
    expect(label.images).toHaveLength(2);
    J(['write', '--sync', '-o', '1M', 'd2.img', 'j2.img'], { input: data });
    J(['write', 'd2.img'], { input: data });
    J(['list', 'd2.img']);
    J(['scan', 'd2.img', 'j2.img']);
    const read = J(['read', '-o', '1M', '-l', '64k', '-O', 'read.out', 'd2.img']);
    expect(read.length).toBe(65536);
    J(['export', '-O', 'export.out', 'd2.img', 'j2.img']);
    const sync = J(['sync', 'd2.img']);
    expect((sync.recovery as Doc).action).toBe('replay');
    J(['write', 'd2.img', 'j2.img'], { input: data });
    J(['stop', 'd2.img', 'j2.img']);
    J(['dump', 'd2.img', 'j2.img']);
    J(['clear', 'd2.img', 'j2.img']);
  });

  it('check of a journal whose metadata does not decode: problems, no state, exit 1', () => {
    mkdirSync(s.path('odd'), { recursive: true });
    sparseImage(s.path('odd/bad.img'), 300 * M);
    plain(['journal', 'label', '-s', '100M', 'odd/bad.img']);
    flipByte(s.path('odd/bad.img'), -512 + 90); // inside md_hash
    const r = J(['check', 'odd/bad.img'], { status: 1 });
    expect((r.problems as string[]).length).toBeGreaterThan(0);
    const dump = J(['dump', 'j1.img', 'odd/bad.img'], { status: 1 });
    expect(dump.images).toHaveLength(1);
  });
});

describe('virstor documents', () => {
  beforeAll(() => {
    for (const n of ['v1a.img', 'v2a.img', 'v2b.img', 'v2c.img', 'inc0.img', 'inc1.img', 'gone.img']) sparseImage(s.path(n), 16 * M);
  });

  it('one component: label, write, map, check, read, export, stop, dump', () => {
    const label = V(['label', '-m', '1M', '-s', '64M', 'one', 'v1a.img']);
    expect(label.components).toHaveLength(1);
    const w = V(['write', '-o', '2M', 'one'], { input: randomBytes(M + 4096) });
    expect(w.newChunks).toBe(2);
    const map = V(['map', 'one']);
    expect((map.extents as Doc[]).length).toBe(1);
    V(['check', 'one']);
    V(['read', '-o', '2M', '-l', '4k', '-O', 'vread.out', 'one']);
    V(['export', '-O', 'vexport.out', 'one']);
    V(['stop', 'one']);
    V(['dump', 'v1a.img']);
  });

  it('two components, then three with add, then two with remove; --sparse writes', () => {
    V(['label', '-m', '1M', '-s', '128M', 'two', 'v2a.img', 'v2b.img']);
    const w = V(['write', '--sparse', 'two'], { input: Buffer.concat([randomBytes(M), Buffer.alloc(2 * M)]) });
    expect(w.skippedChunks).toBe(2);
    const add = V(['add', 'two', 'v2c.img']);
    expect((add.added as Doc[])[0]?.index).toBe(2);
    const st = V(['status', 'two']);
    expect((st.geoms as Doc[])[0]?.componentsOnline).toBe(3);
    V(['list', 'two']);
    V(['map', 'two']);
    const rm = V(['remove', 'two', 'v2c.img']);
    expect(rm.removed).toEqual(['v2c.img']);
    const stop = json(['virstor', 'destroy', 'two'], 'virstor destroy');
    expect((stop.devices as Doc[])[0]?.name).toBe('two');
    V(['dump', 'v2a.img', 'v2b.img', 'v2c.img'], { status: 1 }); // v2c.img was cleared by remove
  });

  it('an incomplete device: list and status show it without a provider', () => {
    V(['label', '-m', '1M', '-s', '64M', 'inc', 'inc0.img', 'inc1.img']);
    mkdirSync(s.path('away'), { recursive: true });
    renameSync(s.path('inc1.img'), s.path('away/inc1.img'));
    const list = V(['list', 'inc']);
    const geom = (list.geoms as Doc[])[0];
    expect(geom?.complete).toBe(false);
    expect(geom?.provider).toBeNull();
    V(['status']);
    V(['check', 'inc'], { status: 1 });
  });

  it('clear', () => {
    V(['label', '-m', '1M', '-s', '64M', 'gone', 'gone.img']);
    const r = V(['clear', 'gone.img']);
    expect(r.cleared).toEqual(['gone.img']);
  });

  it('virtual sizes and offsets past 2^53 are decimal strings', () => {
    mkdirSync(s.path('big'), { recursive: true });
    sparseImage(s.path('big/b0.img'), 17 * 1024 * M);
    const label = V(['label', '-m', '4095M', '-s', '9P', 'huge', 'big/b0.img']);
    expect(typeof label.virsize).toBe('string');
    // Map virtual chunk 2097665 (past 2^53 bytes) to physical chunk 3 by hand: no -o can reach it.
    const entry = Buffer.alloc(8);
    entry.writeUInt16LE(1, 0);
    entry.writeUInt32LE(3, 4);
    const fd = openSync(s.path('big/b0.img'), 'r+');
    writeSync(fd, entry, 0, 8, 2097665 * 8);
    closeSync(fd);
    const map = json(['-d', 'big', 'virstor', 'map', 'huge'], 'virstor map');
    const chunkSize = BigInt(map.chunkSize as number);
    expect((map.extents as Doc[])[0]?.offset).toBe((2097665n * chunkSize).toString());
    const list = json(['-d', 'big', 'virstor', 'list', 'huge'], 'virstor list');
    expect(typeof (list.geoms as Doc[])[0]?.virtualSize).toBe('string');
    json(['dump', 'big/b0.img'], 'dump');
  });
});

describe('top-level documents', () => {
  it('taste: both classes, an image without metadata, and one the kernel would ignore', () => {
    mkdirSync(s.path('odd'), { recursive: true });
    sparseImage(s.path('odd/plain.img'), M);
    // Hardcoded as hc.img, then renamed: the kernel would not take it as that component.
    sparseImage(s.path('odd/hc.img'), 16 * M);
    plain(['virstor', 'label', '-h', '-m', '1M', '-s', '64M', 'hc', 'odd/hc.img']);
    renameSync(s.path('odd/hc.img'), s.path('odd/renamed.img'));
    const r = json(['taste', 'j1.img', 'v1a.img', 'odd/plain.img', 'odd/renamed.img'], 'taste');
    const images = r.images as Doc[];
    expect(images.map((i) => i.class)).toEqual(['JOURNAL', 'VIRSTOR', null, 'VIRSTOR']);
    expect(typeof images[3]?.ignored).toBe('string');
    json(['taste', 'j1.img', 'missing.img'], 'taste', { status: 1 });
  });

  it('dump, list and status over both classes', () => {
    const d = json(['dump', 'j1.img', 'v1a.img'], 'dump');
    expect((d.images as Doc[]).map((i) => i.class)).toEqual(['JOURNAL', 'VIRSTOR']);
    const list = json(['list'], 'list');
    const classes = new Set((list.geoms as Doc[]).map((g) => g.class));
    expect(classes).toEqual(new Set(['JOURNAL', 'VIRSTOR']));
    json(['status'], 'status');
    json(['list', 'j1.img'], 'list');
    json(['status', 'v1a.img'], 'status');
  });

  it('serve', () => {
    const r = json(['serve', '-r', '--run', 'true', 'j1.img'], 'serve');
    expect(r.uri).toMatch(/^nbd\+unix:\/\/\/j1\.img\?socket=/);
  });

  it('completion', () => {
    const r = json(['completion', 'zsh'], 'completion');
    expect(r.script).toContain('compdef geomctl');
  });

  it('demo', { timeout: 180_000 }, () => {
    const r = json(['demo'], 'demo');
    expect(r.ok).toBe(true);
    expect((r.checks as Doc[]).length).toBeGreaterThan(10);
  });
});

describe('coverage and closure against the real documents', () => {
  it('every schema was checked against real output', () => {
    const unchecked = schemaFiles.filter((f) => f !== COMMON && ![...validated.keys()].some((c) => schemaFileOf(c) === f));
    expect(unchecked).toEqual([]);
  });

  it('renaming any field of any real document makes it invalid', () => {
    const survivors: string[] = [];
    for (const [command, docs] of validated) {
      for (const doc of docs) {
        // Every object inside the document, by path; rename its first key.
        const objects: { path: string; get: (d: Doc) => Doc }[] = [];
        const collect = (v: Json, path: string, get: (d: Doc) => Json): void => {
          if (Array.isArray(v)) v.forEach((x, i) => collect(x, `${path}[${i}]`, (d) => (get(d) as Json[])[i] as Json));
          else if (v && typeof v === 'object') {
            if (Object.keys(v).length) objects.push({ path, get: get as (d: Doc) => Doc });
            for (const [k, x] of Object.entries(v)) collect(x, `${path}.${k}`, (d) => (get(d) as Doc)[k] as Json);
          }
        };
        collect(doc, '$', (d) => d);
        for (const o of objects.slice(0, 200)) {
          const mutant = structuredClone(doc);
          const target = o.get(mutant);
          const [first] = Object.keys(target);
          if (first === undefined) continue;
          target[`${first}Renamed`] = target[first] as Json;
          delete target[first];
          if (validate(command, mutant) === undefined) survivors.push(`${command} ${o.path}.${first}`);
        }
      }
    }
    expect(survivors).toEqual([]);
  });
});
