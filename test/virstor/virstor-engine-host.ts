// Test harness for the virstor engine: a VirstorHost over in-memory images
// (named like files, tasted like files) whose sessions are the real
// openSession and flush engine, with undo logs kept in memory. The model
// (test/model/virstor-kernel.ts) works on the very same Buffers, so geomctl
// and the model read each other's devices. For the crash tests, the images
// and the undo log can live in a CrashSimulator instead.

import { createHash } from 'node:crypto';
import nodePath from 'node:path';
import type { LogReader, LogStore, LogWriter } from '../../src/engine/undo-store.js';
import { MemoryProvider } from '../sim/memory.js';
import type { Provider } from '../../src/provider/provider.js';
import { openSession } from '../../src/engine/session.js';
import { openVirstor, type VirstorDevice } from '../../src/virstor/device.js';
import type { VirstorHost, VirstorSession } from '../../src/virstor/host.js';
import { bufferSource, writeVirstor, type WriteResult } from '../../src/virstor/io.js';
import { virstorBlockProvider } from '../../src/virstor/provider.js';
import { readBytes } from '../../src/provider/block.js';
import type { ModelImage } from '../model/virstor-kernel.js';

const UNDO_SUFFIX = '.geomctl-undo';

/** Undo logs in memory, files that grow as they are appended to. */
export class MemLogStore implements LogStore {
  readonly files = new Map<string, Buffer>();
  list(dir: string): string[] {
    const d = nodePath.resolve(dir);
    return [...this.files.keys()].filter((p) => nodePath.dirname(p) === d && p.endsWith(UNDO_SUFFIX));
  }
  open(path: string): LogReader | undefined {
    const data = this.files.get(nodePath.resolve(path));
    if (!data) return undefined;
    return { size: data.length, read: (o, l) => Buffer.from(data.subarray(o, o + l)), close() {} };
  }
  create(path: string): LogWriter {
    const key = nodePath.resolve(path);
    if (this.files.has(key)) throw new Error(`${path} exists`);
    this.files.set(key, Buffer.alloc(0));
    return {
      append: (data) => void this.files.set(key, Buffer.concat([this.files.get(key) as Buffer, data])),
      sync() {},
      close() {},
    };
  }
  remove(path: string): void {
    this.files.delete(nodePath.resolve(path));
  }
  syncDir(): void {}
}

/**
 * One undo log kept in an image of fixed capacity, so that a CrashSimulator
 * sees its appends as writes and its fsyncs as barriers, on the same
 * timeline as the images. Deleting the log zeroes its first sector, which
 * invalidates the header (a lost deletion leaves it, as a lost unlink leaves
 * the file); the directory fsync is a barrier on it.
 */
export class ImageLogStore implements LogStore {
  private exists: boolean;
  constructor(
    readonly path: string,
    private readonly file: Provider,
    existsAtStart: boolean,
  ) {
    this.exists = existsAtStart;
  }
  private mine(path: string): boolean {
    return nodePath.resolve(path) === nodePath.resolve(this.path);
  }
  list(dir: string): string[] {
    return this.exists && nodePath.resolve(dir) === nodePath.dirname(nodePath.resolve(this.path)) ? [nodePath.resolve(this.path)] : [];
  }
  open(path: string): LogReader | undefined {
    if (!this.exists || !this.mine(path)) return undefined;
    return { size: this.file.size, read: (o, l) => this.file.read(o, l), close() {} };
  }
  create(path: string): LogWriter {
    if (!this.mine(path)) throw new Error(`unexpected undo log ${path}`);
    if (this.exists) throw new Error(`${path} exists`);
    this.exists = true;
    let end = 0;
    return {
      append: (data) => {
        this.file.write(end, data);
        end += data.length;
      },
      sync: () => this.file.barrier(),
      close() {},
    };
  }
  remove(path: string): void {
    if (!this.mine(path) || !this.exists) return;
    // One sector (written whole or not at all, as an unlink is atomic) holding the header's magic.
    this.file.write(0, Buffer.alloc(512));
    this.exists = false;
  }
  syncDir(): void {
    this.file.barrier();
  }
}

/** A provider that forwards to `p` but whose close() leaves `p` open (sessions close what they open). */
function borrowed(p: Provider, writable: boolean): Provider {
  return {
    path: p.path,
    name: p.name,
    size: p.size,
    mediaSectorSize: p.mediaSectorSize,
    writable,
    identity: p.identity,
    read: (o, l) => p.read(o, l),
    readInto: (o, t) => p.readInto(o, t),
    write: (o, d) => {
      if (!writable) throw new Error(`${p.path} opened read-only`);
      p.write(o, d);
    },
    barrier: () => p.barrier(),
    close() {},
  };
}

export interface MemHostOptions {
  ignoreHardcoded?: boolean;
  cacheLimit?: number;
  /** Providers to use instead of plain memory ones (a CrashSimulator's recording providers), by path. */
  providers?: Map<string, Provider>;
  logStore?: LogStore;
}

/** A host whose candidates are exactly `images` (as if they were the files of one -d directory). */
export class MemHost implements VirstorHost {
  readonly ignoreHardcoded: boolean;
  readonly logStore: LogStore;
  private readonly inos = new Map<string, number>();
  constructor(
    readonly images: ModelImage[],
    private readonly opts: MemHostOptions = {},
  ) {
    this.ignoreHardcoded = opts.ignoreHardcoded ?? false;
    this.logStore = opts.logStore ?? new MemLogStore();
  }
  get candidates(): string[] {
    return this.images.map((i) => i.name);
  }
  /** One inode number per image, as a file keeps its own. */
  private ino(path: string): number {
    let n = this.inos.get(path);
    if (n === undefined) {
      n = 1000 + this.inos.size;
      this.inos.set(path, n);
    }
    return n;
  }
  private provider(path: string, writable: boolean): Provider {
    const sim = this.opts.providers?.get(path);
    if (sim) return borrowed(sim, writable);
    const img = this.images.find((i) => i.name === path);
    if (!img) throw new Error(`no image ${path}`);
    return new MemoryProvider(path, img.data, { writable, ino: this.ino(path) });
  }
  probe(path: string): Provider {
    return this.provider(path, false);
  }
  openSession(paths: string[], opts: { write: boolean }): VirstorSession {
    return openSession(paths, {
      write: opts.write,
      wait: 0,
      cacheLimit: this.opts.cacheLimit ?? 1 << 20,
      dirs: [],
      env: {},
      logStore: this.logStore,
      open: (p, w) => this.provider(p, w),
    });
  }
}

/** Recognisable, position-dependent bytes (never a whole zero sector). */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (seed * 31 + i * 7 + (i >> 9)) & 0xff || 1;
  return b;
}

export function hashImages(images: ModelImage[]): string {
  const h = createHash('sha256');
  for (const i of images) h.update(i.data);
  return h.digest('hex');
}

/** geomctl's write of `data` at `offset` on device 'vs' of `images`, as one command. */
export function gWrite(images: ModelImage[], offset: number, data: Buffer, sparse = false): WriteResult {
  const dev = openVirstor(new MemHost(images), 'vs', { write: true, scan: true });
  try {
    return writeVirstor(dev, bufferSource(data), { offset, sparse });
  } finally {
    dev.close();
  }
}

/** geomctl's read of device 'vs' (all of it by default). */
/** [offset, offset + length) of an open device, any bytes, through its provider: what `virstor read` hands out. */
export function readRangeOf(dev: VirstorDevice, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  readBytes(virstorBlockProvider(dev), offset, out);
  return out;
}

export function gRead(images: ModelImage[], offset = 0, length?: number): Buffer {
  const dev = openVirstor(new MemHost(images), 'vs', { write: false, scan: false });
  try {
    return readRangeOf(dev, offset, length ?? dev.size - offset);
  } finally {
    dev.close();
  }
}
