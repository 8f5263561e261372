// Test-only fault injection (flush-engine.md, "Testing it"): GEOMCTL_FAULT
// makes the N-th write or barrier of a geomctl process kill the process
// (a crash at exactly that point) or fail with EIO or ENOSPC (the approach of
// qemu-iotests 026). The variable is read once, at start-up; the manual
// documents it as a testing hook. Writes and barriers are counted together
// across the images (withFaults) and the undo log (withLogFaults), so one
// count walks every write the process makes.

import { IoError, UsageError } from '../errors.js';
import type { LogStore } from '../engine/undo-store.js';
import type { Provider } from './provider.js';

export type FaultAction = 'kill' | 'eio' | 'enospc';
export type FaultOp = 'write' | 'barrier';
export type FaultSpec = { action: FaultAction; on: FaultOp; n: number };

const SPEC = /^(kill|eio|enospc)@(write|barrier):([1-9][0-9]{0,8})$/;

/** Parses "ACTION@OP:N", e.g. "kill@write:3", "eio@barrier:1"; anything else is a usage error. */
export function parseFaultSpec(text: string): FaultSpec {
  const m = SPEC.exec(text.trim());
  if (!m) {
    throw new UsageError(
      `GEOMCTL_FAULT: bad fault spec '${text}'`,
      'expected ACTION@OP:N with ACTION kill, eio or enospc, OP write or barrier, N from 1 (e.g. kill@write:3)',
    );
  }
  return { action: m[1] as FaultAction, on: m[2] as FaultOp, n: Number(m[3]) };
}

/** Counts writes and barriers across every provider it wraps; one per process. */
export class FaultCounter {
  /** How many writes and barriers have been issued so far (faulted ones included). */
  readonly counts: Record<FaultOp, number> = { write: 0, barrier: 0 };

  constructor(readonly spec: FaultSpec) {}

  /** Counts one operation; true when it is the one to fault. */
  hit(op: FaultOp): boolean {
    this.counts[op] += 1;
    return op === this.spec.on && this.counts[op] === this.spec.n;
  }

  /**
   * Counts one operation on `path` and, when it is the one to fault, acts
   * instead of letting it happen: the process dies, or the operation fails
   * with the injected errno.
   */
  strike(op: FaultOp, path: string, offset: number | undefined): void {
    if (!this.hit(op)) return;
    const { action } = this.spec;
    if (action === 'kill') {
      // SIGKILL to oneself is acted on before kill(2) returns: nothing after this runs.
      process.kill(process.pid, 'SIGKILL');
    }
    throw new IoError(path, op === 'write' ? 'write' : 'fsync', offset, action === 'eio' ? 'EIO' : 'ENOSPC', 'injected by GEOMCTL_FAULT');
  }
}

/** A provider whose writes and barriers pass through a FaultCounter first. */
class FaultyProvider implements Provider {
  constructor(
    private readonly inner: Provider,
    private readonly counter: FaultCounter,
  ) {}

  get path(): string {
    return this.inner.path;
  }
  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.inner.size;
  }
  get mediaSectorSize(): number {
    return this.inner.mediaSectorSize;
  }
  get writable(): boolean {
    return this.inner.writable;
  }
  get identity(): Provider['identity'] {
    return this.inner.identity;
  }

  read(offset: number, length: number): Buffer {
    return this.inner.read(offset, length);
  }
  readInto(offset: number, target: Buffer): void {
    this.inner.readInto(offset, target);
  }

  dataRegions(offset: number, length: number): Iterable<readonly [number, number]> {
    return this.inner.dataRegions ? this.inner.dataRegions(offset, length) : [[offset, offset + length]];
  }

  write(offset: number, data: Buffer): void {
    this.counter.strike('write', this.path, offset);
    this.inner.write(offset, data);
  }

  barrier(): void {
    this.counter.strike('barrier', this.path, undefined);
    this.inner.barrier();
  }

  close(): void {
    this.inner.close();
  }
}

/** Wraps `p` so that `counter` decides which of its writes and barriers fail. */
export function withFaults(p: Provider, counter: FaultCounter): Provider {
  return new FaultyProvider(p, counter);
}

/**
 * A log store whose appends count as writes and whose fsyncs (of a log or of
 * its directory) count as barriers of `counter`, so that process-kill tests
 * also stop geomctl between an undo append and its fsync, or before the log
 * is deleted.
 */
export function withLogFaults(store: LogStore, counter: FaultCounter): LogStore {
  return {
    list: (dir) => store.list(dir),
    open: (path) => store.open(path),
    create(path) {
      const w = store.create(path);
      return {
        append(data) {
          counter.strike('write', path, undefined);
          w.append(data);
        },
        sync() {
          counter.strike('barrier', path, undefined);
          w.sync();
        },
        close: () => w.close(),
      };
    },
    remove: (path) => store.remove(path),
    syncDir(dir) {
      counter.strike('barrier', dir, undefined);
      store.syncDir(dir);
    },
  };
}

let fromEnv: { text: string; counter: FaultCounter } | undefined;

/**
 * The process's fault counter from GEOMCTL_FAULT, or undefined when it is
 * unset or empty. The same text always yields the same counter, so every
 * session of one process counts its writes together.
 */
export function faultFromEnv(env: NodeJS.ProcessEnv): FaultCounter | undefined {
  const text = env['GEOMCTL_FAULT'];
  if (!text) return undefined;
  if (fromEnv?.text !== text) fromEnv = { text, counter: new FaultCounter(parseFaultSpec(text)) };
  return fromEnv.counter;
}
