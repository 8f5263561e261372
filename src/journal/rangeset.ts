// An ordered set of disjoint byte ranges, each carrying a value: the
// journal's queues (g_journal.c's sc_current_queue, jj_queue and the inactive
// queue g_journal_sync builds). The kernel keeps them as sorted singly linked
// lists with O(n) insertion (g_journal_insert); a journal of a million entries
// would make that quadratic, so this is a treap (a randomised balanced binary
// search tree keyed by range start) with split and merge: insertion, removal
// and lookup cost O(log n) expected, iteration is in offset order.
//
// Semantics are g_journal_insert's: a new range wins where it overlaps older
// ones, which are trimmed or split (the bytes they lose are "skipped" bytes,
// kern.geom.journal.stats.skipped_bytes). A value describes the bytes from its
// range's start; when a range loses its first `delta` bytes, `slice(value,
// delta)` gives the value for the rest (e.g. the journal offset moves by
// delta). Trimming a range's end needs no new value.

export interface Range<V> {
  readonly start: number;
  readonly end: number;
  readonly value: V;
}

/** The value for the bytes of a range that start `delta` bytes into it. */
export type Slicer<V> = (value: V, delta: number) => V;

class Node<V> {
  left: Node<V> | undefined = undefined;
  right: Node<V> | undefined = undefined;
  /** Ranges in this subtree. */
  count = 1;
  /** Bytes covered by this subtree. */
  bytes: number;
  constructor(
    public start: number,
    public end: number,
    public value: V,
    public readonly prio: number,
  ) {
    this.bytes = end - start;
  }
}

function update<V>(n: Node<V>): Node<V> {
  const l = n.left;
  const r = n.right;
  n.count = 1 + (l ? l.count : 0) + (r ? r.count : 0);
  n.bytes = n.end - n.start + (l ? l.bytes : 0) + (r ? r.bytes : 0);
  return n;
}

// split() and splitAt() return their two trees here rather than in a fresh
// array per recursion level: a million inserts would otherwise allocate tens
// of millions of arrays.
let outL: Node<never> | undefined;
let outR: Node<never> | undefined;

/** Splits `t` into the nodes with start < key (outL) and those with start >= key (outR). */
function split<V>(t: Node<V> | undefined, key: number): void {
  if (!t) {
    outL = outR = undefined;
    return;
  }
  if (t.start < key) {
    split(t.right, key);
    t.right = outL as Node<V> | undefined;
    outL = update(t) as unknown as Node<never>;
  } else {
    split(t.left, key);
    t.left = outR as Node<V> | undefined;
    outR = update(t) as unknown as Node<never>;
  }
}

/** Splits off the first `k` nodes in order (outL) from the rest (outR). */
function splitAt<V>(t: Node<V> | undefined, k: number): void {
  if (!t) {
    outL = outR = undefined;
    return;
  }
  const lc = t.left ? t.left.count : 0;
  if (k <= lc) {
    splitAt(t.left, k);
    t.left = outR as Node<V> | undefined;
    outR = update(t) as unknown as Node<never>;
  } else {
    splitAt(t.right, k - lc - 1);
    t.right = outL as Node<V> | undefined;
    outL = update(t) as unknown as Node<never>;
  }
}

function takeSplit<V>(): [Node<V> | undefined, Node<V> | undefined] {
  return [outL as Node<V> | undefined, outR as Node<V> | undefined];
}

/** Joins two trees where every start in `a` is below every start in `b`. */
function merge<V>(a: Node<V> | undefined, b: Node<V> | undefined): Node<V> | undefined {
  if (!a) return b;
  if (!b) return a;
  if (a.prio > b.prio) {
    a.right = merge(a.right, b);
    return update(a);
  }
  b.left = merge(a, b.left);
  return update(b);
}

/** Inserts node `n`, which overlaps nothing in `t` (the classic treap insertion). */
function insertNode<V>(t: Node<V> | undefined, n: Node<V>): Node<V> {
  if (!t) return n;
  if (n.prio > t.prio) {
    split(t, n.start);
    [n.left, n.right] = takeSplit<V>();
    return update(n);
  }
  if (n.start < t.start) t.left = insertNode(t.left, n);
  else t.right = insertNode(t.right, n);
  return update(t);
}

function lastNode<V>(t: Node<V> | undefined): Node<V> | undefined {
  let n = t;
  while (n?.right) n = n.right;
  return n;
}

/** Splits off the last node of `t` (in order). */
function popLast<V>(t: Node<V>): [Node<V> | undefined, Node<V>] {
  splitAt(t, t.count - 1);
  const [rest, last] = takeSplit<V>();
  return [rest, last as Node<V>];
}

export class RangeSet<V> {
  private root: Node<V> | undefined = undefined;
  // xorshift32: deterministic priorities make runs reproducible.
  private seed = 0x2545f491;

  constructor(private readonly slice: Slicer<V>) {}

  /**
   * A set built at once from disjoint ranges already in offset order, in
   * O(n): a balanced tree whose priorities fall with depth, so later
   * insertions keep it a treap.
   */
  static fromSorted<V>(slice: Slicer<V>, starts: ArrayLike<number>, ends: ArrayLike<number>, value: (i: number) => V): RangeSet<V> {
    const n = starts.length;
    for (let i = 0; i < n; i++) {
      const s = starts[i] as number;
      const e = ends[i] as number;
      if (!(e > s) || (i > 0 && s < (ends[i - 1] as number))) throw new RangeError(`range ${i} [${s}, ${e}) is empty, out of order or overlapping`);
    }
    const set = new RangeSet(slice);
    const build = (lo: number, hi: number, depth: number): Node<V> | undefined => {
      if (lo >= hi) return undefined;
      const mid = (lo + hi) >>> 1;
      const node = new Node(starts[mid] as number, ends[mid] as number, value(mid), 0xffffffff - depth);
      node.left = build(lo, mid, depth + 1);
      node.right = build(mid + 1, hi, depth + 1);
      return update(node);
    };
    set.root = build(0, n, 0);
    return set;
  }

  private node(start: number, end: number, value: V): Node<V> {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return new Node(start, end, value, this.seed);
  }

  /** Number of ranges. */
  get size(): number {
    return this.root?.count ?? 0;
  }

  /** Bytes covered. */
  get bytes(): number {
    return this.root?.bytes ?? 0;
  }

  /**
   * Takes [start, end) out of the set: ranges overlapping it are trimmed or
   * split. Returns the bytes removed and the tree of ranges right of `end`.
   */
  private cut(start: number, end: number): { left: Node<V> | undefined; right: Node<V> | undefined; removed: number } {
    let removed = 0;
    split(this.root, start);
    let [left, rest] = takeSplit<V>();
    split(rest, end);
    const [mid, right0] = takeSplit<V>();
    let right = right0;
    // The range starting before `start` may reach into (or past) [start, end).
    if (left) {
      const last = lastNode(left) as Node<V>;
      if (last.end > start) {
        const [l, n] = popLast(left);
        if (n.end > end) right = merge(this.node(end, n.end, this.slice(n.value, end - n.start)), right);
        removed += Math.min(n.end, end) - start;
        n.end = start;
        n.left = n.right = undefined;
        left = merge(l, update(n));
      }
    }
    // Ranges starting inside [start, end) go, except what the last one has past `end`.
    if (mid) {
      removed += mid.bytes;
      const last = lastNode(mid) as Node<V>;
      if (last.end > end) {
        removed -= last.end - end;
        right = merge(this.node(end, last.end, this.slice(last.value, end - last.start)), right);
      }
    }
    return { left, right, removed };
  }

  /**
   * Inserts [start, end) with `value`, newest wins (g_journal_insert).
   * Returns the bytes of older ranges it replaced.
   */
  insert(start: number, end: number, value: V): number {
    if (!(end > start)) throw new RangeError(`empty range [${start}, ${end})`);
    // Fast path: nothing overlaps (appends, scattered writes): one descent
    // finds the neighbours, one treap insertion places the node.
    let n = this.root;
    let overlaps = false;
    while (n) {
      if (n.start >= end) n = n.left;
      else if (n.end <= start) n = n.right;
      else {
        overlaps = true;
        break;
      }
    }
    if (!overlaps) {
      this.root = insertNode(this.root, this.node(start, end, value));
      return 0;
    }
    const { left, right, removed } = this.cut(start, end);
    this.root = merge(merge(left, this.node(start, end, value)), right);
    return removed;
  }

  /** Removes [start, end) from the set; returns the bytes removed. */
  delete(start: number, end: number): number {
    if (!(end > start)) return 0;
    const { left, right, removed } = this.cut(start, end);
    this.root = merge(left, right);
    return removed;
  }

  /** Removes and returns the first `k` ranges in offset order. */
  shift(k: number): Range<V>[] {
    splitAt(this.root, Math.max(0, k));
    const [head, tail] = takeSplit<V>();
    this.root = tail;
    const out: Range<V>[] = [];
    collect(head, out);
    return out;
  }

  clear(): void {
    this.root = undefined;
  }

  /** The range containing `offset`, if any. */
  find(offset: number): Range<V> | undefined {
    let n = this.root;
    let best: Node<V> | undefined;
    while (n) {
      if (n.start <= offset) {
        best = n;
        n = n.right;
      } else n = n.left;
    }
    return best && best.end > offset ? { start: best.start, end: best.end, value: best.value } : undefined;
  }

  /**
   * The first range in offset order that ends after `offset` (whole, not
   * clipped): whether and how a range set touches a span, without an iterator.
   */
  firstEndingAfter(offset: number): Range<V> | undefined {
    let n = this.root;
    let best: Node<V> | undefined;
    while (n) {
      if (n.end > offset) {
        best = n;
        n = n.left;
      } else n = n.right;
    }
    return best ? { start: best.start, end: best.end, value: best.value } : undefined;
  }

  /** The first range in offset order. */
  first(): Range<V> | undefined {
    let n = this.root;
    while (n?.left) n = n.left;
    return n ? { start: n.start, end: n.end, value: n.value } : undefined;
  }

  /**
   * The ranges overlapping [from, to), in offset order, clipped to it.
   * The set must not change while the iterator is in use.
   */
  *entries(from = -Infinity, to = Infinity): IterableIterator<Range<V>> {
    // Descend to the first node whose end is past `from`: the one starting
    // at or before `from` (if it reaches past it), then every later one.
    const stack: Node<V>[] = [];
    let n = this.root;
    while (n) {
      if (n.end > from) {
        stack.push(n);
        n = n.left;
      } else n = n.right;
    }
    while (stack.length > 0) {
      const cur = stack.pop() as Node<V>;
      if (cur.start >= to) return;
      const s = Math.max(cur.start, from);
      const e = Math.min(cur.end, to);
      yield { start: s, end: e, value: s > cur.start ? this.slice(cur.value, s - cur.start) : cur.value };
      n = cur.right;
      while (n) {
        stack.push(n);
        n = n.left;
      }
    }
  }

  /** Calls `fn` for every range in offset order, allocating nothing per range (large replays). */
  forEach(fn: (start: number, end: number, value: V) => void): void {
    const stack: Node<V>[] = [];
    let n = this.root;
    while (n || stack.length > 0) {
      while (n) {
        stack.push(n);
        n = n.left;
      }
      const cur = stack.pop() as Node<V>;
      fn(cur.start, cur.end, cur.value);
      n = cur.right;
    }
  }

  /**
   * g_journal_optimize: consecutive ranges that touch, grouped greedily while
   * a group's length stays within `limit` (a range longer than `limit` is a
   * group of its own). Clipped to [from, to) as entries().
   */
  *runs(limit: number, from = -Infinity, to = Infinity): IterableIterator<Range<V>[]> {
    let group: Range<V>[] = [];
    let groupStart = 0;
    let groupEnd = 0;
    for (const r of this.entries(from, to)) {
      if (group.length > 0 && r.start === groupEnd && r.end - groupStart <= limit) {
        group.push(r);
        groupEnd = r.end;
        continue;
      }
      if (group.length > 0) yield group;
      group = [r];
      groupStart = r.start;
      groupEnd = r.end;
    }
    if (group.length > 0) yield group;
  }
}

function collect<V>(t: Node<V> | undefined, out: Range<V>[]): void {
  // In-order without recursion: shift() may take many ranges at once.
  const stack: Node<V>[] = [];
  let n = t;
  while (n || stack.length > 0) {
    while (n) {
      stack.push(n);
      n = n.left;
    }
    const cur = stack.pop() as Node<V>;
    out.push({ start: cur.start, end: cur.end, value: cur.value });
    n = cur.right;
  }
}
