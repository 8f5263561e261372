// `journal tunefs -J enable|disable` and `journal label -J`: FreeBSD's
// `tunefs -J` (sbin/tunefs/tunefs.c) on the journaled provider — the
// file system's side of gjournal, the FS_GJOURNAL flag in the UFS superblock,
// which makefs cannot set. gjournal(8)'s recipe is `gjournal label`, then
// `newfs -J` or `tunefs -J enable` on <data>.journal; off FreeBSD the UFS
// comes from makefs, so geomctl sets the flag.
//
// The superblock is read through the journal (pending journals included) and
// written through the journal's write path, then synced, as the kernel would
// journal tunefs's write: a kill leaves the old superblock or the new one.
// A label -J writes it into the data area of the device it is creating, in
// the label's own undo transaction: both or neither.

import { journaledProviderName } from '../geom/device-name.js';
import { GeomError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import { magicOf, MAGICS } from '../geom/taste.js';
import {
  CK_SUPERBLOCK,
  effectiveUfsFlags,
  FS_GJOURNAL,
  FS_NEEDSFSCK,
  FS_UNCLEAN,
  findUfsSuperblock,
  SBLOCKSEARCH,
  SBLOCKSIZE,
  setUfsFlag,
  superblockHashMismatch,
  ufsByteSize,
  ufsMagic,
  type ReadFn,
  type UfsSuperblock,
} from './ufs.js';
import type { JournalDevice, RecoverResult } from './device.js';
import { isZero } from '../util/zero.js';

/** What list shows of the file system on a journaled provider. */
export interface UfsSummary {
  version: 1 | 2;
  /** FS_GJOURNAL, as a kernel mounting it reads the flags. */
  gjournal: boolean;
}

/** What tunefs did (or found already done). */
export interface GjournalFlagChange {
  /** The journaled provider's name: <data image>.journal. */
  provider: string;
  ufs: 1 | 2;
  /** Where the superblock lies on the provider. */
  offset: number;
  gjournal: boolean;
  /** false: the flag was already as asked, and nothing was written ("remains unchanged"). */
  changed: boolean;
  /** The superblock keeps a check-hash (CK_SUPERBLOCK): fs_ckhash after the change. */
  ckhash?: number;
}

/** The file system on a journaled provider for list: its version and the flag, or null when no UFS is found. */
export function ufsSummary(read: ReadFn, size: number, sectorSize: number): UfsSummary | null {
  const sb = findUfsSuperblock(read, size, sectorSize);
  return sb ? { version: sb.ufs, gjournal: (effectiveUfsFlags(sb) & FS_GJOURNAL) !== 0 } : null;
}

/**
 * What lies where ffs_sbget looks for a superblock, for the message that
 * refuses a provider without one: a UFS magic in a block it rejects, another
 * class's GEOM metadata, an ext2/3/4 file system, zeros, or other data.
 */
export function describeNonUfs(read: ReadFn, size: number, sectorSize: number): string {
  const blocks: { offset: number; block: Buffer }[] = [];
  const length = Math.ceil(SBLOCKSIZE / sectorSize) * sectorSize;
  for (const offset of SBLOCKSEARCH) {
    if (offset % sectorSize !== 0 || offset + length > size) continue;
    blocks.push({ offset, block: read(offset, length).subarray(0, SBLOCKSIZE) });
  }
  for (const { offset, block } of blocks) {
    const ufs = ufsMagic(block);
    if (ufs) return `a UFS${ufs} magic at ${offset} in a block that is no usable superblock`;
  }
  if (size >= sectorSize) {
    const cls = magicOf(read(size - sectorSize, sectorSize));
    if (cls) return `${MAGICS[cls]} metadata in its last sector`;
  }
  // The ext2/3/4 superblock at 1024, s_magic (0xEF53) at 56 of it.
  if (size >= 2 * sectorSize && sectorSize <= 1024) {
    const head = read(0, Math.ceil(2048 / sectorSize) * sectorSize);
    if (head.readUInt16LE(1024 + 56) === 0xef53) return 'an ext2/3/4 file system';
  }
  return blocks.every((b) => isZero(b.block)) ? 'zeros' : 'other data';
}

const refused = (message: string, hint?: string): GeomError => new GeomError('REFUSED', message, hint);

/**
 * The checks tunefs -J makes of the superblock found on `provider`, and the
 * superblock. Refuses a provider without a UFS (naming what it holds), a
 * superblock FreeBSD's readsuper would reject for its check-hash, and —
 * unless `force` — a file system that is not clean when the flag would change.
 */
function checkedSuperblock(read: ReadFn, size: number, sectorSize: number, provider: string, enable: boolean, force: boolean): UfsSuperblock {
  if (SBLOCKSIZE % sectorSize !== 0) {
    throw refused(`${provider}: its sector size ${sectorSize} is larger than a UFS superblock block (${SBLOCKSIZE} bytes)`, 'a UFS on it would need a sector size of 8192 or less');
  }
  const sb = findUfsSuperblock(read, size, sectorSize);
  if (!sb) {
    throw refused(
      `${provider} holds no UFS superblock (found ${describeNonUfs(read, size, sectorSize)})`,
      "write a UFS made by 'makefs -t ffs' to it with 'geomctl journal write' first",
    );
  }
  const mismatch = superblockHashMismatch(sb);
  if (mismatch) {
    throw new GeomError(
      'CORRUPT',
      `UFS superblock at ${sb.offset} of ${provider}: check-hash failed: recorded 0x${mismatch.recorded.toString(16)} != computed 0x${mismatch.computed.toString(16)}`,
      'FreeBSD will not read it either: run fsck_ffs on it',
    );
  }
  const has = (effectiveUfsFlags(sb) & FS_GJOURNAL) !== 0;
  const dirty = sb.clean === 0 || (sb.flags & (FS_UNCLEAN | FS_NEEDSFSCK)) !== 0;
  if (has !== enable && dirty && !force) {
    throw refused(
      `the UFS on ${provider} is not clean (fs_clean ${sb.clean}, fs_flags 0x${(sb.flags >>> 0).toString(16)}): it is mounted, or was not checked after a crash`,
      'run fsck_ffs on it first, or -f to change it anyway',
    );
  }
  return sb;
}

function change(sb: UfsSuperblock, provider: string, enable: boolean, changed: boolean, ckhash = sb.ckhash): GjournalFlagChange {
  return { provider, ufs: sb.ufs, offset: sb.offset, gjournal: enable, changed, ...(sb.metackhash & CK_SUPERBLOCK ? { ckhash } : {}) };
}

/**
 * tunefs -J on an open journal device: checks everything, then replays what
 * the journal holds (as every writing verb does), writes the changed
 * superblock through the journal and syncs it, leaving the device CLEAN.
 * Writes nothing when the flag is already as asked. A broken or damaged
 * journal is refused: the file system cannot be read as FreeBSD would read it
 * before the journal is repaired.
 */
export function tuneGjournal(dev: JournalDevice, enable: boolean, force: boolean): { change: GjournalFlagChange; recovery?: RecoverResult } {
  const provider = journaledProviderName(dev.dataPath);
  if (dev.state === 'BROKEN' || dev.damaged) {
    throw refused(
      `journal on ${dev.dataPath} is ${dev.damaged ? 'damaged' : 'broken'}: the file system on ${provider} cannot be read as FreeBSD would read it`,
      `repair the journal first with 'geomctl journal sync -f ${dev.dataPath}' (it marks the UFS dirty)`,
    );
  }
  const read: ReadFn = (o, l) => dev.read(o, l);
  const sb = checkedSuperblock(read, dev.dataSize, dev.sectorSize, provider, enable, force);
  if (((effectiveUfsFlags(sb) & FS_GJOURNAL) !== 0) === enable) return { change: change(sb, provider, enable, false) };
  const recovery = dev.recover(false);
  const update = setUfsFlag(sb, FS_GJOURNAL, enable, dev.sectorSize);
  const w = dev.writer();
  w.write(update.offset, update.data);
  w.sync();
  return { change: change(sb, provider, enable, true, update.ckhash), recovery };
}

/**
 * label -J: the superblock write that sets FS_GJOURNAL on the UFS in the data
 * area of the device being labeled (image 0 of `engine`, `dataSize` bytes,
 * nothing journaled yet, sector size `ss`), after tunefs's checks; undefined when the flag is
 * already set. A UFS that does not fit in the journaled provider is refused
 * even with -f: the journal or the metadata would overwrite its end.
 */
export function labelGjournalWrite(
  engine: Engine,
  dataSize: number,
  ss: number,
  force: boolean,
): { change: GjournalFlagChange; write?: { offset: number; data: Buffer } } {
  const p = engine.providers[0];
  if (!p) throw new Error('labelGjournalWrite without a data image');
  const provider = journaledProviderName(p.path);
  const read: ReadFn = (o, l) => engine.read(0, o, l);
  const sb = checkedSuperblock(read, dataSize, ss, provider, true, force);
  const bytes = ufsByteSize(sb);
  if (bytes === undefined || bytes > BigInt(dataSize)) {
    throw refused(
      `the UFS on ${p.path} spans ${bytes ?? 'an impossible number of'} bytes, more than the ${dataSize} bytes of ${provider}: the journal would overwrite its end`,
      'give the image room for it (truncate -s), or a smaller journal (-s)',
    );
  }
  if (effectiveUfsFlags(sb) & FS_GJOURNAL) return { change: change(sb, provider, true, false) };
  const write = setUfsFlag(sb, FS_GJOURNAL, true, ss);
  return { change: change(sb, provider, true, true, write.ckhash), write: { offset: write.offset, data: write.data } };
}
