// `list` and `status` for journal devices (journal.md, "list / status"): what
// geom(8) prints for a gjournal geom — the kernel's g_journal_dumpconf fields
// (ID; Role, Jstart, Jend on the journal consumer) of FreeBSD's
// sys/geom/journal/g_journal.c — plus geomctl's own geom lines State,
// Checksum, Journal used and Pending journals, whose values the journal
// engine computes and hands in, and UFS (the file system on the journaled
// provider and its gjournal flag, tunefs -J).

import { journaledProviderName } from '../geom/device-name.js';
import { OFFLINE_MODE, renderGeom, type ConfigLine, type GeomNode, type GeomProviderNode } from '../geom/listing.js';
import { u64Json } from '../util/json.js';
import { hasChecksum, type JournalMetadata } from './metadata.js';
import type { UfsSummary } from './tunefs.js';
import { PLAIN, type Tone, type TextStyle } from '../util/style.js';

import type { JournalState } from './device.js';

/** What each state means to the user: nothing to do, journals waiting to be copied, a journal to repair. */
/**
 * kern.geom.journal.force_switch: past this much of the journal space in use
 * the kernel switches journals early. Pending journals that fill it are a
 * journal running out of space: shown in yellow on a terminal.
 */
const FORCE_SWITCH_PERCENT = 70;

/** The Journal used line: marked running out of space past the kernel's force_switch. */
function journalUsedLine(dev: JournalListingDevice): ConfigLine {
  const used = journalUsedPercent(dev);
  return used > FORCE_SWITCH_PERCENT ? ['Journal used', `${used}%`, 'caution'] : ['Journal used', `${used}%`];
}

export const JOURNAL_STATE_TONE: Record<JournalState, Tone> = { CLEAN: 'good', DIRTY: 'caution', BROKEN: 'bad' };

export interface JournalListingImage {
  path: string;
  /** The provider name: the image's base name. */
  name: string;
  size: number;
}

export interface JournalListingDevice {
  /** The data provider's metadata (the authoritative copy). */
  md: JournalMetadata;
  sectorSize: number;
  data: JournalListingImage;
  /** The journal image of a two-image device; undefined when data and journal share one image. */
  journal?: JournalListingImage;
  state: JournalState;
  /** Bytes of the journal space holding journals not yet copied to the data area. */
  journalUsedBytes: number;
  /** Finished journals not yet copied to the data area. */
  pendingJournals: number;
  /** The UFS on the journaled provider (null: none found); undefined when not looked at. */
  ufs?: UfsSummary | null;
}

/** The geom's UFS line: the file system's version and whether it carries the gjournal flag. */
function ufsLine(ufs: UfsSummary | null): string {
  if (!ufs) return 'none';
  return `UFS${ufs.version}, gjournal ${ufs.gjournal ? 'enabled' : 'disabled'}`;
}

/** g_new_geomf(mp, "gjournal %u", sc_id). */
export function journalGeomName(id: number): string {
  return `gjournal ${id}`;
}

/** The journaled provider: "<data provider>.journal". */
export function journalProviderName(dev: Pick<JournalListingDevice, 'data'>): string {
  return journaledProviderName(dev.data.name);
}

/** sc_mediasize: the data area — up to jstart on one image, all but the last sector of a separate data image. */
export function journaledSize(dev: Pick<JournalListingDevice, 'md' | 'data' | 'journal' | 'sectorSize'>): number {
  return dev.journal ? dev.data.size - dev.sectorSize : Number(dev.md.jstart);
}

/** Journal used, in whole percent of the journal space (0..100). */
export function journalUsedPercent(dev: Pick<JournalListingDevice, 'md' | 'journalUsedBytes'>): number {
  const space = Number(dev.md.jend - dev.md.jstart);
  if (space <= 0) return 0;
  return Math.min(100, Math.max(0, Math.floor((dev.journalUsedBytes * 100) / space)));
}

interface ConsumerInfo {
  image: JournalListingImage;
  role: 'Data' | 'Journal' | 'Data,Journal';
  /** The journal consumer shows Jstart and Jend. */
  journal: boolean;
}

function consumers(dev: JournalListingDevice): ConsumerInfo[] {
  if (!dev.journal) return [{ image: dev.data, role: 'Data,Journal', journal: true }];
  return [
    { image: dev.data, role: 'Data', journal: false },
    { image: dev.journal, role: 'Journal', journal: true },
  ];
}

function geomNode(dev: JournalListingDevice): GeomNode {
  const provider: GeomProviderNode = { name: journalProviderName(dev), mediasize: journaledSize(dev), sectorsize: dev.sectorSize, mode: OFFLINE_MODE, config: [] };
  return {
    name: journalGeomName(dev.md.id),
    config: [
      ['ID', String(dev.md.id)],
      ['State', dev.state, JOURNAL_STATE_TONE[dev.state]],
      ['Checksum', hasChecksum(dev.md) ? 'yes' : 'no'],
      journalUsedLine(dev),
      ['Pending journals', String(dev.pendingJournals)],
      ...(dev.ufs !== undefined ? [['UFS', ufsLine(dev.ufs)] as [string, string]] : []),
    ],
    providers: [provider],
    consumers: consumers(dev).map((c) => ({
      name: c.image.name,
      mediasize: c.image.size,
      sectorsize: dev.sectorSize,
      mode: OFFLINE_MODE,
      config: c.journal
        ? [
            ['Role', c.role],
            ['Jstart', dev.md.jstart.toString()],
            ['Jend', dev.md.jend.toString()],
          ]
        : [['Role', c.role]],
    })),
  };
}

/** geom(8) list text for the devices, in the order given (each block ends with a blank line). */
export function renderJournalList(devices: readonly JournalListingDevice[], style: TextStyle = PLAIN): string {
  return devices.map((d) => renderGeom(geomNode(d), style)).join('');
}

/** One row of geom(8)'s status table: the journaled provider (the geom's name for -g), its state, its images. */
export function journalStatusRow(dev: JournalListingDevice): { name: string; geom: string; hasProvider: boolean; status: string; tone: Tone; components: string[] } {
  return { name: journalProviderName(dev), geom: journalGeomName(dev.md.id), hasProvider: true, status: dev.state, tone: JOURNAL_STATE_TONE[dev.state], components: consumers(dev).map((c) => c.image.name) };
}

/** The JSON form of one device for list and status. */
export function journalListingJson(dev: JournalListingDevice): Record<string, unknown> {
  return {
    name: journalGeomName(dev.md.id),
    id: dev.md.id,
    provider: { name: journalProviderName(dev), mediasize: journaledSize(dev), sectorsize: dev.sectorSize, mode: OFFLINE_MODE },
    state: dev.state,
    checksum: hasChecksum(dev.md),
    journalUsedPercent: journalUsedPercent(dev),
    journalUsedBytes: dev.journalUsedBytes,
    pendingJournals: dev.pendingJournals,
    ...(dev.ufs !== undefined ? { ufs: dev.ufs } : {}),
    jstart: u64Json(dev.md.jstart),
    jend: u64Json(dev.md.jend),
    consumers: consumers(dev).map((c) => ({
      name: c.image.name,
      path: c.image.path,
      mediasize: c.image.size,
      sectorsize: dev.sectorSize,
      mode: OFFLINE_MODE,
      role: c.role,
    })),
  };
}
