// A journal geom's provider, <data provider>.journal (providers.md), live as
// g_journal runs it: writes become records of the active journal; a switch
// (time, fill, FLUSH) finishes it and copies the finished journals to the data
// area; reads merge the data area with every journal not yet copied; the clean
// stop leaves the journal CLEAN, as 'journal stop' does. The writer is made
// at the first write, and never over images opened read-only (journal read
// and export): a DIRTY journal is read as it is, nothing copied or changed.
//
// FLUSH finishes the active journal (barrier, next journal's header, barrier):
// everything written before it is then replayed after a kill, by geomctl or by
// FreeBSD. gjournal's own provider refuses BIO_FLUSH; this is serve.md's named
// divergence, since NBD clients need a flush that makes their writes durable.

import { alignedBuffer } from '../util/aligned.js';
import type { BlockProvider } from '../provider/block.js';
import { regionsToRuns } from '../provider/image-block.js';
import type { JournalDevice } from './device.js';
import type { JournalWriter } from './writer.js';
import { GJ_RECORD_MAX_ENTRIES } from './format.js';

/** Zeros are journaled this many bytes at a time. */
const ZERO_PIECE = 1024 * 1024;
/** One page-aligned piece of zeros, shared: the writer keeps what it is given but never changes it. */
const ZEROS = alignedBuffer(ZERO_PIECE).fill(0);

export interface JournalSwitchPolicy {
  /** kern.geom.journal.switch_time: seconds between switches while records are pending. */
  switchTime: number;
  /** kern.geom.journal.force_switch: a switch once the active journal holds this percent of the journal space. */
  forceSwitch: number;
  /** Seconds since some epoch (tests give their own clock). */
  now?: () => number;
}

/**
 * The provider of `dev`; `close` ends what opened it. Without `policy` the
 * journal switches only when the writer must (a full journal space, the
 * cache limit), as one command's writes do; serve gives the kernel's policy.
 */
export function journalBlockProvider(dev: JournalDevice, close: () => void, policy?: JournalSwitchPolicy): BlockProvider {
  const writable = dev.engine.providers[dev.data]?.writable ?? false;
  // Made at the first write (dev.writer() keeps it): reads alone need none.
  const writer = (): JournalWriter => {
    if (!writable) throw new Error(`${dev.dataPath}.journal is open read-only`);
    return dev.writer();
  };
  const now = policy?.now ?? (() => Date.now() / 1000);
  const space = dev.geo.jend - dev.geo.jstart;
  let pendingBytes = 0;
  let lastSwitch = now();

  /** g_journal_switch: finish the active journal, copy the finished ones, as the worker does. */
  const switchNow = (): void => {
    writer().finish();
    writer().copyFinished();
    pendingBytes = 0;
    lastSwitch = now();
  };
  const journaled = (offset: number, data: Buffer, lent = false): void => {
    writer().write(offset, data, lent);
    pendingBytes += data.length;
    if (policy && pendingBytes * 100 >= space * policy.forceSwitch) switchNow();
  };
  const durable = (fua: boolean | undefined): void => {
    if (fua) writer().finish();
  };

  return {
    name: `${dev.engine.providers[dev.data]?.name ?? dev.dataPath}.journal`,
    mediaSize: dev.dataSize,
    sectorSize: dev.sectorSize,
    writable,
    read: (offset, target) => dev.readInto(offset, target),
    write(offset, data, opts = {}) {
      // The writer keeps what it is given until the journal is copied: the caller's bytes
      // when they are given up, else a page-aligned copy, as it is written from as it is
      // (src/util/aligned.ts). A lent buffer (the server's payloads, writeFromFile's arena)
      // is read as it is until settle(): the records are written from it, and the copy to
      // the data area reads them back from the journal — so the journal cache holds no
      // payload at all, and memory stays bounded whatever the clients write.
      let kept = data;
      if (!opts.owned && !opts.lent) {
        kept = alignedBuffer(data.length);
        data.copy(kept);
      }
      journaled(offset, kept, opts.lent);
      durable(opts.fua);
    },
    zero(offset, length, opts = {}) {
      for (let at = offset; at < offset + length; at += ZERO_PIECE) journaled(at, ZEROS.subarray(0, Math.min(ZERO_PIECE, offset + length - at)));
      durable(opts.fua);
    },
    flush() {
      if (writable) writer().finish();
    },
    // The data image's holes that no journal not yet copied covers (providers.md).
    extents: (offset, length) => regionsToRuns(dev.dataRegions(offset, length), offset, length),
    tick() {
      if (policy && pendingBytes > 0 && now() - lastSwitch >= policy.switchTime) switchNow();
    },
    // A record's worth of maxphys requests between settles: writing the queued records frees them.
    ...(writable ? { lending: { request: dev.writeMaxphys, bytes: dev.writeMaxphys * GJ_RECORD_MAX_ENTRIES, settle: () => writer().flush() } } : {}),
    close(opts = {}) {
      if (writable && opts.clean !== false) writer().sync();
      close();
    },
  };
}
