// An independent model of FreeBSD's gjournal kernel class (sys/geom/journal/
// g_journal.c and g_journal.h), written from the kernel source and formats.md
// for the test suite only. It imports nothing from src/: its encoders, its
// queue and its MD5 are its own, so that geomctl and this model can check each
// other (quality.md, "Compatibility").
//
// What it models, synchronously and on in-memory images (Buffers):
// - gjournal label's metadata (sbin/geom/class/journal/geom_journal.c);
// - the worker's start: g_journal_initialize for a CLEAN device,
//   g_journal_sync's walk plus the copy of the inactive queue otherwise;
// - g_journal_access's "mark dirty" metadata update on first open for writing;
// - the write path: requests of at most maxphys inserted into the current
//   queue as g_journal_insert does, g_journal_optimize, and g_journal_flush
//   of records of at most `recordEntries` entries, with MD5 and the wrap rule;
// - g_journal_switch (header, inactive <- active, metadata at copy start,
//   the copy), g_journal_destroy (flush, switch, CLEAN);
// - g_journal_check_overflow's panic.
// A crash is simply: stop calling the model; `disk` is what is on disk.

import { createHash } from 'node:crypto';

export const GJ_TYPE_DATA = 1;
export const GJ_TYPE_JOURNAL = 2;
export const GJ_FLAG_CLEAN = 1;
export const GJ_FLAG_CHECKSUM = 2;
export const NENTRIES = 20;

// ---------------------------------------------------------------- encoders

export interface KMetadata {
  magic: string;
  version: number;
  id: number;
  type: number;
  jstart: number;
  jend: number;
  joffset: number;
  jid: number;
  flags: number;
  provider: string;
  provsize: number;
}

function md5(...parts: Buffer[]): Buffer {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** journal_metadata_encode: 101 bytes, MD5 of bytes 0..84 at 85. */
export function kEncodeMetadata(md: KMetadata): Buffer {
  const b = Buffer.alloc(101);
  b.write(md.magic, 0, 16, 'latin1');
  b.writeUInt32LE(md.version, 16);
  b.writeUInt32LE(md.id >>> 0, 20);
  b.writeUInt8(md.type, 24);
  b.writeBigUInt64LE(BigInt(md.jstart), 25);
  b.writeBigUInt64LE(BigInt(md.jend), 33);
  b.writeBigUInt64LE(BigInt(md.joffset), 41);
  b.writeUInt32LE(md.jid >>> 0, 49);
  b.writeBigUInt64LE(BigInt(md.flags), 53);
  b.write(md.provider, 61, 16, 'latin1');
  b.writeBigUInt64LE(BigInt(md.provsize), 77);
  md5(b.subarray(0, 85)).copy(b, 85);
  return b;
}

export function kDecodeMetadata(sector: Buffer): { md: KMetadata; hashOk: boolean } {
  const cstr = (off: number, len: number): string => {
    const raw = sector.subarray(off, off + len);
    const nul = raw.indexOf(0);
    return raw.subarray(0, nul < 0 ? len : nul).toString('latin1');
  };
  const md: KMetadata = {
    magic: cstr(0, 16),
    version: sector.readUInt32LE(16),
    id: sector.readUInt32LE(20),
    type: sector.readUInt8(24),
    jstart: Number(sector.readBigUInt64LE(25)),
    jend: Number(sector.readBigUInt64LE(33)),
    joffset: Number(sector.readBigUInt64LE(41)),
    jid: sector.readUInt32LE(49),
    flags: Number(sector.readBigUInt64LE(53)),
    provider: cstr(61, 16),
    provsize: Number(sector.readBigUInt64LE(77)),
  };
  return { md, hashOk: md5(sector.subarray(0, 85)).equals(sector.subarray(85, 101)) };
}

/** g_journal_header_encode into a zeroed sector. */
export function kEncodeHeader(id: number, nextId: number, sectorSize: number): Buffer {
  const b = Buffer.alloc(sectorSize);
  b.write('GJHDR\0', 0, 'latin1');
  b.writeUInt32LE(id >>> 0, 6);
  b.writeUInt32LE(nextId >>> 0, 10);
  return b;
}

export function kDecodeHeader(sector: Buffer): { id: number; nextId: number } | undefined {
  if (!sector.subarray(0, 6).equals(Buffer.from('GJHDR\0', 'latin1'))) return undefined;
  return { id: sector.readUInt32LE(6), nextId: sector.readUInt32LE(10) };
}

export interface KEntry {
  joffset: number;
  offset: number;
  length: number;
}

/** g_journal_record_header_encode into a zeroed sector. */
export function kEncodeRecordHeader(journalId: number, entries: KEntry[], sum: Buffer | undefined, sectorSize: number): Buffer {
  const b = Buffer.alloc(sectorSize);
  b.write('GJRHDR\0', 0, 'latin1');
  b.writeUInt32LE(journalId >>> 0, 7);
  b.writeUInt16LE(entries.length, 15);
  if (sum) sum.copy(b, 17, 0, 8);
  entries.forEach((e, i) => {
    const o = 25 + i * 24;
    b.writeBigUInt64LE(BigInt(e.joffset), o);
    b.writeBigUInt64LE(BigInt(e.offset), o + 8);
    b.writeBigUInt64LE(BigInt(e.length), o + 16);
  });
  return b;
}

/** g_journal_record_header_decode: magic, nentries <= 20, nothing else checked. */
export function kDecodeRecordHeader(sector: Buffer): { journalId: number; entries: KEntry[]; sum: Buffer } | undefined {
  if (!sector.subarray(0, 7).equals(Buffer.from('GJRHDR\0', 'latin1'))) return undefined;
  const n = sector.readUInt16LE(15);
  if (n > NENTRIES) return undefined;
  const entries: KEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = 25 + i * 24;
    entries.push({
      joffset: Number(sector.readBigUInt64LE(o)),
      offset: Number(sector.readBigUInt64LE(o + 8)),
      length: Number(sector.readBigUInt64LE(o + 16)),
    });
  }
  return { journalId: sector.readUInt32LE(7), entries, sum: Buffer.from(sector.subarray(17, 25)) };
}

// ---------------------------------------------------------------- disks

export interface KDisk {
  /** The data provider image (its last sector holds the metadata). */
  d: Buffer;
  /** The journal provider image: the same Buffer as `d` for a one-provider journal. */
  j: Buffer;
  sectorSize: number;
}

export interface KLabelOptions {
  sectorSize?: number;
  /** One image: its size and the journal size (gjournal label -s). */
  size: number;
  jsize?: number;
  /** Two images: the journal image's size (then `jsize` must be absent). */
  journalImageSize?: number;
  checksum?: boolean;
  id: number;
  hardcoded?: string;
}

/** gjournal label (geom_journal.c journal_label), on fresh zeroed images. */
export function kLabel(o: KLabelOptions): KDisk {
  const ss = o.sectorSize ?? 512;
  const flags = GJ_FLAG_CLEAN | (o.checksum ? GJ_FLAG_CHECKSUM : 0);
  const base = { magic: 'GEOM::JOURNAL', version: 0, id: o.id, joffset: 0, jid: 0, flags, provider: o.hardcoded ?? '' };
  const d = Buffer.alloc(o.size);
  if (o.journalImageSize === undefined) {
    const jsize = o.jsize ?? 1073741824;
    if (jsize + ss >= o.size) throw new Error('Provider too small for journalling.');
    const md = { ...base, type: GJ_TYPE_DATA | GJ_TYPE_JOURNAL, jstart: o.size - ss - jsize, jend: o.size - ss, provsize: o.size };
    kEncodeMetadata(md).copy(d, o.size - ss);
    return { d, j: d, sectorSize: ss };
  }
  const j = Buffer.alloc(o.journalImageSize);
  const jend = o.journalImageSize - ss;
  kEncodeMetadata({ ...base, type: GJ_TYPE_DATA, jstart: 0, jend, provsize: o.size }).copy(d, o.size - ss);
  kEncodeMetadata({ ...base, type: GJ_TYPE_JOURNAL, jstart: 0, jend, provsize: o.journalImageSize }).copy(j, o.journalImageSize - ss);
  return { d, j, sectorSize: ss };
}

export function kReadMetadata(image: Buffer, sectorSize: number): KMetadata {
  return kDecodeMetadata(image.subarray(image.length - sectorSize)).md;
}

/** The journaled provider's size (sc_mediasize). */
export function kDataSize(disk: KDisk): number {
  const md = kReadMetadata(disk.d, disk.sectorSize);
  return disk.d === disk.j ? md.jstart : disk.d.length - disk.sectorSize;
}

// ---------------------------------------------------------------- the queue

/** One bio in a queue: [offset, offset+length) of the data provider, at joffset in the journal. */
interface KBio {
  offset: number;
  length: number;
  joffset: number;
  data: Buffer | undefined;
}

/**
 * g_journal_insert over an array kept sorted by offset: the same case
 * analysis as the kernel's (new data wins; the old bios are trimmed, split or
 * reused). Returns the bytes skipped (kern.geom.journal.stats.skipped_bytes).
 */
function kInsert(q: KBio[], nstartIn: number, nend: number, joffsetIn: number, dataIn: Buffer | undefined): number {
  let nstart = nstartIn;
  let joffset = joffsetIn;
  let data = dataIn;
  let skipped = 0;
  const slice = (from: number, to: number): Buffer | undefined => (data ? Buffer.from(data.subarray(from - nstart, to - nstart)) : undefined);
  for (let i = 0; i < q.length; i++) {
    const c = q[i] as KBio;
    const cstart = c.offset;
    const cend = c.offset + c.length;
    if (nstart >= cend) {
      // entirely after the current bio
    } else if (nend <= cstart) {
      q.splice(i, 0, { offset: nstart, length: nend - nstart, joffset, data: slice(nstart, nend) });
      return skipped;
    } else if (nstart <= cstart && nend >= cend) {
      skipped += c.length;
      c.data = slice(nstart, cend);
      c.offset = nstart;
      c.joffset = joffset;
      c.length = cend - nstart;
      if (data) data = data.subarray(cend - nstart);
      joffset += cend - nstart;
      nstart = cend;
    } else if (nstart > cstart && nend >= cend) {
      skipped += cend - nstart;
      q.splice(i + 1, 0, { offset: nstart, length: cend - nstart, joffset, data: slice(nstart, cend) });
      c.length = nstart - cstart;
      if (c.data) c.data = c.data.subarray(0, c.length);
      if (data) data = data.subarray(cend - nstart);
      joffset += cend - nstart;
      nstart = cend;
      i++;
    } else if (nstart > cstart && nend < cend) {
      skipped += nend - nstart;
      const tail: KBio = {
        offset: nend,
        length: cend - nend,
        joffset: c.joffset + nend - cstart,
        data: c.data ? Buffer.from(c.data.subarray(nend - cstart)) : undefined,
      };
      q.splice(i + 1, 0, { offset: nstart, length: nend - nstart, joffset, data: slice(nstart, nend) }, tail);
      c.length = nstart - cstart;
      if (c.data) c.data = c.data.subarray(0, c.length);
      return skipped;
    } else {
      // nstart <= cstart && nend < cend
      skipped += nend - nstart;
      q.splice(i, 0, { offset: nstart, length: nend - nstart, joffset, data: slice(nstart, nend) });
      c.data = c.data ? Buffer.from(c.data.subarray(nend - cstart)) : undefined;
      c.joffset += nend - cstart;
      c.offset = nend;
      c.length = cend - nend;
      return skipped;
    }
    if (nstart === nend) return skipped;
  }
  q.push({ offset: nstart, length: nend - nstart, joffset, data: slice(nstart, nend) });
  return skipped;
}

/** g_journal_optimize: join neighbours holding data while they fit in maxphys. */
function kOptimize(q: KBio[], maxphys: number): number {
  let combined = 0;
  let p: KBio | undefined;
  for (let i = 0; i < q.length; i++) {
    const c = q[i] as KBio;
    if (!c.data) {
      p = undefined;
      continue;
    }
    if (!p || p.offset + p.length !== c.offset || p.length + c.length > maxphys) {
      p = c;
      continue;
    }
    p.data = Buffer.concat([p.data as Buffer, c.data]);
    p.length += c.length;
    q.splice(i, 1);
    i--;
    combined++;
  }
  return combined;
}

// ---------------------------------------------------------------- g_journal_sync

export interface KSyncResult {
  /** Terminations found ("found" in g_journal_sync). */
  found: number;
  /** The inactive queue: entries of every terminated journal, newest wins. */
  queue: { offset: number; length: number; joffset: number }[];
  /** Headers walked: the first one (md_joffset) and every termination. */
  headers: { offset: number; id: number; nextId: number }[];
  /** Records whose MD5 did not match (only logged by the kernel). */
  badSums: number[];
  /** found < 1 && joffset > 0: the kernel reinitialises and marks the UFS dirty. */
  broken: boolean;
  /** sc_active.jj_offset and sc_journal_offset after the walk (when found). */
  activeOffset: number;
  journalOffset: number;
  journalId: number;
  nextId: number;
}

export interface KWalkOptions {
  maxphys: number;
  /** Overrides the CHECKSUM flag of the metadata (the kernel only logs mismatches anyway). */
  checksum?: boolean;
}

/**
 * g_journal_sync, read-only: walk from md_joffset as the kernel does. Reads
 * that would fall outside the journal image end the walk as the kernel's read
 * error would.
 */
export function kSync(disk: KDisk, o: KWalkOptions): KSyncResult {
  const ss = disk.sectorSize;
  const md = kReadMetadata(disk.d, ss);
  const rmax = ss + NENTRIES * o.maxphys;
  const checksum = o.checksum ?? (md.flags & GJ_FLAG_CHECKSUM) !== 0;
  const read = (off: number, len: number): Buffer | undefined => (off >= 0 && off + len <= disk.j.length ? disk.j.subarray(off, off + len) : undefined);
  const res: KSyncResult = {
    found: 0,
    queue: [],
    headers: [],
    badSums: [],
    broken: false,
    activeOffset: 0,
    journalOffset: md.joffset,
    journalId: md.jid,
    nextId: 0,
  };
  let fbp: KBio[] = [];
  const inactive: KBio[] = [];
  let offset = md.joffset;
  const first = read(offset, ss);
  const jh = first ? kDecodeHeader(first) : undefined;
  if (jh && jh.id === md.jid) {
    res.headers.push({ offset, id: jh.id, nextId: jh.nextId });
    offset += ss;
    let id = jh.nextId;
    res.nextId = id;
    // The kernel's loop is unbounded; a stale but well-formed journal space
    // cannot loop because ids change, but guard the model anyway.
    for (let guard = 0; guard < 10_000_000; guard++) {
      if (offset + rmax >= md.jend) offset = md.jstart;
      const buf = read(offset, ss);
      if (!buf) break;
      const rh = kDecodeRecordHeader(buf);
      if (!rh) {
        const h = kDecodeHeader(buf);
        if (!h || h.id !== id) break;
        res.found++;
        res.headers.push({ offset, id: h.id, nextId: h.nextId });
        res.activeOffset = offset;
        res.journalOffset = offset + ss;
        res.journalId = id;
        id = h.nextId;
        res.nextId = id;
        for (const b of fbp) kInsert(inactive, b.offset, b.offset + b.length, b.joffset, undefined);
        fbp = [];
        offset += ss;
        continue;
      }
      offset += ss;
      const h = createHash('md5');
      for (const e of rh.entries) {
        kInsert(fbp, e.offset, e.offset + e.length, e.joffset, undefined);
        if (checksum) {
          const data = read(offset, e.length);
          if (data) h.update(data);
        }
        offset += e.length;
      }
      if (checksum && !h.digest().subarray(0, 8).equals(rh.sum)) res.badSums.push(offset);
    }
  }
  res.queue = inactive.map((b) => ({ offset: b.offset, length: b.length, joffset: b.joffset }));
  res.broken = res.found < 1 && md.joffset > 0;
  return res;
}

/** What the kernel's copy of the inactive queue does to the data provider, applied to a copy of `d`. */
export function kApply(disk: KDisk, sync: KSyncResult): Buffer {
  const d = Buffer.from(disk.d);
  const j = disk.d === disk.j ? d : disk.j;
  for (const q of sync.queue) {
    // The copy reads J before writing D; on one image the two never overlap.
    Buffer.from(j.subarray(q.joffset, q.joffset + q.length)).copy(d, q.offset);
  }
  return d;
}

/** The journaled provider as the kernel would show it after attaching: D with the terminated journals applied. */
export function kJournaledContents(disk: KDisk, o: KWalkOptions): Buffer {
  const md = kReadMetadata(disk.d, disk.sectorSize);
  const size = kDataSize(disk);
  if (md.flags & GJ_FLAG_CLEAN) return Buffer.from(disk.d.subarray(0, size));
  const sync = kSync(disk, o);
  return kApply(disk, sync).subarray(0, size);
}

// ---------------------------------------------------------------- the kernel at work

export interface KernelOptions {
  maxphys: number;
  /** kern.geom.journal.record_entries (1..20). */
  recordEntries?: number;
  /** Random 32-bit ids (arc4random). */
  random: () => number;
  /**
   * 'kernel': metadata updates write CLEAN only, dropping CHECKSUM, as
   * g_journal_metadata_update does. 'keep-checksum': keep the label's
   * CHECKSUM flag (geomctl's deliberate divergence), so that readers verify.
   */
  flagsPolicy?: 'kernel' | 'keep-checksum';
}

/** One running gjournal device, as the worker thread drives it, synchronously. */
export class KernelJournal {
  readonly disk: KDisk;
  readonly opts: Required<KernelOptions>;
  readonly md: KMetadata;
  readonly ss: number;
  readonly dataSize: number;
  readonly rmax: number;
  /** The journaled provider as the writer sees it: every write applied. */
  readonly logical: Buffer;
  /** `logical` at each termination this model wrote (the state a replay must reproduce). */
  readonly terminated: Buffer[] = [];
  clean: boolean;
  checksum: boolean;
  journalId = 0;
  nextId = 0;
  previousId = 0;
  journalOffset = 0;
  active = { offset: 0, queue: [] as KBio[] };
  inactive = { offset: 0, queue: [] as KBio[] };
  current: KBio[] = [];
  copying = false;
  stats = { skipped: 0, combined: 0, switches: 0, records: 0 };
  sync: KSyncResult | undefined;

  constructor(disk: KDisk, opts: KernelOptions) {
    this.disk = disk;
    this.opts = { recordEntries: NENTRIES, flagsPolicy: 'kernel', ...opts };
    this.ss = disk.sectorSize;
    this.md = kReadMetadata(disk.d, this.ss);
    this.dataSize = kDataSize(disk);
    this.rmax = this.ss + NENTRIES * opts.maxphys;
    this.clean = (this.md.flags & GJ_FLAG_CLEAN) !== 0;
    this.checksum = (this.md.flags & GJ_FLAG_CHECKSUM) !== 0;
    this.journalOffset = this.md.joffset;
    this.journalId = this.md.jid;
    this.previousId = this.md.jid;
    // The worker's start (g_journal_worker).
    if (this.clean) this.initialize();
    else this.resync();
    this.logical = Buffer.from(disk.d.subarray(0, this.dataSize));
  }

  private validate(off: number): number {
    return off + this.rmax >= this.md.jend ? this.md.jstart : off;
  }

  private writeJ(off: number, data: Buffer): void {
    if (off < 0 || off + data.length > this.disk.j.length) throw new Error(`model: journal write out of bounds at ${off}`);
    data.copy(this.disk.j, off);
  }

  private writeHeader(): void {
    this.writeJ(this.journalOffset, kEncodeHeader(this.journalId, this.nextId, this.ss));
    this.journalOffset += this.ss;
  }

  /** g_journal_initialize. */
  private initialize(): void {
    this.journalId = this.opts.random() >>> 0;
    this.nextId = this.opts.random() >>> 0;
    this.previousId = this.journalId;
    this.journalOffset = this.md.jstart;
    this.inactive.offset = this.md.jstart;
    this.writeHeader();
    this.active.offset = this.md.jstart;
  }

  /** g_journal_sync, then the copy it starts (or the reinitialisation of a broken journal). */
  private resync(): void {
    const s = kSync(this.disk, { maxphys: this.opts.maxphys, checksum: this.checksum });
    this.sync = s;
    this.inactive.offset = this.md.joffset;
    if (s.found > 0) {
      this.active.offset = s.activeOffset;
      this.journalOffset = s.journalOffset;
      this.journalId = s.journalId;
      this.nextId = s.nextId;
    }
    if (s.broken) {
      this.initialize();
      return;
    }
    this.inactive.queue = s.queue.map((q) => ({ ...q, data: undefined }));
    this.copyStart();
    this.copyFinish();
  }

  /** g_journal_metadata_update. */
  metadataUpdate(): void {
    let flags = this.clean ? GJ_FLAG_CLEAN : 0;
    if (this.opts.flagsPolicy === 'keep-checksum' && this.checksum) flags |= GJ_FLAG_CHECKSUM;
    const md: KMetadata = {
      ...this.md,
      joffset: this.inactive.offset,
      jid: this.previousId,
      flags,
      provsize: this.disk.d.length,
    };
    kEncodeMetadata(md).copy(this.disk.d, this.disk.d.length - this.ss);
  }

  /** g_journal_access on the first open for writing: "Marking as dirty". */
  openWrite(): void {
    this.clean = false;
    this.metadataUpdate();
  }

  /** A BIO_WRITE from above: split at maxphys as GEOM would, then g_journal_add_current per piece. */
  write(offset: number, data: Buffer): void {
    if (offset % this.ss || data.length % this.ss || offset + data.length > this.dataSize) throw new Error('model: bad write');
    data.copy(this.logical, offset);
    for (let o = 0; o < data.length; o += this.opts.maxphys) {
      const piece = data.subarray(o, Math.min(o + this.opts.maxphys, data.length));
      this.stats.skipped += kInsert(this.current, offset + o, offset + o + piece.length, 0, piece);
      this.stats.combined += kOptimize(this.current, this.opts.maxphys);
      if (this.current.length >= this.opts.recordEntries) this.flush();
    }
  }

  /** g_journal_flush: one record of at most recordEntries entries at the journal offset. */
  flush(): void {
    if (this.current.length === 0) return;
    this.journalOffset = this.validate(this.journalOffset);
    const start = this.journalOffset;
    let joffset = start + this.ss;
    const n = Math.min(this.current.length, this.opts.recordEntries);
    const bios = this.current.splice(0, n);
    const entries: KEntry[] = [];
    const h = createHash('md5');
    for (const b of bios) {
      const data = b.data as Buffer;
      entries.push({ joffset, offset: b.offset, length: b.length });
      this.writeJ(joffset, data);
      if (this.checksum) h.update(data);
      kInsert(this.active.queue, b.offset, b.offset + b.length, joffset, data);
      joffset += b.length;
    }
    const sum = this.checksum ? h.digest() : undefined;
    this.writeJ(start, kEncodeRecordHeader(this.journalId, entries, sum, this.ss));
    this.journalOffset = joffset;
    this.stats.records++;
    this.checkOverflow();
  }

  /** Flushes the current queue completely (the worker's 3-second timeout, or a switch). */
  flushAll(): void {
    while (this.current.length > 0) this.flush();
  }

  /** g_journal_check_overflow's panic, and its fill level (the force_switch trigger). */
  private checkOverflow(): void {
    const a = this.active.offset;
    const i = this.inactive.offset;
    const j = this.journalOffset;
    if ((a < i && j >= i) || (a > i && j >= i && j < a)) {
      throw new Error(`kernel panic: Journal overflow (joffset=${j} active=${a} inactive=${i})`);
    }
  }

  /** JEMPTY(sc). */
  empty(): boolean {
    return this.journalOffset - this.ss === this.active.offset && this.current.length === 0;
  }

  /**
   * g_journal_switch after the worker flushed the current queue. `metadata`
   * false models a crash before copy_start's metadata update reached the
   * disk; `copy` false leaves the inactive journal uncopied (a crash during
   * the copy). Returns false when the journal was empty (no switch).
   */
  switchJournal(o: { metadata?: boolean; copy?: boolean } = {}): boolean {
    this.flushAll();
    if (this.empty()) return false;
    this.previousId = this.journalId;
    this.journalId = this.nextId;
    this.nextId = this.opts.random() >>> 0;
    this.journalOffset = this.validate(this.journalOffset);
    this.writeHeader();
    this.inactive = { offset: this.active.offset, queue: this.active.queue };
    this.active = { offset: this.journalOffset - this.ss, queue: [] };
    this.terminated.push(Buffer.from(this.logical));
    this.stats.switches++;
    if (o.metadata !== false) this.copyStart();
    if (o.copy !== false) this.copyFinish();
    return true;
  }

  /** g_journal_copy_start's metadata update. */
  private copyStart(): void {
    if (!this.copying) {
      this.copying = true;
      this.metadataUpdate();
    }
  }

  /** The copy of the inactive queue to the data provider (read back from the journal where data was freed). */
  copyFinish(): void {
    const d = this.disk.d;
    for (const b of this.inactive.queue) {
      const data = b.data ?? Buffer.from(this.disk.j.subarray(b.joffset, b.joffset + b.length));
      data.copy(d, b.offset);
    }
    this.inactive.queue = [];
    this.copying = false;
  }

  /** g_journal_destroy: flush, switch, wait for the copy, mark CLEAN. */
  destroy(): void {
    this.switchJournal();
    if (this.copying) this.copyFinish();
    this.clean = true;
    this.metadataUpdate();
  }

  /** Percentage of the free journal space the active journal uses (g_journal_check_overflow). */
  usedPercent(): number {
    const { jstart, jend } = this.md;
    const a = this.active.offset;
    const i = this.inactive.offset;
    const j = this.journalOffset;
    let length: number;
    let used: number;
    if (a < i) {
      length = i - a;
      used = j - a;
    } else {
      length = jend - a + (i - jstart);
      used = j >= a ? j - a : jend - a + (j - jstart);
    }
    return length > 0 ? Math.floor((used * 100) / length) : 100;
  }
}

/** `len` pseudo-random bytes from `rnd`. */
export function kRandomBytes(rnd: () => number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i + 4 <= len; i += 4) b.writeUInt32LE(rnd(), i);
  return b;
}

/** `n` writes of random sector-aligned ranges (at most `maxLen` bytes) inside the journaled provider. */
export function kRandomWrites(k: KernelJournal, rnd: () => number, n: number, maxLen: number): void {
  const sectors = k.dataSize / k.ss;
  for (let i = 0; i < n; i++) {
    const len = (1 + (rnd() % Math.max(1, Math.floor(maxLen / k.ss)))) * k.ss;
    const off = (rnd() % Math.max(1, sectors - len / k.ss)) * k.ss;
    k.write(off, kRandomBytes(rnd, len));
  }
}

/** A deterministic xorshift32 for ids and test data. */
export function kRandom(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
