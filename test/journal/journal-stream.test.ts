// The journal's fast paths for large reads and writes (quality.md,
// "Performance") must give exactly the bytes of the slow ones:
// - JournalDevice.readInto and readRange over its provider (one reused page-aligned
//   buffer, a one-range fast path) against read() and a byte model;
// - lent buffers (JournalWriter.write(…, true), writeFromFile's arena reused
//   request after request) that the caller refills once flushed;
// - the flush engine's direct read when nothing of an image is cached;
// - OutputFile.discard (a failed `journal read -O` leaves no half file);
// - Writeback: background fdatasyncs on a second descriptor, released on close.

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../src/engine/engine.js';
import { MemoryLogStore } from '../sim/memory-log.js';
import { JournalDevice } from '../../src/journal/device.js';
import { readRange, writeFromFile } from '../../src/io/transfer.js';
import type { BlockProvider } from '../../src/provider/block.js';
import { PIPE_PIECE } from '../../src/io/output-file.js';
import { minJournalSize } from '../../src/journal/format.js';
import { journalBlockProvider } from '../../src/journal/provider.js';
import { FILE_PIECE, OutputFile } from '../../src/io/output-file.js';
import { openImage } from '../../src/provider/file.js';
import { MemoryProvider } from '../sim/memory.js';
import { WRITEBACK_EVERY, Writeback } from '../../src/provider/writeback.js';
import { BIN, geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { K, M, labeled, providersOf, randomBytes } from './journal-engine-support.js';
import { GJ_FLAG_CLEAN, kJournaledContents, kRandom, kReadMetadata, type KDisk } from '../model/journal-kernel.js';

const s = scratch('geomctl-stream-');
afterAll(() => s.cleanup());

/** A journal device on the real flush engine (memory images, undo logs in memory). */
function openOn(disk: KDisk, maxphys: number, cacheLimit = 64 * M, seed = 1): JournalDevice {
  const engine = createEngine({ providers: providersOf(disk), cacheLimit, logStore: new MemoryLogStore(), undoPath: '/sim/data.img.geomctl-undo' });
  return JournalDevice.open(engine, { maxphys, cacheLimit, random: kRandom(seed) });
}

/** What the journal provider reads with (src/journal/provider.ts): the device's readInto, nothing else. */
function readerOf(dev: JournalDevice): BlockProvider {
  const no = (): never => {
    throw new Error('only read');
  };
  return { name: 'data.img.journal', mediaSize: dev.dataSize, sectorSize: dev.sectorSize, writable: false, read: (o, t) => dev.readInto(o, t), write: no, zero: no, flush: no, extents: no, close: no };
}

/** The bytes `journal read` streams: readRange over the device's reads. */
function streamed(dev: JournalDevice, offset: number, length: number, pieceSize = PIPE_PIECE): Buffer {
  const parts: Buffer[] = [];
  let at = offset;
  readRange(readerOf(dev), offset, length, {
    pieceSize,
    write(chunk, o) {
      expect(offset + o).toBe(at);
      parts.push(Buffer.from(chunk)); // the buffer is reused: keep a copy
      at += chunk.length;
    },
  });
  expect(at).toBe(offset + length);
  return Buffer.concat(parts);
}

/** Every way of reading [offset, offset + length) gives the model's bytes. */
function checkReads(dev: JournalDevice, model: Buffer, offset: number, length: number): void {
  const want = model.subarray(offset, offset + length);
  expect(dev.read(offset, length).equals(want)).toBe(true);
  expect(streamed(dev, offset, length).equals(want)).toBe(true);
  // Pieces for a file or /dev/null (read's stdout): the same bytes.
  expect(streamed(dev, offset, length, FILE_PIECE).equals(want)).toBe(true);
  const ss = dev.sectorSize;
  const a = Math.ceil(offset / ss) * ss;
  const b = Math.floor((offset + length) / ss) * ss;
  if (b > a) {
    const into = Buffer.alloc(b - a, 0xee);
    dev.readInto(a, into);
    expect(into.equals(model.subarray(a, b))).toBe(true);
  }
}

describe('reading the journaled provider', { timeout: 120_000 }, () => {
  it('read, readInto and readRange agree with a byte model, through every layer (owned and lent writes)', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 2 ** 31 }),
          two: fc.boolean(),
          maxphys: fc.constantFrom(16 * K, 64 * K),
          writes: fc.integer({ min: 1, max: 60 }),
          cacheLimit: fc.constantFrom(64 * K, 64 * M),
          end: fc.constantFrom('open', 'finish', 'sync'),
        }),
        (p) => {
          const rnd = kRandom(p.seed);
          const ss = 512;
          const dataSize = 2 * M;
          const disk = labeled({ two: p.two, dataSize, jsize: minJournalSize(ss, p.maxphys) + 64 * K }, p.seed);
          // The data area starts with bytes of its own: reads must show them where no journal covers them.
          randomBytes(rnd, dataSize).copy(disk.d);
          const model = Buffer.from(disk.d.subarray(0, dataSize));
          const dev = openOn(disk, p.maxphys, p.cacheLimit, p.seed);
          dev.recover(false);
          const w = dev.writer();
          const lent: Buffer[] = [];
          const randomRead = (): void => {
            const len = rnd() % 3 === 0 ? (1 + (rnd() % 3)) * PIPE_PIECE + (rnd() % 3) * ss : 1 + (rnd() % (64 * K));
            const off = rnd() % 2 === 0 ? (rnd() % Math.floor((dataSize - len) / ss)) * ss : rnd() % (dataSize - len);
            checkReads(dev, model, off, len);
          };
          for (let i = 0; i < p.writes; i++) {
            const len = (1 + (rnd() % 64)) * ss * (rnd() % 4 === 0 ? 8 : 1);
            const off = (rnd() % ((dataSize - len) / ss)) * ss;
            const data = randomBytes(rnd, len);
            data.copy(model, off);
            const lend = rnd() % 2 === 0;
            w.write(off, data, lend);
            if (lend) lent.push(data);
            if (rnd() % 4 === 0) randomRead();
            if (rnd() % 5 === 0) {
              // Once flushed, lent buffers are the caller's again: scribbling on them changes nothing.
              w.flush();
              for (const b of lent.splice(0)) b.fill(0xa5);
              randomRead();
            }
          }
          checkReads(dev, model, 0, dataSize);
          if (p.end === 'open') w.flush();
          if (p.end === 'finish') w.finish();
          if (p.end === 'sync') w.sync();
          for (const b of lent.splice(0)) b.fill(0x5a);
          checkReads(dev, model, 0, dataSize);
          if (p.end === 'open') return;
          // What reached the images: the kernel's replay, and a fresh open's read-only overlay.
          expect(kJournaledContents(disk, { maxphys: p.maxphys }).equals(model)).toBe(true);
          expect((kReadMetadata(disk.d, ss).flags & GJ_FLAG_CLEAN) !== 0).toBe(p.end === 'sync');
          const again = openOn(disk, p.maxphys);
          checkReads(again, model, 0, dataSize);
          checkReads(again, model, PIPE_PIECE - ss, PIPE_PIECE + 3 * ss);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('readInto refuses what is not whole sectors inside the provider', () => {
    const disk = labeled({ two: false, dataSize: M, jsize: minJournalSize(512, 16 * K) });
    const dev = openOn(disk, 16 * K);
    expect(() => dev.readInto(100, Buffer.alloc(512))).toThrow(RangeError);
    expect(() => dev.readInto(0, Buffer.alloc(100))).toThrow(RangeError);
    expect(() => dev.readInto(M - 512, Buffer.alloc(1024))).toThrow(RangeError);
  });
});

describe('writeFromFile into the journal provider: one arena, lent request by request', () => {
  it('writes an input many arenas long, with a partial last sector, exactly', () => {
    const maxphys = 16 * K; // arena: 20 requests of 16 KiB
    const disk = labeled({ two: false, dataSize: 2 * M, jsize: minJournalSize(512, maxphys) + 256 * K }, 7);
    const rnd = kRandom(7);
    randomBytes(rnd, 2 * M).copy(disk.d);
    const model = Buffer.from(disk.d.subarray(0, 2 * M));
    const input = randomBytes(rnd, 1200 * K + 100);
    const inputPath = s.path('input.bin');
    writeFileSync(inputPath, input);
    const offset = 4096;
    input.copy(model, offset);
    const dev = openOn(disk, maxphys);
    dev.recover(false);
    const fd = openSync(inputPath, 'r');
    try {
      expect(writeFromFile(journalBlockProvider(dev, () => {}), fd, inputPath, offset)).toBe(input.length);
    } finally {
      closeSync(fd);
    }
    checkReads(dev, model, 0, 2 * M);
    dev.writer().sync();
    expect(disk.d.subarray(0, 2 * M).equals(model)).toBe(true);
  });
});

describe('the flush engine reads an image with nothing cached straight through', () => {
  it('gives the image bytes, counts its blocks as misses, and still caches partial blocks', () => {
    const img = randomBytes(kRandom(3), 256 * K + 512);
    const p = new MemoryProvider('/sim/x.img', img);
    const e = createEngine({ providers: [p], cacheLimit: M, blockSize: 16 * K, logStore: new MemoryLogStore() });
    const whole = Buffer.alloc(128 * K);
    e.readInto(0, 64 * K, whole);
    expect(whole.equals(img.subarray(64 * K, 192 * K))).toBe(true);
    expect(e.stats.cacheMisses).toBe(8);
    // Up to the last sector (its own block) and including it.
    const tail = Buffer.alloc(32 * K + 512);
    e.readInto(0, 224 * K, tail);
    expect(tail.equals(img.subarray(224 * K))).toBe(true);
    // A sector read loads its block: the next sector of that block is a hit.
    expect(e.read(0, 512, 512).equals(img.subarray(512, 1024))).toBe(true);
    const hits = e.stats.cacheHits;
    expect(e.read(0, 1024, 512).equals(img.subarray(1024, 1536))).toBe(true);
    expect(e.stats.cacheHits).toBe(hits + 1);
    // With something cached, a dirty block's bytes win over the image's.
    e.write(0, 16 * K, Buffer.alloc(16 * K, 0x11), 'DATA');
    const mixed = Buffer.alloc(64 * K);
    e.readInto(0, 0, mixed);
    expect(mixed.subarray(16 * K, 32 * K).equals(Buffer.alloc(16 * K, 0x11))).toBe(true);
    expect(mixed.subarray(32 * K).equals(img.subarray(32 * K, 64 * K))).toBe(true);
  });
});

describe('OutputFile.discard', () => {
  it('removes the file it created, and nothing else', () => {
    const path = s.path('half.bin');
    const f = new OutputFile(path);
    f.write(Buffer.alloc(4096, 1), 0);
    f.discard();
    expect(existsSync(path)).toBe(false);

    // The path now names another file: that one stays.
    const moved = s.path('moved.bin');
    const g = new OutputFile(path);
    renameSync(path, moved);
    writeFileSync(path, 'someone else');
    g.discard();
    expect(readFileSync(path, 'utf8')).toBe('someone else');
    expect(existsSync(moved)).toBe(true);

    // Not a regular file: left alone.
    const n = new OutputFile('/dev/null');
    n.discard();
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);

    // An inherited descriptor is not ours to close.
    const fd = openSync(s.path('inherited.bin'), 'w');
    new OutputFile({ fd, name: 'inherited' }).discard();
    expect(writeSync(fd, 'still open')).toBe(10);
    closeSync(fd);
  });
});

describe('journal read -O', { timeout: 60_000 }, () => {
  it('a read that fails half-way leaves no half file, and says which file', () => {
    const img = sparseImage(s.path('r.img'), 8 * M + 100 * M + 512);
    expect(geomctl(['journal', 'label', '-s', '100M', img]).status).toBe(0);
    // RLIMIT_FSIZE with SIGXFSZ ignored: writes past 64 KiB of the output fail with EFBIG.
    const sh = `trap '' XFSZ; ulimit -f 128; exec "$0" "$@"`;
    const r = spawnSync('/bin/sh', ['-c', sh, process.execPath, BIN, 'journal', 'read', '-l', '1M', '-O', 'out.bin', 'r.img'], { cwd: s.dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: write of out\.bin at offset \d+ failed: EFBIG \(file too large\); .*ulimit -f.*; check the -O path/);
    expect(existsSync(s.path('out.bin'))).toBe(false);
    // The same read with room succeeds and keeps its file.
    const ok = geomctl(['journal', 'read', '-l', '1M', '-O', 'out.bin', 'r.img'], { cwd: s.dir });
    expect(ok.status, ok.stderr).toBe(0);
    expect(statSync(s.path('out.bin')).size).toBe(M);
  });

  it('an export that fails half-way leaves no half file either', () => {
    const img = sparseImage(s.path('x.img'), 8 * M + 100 * M + 512);
    expect(geomctl(['journal', 'label', '-s', '100M', img]).status).toBe(0);
    expect(geomctl(['journal', 'write', img], { input: Buffer.alloc(4096, 9) }).status).toBe(0);
    // 64 KiB of room: the data fits, sizing the file to the device does not (EFBIG).
    const sh = `trap '' XFSZ; ulimit -f 128; exec "$0" "$@"`;
    const r = spawnSync('/bin/sh', ['-c', sh, process.execPath, BIN, 'journal', 'export', '-O', 'x.raw', 'x.img'], { cwd: s.dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: truncate of x\.raw at offset \d+ failed: EFBIG/);
    expect(existsSync(s.path('x.raw'))).toBe(false);
  });

  it('an offset past the device is about the image: exit 1', () => {
    sparseImage(s.path('e.img'), 8 * M + 100 * M + 512);
    expect(geomctl(['journal', 'label', '-s', '100M', 'e.img'], { cwd: s.dir }).status).toBe(0);
    const r = geomctl(['journal', 'read', '-o', '9M', 'e.img'], { cwd: s.dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^geomctl: -o 9437184 is past the end of e\.img\.journal/);
  });
});

describe('Writeback', () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;

  it('an image provider starts fdatasyncs on a second descriptor and releases it once they are done', async () => {
    const n = WRITEBACK_EVERY / M + 1;
    const path = sparseImage(s.path('wb.img'), n * M);
    const before = fds();
    const p = openImage(path, { write: true });
    const chunk = randomBytes(kRandom(9), M);
    for (let i = 0; i < n; i++) p.write(i * M, chunk);
    expect(fds()).toBe(before + 2); // the image, and the second descriptor of its writeback
    p.barrier();
    p.close();
    await sleep(200);
    expect(fds()).toBe(before);
    const back = readFileSync(path);
    for (let i = 0; i < n; i++) expect(back.subarray(i * M, (i + 1) * M).equals(chunk)).toBe(true);
  });

  it('opens nothing for a path that no longer names the image', async () => {
    const path = sparseImage(s.path('wb2.img'), M);
    const st = statSync(path);
    const before = fds();
    const wb = new Writeback(path, { dev: st.dev, ino: st.ino + 1 }, 4096);
    wb.wrote(8192);
    expect(fds()).toBe(before);
    wb.close();
    const real = new Writeback(path, { dev: st.dev, ino: st.ino }, 4096);
    real.wrote(8192);
    expect(fds()).toBe(before + 1);
    real.close();
    await sleep(100);
    expect(fds()).toBe(before);
  });
});
