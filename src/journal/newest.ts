// g_journal_insert's "newest wins" for a whole walk at once. The walk
// collects entries in journal order into flat arrays; resolving them here —
// sort by target offset, then sweep with a heap of the entries covering the
// sweep point, most recent on top — costs O(n log n) with a small constant,
// where inserting a million scattered entries one by one into a tree is
// dominated by cache misses.

import { orderBy } from './order.js';

/** Entries in journal order: the later an entry, the newer its data. */
export class EntryLog {
  private cap = 1024;
  starts: Float64Array = new Float64Array(this.cap);
  ends: Float64Array = new Float64Array(this.cap);
  joffsets: Float64Array = new Float64Array(this.cap);
  length = 0;

  push(start: number, end: number, joffset: number): void {
    if (this.length === this.cap) {
      this.cap *= 2;
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(this.cap);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.ends = grow(this.ends);
      this.joffsets = grow(this.joffsets);
    }
    this.starts[this.length] = start;
    this.ends[this.length] = end;
    this.joffsets[this.length] = joffset;
    this.length++;
  }
}

/** Disjoint ranges in offset order, each with the journal offset of its first byte. */
export interface Resolved {
  starts: number[];
  ends: number[];
  joffsets: number[];
}

/**
 * The first `count` entries of `log`, later entries winning where they
 * overlap, as disjoint ranges in offset order. Neighbouring pieces that are
 * contiguous in the journal too are joined.
 */
export function newestWins(log: EntryLog, count: number): Resolved {
  const { starts, ends, joffsets } = log;
  const order = orderBy(starts, count);
  // A binary max-heap of entry indexes (an index is the entry's recency).
  const heap = new Uint32Array(count);
  let size = 0;
  const push = (v: number): void => {
    let i = size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((heap[p] as number) >= v) break;
      heap[i] = heap[p] as number;
      i = p;
    }
    heap[i] = v;
  };
  const pop = (): void => {
    const last = heap[--size] as number;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && (heap[c + 1] as number) > (heap[c] as number)) c++;
      if ((heap[c] as number) <= last) break;
      heap[i] = heap[c] as number;
      i = c;
    }
    heap[i] = last;
  };
  const out: Resolved = { starts: [], ends: [], joffsets: [] };
  let next = 0; // into `order`
  let pos = 0;
  while (next < count || size > 0) {
    if (size === 0) pos = starts[order[next] as number] as number;
    while (next < count && (starts[order[next] as number] as number) <= pos) push(order[next++] as number);
    while (size > 0 && (ends[heap[0] as number] as number) <= pos) pop();
    if (size === 0) continue;
    const w = heap[0] as number;
    const upcoming = next < count ? (starts[order[next] as number] as number) : Infinity;
    const stop = Math.min(ends[w] as number, upcoming);
    const joffset = (joffsets[w] as number) + (pos - (starts[w] as number));
    const k = out.starts.length - 1;
    if (k >= 0 && out.ends[k] === pos && (out.joffsets[k] as number) + (pos - (out.starts[k] as number)) === joffset) {
      out.ends[k] = stop;
    } else {
      out.starts.push(pos);
      out.ends.push(stop);
      out.joffsets.push(joffset);
    }
    pos = stop;
  }
  return out;
}

