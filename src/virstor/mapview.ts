// The allocation map, read and changed one sector at a time through the flush
// engine (virstor.md: the map never has to fit in memory). The kernel keeps
// the whole map in RAM and writes back the sector holding a changed entry
// (g_virstor_start); geomctl does the same per sector, as META writes, so the
// engine's undo log covers every map change of a command.

import type { Engine } from '../engine/types.js';
import { decodeMapEntry, encodeMapEntry, VIRSTOR_MAP_ENTRY_SIZE, type MapEntry, type MapGeometry } from './map.js';

export class MapView {
  private sectorOffset = -1;
  private sector: Buffer;
  private dirty = false;
  private changed = false;

  constructor(
    private readonly engine: Engine,
    private readonly sectorSize: number,
    private readonly geometry: MapGeometry,
  ) {
    this.sector = Buffer.alloc(sectorSize);
  }

  private load(virtualChunk: number): number {
    if (!Number.isInteger(virtualChunk) || virtualChunk < 0 || virtualChunk >= this.geometry.virtualChunks) {
      throw new RangeError(`virtual chunk ${virtualChunk} is outside the map`);
    }
    const byte = virtualChunk * VIRSTOR_MAP_ENTRY_SIZE;
    const offset = byte - (byte % this.sectorSize);
    if (offset !== this.sectorOffset) {
      this.flush();
      this.sector = Buffer.from(this.engine.read(0, offset, this.sectorSize));
      this.sectorOffset = offset;
    }
    return byte - offset;
  }

  /** The entry of one virtual chunk (as changed by this command so far). */
  get(virtualChunk: number): MapEntry {
    const at = this.load(virtualChunk); // may replace this.sector
    return decodeMapEntry(this.sector, at);
  }

  /** Changes one entry; the sector goes to the engine when another sector is needed or on flush(). */
  set(virtualChunk: number, entry: MapEntry): void {
    const at = this.load(virtualChunk);
    encodeMapEntry(entry, this.sector, at);
    this.dirty = true;
    this.changed = true;
  }

  /**
   * Changes one entry and writes its sector at once, ordered, without undo:
   * an allocation made for a stacked class's ordered write, which must stay
   * whatever happens to the rest of the transaction (virstor/io.ts). A sector
   * the transaction changed before goes to the engine first, as META, so the
   * undo log still holds what it was before the command.
   */
  setOrdered(virtualChunk: number, entry: MapEntry): void {
    const at = this.load(virtualChunk);
    this.flush();
    encodeMapEntry(entry, this.sector, at);
    this.engine.writeOrdered(0, this.sectorOffset, this.sector);
    this.sector = Buffer.from(this.sector);
    this.changed = true;
  }

  /** Whether an entry changed since open or the last committed(): the image alone is stale then. */
  get uncommitted(): boolean {
    return this.changed;
  }

  /** The engine has committed every change handed to it: the image holds the map again. */
  committed(): void {
    if (!this.dirty) this.changed = false;
  }

  /** Hands a changed sector to the engine (a META write, covered by the undo log). */
  flush(): void {
    if (!this.dirty) return;
    this.engine.write(0, this.sectorOffset, this.sector, 'META');
    // The engine may keep the buffer it was given: never change it afterwards.
    this.sector = Buffer.from(this.sector);
    this.dirty = false;
  }
}
