// Replay (`journal sync`) of a journal holding 1,000,000 entries (quality.md:
// O(n log n), ≤ 3 s here; the kernel's queues are linked lists with O(n)
// insertion, geomctl's range sets must not be quadratic).
//
// The journal is built directly on a geomctl-labeled sparse image with the
// encoders of the independent kernel model (test/model/journal-kernel.ts,
// bundled to a temporary .mjs with esbuild): one journal of 50,000 records of
// 20 one-sector entries each, aimed at every other sector of a 1,024,000,000
// byte data area in a random order (nothing adjacent, nothing overlapping:
// one million ranges to insert and copy), then the header that finishes it
// and dirty metadata naming it. Before each run the dirty metadata sector is
// put back and the data area punched out again.
import { buildSync } from 'esbuild';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, geomctl, geomctlArgv, geomctlJson, reportLimit, rewindReplay, run, scratch, sparseFile, timeCommand } from './lib.mjs';

const ENTRIES = 1_000_000;
const PER_RECORD = 20;
const SS = 512;
const DATA_SIZE = 2 * ENTRIES * SS;
const JSIZE = 600 * 1024 * 1024;

/** The kernel model's encoders, compiled from TypeScript for this process. */
async function loadModel(dir) {
  const outfile = join(dir, 'journal-kernel.mjs');
  buildSync({ entryPoints: [join(ROOT, 'test', 'model', 'journal-kernel.ts')], bundle: true, platform: 'node', format: 'esm', outfile, logLevel: 'warning' });
  return import(pathToFileURL(outfile).href);
}

/** The I/O floor: one writeSync per entry, in offset order, then fsync (argv: image, entries, sector size). */
const FLOOR = `
const fs = require('node:fs');
const [img, n, ss] = process.argv.slice(1);
const fd = fs.openSync(img, 'r+');
const b = Buffer.alloc(Number(ss), 0x5a);
for (let k = 0; k < Number(n); k++) fs.writeSync(fd, b, 0, b.length, 2 * k * Number(ss));
fs.fsyncSync(fd);
`;

/** A random permutation of 0..n-1 (xorshift-driven Fisher–Yates, deterministic). */
function permutation(n, random) {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = random() % (i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Entry k's sector: its index and its complement, then filler. */
function fillEntry(buf, at, k) {
  buf.writeUInt32LE(k, at);
  buf.writeUInt32LE(~k >>> 0, at + 4);
  buf.fill(k & 0xff, at + 8, at + SS);
}

/** Writes the journal and dirty metadata; returns the dirty metadata sector. */
function buildJournal(model, img, imgSize) {
  const md = geomctlJson(['journal', 'dump', img]).images[0].metadata;
  const jstart = Number(md.jstart);
  const random = model.kRandom(20261122);
  const [idA, idB, idC] = [random(), random(), random()];
  const order = permutation(ENTRIES, random);
  const fd = openSync(img, 'r+');
  try {
    writeSync(fd, model.kEncodeHeader(idA, idB, SS), 0, SS, jstart);
    const recordBytes = SS + PER_RECORD * SS;
    const perBatch = 4096; // records per 44 MB write
    const buf = Buffer.alloc(perBatch * recordBytes);
    let pos = jstart + SS;
    for (let r0 = 0; r0 < ENTRIES / PER_RECORD; r0 += perBatch) {
      const n = Math.min(perBatch, ENTRIES / PER_RECORD - r0);
      for (let r = 0; r < n; r++) {
        const rec = pos + r * recordBytes;
        const entries = [];
        for (let e = 0; e < PER_RECORD; e++) {
          const k = order[(r0 + r) * PER_RECORD + e];
          entries.push({ joffset: rec + SS + e * SS, offset: 2 * k * SS, length: SS });
          fillEntry(buf, r * recordBytes + SS + e * SS, k);
        }
        model.kEncodeRecordHeader(idA, entries, undefined, SS).copy(buf, r * recordBytes);
      }
      writeSync(fd, buf, 0, n * recordBytes, pos);
      pos += n * recordBytes;
    }
    writeSync(fd, model.kEncodeHeader(idB, idC, SS), 0, SS, pos);
    const sector = Buffer.alloc(SS);
    readSync(fd, sector, 0, SS, imgSize - SS);
    const { md: kmd } = model.kDecodeMetadata(sector);
    const dirty = Buffer.alloc(SS);
    model.kEncodeMetadata({ ...kmd, joffset: jstart, jid: idA, flags: kmd.flags & ~model.GJ_FLAG_CLEAN }).copy(dirty);
    writeSync(fd, dirty, 0, SS, imgSize - SS);
    fsyncSync(fd);
    return dirty;
  } finally {
    closeSync(fd);
  }
}

/** Spot-checks that entries landed where they were aimed. */
function verify(img) {
  const fd = openSync(img, 'r');
  const sector = Buffer.alloc(SS);
  try {
    for (let i = 0; i < 1000; i++) {
      const k = Math.floor((i * ENTRIES) / 1000) + (i % 7);
      readSync(fd, sector, 0, SS, 2 * k * SS);
      if (sector.readUInt32LE(0) !== k || sector.readUInt32LE(4) !== (~k >>> 0)) throw new Error(`after the replay, sector ${2 * k} does not hold entry ${k}`);
    }
  } finally {
    closeSync(fd);
  }
}

export default async function journalMillion() {
  const s = scratch('jmillion');
  try {
    const model = await loadModel(s.dir);
    const imgSize = DATA_SIZE + JSIZE + SS;
    const img = sparseFile(s.path('data.img'), imgSize);
    geomctl(['journal', 'label', '-s', String(JSIZE), img]);
    const built = process.hrtime.bigint();
    const dirty = buildJournal(model, img, imgSize);
    console.log(`set-up: ${ENTRIES} entries in ${ENTRIES / PER_RECORD} records written in ${(Number(process.hrtime.bigint() - built) / 1e9).toFixed(1)} s`);
    const seconds = timeCommand(geomctlArgv('journal', 'sync', img), { runs: 3, setup: () => rewindReplay(img, imgSize - SS, dirty, DATA_SIZE) });
    verify(img);
    const ok = reportLimit('journal sync of 1,000,000 entries', seconds, 's', 3);
    // Not a target: what the same writes cost a bare Node loop (start-up, then
    // a million 512-byte writeSync calls in offset order, then one fsync),
    // to show how much of the time the I/O pattern itself takes on this machine.
    const floor = timeCommand([process.execPath, '-e', FLOOR, img, String(ENTRIES), String(SS)], {
      runs: 1,
      setup: () => run(['fallocate', '--punch-hole', '--offset', '0', '--length', String(DATA_SIZE), img]),
    });
    console.log(`  for scale: a bare Node loop writing the same ${ENTRIES} sectors in offset order, then fsync: ${floor.toFixed(3)} s`);
    return ok;
  } finally {
    s.cleanup();
  }
}
