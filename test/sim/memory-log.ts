// Test support for the crash tests (flush-engine.md, "Testing it"): undo logs
// held in memory, with a power-loss model of their file system, and a
// CrashWorld that puts them on one timeline with the images of a
// CrashSimulator, because one power loss hits the images and the log at the
// same instant.
//
// The file-system model is the pessimistic POSIX one: a file's contents are
// durable up to its last fsync, later appends may be kept, dropped or torn
// (per 512-byte sector); a creation or removal is durable only once its
// directory has been fsynced — before that, a crash may show the file or not.

import nodePath from 'node:path';
import { IoError } from '../../src/errors.js';
import { CrashSimulator, seededRng, type CrashEvent } from './crash.js';
import type { LogReader, LogStore, LogWriter } from '../../src/engine/undo-store.js';
import { UNDO_SUFFIX } from '../../src/engine/undo-store.js';

export type LogOp =
  | { kind: 'create'; path: string }
  | { kind: 'append'; path: string; offset: number; data: Buffer }
  | { kind: 'sync'; path: string }
  | { kind: 'remove'; path: string }
  | { kind: 'syncdir'; dir: string };

/** One file's contents as of its last fsync, and the appends since. */
interface Incarnation {
  synced: Buffer;
  pending: { offset: number; data: Buffer }[];
}

interface Entry {
  /** What the directory holds now (undefined: removed or never created). */
  live: Incarnation | undefined;
  /** What the directory holds on disk (as of its last fsync). */
  durable: Incarnation | undefined;
}

const ATOMIC = 512;

function applyAll(inc: Incarnation): Buffer {
  let out = inc.synced;
  for (const w of inc.pending) out = place(out, w.offset, w.data);
  return out;
}

function place(buf: Buffer, offset: number, data: Buffer): Buffer {
  const out = Buffer.alloc(Math.max(buf.length, offset + data.length));
  buf.copy(out);
  data.copy(out, offset);
  return out;
}

/** What a power loss leaves of a file: its synced bytes plus, of each later append, all, none or some sectors. */
function crashed(inc: Incarnation, rng: () => number): Buffer {
  let out = inc.synced;
  for (const w of inc.pending) {
    const r = rng();
    if (r < 1 / 3) out = place(out, w.offset, w.data);
    else if (r < 2 / 3) {
      const end = w.offset + w.data.length;
      for (let pos = w.offset; pos < end; ) {
        const next = Math.min(end, (Math.floor(pos / ATOMIC) + 1) * ATOMIC);
        if (rng() < 0.5) out = place(out, pos, w.data.subarray(pos - w.offset, next - w.offset));
        pos = next;
      }
    }
  }
  return out;
}

/** A LogStore in memory that records every operation, to replay any prefix of them as a power loss. */
export class MemoryLogStore implements LogStore {
  readonly ops: { op: LogOp; at: number }[] = [];
  private readonly initial: Map<string, Buffer>;
  private readonly live = new Map<string, Buffer>();

  /**
   * `clock` stamps each operation with the position it took among other
   * recorded events (CrashWorld passes the image simulator's event count);
   * `initial` files exist durably from the start.
   */
  constructor(
    private readonly clock: () => number = () => 0,
    initial: ReadonlyMap<string, Buffer> = new Map(),
  ) {
    this.initial = new Map([...initial].map(([p, b]) => [nodePath.resolve(p), Buffer.from(b)]));
    for (const [p, b] of this.initial) this.live.set(p, Buffer.from(b));
  }

  /** The files as they are now (no crash). */
  get files(): ReadonlyMap<string, Buffer> {
    return this.live;
  }

  private record(op: LogOp): void {
    this.ops.push({ op, at: this.clock() });
  }

  list(dir: string): string[] {
    const d = nodePath.resolve(dir);
    return [...this.live.keys()].filter((p) => nodePath.dirname(p) === d && p.endsWith(UNDO_SUFFIX)).sort();
  }

  open(path: string): LogReader | undefined {
    const buf = this.live.get(nodePath.resolve(path));
    if (!buf) return undefined;
    const snapshot = Buffer.from(buf);
    return {
      size: snapshot.length,
      read: (offset, length) => {
        if (offset + length > snapshot.length) throw new IoError(path, 'read', offset, 'past the end of the log');
        return Buffer.from(snapshot.subarray(offset, offset + length));
      },
      close: () => {},
    };
  }

  create(path: string): LogWriter {
    const p = nodePath.resolve(path);
    if (this.live.has(p)) throw new IoError(path, 'create', undefined, 'EEXIST');
    this.live.set(p, Buffer.alloc(0));
    this.record({ kind: 'create', path: p });
    return {
      append: (data) => {
        const cur = this.live.get(p);
        if (!cur) throw new IoError(path, 'write', undefined, 'EBADF (removed)');
        this.record({ kind: 'append', path: p, offset: cur.length, data: Buffer.from(data) });
        this.live.set(p, Buffer.concat([cur, data]));
      },
      sync: () => this.record({ kind: 'sync', path: p }),
      close: () => {},
    };
  }

  remove(path: string): void {
    const p = nodePath.resolve(path);
    if (!this.live.delete(p)) return;
    this.record({ kind: 'remove', path: p });
  }

  syncDir(dir: string): void {
    this.record({ kind: 'syncdir', dir: nodePath.resolve(dir) });
  }

  /** The files a power loss leaves once the first `count` operations had been issued. */
  crashState(count: number, rng: () => number): Map<string, Buffer> {
    const entries = new Map<string, Entry>();
    for (const [p, b] of this.initial) {
      const inc: Incarnation = { synced: b, pending: [] };
      entries.set(p, { live: inc, durable: inc });
    }
    const entry = (p: string): Entry => {
      let e = entries.get(p);
      if (!e) entries.set(p, (e = { live: undefined, durable: undefined }));
      return e;
    };
    for (const { op } of this.ops.slice(0, count)) {
      switch (op.kind) {
        case 'create':
          entry(op.path).live = { synced: Buffer.alloc(0), pending: [] };
          break;
        case 'append':
          entry(op.path).live?.pending.push({ offset: op.offset, data: op.data });
          break;
        case 'sync': {
          const inc = entry(op.path).live;
          if (inc) {
            inc.synced = applyAll(inc);
            inc.pending = [];
          }
          break;
        }
        case 'remove':
          entry(op.path).live = undefined;
          break;
        case 'syncdir':
          for (const [p, e] of entries) if (nodePath.dirname(p) === op.dir) e.durable = e.live;
          break;
      }
    }
    const out = new Map<string, Buffer>();
    for (const [p, e] of entries) {
      const inc = e.durable === e.live || rng() < 0.5 ? e.live : e.durable;
      if (inc) out.set(p, crashed(inc, rng));
    }
    return out;
  }
}

export interface WorldState {
  /** The cut point: how many operations (image writes and barriers, log operations) had been issued. */
  cut: number;
  images: Buffer[];
  logs: Map<string, Buffer>;
}

/** Images (a CrashSimulator) and undo logs (a MemoryLogStore) on one timeline. */
export class CrashWorld {
  readonly sim = new CrashSimulator();
  readonly logs: MemoryLogStore;

  constructor(initialLogs: ReadonlyMap<string, Buffer> = new Map()) {
    this.logs = new MemoryLogStore(() => this.sim.events.length, initialLogs);
  }

  /** Cut points: before the first operation and after each. */
  get cutCount(): number {
    return this.sim.events.length + this.logs.ops.length + 1;
  }

  /**
   * The images and logs after a power loss once the first `cut` operations,
   * in the order they were issued, had been issued. Cheapest with
   * non-decreasing cuts (the image simulator advances incrementally).
   */
  crashState(cut: number, rng: () => number): WorldState {
    // A log operation stamped `at` came after image events [0, at): its place in the merged order is at + its index.
    let logCount = 0;
    while (logCount < this.logs.ops.length && (this.logs.ops[logCount] as { at: number }).at + logCount < cut) logCount++;
    const images = this.sim.crashState(cut - logCount, rng);
    return { cut, images, logs: this.logs.crashState(logCount, rng) };
  }

  /** Every operation in the order it was issued. */
  timeline(): ({ source: 'image'; event: CrashEvent } | { source: 'log'; op: LogOp })[] {
    const out: ({ source: 'image'; event: CrashEvent } | { source: 'log'; op: LogOp })[] = [];
    let next = 0;
    for (const { op, at } of this.logs.ops) {
      for (; next < at; next++) out.push({ source: 'image', event: this.sim.events[next] as CrashEvent });
      out.push({ source: 'log', op });
    }
    for (; next < this.sim.events.length; next++) out.push({ source: 'image', event: this.sim.events[next] as CrashEvent });
    return out;
  }

  /**
   * `count` states in ascending cut order, deterministic for `seed`: every cut
   * round-robin when `count` covers them all, else one random cut per stratum,
   * always including the first and the last.
   */
  *sample(count: number, seed: number): Generator<WorldState> {
    const rng = seededRng(seed);
    const cuts = this.cutCount;
    for (let k = 0; k < count; k++) {
      let cut: number;
      if (count >= cuts) cut = Math.floor((k * cuts) / count);
      else if (k === 0) cut = 0;
      else if (k === count - 1) cut = cuts - 1;
      else cut = Math.floor(((k + rng()) * cuts) / count);
      yield this.crashState(cut, rng);
    }
  }
}
