// The writer of one transaction's undo log (flush-engine.md, "The undo
// log"): the header first, records appended as ranges are first modified,
// the file and its directory made durable before any image depends on it,
// and the file deleted at the commit point.

import nodePath from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ProviderIdentity } from '../provider/provider.js';
import { encodeHeader, type UndoImage } from './undo-format.js';
import type { UndoRegistry } from './undo-registry.js';
import type { LogStore, LogWriter } from './undo-store.js';

/**
 * One transaction's log, created on the first append (header first) and
 * deleted at the commit point. The first sync also syncs the directory, so
 * that the file's name is as durable as its contents before any image
 * metadata depends on it. With a registry, every image is pointed at the log
 * durably before the log is created, and the pointers go after it is deleted
 * (undo-registry.ts).
 */
export class UndoLogWriter {
  readonly nonce = randomBytes(8);
  private file: LogWriter | undefined;
  private onDisk = false;
  private dirSynced = false;
  private unsynced = false;

  constructor(
    private readonly store: LogStore,
    readonly path: string,
    private readonly images: readonly UndoImage[],
    private readonly registry?: UndoRegistry,
  ) {}

  private get identities(): ProviderIdentity[] {
    return this.images.map(({ dev, ino }) => ({ dev, ino }));
  }

  /** True once the file exists (it may then hold records of this transaction). */
  get created(): boolean {
    return this.onDisk;
  }

  /** Appends encoded records; creates the file with its header first. Returns the bytes written. */
  append(records: Buffer): number {
    let data = records;
    if (!this.file) {
      this.registry?.record(this.identities, nodePath.resolve(this.path));
      this.file = this.store.create(this.path);
      this.onDisk = true;
      data = Buffer.concat([encodeHeader(this.nonce, this.images), records]);
    }
    this.file.append(data);
    this.unsynced = true;
    return data.length;
  }

  /** Makes everything appended durable; returns how many fsyncs that took. */
  sync(): number {
    if (!this.file || !this.unsynced) return 0;
    this.file.sync();
    this.unsynced = false;
    if (this.dirSynced) return 1;
    this.store.syncDir(nodePath.dirname(this.path));
    this.dirSynced = true;
    return 2;
  }

  /** The commit point: the log disappears, durably. */
  remove(): void {
    this.close();
    if (!this.onDisk) return;
    this.store.remove(this.path);
    this.onDisk = false;
    this.store.syncDir(nodePath.dirname(this.path));
    this.registry?.forget(this.identities, nodePath.resolve(this.path));
  }

  close(): void {
    const f = this.file;
    this.file = undefined;
    f?.close();
  }
}
