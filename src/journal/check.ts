// `journal check [-y]` (journal.md, "scan, check"): every image's metadata,
// the geometry and the walk, each problem on its own line; -y repairs as
// opening with -f would (replay, or reinitialise and mark the UFS dirty).

import { GeomError } from '../errors.js';
import type { Engine } from '../engine/types.js';
import { JournalDevice, type JournalOpenOptions, type RecoverResult } from './device.js';

export interface CheckReport {
  problems: string[];
  /** What is fine but worth saying (journals waiting for replay, the maxphys used). */
  notes: string[];
  /** With -y: what the repair did. */
  repaired?: RecoverResult;
  state?: JournalDevice['state'];
  /**
   * What to do about the problems, when one thing does: -y where it would
   * repair them, else what the user must give (a --maxphys). Undefined when
   * nothing geomctl can do helps (each problem then carries its own hint).
   */
  remedy?: string;
}

/** opts.onWalk reports the walk's progress; onReplay, with repair, the bytes copied out of those to copy. */
export function checkJournal(engine: Engine, opts: JournalOpenOptions & { repair: boolean; onReplay?: (copied: number, total: number) => void }): CheckReport {
  const report: CheckReport = { problems: [], notes: [] };
  let dev: JournalDevice;
  try {
    dev = JournalDevice.open(engine, opts);
  } catch (err) {
    if (!(err instanceof GeomError)) throw err;
    report.problems.push(err.line);
    return report;
  }
  report.state = dev.state;
  report.problems.push(...dev.warnings);
  const choice = dev.choice;
  if (choice) {
    const w = choice.walk;
    const source = choice.given ? 'given' : choice.other ? 'detected' : 'either';
    report.notes.push(`walk with maxphys ${w.maxphys / 1024}k (${source}): ${w.finished} finished journal${w.finished === 1 ? '' : 's'}, ${w.replay.bytes} bytes to replay`);
    const shortfall = dev.maxphysShortfall;
    if (choice.disagree) {
      report.problems.push(`${dev.dataPath}: the walks with maxphys 1M and 128k finish as many journals but replay different data`);
      report.remedy = "give --maxphys 1M or --maxphys 128k ('geomctl journal scan' shows both walks)";
    } else if (shortfall) {
      // Not "broken": another reading keeps the data, and -y would discard it.
      report.problems.push(shortfall);
      report.remedy = dev.maxphysRemedy;
    } else {
      if (dev.damaged) report.problems.push(`${dev.journalPath}: ${w.end.detail}; the journals from there on are lost`);
      if (dev.state === 'BROKEN') {
        report.problems.push(`${dev.dataPath}: journal is broken: no finished journal at md_joffset ${dev.md.joffset} (md_jid ${dev.md.jid}): ${w.end.detail}`);
      }
      if ((dev.damaged || dev.state === 'BROKEN') && !opts.repair) report.remedy = "'geomctl journal check -y' repairs it as FreeBSD does on attach, marking the UFS dirty";
    }
  } else {
    report.notes.push(`${dev.dataPath}: journal is CLEAN`);
  }
  // -y acts only where a repair can: never over walks that disagree or a --maxphys that walks fewer journals.
  if (opts.repair && dev.state !== 'CLEAN' && !choice?.disagree && !choice?.fewer) {
    try {
      const total = dev.replayBytes;
      const onReplay = opts.onReplay;
      report.repaired = dev.recover(true, onReplay && ((copied) => onReplay(copied, total)));
      report.state = dev.state;
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
      report.problems.push(err.line);
    }
  }
  return report;
}
