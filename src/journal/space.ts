// The journal space as the writer sees it (journal.md, "Journal space"):
// positions in [jstart, jend) with GJ_VALIDATE_OFFSET's wrap rule, and the
// protected span that no record or header may land on.
//
// Positions are tracked as *virtual* offsets that only grow: the bytes
// consumed since jstart, wrap tails included, so that physical =
// jstart + virtual mod (jend - jstart). A write at virtual [v, v + n) cannot
// touch the protected span [vF, vW) as long as v + n <= vF + (jend - jstart):
// distances are plain subtractions, and "would the span grow too large" is a
// comparison.

import { recordMaxSize } from './format.js';

/** Bounds the writer checks a record against (all virtual offsets). */
export interface FitLimits {
  /** Where the record would go (the write position, before the wrap rule). */
  at: number;
  /** The protected span's start: nothing may be written at or past protectedStart + size. */
  protectedStart: number;
  /** The active journal's header: after a switch it becomes the protected start. */
  activeStart: number;
  /** The active journal should end (terminator included) by activeStart + softLimit, unless it is empty. */
  softLimit: number;
  /** The active journal holds no record yet (the soft limit does not apply). */
  activeEmpty: boolean;
}

export class JournalSpace {
  readonly size: number;
  /** RMAX: GJ_RECORD_MAX_SIZE, the span the wrap rule keeps free before jend. */
  readonly rmax: number;

  constructor(
    readonly jstart: number,
    readonly jend: number,
    readonly sectorSize: number,
    readonly maxphys: number,
  ) {
    this.size = jend - jstart;
    this.rmax = recordMaxSize(sectorSize, maxphys);
  }

  /** The physical offset of virtual offset `v`. */
  phys(v: number): number {
    return this.jstart + (v % this.size);
  }

  /** GJ_VALIDATE_OFFSET on virtual offsets: a record or header meant for `v` starts here. */
  place(v: number): number {
    const p = this.phys(v);
    return p + this.rmax >= this.jend ? v + (this.jend - p) : v;
  }

  /** Whether a record of `size` bytes at `limits.at`, then its journal's terminating header, keeps every rule. */
  fits(size: number, l: FitLimits): boolean {
    const ss = this.sectorSize;
    const start = this.place(l.at);
    const term = this.place(start + size);
    // 1. The record and the header that will finish its journal stay off the protected span.
    if (term + ss > l.protectedStart + this.size) return false;
    // 2. Once this journal is finished and becomes the protected one, the
    //    next journal can still take one minimal record and its terminator:
    //    the writer can always go on.
    const next = this.place(term + ss);
    const nextTerm = this.place(next + 2 * ss);
    if (nextTerm + ss > l.activeStart + this.size) return false;
    // 3. Journals stay within the soft limit, so the one after has room too.
    if (!l.activeEmpty && term + ss - l.activeStart > l.softLimit) return false;
    return true;
  }

  /**
   * The largest record (header included, a sector multiple, at most `max`)
   * that fits, or 0 when not even a header and one sector of data does.
   * Every condition of fits() only gets harder as the record grows (place()
   * never decreases), so a binary search finds it.
   */
  largestRecord(max: number, l: FitLimits): number {
    const ss = this.sectorSize;
    let lo = 1; // sectors: 1 = the header alone, never a record
    let hi = Math.floor(Math.min(max, this.rmax) / ss);
    if (hi < 2 || !this.fits(2 * ss, l)) return 0;
    lo = 2;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (this.fits(mid * ss, l)) lo = mid;
      else hi = mid - 1;
    }
    return lo * ss;
  }
}
