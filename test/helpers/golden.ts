// Golden transcripts, e2fsprogs-style: a test runs a fixed sequence of
// commands on images it builds the same way every time, and compares what
// they printed, whole, with a file in test/golden/. The little that differs
// from run to run (the scratch directory, random journal ids and what hashes
// them) is filtered by a normaliser first.
//
// A golden that is missing fails the test, unless GEOMCTL_UPDATE_GOLDEN=1,
// which writes (or rewrites) it: review the diff before committing it.
//
// To add one (e.g. a stack):
//   const s = scratch();
//   ... build the images under s.dir, with --id so ids are fixed ...
//   expectTranscript('stack.txt', s.dir, [['list'], ['journal', 'status', 'virstor/thin'], ...], { keep: ['<the --id values>'] });
// then run the test once with GEOMCTL_UPDATE_GOLDEN=1 and read the file it wrote.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { geomctl } from './cli.js';

export const GOLDEN_DIR = join(__dirname, '..', 'golden');

/**
 * Random ids geomctl prints, each as (text before)(the id): journal ids
 * (chosen at every journal switch) and what hashes them (the metadata's MD5
 * covers md_jid). Device ids are not among them: tests label with --id.
 */
export const RANDOM_IDS: readonly RegExp[] = [
  /(\bheader {2}id )(\d+)/g,
  /(\bheader {2}id \d+ next )(\d+)/g,
  /(\brecord {2}journal )(\d+)/g,
  /(\bmd_jid )(\d+)/g,
  /(\(id )(\d+)/g,
  /(^ +jid: )(\d+)/gm,
  /(^ +MD5 hash: )([0-9a-f]{32})/gm,
  /("(?:jid|id|nextId|journalId)": )(\d+)/g,
  /("md5Hash": ")([0-9a-f]{32})/g,
];

export interface NormaliseOptions {
  /** Directories to print as $DIR (the scratch directory), longest first. */
  dirs?: readonly string[];
  /** Id patterns (before, id) whose ids become <id1>, <id2>, … in order of first appearance; RANDOM_IDS by default. */
  ids?: readonly RegExp[];
  /** Ids that stay as they are (e.g. a device's --id, which a pattern may also match). */
  keep?: readonly string[];
}

/**
 * The text with paths and random ids filtered. One id is one placeholder
 * wherever it appears, so a transcript still shows which header names which.
 */
export function normalise(text: string, opts: NormaliseOptions = {}): string {
  let out = text;
  for (const dir of [...(opts.dirs ?? [])].sort((a, b) => b.length - a.length)) out = out.split(dir).join('$DIR');
  const keep = new Set(opts.keep ?? []);
  // Every id found by any pattern, named in order of first appearance in the text.
  const found: { at: number; end: number; id: string }[] = [];
  for (const re of opts.ids ?? RANDOM_IDS) {
    for (const m of out.matchAll(re)) {
      const [, before = '', id = ''] = m;
      if (keep.has(id)) continue;
      const at = (m.index ?? 0) + before.length;
      found.push({ at, end: at + id.length, id });
    }
  }
  found.sort((a, b) => a.at - b.at);
  const names = new Map<string, string>();
  let result = '';
  let done = 0;
  for (const f of found) {
    if (f.at < done) continue; // matched by two patterns
    if (!names.has(f.id)) names.set(f.id, `<id${names.size + 1}>`);
    result += out.slice(done, f.at) + names.get(f.id);
    done = f.end;
  }
  out = result + out.slice(done);
  return out;
}

/** Compares `actual` (already normalised) with test/golden/<name>, or writes it under GEOMCTL_UPDATE_GOLDEN=1. */
export function expectGolden(name: string, actual: string): void {
  const path = join(GOLDEN_DIR, name);
  if (process.env.GEOMCTL_UPDATE_GOLDEN === '1') {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) {
    throw new Error(`golden file test/golden/${name} is missing: run this test with GEOMCTL_UPDATE_GOLDEN=1 to write it, then review it`);
  }
  expect(actual, `output differs from test/golden/${name} (GEOMCTL_UPDATE_GOLDEN=1 rewrites it)`).toBe(readFileSync(path, 'utf8'));
}

export interface TranscriptOptions extends NormaliseOptions {
  /** Extra environment for every command. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs each command (geomctl's arguments) in `dir` and returns the
 * normalised transcript: the command line, its stdout, its stderr (marked)
 * and its exit status, for each in turn.
 */
export function transcript(dir: string, commands: readonly (readonly string[])[], opts: TranscriptOptions = {}): string {
  const parts = commands.map((args) => {
    const r = geomctl([...args], { cwd: dir, env: opts.env });
    const stderr = r.stderr === '' ? '' : `[stderr]\n${r.stderr}${r.stderr.endsWith('\n') ? '' : '\n'}`;
    const stdout = r.stdout === '' || r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n[no newline at end of stdout]\n`;
    return `$ geomctl ${args.join(' ')}\n${stdout}${stderr}[exit ${r.status}]\n`;
  });
  return normalise(parts.join('\n'), { ...opts, dirs: [dir, ...(opts.dirs ?? [])] });
}

/** transcript() compared with test/golden/<name> (or written under GEOMCTL_UPDATE_GOLDEN=1). */
export function expectTranscript(name: string, dir: string, commands: readonly (readonly string[])[], opts: TranscriptOptions = {}): void {
  expectGolden(name, transcript(dir, commands, opts));
}
