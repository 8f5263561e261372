// A journal device opened offline: the kernel's taste and g_journal_create
// (validate and pair the metadata), then the worker's start — nothing to do
// for a CLEAN device, g_journal_sync's walk otherwise — and what the verbs do
// with it: read the journaled provider, recover (replay, or repair a broken
// journal), write through a JournalWriter (journal.md, "open", "write").
//
// Opening never writes. recover() is the first write of every writing verb:
// after it the device is CLEAN and a writer may start.

import { GeomError, UsageError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import { findUfsSuperblock, markUfsDirty } from './ufs.js';
import { COPY_CHUNK, copyToData, fillFromExtents, rawJournalRead, journalSource, type JournalIO, type JournalSource } from './replay.js';
import { minJournalSize } from './format.js';
import {
  GJ_FLAG_CHECKSUM,
  GJ_FLAG_CLEAN,
  GJ_TYPE_COMPLETE,
  GJ_TYPE_DATA,
  GJ_TYPE_JOURNAL,
  encodeJournalMetadataSector,
  hasChecksum,
  isClean,
  readJournalMetadata,
  validateJournalMetadata,
  type JournalMetadata,
} from './metadata.js';
import type { Extent } from './extent.js';
import type { RangeSet } from './rangeset.js';
import { chooseWalk, type Walk, type WalkChoice, type WalkGeometry, type WalkProgress } from './walk.js';
import { JournalWriter, type MetadataUpdate } from './writer.js';
import { randomU32 } from '../util/random.js';
import { mergeRanges } from '../util/ranges.js';
import { maxphysText, MAXPHYS_128K, MAXPHYS_1M } from '../util/maxphys.js';

export type JournalState = 'CLEAN' | 'DIRTY' | 'BROKEN';

export interface JournalOpenOptions {
  /** --maxphys: walk and write with this maxphys only. */
  maxphys?: number;
  /** -H: accept hardcoded provider names that differ from the image names. */
  ignoreHardcoded?: boolean;
  /** --cache-limit: bytes of journaled data kept in memory. */
  cacheLimit: number;
  /** Keep every record of the walk (scan). */
  details?: boolean;
  /** 32-bit random journal ids; arc4random's role. */
  random?: () => number;
  /** Progress of the walk of a device that is not CLEAN (a spinner's feed). */
  onWalk?: WalkProgress;
}

export interface RecoverResult {
  /** What recover did: nothing (CLEAN), a replay, or the repair of a broken or damaged journal. */
  action: 'none' | 'replay' | 'repair';
  /** Finished journals copied to the data image. */
  journals: number;
  bytes: number;
  /** Copied ranges written with a neighbour in one write of the data image (replay's own counter, for --stats). */
  combined: number;
  /** The UFS superblock on the data area was marked dirty (repair). */
  ufsMarkedDirty: boolean;
  maxphys?: number;
}


/** The union of the layers' ranges (and `extra`) inside [start, end), merged, in offset order. */
function covered(layers: RangeSet<Extent>[], start: number, end: number, extra: readonly (readonly [number, number])[] = []): [number, number][] {
  const all: [number, number][] = extra.map(([s, e]) => [s, e]);
  for (const s of layers) for (const r of s.entries(start, end)) all.push([r.start, r.end]);
  return mergeRanges(all);
}

export class JournalDevice {
  readonly engine: Engine;
  /** Engine image indexes: the data image is 0, the journal image 1 (or 0 for one image). */
  readonly data = 0;
  readonly journal: number;
  /** The data image's metadata: the live copy (joffset, jid, flags). */
  md: JournalMetadata;
  /** The journal image's metadata (two images). */
  readonly jmd: JournalMetadata | undefined;
  readonly sectorSize: number;
  readonly geo: WalkGeometry;
  readonly checksum: boolean;
  state: JournalState;
  /** The walk of a device that was not CLEAN when opened (undefined after recover). */
  choice: WalkChoice | undefined;
  /** Things worth telling the user that do not stop the command. */
  readonly warnings: string[] = [];
  private readonly opts: JournalOpenOptions;
  private writerInstance: JournalWriter | undefined;
  private readonly source: JournalSource;

  private constructor(engine: Engine, opts: JournalOpenOptions) {
    this.engine = engine;
    this.opts = opts;
    const providers = engine.providers;
    const dp = providers[0];
    if (!dp || providers.length > 2) throw new UsageError('a journal device is a data image and, optionally, a journal image');
    const jp = providers[1];
    this.journal = jp ? 1 : 0;
    const d = readJournalMetadata(dp);
    const j = jp ? readJournalMetadata(jp) : undefined;
    this.md = d.md;
    this.jmd = j?.md;
    this.sectorSize = d.sectorSize;
    const ss = d.sectorSize;
    const vopts = { ignoreHardcoded: opts.ignoreHardcoded, maxphys: opts.maxphys ?? MAXPHYS_128K };
    validateJournalMetadata(d.md, { path: dp.path, name: dp.name, size: dp.size, sectorSize: ss }, vopts);
    if (!jp || !j) {
      if (d.md.type !== GJ_TYPE_COMPLETE) {
        throw new GeomError(
          'MISMATCH',
          `${dp.path} is the ${d.md.type === GJ_TYPE_DATA ? 'data' : 'journal'} half of a two-image journal (md_type ${d.md.type})`,
          d.md.type === GJ_TYPE_DATA ? 'give its journal image too, or -d DIR where it lies' : 'give the data image first, then this one',
        );
      }
    } else {
      validateJournalMetadata(j.md, { path: jp.path, name: jp.name, size: jp.size, sectorSize: j.sectorSize }, vopts);
      if (j.md.id !== d.md.id) {
        throw new GeomError(
          'MISMATCH',
          `${jp.path} belongs to journal ${j.md.id}, ${dp.path} to journal ${d.md.id} (md_id)`,
          `give the journal image labeled with ${dp.path} ('geomctl journal dump' shows each image's id), or leave it out to find it by tasting`,
        );
      }
      if (d.md.type !== GJ_TYPE_DATA || j.md.type !== GJ_TYPE_JOURNAL) {
        throw new GeomError(
          'MISMATCH',
          `${dp.path} (md_type ${d.md.type}) and ${jp.path} (md_type ${j.md.type}) are not a data image and a journal image`,
          d.md.type === GJ_TYPE_JOURNAL && j.md.type === GJ_TYPE_DATA ? 'give the data image first' : undefined,
        );
      }
      if (j.sectorSize !== ss) throw new GeomError('MISMATCH', `Not equal sector sizes: ${dp.path} has ${ss}, ${jp.path} has ${j.sectorSize}`);
      // The kernel takes the journal space from the data provider's metadata.
      if (d.md.jend > BigInt(jp.size - ss)) {
        throw new GeomError('CORRUPT', `journal metadata on ${dp.path}: md_jend ${d.md.jend} runs past ${jp.path}'s last sector (${jp.size - ss})`);
      }
      if (d.md.jstart !== j.md.jstart || d.md.jend !== j.md.jend) {
        this.warnings.push(`${dp.path} and ${jp.path} disagree on the journal space (md_jstart/md_jend); using ${dp.path}'s, as the kernel does`);
      }
      if (dp.size <= ss) throw new GeomError('CORRUPT', `${dp.path}: a data image of ${dp.size} bytes has no data area`);
    }
    const jstart = Number(d.md.jstart);
    const jend = Number(d.md.jend);
    this.geo = { sectorSize: ss, jstart, jend, dataSize: jp ? dp.size - ss : jstart };
    this.source = journalSource(engine, this.journal);
    this.checksum = hasChecksum(d.md);
    if (isClean(d.md)) {
      this.state = 'CLEAN';
      return;
    }
    const { read, readInto } = rawJournalRead(engine, this.journal);
    this.choice = chooseWalk(read, this.geo, { joffset: Number(d.md.joffset), jid: d.md.jid }, { maxphys: opts.maxphys, checksum: this.checksum, details: opts.details, readInto, onProgress: opts.onWalk });
    this.state = this.choice.walk.finished > 0 ? 'DIRTY' : 'BROKEN';
  }

  /** Opens the journal device on the engine's images ([data] or [data, journal]). Never writes. */
  static open(engine: Engine, opts: JournalOpenOptions): JournalDevice {
    return new JournalDevice(engine, opts);
  }

  get dataPath(): string {
    return (this.engine.providers[this.data] as { path: string }).path;
  }

  get journalPath(): string {
    return (this.engine.providers[this.journal] as { path: string }).path;
  }

  /** The journaled provider's size (sc_mediasize). */
  get dataSize(): number {
    return this.geo.dataSize;
  }

  /**
   * When --maxphys walks fewer journals than the other maxphys (journal.md,
   * "maxphys"): what the two walks find, naming the maxphys that replays
   * them. Undefined otherwise.
   */
  get maxphysShortfall(): string | undefined {
    const c = this.choice;
    if (!c?.fewer || !c.other) return undefined;
    const count = (w: Walk): string => `${w.finished} finished journal${w.finished === 1 ? '' : 's'}`;
    return `journal on ${this.dataPath}: --maxphys ${maxphysText(c.walk.maxphys)} walks ${count(c.walk)}, maxphys ${maxphysText(c.other.maxphys)} walks ${count(c.other)} (${c.other.replay.bytes} bytes to replay)`;
  }

  /** With maxphysShortfall: what to give instead of the --maxphys that walks fewer journals. */
  get maxphysRemedy(): string | undefined {
    const other = this.choice?.fewer ? this.choice.other : undefined;
    return other && `give --maxphys ${maxphysText(other.maxphys)}, or leave --maxphys out to detect it`;
  }

  /** What a verb that only reads should tell the user about the journal it reads through (besides `warnings`). */
  readWarnings(): string[] {
    const out: string[] = [];
    const walk = this.choice?.walk;
    if (!walk) return out;
    const shortfall = this.maxphysShortfall;
    if (shortfall) out.push(`${shortfall}; reads show what the ${maxphysText(walk.maxphys)} walk replays: ${this.maxphysRemedy}`);
    if (this.damaged) out.push(`${this.journalPath}: ${walk.end.detail}; that journal and every one after it are not replayed`);
    if (this.state === 'BROKEN' && !shortfall) {
      out.push(`journal on ${this.dataPath} is broken (no finished journal at offset ${this.md.joffset}): reads show the data image alone, as FreeBSD would after reinitialising it`);
    }
    if (this.choice?.disagree) out.push(`journal on ${this.dataPath} replays differently with maxphys 1M and 128k; showing the 1M walk`);
    return out;
  }

  /** The walk ended at a record whose MD5 does not match. */
  get damaged(): boolean {
    return this.choice?.walk.end.reason === 'checksum';
  }

  private get io(): JournalIO {
    return this.engine;
  }

  /**
   * The maxphys for new journals: --maxphys, else the one the walk detected
   * when it mattered, else 1 MiB when the journal is large enough for it.
   */
  get writeMaxphys(): number {
    if (this.opts.maxphys !== undefined) return this.opts.maxphys;
    if (this.choice?.other) return this.choice.walk.maxphys;
    return this.geo.jend - this.geo.jstart >= minJournalSize(this.sectorSize, MAXPHYS_1M) ? MAXPHYS_1M : MAXPHYS_128K;
  }

  /** What a read must lay over the data image, oldest first. */
  private overlays(): RangeSet<Extent>[] {
    const out: RangeSet<Extent>[] = [];
    if (this.choice) out.push(this.choice.walk.replay);
    if (this.writerInstance) out.push(...this.writerInstance.overlays());
    return out;
  }

  /**
   * Where [offset, offset + length) of the journaled provider may hold data
   * (providers.md: the data image's data regions and everything a journal not
   * yet copied covers), ascending and disjoint; the rest reads as zeros.
   */
  dataRegions(offset: number, length: number): [number, number][] {
    const end = offset + length;
    const fromData = this.engine.dataRegions?.(this.data, offset, length) ?? [[offset, end]];
    return covered(this.overlays(), offset, end, fromData);
  }

  /**
   * Reads the journaled provider (g_journal_read): the data image overlaid by
   * every journal not yet copied, newest last. Any offset and length inside it.
   */
  read(offset: number, length: number): Buffer {
    if (!(offset >= 0 && length >= 0 && offset + length <= this.dataSize)) {
      throw new UsageError(`read of ${length} bytes at ${offset} passes the end of the journaled provider (${this.dataSize} bytes)`);
    }
    const ss = this.sectorSize;
    const start = Math.floor(offset / ss) * ss;
    const end = Math.ceil((offset + length) / ss) * ss;
    const out = Buffer.allocUnsafe(end - start);
    this.readInto(start, out);
    return start === offset && end === offset + length ? out : out.subarray(offset - start, offset - start + length);
  }

  /**
   * read() into the caller's buffer: `offset` and `target.length` are sector
   * multiples. A stream reuses one page-aligned buffer through it: a fresh
   * buffer per chunk costs a page fault per 4 KiB, more than the read itself.
   */
  readInto(offset: number, target: Buffer): void {
    const ss = this.sectorSize;
    const end = offset + target.length;
    if (!(offset >= 0 && end <= this.dataSize) || offset % ss !== 0 || end % ss !== 0) {
      throw new RangeError(`journal readInto of ${target.length} bytes at ${offset}: not whole ${ss}-byte sectors inside the journaled provider (${this.dataSize} bytes)`);
    }
    const all = this.overlays();
    // A stream's usual chunk: the newest layer that touches it covers all of
    // it with one range (or no layer touches it) — one read, nothing merged.
    let touched = false;
    for (let i = all.length - 1; i >= 0; i--) {
      const r = (all[i] as RangeSet<Extent>).firstEndingAfter(offset);
      if (!r || r.start >= end) continue;
      touched = true;
      if (r.start > offset || r.end < end) break;
      const { blob } = r.value;
      const delta = r.value.delta + (offset - r.start);
      if (blob.data) blob.data.copy(target, 0, delta, delta + target.length);
      else this.source.readInto(blob.joffset + delta, target);
      return;
    }
    if (!touched) {
      this.engine.readInto(this.data, offset, target);
      return;
    }
    const layers = all.filter((s) => s.size > 0 && !s.entries(offset, end).next().done);
    // Read the data image only where no journal covers it.
    let at = offset;
    for (const [s, e] of covered(layers, offset, end)) {
      if (s > at) this.engine.readInto(this.data, at, target.subarray(at - offset, s - offset));
      at = Math.max(at, e);
    }
    if (at < end) this.engine.readInto(this.data, at, target.subarray(at - offset));
    for (const s of layers) fillFromExtents(this.source, s.entries(offset, end), target, offset);
  }

  /** One ordered write of the data image's metadata sector (g_journal_metadata_update). */
  private writeMetadata(m: MetadataUpdate): void {
    const dp = this.engine.providers[this.data] as { size: number };
    // The kernel writes CLEAN alone; geomctl keeps CHECKSUM (journal.md, "Checksums").
    const flags = (m.clean ? GJ_FLAG_CLEAN : 0n) | (this.checksum ? GJ_FLAG_CHECKSUM : 0n);
    this.md = { ...this.md, joffset: BigInt(m.joffset), jid: m.jid >>> 0, flags, provsize: BigInt(dp.size) };
    this.engine.writeOrdered(this.data, dp.size - this.sectorSize, encodeJournalMetadataSector(this.md, this.sectorSize));
  }

  /** The error a writing verb meets on a broken or damaged journal without -f. */
  private brokenError(): GeomError {
    const md = this.md;
    const walk = (this.choice as WalkChoice).walk;
    const what = this.damaged
      ? `journal on ${this.dataPath} is damaged: ${walk.end.detail}`
      : `journal on ${this.dataPath} is broken: no finished journal at offset ${md.joffset} (id ${md.jid})`;
    return new GeomError(
      'BROKEN',
      what,
      `'geomctl journal scan ${this.dataPath}' shows what is there; -f ${this.damaged ? 'replays the journals before it' : 'reinitialises it'} and marks the UFS dirty, as FreeBSD does on attach`,
    );
  }

  /** Bytes a replay would copy to the data image (0 when CLEAN): the total for progress. */
  get replayBytes(): number {
    return this.state === 'CLEAN' || !this.choice ? 0 : this.choice.walk.replay.bytes;
  }

  /**
   * The first step of every writing verb (journal.md, "open" step 3): replay a
   * dirty journal (copy, barrier, metadata CLEAN, barrier), or with `force`
   * repair a broken or damaged one (replay what finished, then mark the UFS
   * dirty and the metadata CLEAN in one undo transaction). Afterwards the
   * device is CLEAN.
   */

  recover(force: boolean, onProgress?: (copied: number) => void): RecoverResult {
    const result: RecoverResult = { action: 'none', journals: 0, bytes: 0, combined: 0, ufsMarkedDirty: false };
    if (this.state === 'CLEAN' || !this.choice) return result;
    const choice = this.choice;
    if (choice.disagree) {
      throw new GeomError(
        'REFUSED',
        `journal on ${this.dataPath} replays differently with maxphys 1M and 128k, and nothing on disk says which is right`,
        "'geomctl journal scan' shows both walks; give --maxphys 1M or --maxphys 128k",
      );
    }
    // Not even -f: the other maxphys replays journals this walk would throw away.
    const shortfall = this.maxphysShortfall;
    if (shortfall) throw new GeomError('REFUSED', `${shortfall}; replaying or repairing with ${maxphysText(choice.walk.maxphys)} would discard them`, this.maxphysRemedy);
    const walk = choice.walk;
    const repair = this.state === 'BROKEN' || this.damaged;
    if (repair && !force) throw this.brokenError();
    result.maxphys = walk.maxphys;
    if (walk.finished > 0) {
      // Batches as large as the memory budget: fewer passes over a scattered journal.
      const copied = copyToData(this.io, walk.replay, this.data, this.source, Math.max(COPY_CHUNK, Math.floor(this.opts.cacheLimit / 2)), onProgress);
      result.bytes = copied.bytes;
      result.combined = copied.combined;
      result.journals = walk.finished;
      this.engine.barrier([this.data]);
    }
    if (repair) {
      result.action = 'repair';
      result.ufsMarkedDirty = this.markRepaired(walk);
    } else {
      result.action = 'replay';
      const newest = walk.newest as { offset: number; id: number };
      this.writeMetadata({ clean: true, joffset: newest.offset, jid: newest.id });
      this.engine.barrier([this.data]);
    }
    this.choice = undefined;
    this.state = 'CLEAN';
    return result;
  }

  /** The kernel's g_journal_mark_as_dirty plus CLEAN metadata, as one undo transaction. */
  private markRepaired(walk: Walk): boolean {
    const dp = this.engine.providers[this.data] as { size: number };
    const sb = findUfsSuperblock((o, l) => this.engine.read(this.data, o, l), this.dataSize, this.sectorSize);
    const dirty = sb ? markUfsDirty(sb, this.sectorSize) : undefined;
    if (dirty) this.engine.write(this.data, dirty.offset, dirty.data, 'META');
    const named = walk.newest ?? { offset: Number(this.md.joffset), id: this.md.jid };
    const flags = GJ_FLAG_CLEAN | (this.checksum ? GJ_FLAG_CHECKSUM : 0n);
    this.md = { ...this.md, joffset: BigInt(named.offset), jid: named.id, flags, provsize: BigInt(dp.size) };
    this.engine.write(this.data, dp.size - this.sectorSize, encodeJournalMetadataSector(this.md, this.sectorSize), 'VOLUME');
    this.engine.commit();
    return dirty !== undefined;
  }

  /** The write path; the device must be CLEAN (call recover first). */
  writer(): JournalWriter {
    if (this.writerInstance) return this.writerInstance;
    if (this.state !== 'CLEAN') throw new Error('JournalDevice.writer() before recover()');
    const maxphys = this.writeMaxphys;
    if (this.geo.jend - this.geo.jstart < minJournalSize(this.sectorSize, maxphys)) {
      throw new GeomError(
        'REFUSED',
        `journal space of ${this.geo.jend - this.geo.jstart} bytes on ${this.journalPath} is too small for maxphys ${maxphys} (at least ${minJournalSize(this.sectorSize, maxphys)})`,
        'give a smaller --maxphys (e.g. 128k)',
      );
    }
    this.writerInstance = new JournalWriter({
      io: this.io,
      data: this.data,
      journal: this.journal,
      geo: this.geo,
      maxphys,
      checksum: this.checksum,
      cacheLimit: this.opts.cacheLimit,
      random: this.opts.random ?? randomU32,
      writeMetadata: (m) => this.writeMetadata(m),
    });
    return this.writerInstance;
  }

  /**
   * After a replay: whether the data image alone now holds what the journal
   * held (stop's check). Compares every range of `walk`'s replay set with the
   * journal's bytes.
   */
  verifyReplay(walk: Walk): { ranges: number; bytes: number; mismatches: number; firstMismatch?: number } {
    const out: { ranges: number; bytes: number; mismatches: number; firstMismatch?: number } = { ranges: 0, bytes: 0, mismatches: 0 };
    const chunk = 1024 * 1024;
    for (const r of walk.replay.entries()) {
      out.ranges++;
      for (let o = r.start; o < r.end; o += chunk) {
        const len = Math.min(chunk, r.end - o);
        const want = this.engine.read(this.journal, r.value.blob.joffset + r.value.delta + (o - r.start), len);
        const have = this.engine.read(this.data, o, len);
        if (!want.equals(have)) {
          out.mismatches++;
          out.firstMismatch ??= o;
        }
        out.bytes += len;
      }
    }
    return out;
  }
}
