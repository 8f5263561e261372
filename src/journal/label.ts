// `journal label` and `journal clear`: gjournal(8)'s journal_label and
// journal_clear (FreeBSD sbin/geom/class/journal/geom_journal.c), offline,
// through the flush engine (journal.md, "label"). Every check runs before the
// first write, so a refusal leaves the images untouched; the writes are
// VOLUME writes of one engine transaction, so a two-image label or clear is
// all or nothing under the undo log (flush-engine.md). label -J adds the UFS
// superblock with FS_GJOURNAL set (tunefs.ts) to that transaction.

import { GeomError, UsageError } from '../errors.js';
import { checkIdOption, checkSectorSizeFits, checkSectorSizeOption } from '../geom/label-options.js';
import type { Engine } from '../engine/types.js';
import type { Provider } from '../provider/provider.js';
import { humanize } from '../util/size.js';
import { tasteProvider } from '../geom/taste.js';
import { fileLookup, refuseRelabel, type GeomLookup } from '../geom/owner.js';
import { findUfsSuperblock, ufsUsesLastSector } from './ufs.js';
import { minJournalSize, recordMaxSize } from './format.js';
import { labelGjournalWrite, type GjournalFlagChange } from './tunefs.js';
import {
  G_JOURNAL_MAGIC,
  G_JOURNAL_VERSION,
  GJ_FLAG_CHECKSUM,
  GJ_FLAG_CLEAN,
  GJ_TYPE_COMPLETE,
  GJ_TYPE_DATA,
  GJ_TYPE_JOURNAL,
  encodeJournalMetadataSector,
  type JournalMetadataFields,
} from './metadata.js';
import { randomU32 } from '../util/random.js';
import { DEFAULT_MAXPHYS } from '../util/maxphys.js';

/** gjournal label's default journal size for one provider: 1 GiB. */
export const DEFAULT_JSIZE = 1073741824;
/** gjournal label's smallest -s: 100 MiB. */
export const MIN_JSIZE = 104857600;
/** md_provider holds at most 15 bytes and a NUL. */
export const MAX_HARDCODED_NAME = 15;

export interface JournalLabelOptions {
  /** -c: GJ_FLAG_CHECKSUM. */
  checksum?: boolean;
  /** -f: label over a file system, or over an image that belongs to a geom. */
  force?: boolean;
  /** Where the rest of a geom found on an image is looked for, to say what a relabel would lose (default: nowhere else). */
  lookup?: GeomLookup;
  /** -h: hardcode each image's base name in md_provider. */
  hardcode?: boolean;
  /** -s: journal size, one image only; a 64-bit size (jstart and jend are), refused when the image cannot hold it. */
  jsize?: number | bigint;
  /** --id: md_id instead of a random one. */
  id?: number;
  /** --sectorsize: default the medium's sector size (512 for image files). */
  sectorSize?: number;
  /** --maxphys the journal must be usable with (default 1 MiB). */
  maxphys?: number;
  /**
   * -J: set FS_GJOURNAL on the UFS of the data image (tunefs -J enable) in the
   * same transaction. The UFS is expected there, so one image may hold it
   * without -f as long as it ends before the journal.
   */
  gjournal?: boolean;
}

export interface LabeledImage {
  path: string;
  /** Where the metadata sector was written: the image's last sector. */
  offset: number;
  metadata: JournalMetadataFields;
}

export interface JournalLabelResult {
  id: number;
  sectorSize: number;
  images: LabeledImage[];
  /** -J: the flag on the UFS of the new journaled provider. */
  gjournal?: GjournalFlagChange;
}

/** A lookup that tastes no other image: what a caller without a command line gets. */
const NO_LOOKUP: GeomLookup = fileLookup([], [], false);

const refused = (message: string, hint?: string): GeomError => new GeomError('REFUSED', message, hint);
const FORCE_HINT = 'use -f if you really want to do it';

function checkSectorSize(engine: Engine, opts: JournalLabelOptions): number[] {
  checkSectorSizeOption(opts.sectorSize);
  return engine.providers.map((p) => {
    const ss = opts.sectorSize ?? Math.max(512, p.mediaSectorSize);
    checkSectorSizeFits(ss, p);
    if (p.size % ss !== 0) throw refused(`${p.path}: its size ${p.size} is not a multiple of the sector size ${ss}`);
    return ss;
  });
}

/** The UFS superblock on an image, if any (reads aligned to the medium, as the engine wants them). */
function holdsUfs(engine: Engine, image: number): ReturnType<typeof findUfsSuperblock> {
  const p = engine.providers[image];
  if (!p) return undefined;
  return findUfsSuperblock((offset, length) => engine.read(image, offset, length), p.size, Math.max(512, p.mediaSectorSize));
}

/** Where the journal lies on its image: [jstart, jend) (md_jstart, md_jend). */
interface JournalSpace {
  jstart: number;
  jend: number;
}

/**
 * Runs every check of gjournal label (in FreeBSD's order, then geomctl's own)
 * and returns the metadata sectors to write; writes nothing.
 */
function plan(engine: Engine, opts: JournalLabelOptions, randomId: () => number): { result: JournalLabelResult; sectors: Buffer[] } {
  const images = engine.providers;
  const data = images[0];
  if (!data || images.length > 2) throw new UsageError('Invalid number of arguments.', 'give a data image and, optionally, a journal image');
  const journal = images[1] ?? data;
  checkIdOption(opts.id);
  const maxphys = opts.maxphys ?? DEFAULT_MAXPHYS;
  const sizes = checkSectorSize(engine, opts);
  const dss = sizes[0] as number;
  const jss = sizes[images.length - 1] as number;
  // Before the file system checks: an image that belongs to a geom says what relabelling it
  // loses (a DIRTY journal's pending journals), which "File system exists" would not.
  if (!opts.force) for (const p of images) refuseRelabel(p, p.path, opts.lookup ?? NO_LOOKUP);

  const space = images.length === 1 ? allInOneSpace(engine, data, opts, dss) : separateSpace(engine, data, journal, opts, jss);
  if (dss !== jss) throw refused(`Not equal sector sizes: ${data.path} has ${dss}, ${journal.path} has ${jss}`, 'give both the same --sectorsize');
  checkOwnLimits(images, space, dss, maxphys, opts.hardcode === true);
  const id = opts.id ?? randomId();
  return labelSectors(images, space, dss, id, opts);
}

/** The journal space [jstart, jend) at the end of one image (-s), after FreeBSD's checks of the image and of -s. */
function allInOneSpace(engine: Engine, data: Provider, opts: JournalLabelOptions, dss: number): JournalSpace {
  const sb = opts.force || opts.gjournal ? undefined : holdsUfs(engine, 0);
  if (sb) throw refused(`File system exists on ${data.path} and this operation would destroy it`, FORCE_HINT);
  // -s is 64-bit (a size64 option): compared as a bigint, it becomes a number only once it fits the image.
  const jsize = BigInt(opts.jsize ?? DEFAULT_JSIZE);
  if (opts.jsize !== undefined) {
    if (jsize < MIN_JSIZE) throw refused(`${data.path}: Journal too small: -s ${jsize} is below ${MIN_JSIZE} (${humanize(MIN_JSIZE)})`, `use -s ${humanize(MIN_JSIZE)} or more`);
    if (jsize % BigInt(dss) !== 0n) throw refused(`${data.path}: Invalid journal size: -s ${jsize} is not a multiple of the sector size ${dss}`);
  }
  if (jsize + BigInt(dss) >= BigInt(data.size)) {
    // FreeBSD's text names the default; a -s the user gave is named as such, with what would fit.
    if (opts.jsize === undefined) throw refused(`${data.path}: Provider too small for journalling. You can try smaller jsize (default is ${jsize}).`);
    const largest = data.size - 2 * dss; // a data area of one sector at least
    throw refused(
      `${data.path}: Provider too small for journalling: a journal of -s ${jsize} (${humanize(jsize)}) leaves no data area in its ${data.size} bytes`,
      largest >= MIN_JSIZE ? `use -s ${largest} or less` : `a journal needs at least -s ${humanize(MIN_JSIZE)}: use an image larger than ${MIN_JSIZE + dss} bytes`,
    );
  }
  return { jstart: data.size - dss - Number(jsize), jend: data.size - dss };
}

/** The journal space of a separate journal image (all of it but its metadata sector), after FreeBSD's checks. */
function separateSpace(engine: Engine, data: Provider, journal: Provider, opts: JournalLabelOptions, jss: number): JournalSpace {
  if (!opts.force) {
    const sb = holdsUfs(engine, 0);
    if (sb && ufsUsesLastSector(sb, data.size)) {
      throw refused(`File system on ${data.path} is using the last sector and this operation is going to overwrite it`, FORCE_HINT);
    }
  }
  if (opts.jsize !== undefined) throw new UsageError('jsize argument is valid only for all-in-one configuration.', 'the journal takes the whole journal image');
  return { jstart: 0, jend: journal.size - jss };
}

/** geomctl's own checks (journal.md): a journal that holds two maximal records, a non-empty data area, names that fit -h. */
function checkOwnLimits(images: readonly Provider[], { jstart, jend }: JournalSpace, ss: number, maxphys: number, hardcode: boolean): void {
  const data = images[0] as Provider;
  const journal = images[1] ?? data;
  const need = minJournalSize(ss, maxphys);
  if (jend - jstart < need) {
    const smallest = images.length === 1 ? `-s ${Math.max(need, MIN_JSIZE)}` : `a journal image of at least ${need + ss} bytes (${humanize(need + ss)})`;
    throw refused(
      `${journal.path}: a journal of ${jend - jstart} bytes is too small for maxphys ${maxphys}: it must hold a header and two records of ${recordMaxSize(ss, maxphys)} bytes, ${need} bytes in all`,
      `the smallest that works is ${smallest}`,
    );
  }
  if (images.length === 2 && data.size <= ss) throw refused(`${data.path}: too small for a data image: it must be larger than one sector (${ss} bytes)`);
  if (!hardcode) return;
  for (const p of images) {
    const length = Buffer.byteLength(p.name, 'utf8');
    if (length > MAX_HARDCODED_NAME) {
      throw refused(`${p.path}: provider name '${p.name}' is ${length} bytes, too long to hardcode (at most ${MAX_HARDCODED_NAME})`, 'rename the image or label without -h');
    }
  }
}

/** Each image's metadata (CLEAN, joffset 0) and its encoded last sector. */
function labelSectors(images: readonly Provider[], { jstart, jend }: JournalSpace, ss: number, id: number, opts: JournalLabelOptions): { result: JournalLabelResult; sectors: Buffer[] } {
  const flags = GJ_FLAG_CLEAN | (opts.checksum ? GJ_FLAG_CHECKSUM : 0n);
  const result: JournalLabelResult = { id, sectorSize: ss, images: [] };
  const sectors: Buffer[] = [];
  images.forEach((p, i) => {
    const type = images.length === 1 ? GJ_TYPE_COMPLETE : i === 0 ? GJ_TYPE_DATA : GJ_TYPE_JOURNAL;
    const metadata: JournalMetadataFields = {
      magic: G_JOURNAL_MAGIC,
      version: G_JOURNAL_VERSION,
      id,
      type,
      jstart: BigInt(jstart),
      jend: BigInt(jend),
      joffset: 0n,
      jid: 0,
      flags,
      provider: opts.hardcode ? p.name : '',
      provsize: BigInt(p.size),
    };
    result.images.push({ path: p.path, offset: p.size - ss, metadata });
    sectors.push(encodeJournalMetadataSector(metadata, ss));
  });
  return { result, sectors };
}


/**
 * gjournal label over the engine's images ([data] or [data, journal]): checks
 * everything first, then clears every image's last sector and writes the
 * metadata there as VOLUME writes (with -J, the flagged superblock as a META
 * write), and commits them as one transaction.
 */
export function labelJournal(engine: Engine, opts: JournalLabelOptions = {}, randomId: () => number = randomU32): JournalLabelResult {
  const { result, sectors } = plan(engine, opts, randomId);
  const tuned = opts.gjournal ? gjournalOnLabel(engine, result, opts.force === true) : undefined;
  // As journal_label: clear the last sector of every image first, to spoil any device they belonged to.
  for (const [i, img] of result.images.entries()) engine.write(i, img.offset, Buffer.alloc(result.sectorSize), 'VOLUME');
  for (const [i, img] of result.images.entries()) engine.write(i, img.offset, sectors[i] as Buffer, 'VOLUME');
  if (tuned?.write) engine.write(0, tuned.write.offset, tuned.write.data, 'META');
  engine.commit();
  return tuned ? { ...result, gjournal: tuned.change } : result;
}

/** label -J: tunefs's checks of the UFS on the data area the label is about to make, and the superblock to write. */
function gjournalOnLabel(engine: Engine, result: JournalLabelResult, force: boolean): ReturnType<typeof labelGjournalWrite> {
  const data = result.images[0] as LabeledImage;
  const dataSize = result.images.length === 1 ? Number(data.metadata.jstart) : data.offset;
  return labelGjournalWrite(engine, dataSize, result.sectorSize, force);
}

export interface JournalClearResult {
  /** Paths whose journal metadata was cleared. */
  cleared: string[];
  /** Images without journal metadata (FreeBSD: "Cannot clear metadata on X"), the others still cleared. */
  failures: GeomError[];
}

/**
 * gjournal clear: zeroes the last sector of every image that holds journal
 * metadata (at the sector size it was found at), as one transaction. Images
 * without it are reported and left alone, as g_metadata_clear does.
 */
export function clearJournal(engine: Engine): JournalClearResult {
  const out: JournalClearResult = { cleared: [], failures: [] };
  engine.providers.forEach((p, i) => {
    const tasted = tasteProvider(p);
    if (!tasted || tasted.className !== 'JOURNAL') {
      out.failures.push(new GeomError('NO_METADATA', `Cannot clear metadata on ${p.path}: no ${G_JOURNAL_MAGIC} metadata in its last sector`));
      return;
    }
    engine.write(i, p.size - tasted.sectorSize, Buffer.alloc(tasted.sectorSize), 'VOLUME');
    out.cleared.push(p.path);
  });
  engine.commit();
  return out;
}
