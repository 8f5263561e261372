// The flush engine's two ordered structures. HAMMER keeps its modified
// buffers in red-black trees (hammer_mod_rb_tree) and its undo history in a
// small cache; here a sorted array with binary search does both jobs: the
// common case (sequential writes) appends at the end, and the number of
// entries is bounded (dirty blocks by the cache limit, history intervals by
// how scattered one command's metadata changes are).

/** Unique items kept in ascending order of `compare`. */
export class SortedList<T> {
  private items: T[] = [];

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  /** The index of the first item not less than `x`. */
  private lowerBound(x: T): number {
    const items = this.items;
    const last = items[items.length - 1];
    if (last === undefined || this.compare(last, x) < 0) return items.length;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(items[mid] as T, x) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(x: T): void {
    const i = this.lowerBound(x);
    if (i < this.items.length && this.compare(this.items[i] as T, x) === 0) return;
    if (i === this.items.length) this.items.push(x);
    else this.items.splice(i, 0, x);
  }

  remove(x: T): void {
    const i = this.lowerBound(x);
    if (i < this.items.length && this.compare(this.items[i] as T, x) === 0) this.items.splice(i, 1);
  }

  /** Every item in order; the list is left empty. */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }
}

/** A set of disjoint half-open integer intervals, merged when they touch. */
export class IntervalSet {
  private starts: number[] = [];
  private ends: number[] = [];

  get count(): number {
    return this.starts.length;
  }

  /** The index of the first interval whose end is at or after `x`. */
  private firstEndingAtOrAfter(x: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ends[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The parts of [lo, hi) no interval covers, in order. */
  gaps(lo: number, hi: number): [number, number][] {
    const out: [number, number][] = [];
    let pos = lo;
    for (let i = this.firstEndingAtOrAfter(lo + 1); i < this.starts.length && pos < hi; i++) {
      const s = this.starts[i] as number;
      if (s >= hi) break;
      if (s > pos) out.push([pos, s]);
      pos = Math.max(pos, this.ends[i] as number);
    }
    if (pos < hi) out.push([pos, hi]);
    return out;
  }

  add(lo: number, hi: number): void {
    if (hi <= lo) return;
    const i = this.firstEndingAtOrAfter(lo);
    let j = i;
    let start = lo;
    let end = hi;
    while (j < this.starts.length && (this.starts[j] as number) <= hi) {
      start = Math.min(start, this.starts[j] as number);
      end = Math.max(end, this.ends[j] as number);
      j++;
    }
    this.starts.splice(i, j - i, start);
    this.ends.splice(i, j - i, end);
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
  }
}
