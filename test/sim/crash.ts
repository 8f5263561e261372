// A power-loss simulator for the crash tests (flush-engine.md, "Testing it";
// the approach of SQLite's crash tests and CrashMonkey). Several in-memory
// images share one event log of writes and barriers, because a power loss
// hits every image of a command at the same instant. A crash after any prefix
// of the log keeps, per image, every write issued before that image's last
// completed barrier, and of each later write any subset of its 512-byte
// sectors: a disk may reorder unflushed writes and tear multi-sector ones.

import { MemoryProvider } from './memory.js';
import type { Provider } from '../../src/provider/provider.js';

export type CrashEvent =
  | { kind: 'write'; image: number; offset: number; data: Buffer }
  | { kind: 'barrier'; image: number };

type WriteEvent = Extract<CrashEvent, { kind: 'write' }>;

/** The unit a disk writes atomically (sector-granular tearing). */
const ATOMIC = 512;

/** A small, fast, seedable PRNG (mulberry32), so a failing crash state can be replayed. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimImage {
  path: string;
  initial: Buffer;
  mediaSectorSize: number;
  provider: MemoryProvider;
}

/** A memory image that appends its writes and barriers to the simulator's log. */
class RecordingProvider extends MemoryProvider {
  constructor(
    path: string,
    data: Buffer,
    mediaSectorSize: number,
    private readonly image: number,
    private readonly log: CrashEvent[],
  ) {
    super(path, data, { mediaSectorSize });
  }

  override write(offset: number, data: Buffer): void {
    super.write(offset, data);
    // A copy: the caller may reuse its buffer, the log must keep what was written then.
    this.log.push({ kind: 'write', image: this.image, offset, data: Buffer.from(data) });
  }

  override barrier(): void {
    super.barrier();
    // Recorded on return: a barrier that has returned has completed.
    this.log.push({ kind: 'barrier', image: this.image });
  }
}

/**
 * The durable images after the first `at` events, advanced incrementally so
 * that states sampled in ascending order cost one image copy each, not a
 * replay of the whole log. `pending[i]` holds image i's writes since its last
 * barrier: the ones a crash at `at` may keep, drop or tear.
 */
class DurableCursor {
  at = 0;
  readonly durable: Buffer[];
  readonly pending: WriteEvent[][];

  constructor(images: readonly SimImage[]) {
    this.durable = images.map((img) => Buffer.from(img.initial));
    this.pending = images.map(() => []);
  }

  advance(events: readonly CrashEvent[], to: number): void {
    for (; this.at < to; this.at++) {
      const ev = events[this.at]!;
      if (ev.kind === 'write') {
        this.pending[ev.image]!.push(ev);
      } else {
        const target = this.durable[ev.image]!;
        for (const w of this.pending[ev.image]!) w.data.copy(target, w.offset);
        this.pending[ev.image] = [];
      }
    }
  }
}

/**
 * Applies what a power loss may leave of an unflushed write: with equal odds
 * all of it, none of it, or a torn write (each 512-byte sector, aligned to the
 * medium, kept or dropped on its own).
 */
function applyUnflushed(target: Buffer, w: WriteEvent, rng: () => number): void {
  const r = rng();
  if (r < 1 / 3) {
    w.data.copy(target, w.offset);
    return;
  }
  if (r < 2 / 3) return;
  const end = w.offset + w.data.length;
  for (let pos = w.offset; pos < end; ) {
    const next = Math.min(end, (Math.floor(pos / ATOMIC) + 1) * ATOMIC);
    if (rng() < 0.5) w.data.copy(target, pos, pos - w.offset, next - w.offset);
    pos = next;
  }
}

export interface CrashState {
  /** The cut point: how many events had been issued when the power failed. */
  eventCount: number;
  /** Each image's contents after the power loss, in addImage order. */
  images: Buffer[];
}

export class CrashSimulator {
  private readonly log: CrashEvent[] = [];
  private readonly images: SimImage[] = [];
  private cursor: DurableCursor | undefined;

  get events(): readonly CrashEvent[] {
    return this.log;
  }

  /** The number of distinct cut points: before the first event, after each. */
  get stateCount(): number {
    return this.log.length + 1;
  }

  /** Adds an image starting as a copy of `initial`; returns its recording provider. */
  addImage(path: string, initial: Buffer, mediaSectorSize = 512): Provider {
    const index = this.images.length;
    const provider = new RecordingProvider(path, Buffer.from(initial), mediaSectorSize, index, this.log);
    this.images.push({ path, initial: Buffer.from(initial), mediaSectorSize, provider });
    this.cursor = undefined; // a cursor knows a fixed set of images
    return provider;
  }

  /**
   * Images as they would be after a power loss once `eventCount` events had
   * been issued: per image, all writes before that image's last barrier among
   * those events, plus, for each later write, any subset of its 512-byte
   * sectors chosen with `rng` (kept whole, dropped, or torn). Later writes are
   * applied after earlier ones, so of two kept writes to a sector the later wins.
   * Cheapest when called with non-decreasing `eventCount`.
   */
  crashState(eventCount: number, rng: () => number): Buffer[] {
    if (!Number.isInteger(eventCount) || eventCount < 0 || eventCount > this.log.length) {
      throw new RangeError(`crashState: eventCount ${eventCount} outside 0..${this.log.length}`);
    }
    if (!this.cursor || this.cursor.at > eventCount) this.cursor = new DurableCursor(this.images);
    const cursor = this.cursor;
    cursor.advance(this.log, eventCount);
    return cursor.durable.map((durable, i) => {
      const state = Buffer.from(durable);
      for (const w of cursor.pending[i]!) applyUnflushed(state, w, rng);
      return state;
    });
  }

  /** The state with every event applied (no crash). */
  finalState(): Buffer[] {
    return this.images.map((img) => Buffer.from(img.provider.data));
  }

  /**
   * `count` crash states, deterministic for a given `seed`, in ascending cut
   * order (so each costs one copy of the images). With at least as many states
   * as cut points, every cut point is visited round-robin; with fewer, one
   * random cut per equal stratum of the log, always including the first (no
   * event reached the disk) and the last (every event issued).
   */
  *sampleStates(count: number, seed: number): Generator<CrashState> {
    const rng = seededRng(seed);
    const cuts = this.stateCount;
    for (let k = 0; k < count; k++) {
      let eventCount: number;
      if (count >= cuts) eventCount = Math.floor((k * cuts) / count);
      else if (k === 0) eventCount = 0;
      else if (k === count - 1) eventCount = cuts - 1;
      else eventCount = Math.floor(((k + rng()) * cuts) / count);
      yield { eventCount, images: this.crashState(eventCount, rng) };
    }
  }

  /** Fresh providers over a crash state, with the paths, sector sizes and identities of the recorded images. */
  reopen(state: readonly Buffer[]): MemoryProvider[] {
    return this.images.map(
      (img, i) => new MemoryProvider(img.path, state[i]!, { mediaSectorSize: img.mediaSectorSize, ino: img.provider.identity.ino }),
    );
  }
}
