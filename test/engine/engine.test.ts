// Unit tests of the flush engine (flush-engine.md): undo once per range,
// the commit cycle's exact order of writes and barriers, eviction, cycles
// beyond the cache limit, critical errors, abort, and the undo log format.

import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openImage } from '../../src/provider/file.js';
import { createEngine } from '../../src/engine/engine.js';
import { crc32c, crc32cUpdate } from '../../src/util/crc32c.js';
import { MemoryLogStore } from '../sim/memory-log.js';
import { recoverImages } from '../../src/engine/recovery.js';
import { decodeHeader, encodeHeader, encodeRecord, readerRange, scanRecords } from '../../src/engine/undo-format.js';
import type { LogReader } from '../../src/engine/undo-store.js';
import { GeomError, IoError } from '../../src/errors.js';
import { FaultCounter } from '../../src/provider/fault.js';
import { MemoryProvider } from '../sim/memory.js';
import { DIR, engineOver, filled, makeWorld, recoverState } from './engine-support.js';

const LOG = `${DIR}/c0.img.geomctl-undo`;

/** The timeline as short strings: "w0@512+1024", "b1", "log:create", ... */
function trace(w: ReturnType<typeof makeWorld>): string[] {
  return w.world.timeline().map((t) => {
    if (t.source === 'log') return `log:${t.op.kind}`;
    const e = t.event;
    return e.kind === 'write' ? `w${e.image}@${e.offset}+${e.data.length}` : `b${e.image}`;
  });
}

function readerOf(buf: Buffer): LogReader {
  return { size: buf.length, read: (o, l) => Buffer.from(buf.subarray(o, o + l)), close: () => {} };
}

describe('crc32c', () => {
  it('matches the standard check value and chains', () => {
    const data = Buffer.from('123456789');
    expect(crc32c(data)).toBe(0xe3069283);
    expect(crc32c(data.subarray(4), crc32c(data.subarray(0, 4)))).toBe(0xe3069283);
    // The raw register: ~crc32cUpdate(~0, x) is the standard CRC.
    expect(~crc32cUpdate(0xffffffff, data) >>> 0).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa);
  });
});

describe('undo log format', () => {
  const images = [
    { path: 'c0.img', abs: '/x/c0.img', size: 1 << 20, dev: 2049, ino: 12 },
    { path: 'dir/ünï.img', abs: '/x/dir/ünï.img', size: 4096, dev: 2049, ino: 2 ** 40 },
  ];
  const nonce = Buffer.from('0123456789abcdef', 'hex');

  it('round-trips the header and refuses a damaged one', () => {
    const h = encodeHeader(nonce, images);
    expect(h.length % 512).toBe(0);
    const d = decodeHeader(readerRange(readerOf(h)));
    expect(d?.images).toEqual(images);
    expect(d?.nonce.equals(nonce)).toBe(true);
    for (const at of [0, 9, 20, 40, 100]) {
      const bad = Buffer.from(h);
      bad[at] = (bad[at] as number) ^ 1;
      expect(decodeHeader(readerRange(readerOf(bad)))).toBeUndefined();
    }
    expect(decodeHeader(readerRange(readerOf(h.subarray(0, 100))))).toBeUndefined();
  });

  it('trusts records up to the first torn, foreign or out-of-range one', () => {
    const h = encodeHeader(nonce, images);
    const r1 = encodeRecord(nonce, 0, 512, 512, filled(512, 7));
    const r2 = encodeRecord(nonce, 1, 0, 4096, undefined);
    const r3 = encodeRecord(nonce, 0, 1024, 1024, filled(1024, 9));
    const header = decodeHeader(readerRange(readerOf(h)))!;
    const all = Buffer.concat([h, r1, r2, r3]);
    expect(scanRecords(readerOf(all), header).map((r) => [r.image, r.offset, r.length, r.zero])).toEqual([
      [0, 512, 512, false],
      [1, 0, 4096, true],
      [0, 1024, 1024, false],
    ]);
    // A torn tail: the last record cut short.
    expect(scanRecords(readerOf(all.subarray(0, all.length - 1)), header)).toHaveLength(2);
    // A flipped payload bit in the middle stops the scan there.
    const flipped = Buffer.from(all);
    flipped[h.length + 40] = (flipped[h.length + 40] as number) ^ 0x10;
    expect(scanRecords(readerOf(flipped), header)).toHaveLength(0);
    // A record of another transaction (another nonce) is not trusted.
    const foreign = encodeRecord(Buffer.alloc(8), 0, 0, 512, filled(512, 3));
    expect(scanRecords(readerOf(Buffer.concat([h, r1, foreign, r3])), header)).toHaveLength(1);
    // Out of the image: refused.
    const outside = encodeRecord(nonce, 1, 4096, 512, undefined);
    expect(scanRecords(readerOf(Buffer.concat([h, outside])), header)).toHaveLength(0);
  });
});

describe('engine: modify and undo', () => {
  it('records the old bytes of a range once per transaction, compactly when they are zero', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }, { size: 64 * 1024, fill: 'zero' }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 512, filled(512, 2), 'META');
    e.write(0, 512, filled(512, 3), 'META'); // same range: no new record
    e.write(0, 0, filled(1024, 4), 'META'); // only [0, 512) is new
    e.write(1, 4096, filled(8192, 5), 'META'); // old bytes zero: one compact record
    e.write(1, 12288, filled(512, 6), 'META'); // zero and adjacent: merged into it
    e.write(0, 60 * 1024, filled(512, 8), 'DATA'); // no undo for DATA
    e.commit();
    expect(e.stats.undoRecords).toBe(3);
    // Two records with 512 old bytes each, one without payload: 3 headers of 32 bytes + 1024.
    expect(e.stats.undoBytes).toBe(3 * 32 + 1024);
    // The log held exactly these records while the transaction ran.
    const append = w.world.logs.ops.find((o) => o.op.kind === 'append')?.op;
    const logBytes = w.world.logs.crashState(w.world.logs.ops.findIndex((o) => o.op.kind === 'remove'), () => 0).get(LOG)!;
    const header = decodeHeader(readerRange(readerOf(logBytes)))!;
    const records = scanRecords(readerOf(logBytes), header);
    expect(append).toBeDefined();
    expect(records.map((r) => [r.image, r.offset, r.length, r.zero])).toEqual([
      [0, 512, 512, false],
      [0, 0, 512, false],
      [1, 4096, 8704, true],
    ]);
    expect(logBytes.subarray(records[0]!.payloadAt, records[0]!.payloadAt + 512).equals(w.initial[0]!.subarray(512, 1024))).toBe(true);
    // After the commit the images hold the new bytes and the log is gone.
    const fin = w.world.sim.finalState();
    expect(fin[0]!.subarray(0, 1024).equals(filled(1024, 4))).toBe(true);
    expect(fin[1]!.subarray(4096, 12288).equals(filled(8192, 5))).toBe(true);
    expect(w.world.logs.files.size).toBe(0);
  });

  it("reads see the transaction's own unwritten changes, and the disk is untouched until commit", () => {
    const w = makeWorld([{ size: 32 * 1024, fill: 11 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 1024, filled(2048, 12), 'META');
    e.write(0, 32 * 1024 - 512, filled(512, 13), 'VOLUME');
    expect(e.read(0, 0, 4096).equals(Buffer.concat([w.initial[0]!.subarray(0, 1024), filled(2048, 12), w.initial[0]!.subarray(3072, 4096)]))).toBe(true);
    expect(e.read(0, 32 * 1024 - 512, 512).equals(filled(512, 13))).toBe(true);
    expect(w.world.sim.events).toHaveLength(0);
    e.commit();
    e.commit(); // nothing dirty: a no-op
    expect(w.world.sim.events.filter((x) => x.kind === 'write')).toHaveLength(2);
  });

  it('refuses unaligned and out-of-range requests without going critical', () => {
    const w = makeWorld([{ size: 8192, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    expect(() => e.write(0, 100, Buffer.alloc(512), 'META')).toThrow(IoError);
    expect(() => e.write(0, 8192, Buffer.alloc(512), 'DATA')).toThrow(/pass the end/);
    expect(() => e.read(0, 7680, 1024)).toThrow(/pass the end/);
    expect(e.critical).toBe(false);
  });
});

describe('engine: the commit cycle', () => {
  it('writes DATA, then the durable undo, then META, then VOLUME, with barriers between, and deletes the log last', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }, { size: 64 * 1024, fill: 2 }, { size: 64 * 1024, fill: 3 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20, blockSize: 4096, maxWrite: 16384 });
    const last = 64 * 1024 - 512;
    e.write(2, last, filled(512, 4), 'VOLUME');
    e.write(0, last, filled(512, 5), 'VOLUME');
    e.write(1, 8192, filled(512, 6), 'META');
    e.write(0, 4096, filled(512, 7), 'META');
    e.write(1, 40960, filled(1024, 8), 'DATA');
    e.write(2, 36864, filled(512, 9), 'DATA');
    e.write(0, 0, filled(512, 10), 'META');
    e.commit();
    expect(trace(w)).toEqual([
      // 1. DATA in (image, offset) order
      'w1@40960+1024',
      'w2@36864+512',
      // 2. the undo log: created, header + records appended, fsynced, its directory fsynced
      'log:create',
      'log:append',
      'log:sync',
      'log:syncdir',
      // 3. barrier on the images written in 1
      'b1',
      'b2',
      // 4. META, then VOLUME, in offset order
      'w0@0+512',
      'w0@4096+512',
      'w1@8192+512',
      'w0@' + last + '+512',
      'w2@' + last + '+512',
      // 5. barrier on the images written in 4
      'b0',
      'b1',
      'b2',
      // 6. the commit point
      'log:remove',
      'log:syncdir',
    ]);
  });

  it('combines neighbouring dirty sectors, across blocks, up to maxWrite', () => {
    const w = makeWorld([{ size: 128 * 1024, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20, blockSize: 4096, maxWrite: 16384 });
    for (let off = 0; off < 24 * 1024; off += 1024) e.write(0, off + 65536, filled(1024, off + 1), 'DATA');
    e.write(0, 2048, filled(512, 99), 'DATA');
    e.commit();
    const writes = trace(w).filter((t) => t.startsWith('w'));
    expect(writes).toEqual(['w0@2048+512', 'w0@65536+16384', 'w0@81920+8192']);
    expect(e.stats.combined).toBe(4); // 6 blocks in 2 writes
    expect(w.world.sim.finalState()[0]!.subarray(65536, 65536 + 1024).equals(filled(1024, 1))).toBe(true);
  });

  it('bulk DATA bypasses the cache, except blocks holding metadata changes', () => {
    const w = makeWorld([{ size: 128 * 1024, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20, blockSize: 4096, maxWrite: 16384, directWrite: 8192 });
    e.write(0, 40960, filled(512, 2), 'DATA'); // cached, then superseded by the direct write
    e.write(0, 49152, filled(512, 3), 'META'); // a metadata change in the middle of the range
    expect(e.read(0, 36864, 4096).equals(w.initial[0]!.subarray(36864, 40960))).toBe(true); // a clean cached block
    e.write(0, 32768, filled(32768, 4), 'DATA');
    // [32K, 48K) went at once; the block at 48K keeps its META sector and takes the rest as DATA; [52K, 64K) at once.
    expect(trace(w)).toEqual(['w0@32768+16384', 'w0@53248+12288']);
    expect(e.read(0, 32768, 32768).equals(filled(32768, 4))).toBe(true);
    e.commit();
    expect(trace(w).slice(2)).toEqual(['w0@49664+3584', 'log:create', 'log:append', 'log:sync', 'log:syncdir', 'b0', 'w0@49152+512', 'b0', 'log:remove', 'log:syncdir']);
    expect(w.world.sim.finalState()[0]!.subarray(32768, 65536).equals(filled(32768, 4))).toBe(true);
  });

  it('a transaction of only DATA needs no undo log', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 40960, filled(4096, 2), 'DATA');
    e.commit();
    expect(trace(w)).toEqual(['w0@40960+4096', 'b0']);
  });

  it('ordered writes go out at once, in call order, and barrier() fsyncs what was written', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }, { size: 64 * 1024, fill: 2 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 8192, filled(512, 3), 'META');
    expect(e.read(1, 4096, 512).equals(w.initial[1]!.subarray(4096, 4608))).toBe(true);
    e.writeOrdered(1, 4096, filled(512, 4));
    e.writeOrdered(0, 0, filled(512, 5));
    e.writeOrdered(0, 8192, filled(512, 6)); // over a dirty META sector: the ordered bytes win, the sector is clean
    expect(trace(w)).toEqual(['w1@4096+512', 'w0@0+512', 'w0@8192+512']);
    expect(e.read(1, 4096, 512).equals(filled(512, 4))).toBe(true);
    expect(e.read(0, 8192, 512).equals(filled(512, 6))).toBe(true);
    e.barrier();
    expect(trace(w).slice(3)).toEqual(['b0', 'b1']);
    e.barrier([1]);
    expect(trace(w).slice(5)).toEqual(['b1']);
    expect(e.stats.writes.ORDERED).toBe(3);
  });
});

describe('engine: memory', () => {
  it('evicts clean blocks (LRU) under the limit and reads read the disk again', () => {
    const w = makeWorld([{ size: 256 * 1024, fill: 5 }]);
    const e = engineOver(w, { cacheLimit: 16 * 1024, blockSize: 4096 });
    for (let off = 0; off < 200 * 1024; off += 512) {
      expect(e.read(0, off, 512).equals(w.initial[0]!.subarray(off, off + 512))).toBe(true);
    }
    expect(e.stats.evictions).toBeGreaterThan(30);
    expect(e.stats.cacheMisses).toBeGreaterThan(40);
    expect(e.stats.cacheHits).toBeGreaterThan(300);
    // A large read of uncached whole blocks goes straight to the image, in one read.
    const reads = e.stats.reads;
    expect(e.read(0, 0, 128 * 1024).equals(w.initial[0]!.subarray(0, 128 * 1024))).toBe(true);
    expect(e.stats.reads - reads).toBeLessThanOrEqual(3);
  });

  it('writes DATA early, in offset order, when dirty data exceeds the limit', () => {
    const w = makeWorld([{ size: 512 * 1024, fill: 'zero' }]);
    const e = engineOver(w, { cacheLimit: 32 * 1024, blockSize: 4096, maxWrite: 16384 });
    for (let off = 256 * 1024; off < 480 * 1024; off += 4096) e.write(0, off, filled(4096, off), 'DATA');
    const early = w.world.sim.events.filter((x) => x.kind === 'write').length;
    expect(early).toBeGreaterThan(0);
    const offsets = w.world.sim.events.map((x) => (x.kind === 'write' ? x.offset : -1));
    expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    e.commit();
    const fin = w.world.sim.finalState()[0]!;
    for (let off = 256 * 1024; off < 480 * 1024; off += 4096) expect(fin.subarray(off, off + 4096).equals(filled(4096, off))).toBe(true);
  });

  it('runs several cycles when metadata exceeds the limit: undo durable before each META write, one log until commit', () => {
    const w = makeWorld([{ size: 512 * 1024, fill: 3 }, { size: 64 * 1024, fill: 4 }]);
    const e = engineOver(w, { cacheLimit: 16 * 1024, blockSize: 4096, maxWrite: 16384 });
    for (let off = 0; off < 200 * 1024; off += 2048) e.write(0, off, filled(2048, off + 7), 'META');
    e.write(1, 64 * 1024 - 512, filled(512, 1), 'VOLUME');
    e.commit();
    const t = trace(w);
    expect(t.filter((x) => x === 'log:create')).toHaveLength(1);
    expect(t.filter((x) => x === 'log:remove')).toHaveLength(1);
    expect(t[t.length - 2]).toBe('log:remove');
    const syncs = t.filter((x) => x === 'log:sync').length;
    expect(syncs).toBeGreaterThan(3);
    // Every image write is preceded by a log sync after the latest log append.
    let durable = true;
    for (const x of t) {
      if (x === 'log:append') durable = false;
      if (x === 'log:sync') durable = true;
      if (x.startsWith('w')) expect(durable, `${x} before its undo was durable`).toBe(true);
    }
    const fin = w.world.sim.finalState();
    for (let off = 0; off < 200 * 1024; off += 2048) expect(fin[0]!.subarray(off, off + 2048).equals(filled(2048, off + 7))).toBe(true);
    // Any cut before the commit point rolls back to the old images.
    const removeAt = w.world.timeline().findIndex((x) => x.source === 'log' && x.op.kind === 'remove');
    const mid = w.world.crashState(removeAt, () => 0.9);
    const rec = recoverState(w, mid);
    expect(rec.recovered).toHaveLength(1);
    expect(rec.images[0]!.equals(w.initial[0]!)).toBe(true);
    expect(rec.images[1]!.equals(w.initial[1]!)).toBe(true);
  });
});

describe('engine: critical errors and abort', () => {
  it('a failed write makes the engine critical: an IoError naming image, offset and errno, nothing more written, the log kept', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }, { size: 64 * 1024, fill: 2 }]);
    // Write 1 is the log's first append (header and records); then META in offset order.
    const faults = new FaultCounter({ action: 'eio', on: 'write', n: 3 });
    const e = engineOver(w, { cacheLimit: 1 << 20, faults });
    e.write(0, 0, filled(512, 3), 'META');
    e.write(1, 4096, filled(512, 4), 'META');
    let err: unknown;
    try {
      e.commit();
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(IoError);
    const io = err as IoError;
    expect(io.message).toBe(`write of ${DIR}/c1.img at offset 4096 failed: EIO`);
    expect(io.hint).toMatch(/next geomctl command .* rolls this one back \(undo log \/sim\/c0\.img\.geomctl-undo\)/);
    expect(e.critical).toBe(true);
    const events = w.world.sim.events.length;
    expect(() => e.write(0, 512, Buffer.alloc(512), 'META')).toThrow(GeomError);
    expect(() => e.commit()).toThrow(/stopped writing/);
    expect(() => e.barrier()).toThrow(/stopped writing/);
    expect(w.world.sim.events.length).toBe(events);
    expect(w.world.logs.files.has(LOG)).toBe(true);
    // The next command rolls back.
    const state = { images: w.world.sim.finalState(), logs: new Map(w.world.logs.files) };
    const rec = recoverState(w, state);
    expect(rec.recovered).toEqual([LOG]);
    expect(rec.images[0]!.equals(w.initial[0]!)).toBe(true);
    expect(rec.images[1]!.equals(w.initial[1]!)).toBe(true);
    expect(rec.logsLeft).toBe(0);
  });

  it('abort before any metadata reached the disk deletes the log; after, it keeps it and stops', () => {
    const w = makeWorld([{ size: 256 * 1024, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 0, filled(4096, 2), 'META');
    e.abort();
    expect(w.world.sim.events).toHaveLength(0);
    expect(e.read(0, 0, 4096).equals(w.initial[0]!.subarray(0, 4096))).toBe(true);
    // The engine goes on: a new transaction.
    e.write(0, 4096, filled(512, 3), 'META');
    e.commit();
    expect(w.world.sim.finalState()[0]!.subarray(4096, 4608).equals(filled(512, 3))).toBe(true);

    const w2 = makeWorld([{ size: 256 * 1024, fill: 1 }]);
    const e2 = engineOver(w2, { cacheLimit: 8 * 1024, blockSize: 4096 });
    for (let off = 0; off < 64 * 1024; off += 4096) e2.write(0, off, filled(4096, off + 1), 'META');
    expect(w2.world.sim.events.some((x) => x.kind === 'write')).toBe(true);
    e2.abort();
    expect(w2.world.logs.files.has(LOG)).toBe(true);
    expect(() => e2.write(0, 0, Buffer.alloc(512), 'META')).toThrow(/aborted transaction/);
    const rec = recoverState(w2, { images: w2.world.sim.finalState(), logs: new Map(w2.world.logs.files) });
    expect(rec.images[0]!.equals(w2.initial[0]!)).toBe(true);
  });

  it('abort with nothing logged yet leaves no log behind', () => {
    const w = makeWorld([{ size: 64 * 1024, fill: 1 }]);
    const e = engineOver(w, { cacheLimit: 1 << 20 });
    e.write(0, 40960, filled(512, 2), 'DATA');
    e.write(0, 0, filled(512, 2), 'META');
    e.abort();
    expect(w.world.logs.ops).toHaveLength(0);
    expect(w.world.sim.events).toHaveLength(0);
  });
});

describe('engine over memory providers', () => {
  it('works with 4096-byte sectors and a single-sector image', () => {
    const big = new MemoryProvider('/m/a.img', filled(64 * 1024, 1), { mediaSectorSize: 4096 });
    const tiny = new MemoryProvider('/m/b.img', filled(512, 2));
    const store = new MemoryLogStore();
    const e = createEngine({ providers: [big, tiny], cacheLimit: 1 << 20, logStore: store });
    expect(() => e.write(0, 512, Buffer.alloc(512), 'META')).toThrow(/aligned/);
    e.write(0, 60 * 1024, filled(4096, 3), 'VOLUME');
    e.write(0, 4096, filled(8192, 4), 'META');
    e.write(1, 0, filled(512, 5), 'VOLUME');
    e.commit();
    expect(big.data.subarray(60 * 1024).equals(filled(4096, 3))).toBe(true);
    expect(tiny.data.equals(filled(512, 5))).toBe(true);
    expect(e.undoPath).toBe('/m/a.img.geomctl-undo');
    expect(store.files.size).toBe(0);
    const none = recoverImages({ store, providers: [big, tiny], dirs: [], write: true });
    expect(none.recovered).toEqual([]);
  });
});

describe('dataRegions', () => {
  it("adds the cache's unwritten changes to the medium's data regions", () => {
    const dir = mkdtempSync(join(tmpdir(), 'geomctl-regions-'));
    try {
      const path = join(dir, 'a.img');
      writeFileSync(path, Buffer.alloc(4096, 1));
      truncateSync(path, 4 << 20);
      const p = openImage(path, { write: true });
      const e = createEngine({ providers: [p], cacheLimit: 1 << 20, logStore: new MemoryLogStore() });
      try {
        expect(e.dataRegions(0, 0, 4 << 20)).toEqual([[0, 4096]]);
        // A small DATA write stays in the cache: the medium still has a hole there.
        e.write(0, 2 << 20, Buffer.alloc(512, 7), 'DATA');
        expect([...(p.dataRegions?.(2 << 20, 4096) ?? [])]).toEqual([]);
        const regions = e.dataRegions(0, 0, 4 << 20);
        expect(regions[0]).toEqual([0, 4096]);
        expect(regions.some(([s, end]) => s <= 2 << 20 && end >= (2 << 20) + 512)).toBe(true);
        e.commit();
        expect(e.dataRegions(0, (2 << 20) - 4096, 8192).some(([s, end]) => s <= 2 << 20 && end >= (2 << 20) + 512)).toBe(true);
      } finally {
        e.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
