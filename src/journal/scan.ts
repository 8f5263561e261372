// `journal scan` (journal.md, "scan, check"): what is in the journal space,
// the way ext4's `debugfs logdump` shows a jbd2 journal — a line per journal
// header and per record, whether each journal is finished, the maxphys used,
// and what a replay would copy. Without --all it follows g_journal_sync's
// walk from md_joffset (both maxphys walks when they differ); with --all it
// reads every sector of the journal space, for forensics.

import { createHash } from 'node:crypto';
import { humanize } from '../util/size.js';
import { checkRecord, decodeJournalHeader, decodeRecordHeader, recordSize, recordSum } from './format.js';
import type { JournalDevice, JournalState } from './device.js';
import { isClean } from './metadata.js';
import { JOURNAL_STATE_TONE } from './listing.js';
import { PLAIN, type TextStyle } from '../util/style.js';
import { maxphysText } from '../util/maxphys.js';
import { chooseWalk, type Walk, type WalkChoice, type WalkJournal, type WalkProgress } from './walk.js';

export interface ScanWalk {
  maxphys: number;
  finished: number;
  journals: WalkJournal[];
  end: Walk['end'];
  replay: { ranges: number; bytes: number };
}

export interface ScanFound {
  offset: number;
  kind: 'header' | 'record';
  /** Header: its id and next id. Record: its journal id. */
  id: number;
  nextId?: number;
  entries?: number;
  bytes?: number;
  checksum?: 'ok' | 'bad' | 'none';
  /** Why a record-looking sector cannot be one (its entries do not fit where it sits). */
  invalid?: string;
}

export interface ScanReport {
  data: string;
  journal: string;
  sectorSize: number;
  jstart: number;
  jend: number;
  state: JournalState;
  checksum: boolean;
  joffset: number;
  jid: number;
  /** The walk used, then (when they differ) the other maxphys's walk. */
  walks: ScanWalk[];
  maxphysGiven: boolean;
  disagree: boolean;
  /** --all: every header and record-looking sector of the journal space. */
  found?: ScanFound[];
}

function scanWalk(w: Walk): ScanWalk {
  return {
    maxphys: w.maxphys,
    finished: w.finished,
    journals: w.journals,
    end: w.end,
    replay: { ranges: w.replay.size, bytes: w.replay.bytes },
  };
}

/** The walk scan shows: the device's own when it was dirty, else a fresh one from md_joffset. */
function walksOf(dev: JournalDevice, maxphys: number | undefined, onProgress: WalkProgress | undefined): WalkChoice {
  if (dev.choice && dev.choice.walk.journals.every((j) => j.recordList)) return dev.choice;
  const read = (o: number, l: number): Buffer => dev.engine.read(dev.journal, o, l);
  return chooseWalk(read, dev.geo, { joffset: Number(dev.md.joffset), jid: dev.md.jid }, { maxphys, checksum: dev.checksum, details: true, onProgress });
}

export interface ScanOptions {
  maxphys?: number;
  all?: boolean;
  /** Progress of the walk from md_joffset (that of a device opened dirty is reported by its open). */
  onWalk?: WalkProgress;
  /** Progress of --all's pass over the journal space: bytes read of the space. */
  onReadAll?: WalkProgress;
}

export function scanJournal(dev: JournalDevice, opts: ScanOptions): ScanReport {
  const choice = walksOf(dev, opts.maxphys, opts.onWalk);
  const report: ScanReport = {
    data: dev.dataPath,
    journal: dev.journalPath,
    sectorSize: dev.sectorSize,
    jstart: dev.geo.jstart,
    jend: dev.geo.jend,
    state: dev.state,
    checksum: dev.checksum,
    joffset: Number(dev.md.joffset),
    jid: dev.md.jid,
    walks: [scanWalk(choice.walk), ...(choice.other ? [scanWalk(choice.other)] : [])],
    maxphysGiven: choice.given,
    disagree: choice.disagree,
  };
  if (opts.all) report.found = scanAll(dev, choice.walk.maxphys, opts.onReadAll);
  return report;
}

/**
 * Every journal header and every sector with a record header's magic in the
 * journal space, in offset order. A record whose entries fit where it sits
 * (as checkRecord sees them, for its own journal id) is stepped over whole.
 */
export function scanAll(dev: JournalDevice, maxphys: number, onProgress?: WalkProgress): ScanFound[] {
  const { sectorSize: ss, jstart, jend, dataSize } = dev.geo;
  const out: ScanFound[] = [];
  const chunk = Math.max(ss, Math.floor((1024 * 1024) / ss) * ss);
  let pos = jstart;
  while (pos < jend) {
    onProgress?.(pos - jstart, jend - jstart);
    const len = Math.min(chunk, jend - pos);
    const buf = dev.engine.read(dev.journal, pos, len);
    let next = pos + len;
    for (let i = 0; i < len; i += ss) {
      const at = pos + i;
      const sector = buf.subarray(i, i + ss);
      const h = decodeJournalHeader(sector);
      if (h) {
        out.push({ offset: at, kind: 'header', id: h.journalId, nextId: h.nextId });
        continue;
      }
      const d = decodeRecordHeader(sector);
      if (!d.ok) continue;
      const rec = d.record;
      const invalid = checkRecord(rec, { recordOffset: at, journalId: rec.journalId, sectorSize: ss, maxphys, jend, dataSize });
      const found: ScanFound = { offset: at, kind: 'record', id: rec.journalId, entries: rec.entries.length };
      if (invalid) {
        found.invalid = invalid;
        out.push(found);
        continue;
      }
      const size = recordSize(rec, ss);
      found.bytes = size - ss;
      found.checksum = dev.checksum ? (md5At(dev, at + ss, size - ss).equals(rec.sum) ? 'ok' : 'bad') : 'none';
      out.push(found);
      // Step over the record's data; it may run past this chunk.
      if (at + size > pos + len) {
        next = at + size;
        break;
      }
      i += size - ss;
    }
    pos = next;
  }
  onProgress?.(jend - jstart, jend - jstart);
  return out;
}

function md5At(dev: JournalDevice, offset: number, length: number): Buffer {
  const h = createHash('md5');
  for (let o = 0; o < length; o += 1024 * 1024) h.update(dev.engine.read(dev.journal, offset + o, Math.min(1024 * 1024, length - o)));
  return recordSum(h.digest());
}

const kib = (n: number): string => (n % 1024 === 0 ? `${n / 1024}k` : String(n));

function renderWalk(w: ScanWalk, used: boolean, style: TextStyle): string[] {
  const lines = [style.heading(`walk with maxphys ${kib(w.maxphys)}${used ? '' : ' (not used)'}: ${w.finished} finished journal${w.finished === 1 ? '' : 's'}`)];
  for (const j of w.journals) {
    // A finished journal replays; an unfinished one (the journal being written) does not: told apart on a terminal.
    const header = `header  id ${j.id} next ${j.nextId}${j.finished ? '' : '  (not finished)'}`;
    lines.push(`  ${String(j.offset).padStart(14)}  ${style.tone(header, j.finished ? 'good' : 'caution')}`);
    for (const r of j.recordList ?? []) {
      lines.push(`  ${String(r.offset).padStart(14)}  record  journal ${r.journalId}, ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'}, ${r.bytes} bytes, checksum ${r.checksum}`);
    }
  }
  // A walk that ends on a checksum mismatch ends in a damaged journal: what follows is lost.
  const end = `end     ${w.end.reason}: ${w.end.detail}`;
  lines.push(`  ${String(w.end.offset).padStart(14)}  ${w.end.reason === 'checksum' ? style.tone(end, 'bad') : end}`);
  lines.push(`  replay: ${w.replay.ranges} range${w.replay.ranges === 1 ? '' : 's'}, ${w.replay.bytes} bytes (${humanize(w.replay.bytes)})`);
  return lines;
}

/**
 * Why detection took the first walk (walk.ts chooseWalk): it finishes more
 * journals, or on a tie it ends at damage the other does not reach, or both
 * replay the same and the choice does not matter.
 */
function detectedLine(r: ScanReport): string {
  const [used, other] = r.walks;
  if (r.disagree) return 'The two walks disagree on what to replay: give --maxphys.';
  const maxphys = kib(used?.maxphys ?? 0);
  if (used && other && used.finished > other.finished) return `maxphys ${maxphys} detected: its walk finishes more journals.`;
  if (used?.end.reason === 'checksum' && other?.end.reason !== 'checksum') return `maxphys ${maxphys} detected: its walk reaches damage the other stops short of.`;
  return `Both walks replay the same: maxphys ${maxphys} used.`;
}

/** The text form; `style` marks up headings, the state and finished and unfinished journals. */
export function renderScan(r: ScanReport, style: TextStyle = PLAIN): string {
  const lines = [
    style.heading(`Journal of ${r.data}${r.journal !== r.data ? ` on ${r.journal}` : ''}: jstart ${r.jstart}, jend ${r.jend}, sector size ${r.sectorSize}`),
    `State: ${style.tone(r.state, JOURNAL_STATE_TONE[r.state])}, checksum ${r.checksum ? 'yes' : 'no'}, md_joffset ${r.joffset}, md_jid ${r.jid}`,
  ];
  if (r.state === 'CLEAN') lines.push('A CLEAN journal replays nothing; the walk below shows what md_joffset still names.');
  r.walks.forEach((w, i) => lines.push(...renderWalk(w, i === 0, style)));
  const [used, other] = r.walks;
  if (r.maxphysGiven && used && other) {
    lines.push(
      other.finished > used.finished
        ? `--maxphys ${maxphysText(used.maxphys)} walks fewer journals than maxphys ${maxphysText(other.maxphys)}: give --maxphys ${maxphysText(other.maxphys)}, or leave --maxphys out, to replay them.`
        : `maxphys ${maxphysText(used.maxphys)} given.`,
    );
  } else if (r.walks.length > 1) {
    lines.push(detectedLine(r));
  } else if (!r.maxphysGiven) {
    lines.push('Nothing on the way depends on maxphys: both walks are the same.');
  }
  if (r.found) {
    lines.push(style.heading(`every header and record in [${r.jstart}, ${r.jend}):`));
    for (const f of r.found) {
      if (f.kind === 'header') lines.push(`  ${String(f.offset).padStart(14)}  header  id ${f.id} next ${f.nextId}`);
      else if (f.invalid) lines.push(`  ${String(f.offset).padStart(14)}  ${style.tone(`record? journal ${f.id}, ${f.entries} entries: ${f.invalid}`, 'bad')}`);
      else lines.push(`  ${String(f.offset).padStart(14)}  record  journal ${f.id}, ${f.entries} entries, ${f.bytes} bytes, checksum ${f.checksum}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The --json fields (offsets and sizes stay below 2^53: they index images). */
export function scanJson(r: ScanReport): Record<string, unknown> {
  return {
    data: r.data,
    journal: r.journal,
    sectorSize: r.sectorSize,
    jstart: r.jstart,
    jend: r.jend,
    state: r.state,
    checksum: r.checksum,
    joffset: r.joffset,
    jid: r.jid,
    maxphys: r.walks[0]?.maxphys,
    maxphysGiven: r.maxphysGiven,
    disagree: r.disagree,
    walks: r.walks.map((w) => ({
      maxphys: w.maxphys,
      finished: w.finished,
      journals: w.journals.map((j) => ({
        offset: j.offset,
        id: j.id,
        nextId: j.nextId,
        finished: j.finished,
        records: (j.recordList ?? []).map((rec) => ({ offset: rec.offset, journalId: rec.journalId, entries: rec.entries, bytes: rec.bytes, checksum: rec.checksum })),
      })),
      end: w.end,
      replay: w.replay,
    })),
    ...(r.found ? { found: r.found } : {}),
  };
}

/** What list and status show of a device (src/journal/listing.ts's inputs). */
export function journalSummary(dev: JournalDevice): { state: JournalState; journalUsedBytes: number; pendingJournals: number } {
  if (isClean(dev.md) || !dev.choice) return { state: dev.state, journalUsedBytes: 0, pendingJournals: 0 };
  const w = dev.choice.walk;
  return { state: dev.state, journalUsedBytes: w.finishedBytes, pendingJournals: w.finished };
}
