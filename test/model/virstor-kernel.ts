// An independent model of FreeBSD's virstor class, written from the kernel
// (sys/geom/virstor/g_virstor.c, ../../shared/seeds/001) and the userland
// label (sbin/geom/class/virstor/geom_virstor.c) — NOT from geomctl's src/.
// It is the second writer and reader the compatibility proofs need
// (quality.md, "Compatibility"): it lays devices out on in-memory images the
// way the kernel does, quirks included, and reads devices back through the
// map the way the kernel does.
//
// Layouts (formats.md): metadata = struct g_virstor_metadata, 92 bytes at the
// start of the last sector, little-endian; the map = struct
// virstor_map_entry[] (flags u16, provider_no u16, provider_chunk u32) at
// offset 0 of component 0.
//
// Kernel behaviour modelled on purpose, because geomctl must cope with it:
//  - taste: provsize must equal the media size, a hardcoded name must match;
//  - virstor_check_and_run: current component = first whose *on-disk*
//    chunk_next < chunk_count, then chunk_next recounted as reserved + number
//    of allocated map entries (not highest + 1);
//  - allocate_chunk: flags ALLOCATED|CURRENT only change on a switch;
//  - g_virstor_start: a write to an unallocated chunk issues the map sector
//    write and the data write, unordered; metadata is only written by
//    update_metadata (on last close, add, stop) — a crash before that leaves
//    stale chunk_next and flags;
//  - virstor_ctl_add: chunk_count = mediasize / chunk_size (may include the
//    chunk that overlaps the last sector).

export const M_MAGIC = 'GEOM::VIRSTOR';
export const M_VERSION = 1;
export const M_PROVIDER_ALLOCATED = 1;
export const M_PROVIDER_CURRENT = 2;
export const M_MAP_ALLOCATED = 1;
const ENTRY_SIZE = 8;

export interface ModelMetadata {
  magic: string;
  version: number;
  name: string;
  virsize: bigint;
  chunkSize: number;
  id: number;
  count: number;
  provider: string;
  no: number;
  provsize: bigint;
  chunkCount: number;
  chunkNext: number;
  chunkReserved: number;
  flags: number;
}

function putString(buf: Buffer, off: number, len: number, s: string): void {
  buf.fill(0, off, off + len);
  buf.write(s.slice(0, len), off, 'latin1');
}

function getString(buf: Buffer, off: number, len: number): string {
  const raw = buf.subarray(off, off + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? len : nul).toString('latin1');
}

/** virstor_metadata_encode into a zeroed sector (the kernel leaves the rest uninitialised). */
export function modelEncodeMetadata(md: ModelMetadata, sectorSize: number): Buffer {
  const b = Buffer.alloc(sectorSize);
  putString(b, 0, 16, md.magic);
  b.writeUInt32LE(md.version, 16);
  putString(b, 20, 16, md.name);
  b.writeBigUInt64LE(md.virsize, 36);
  b.writeUInt32LE(md.chunkSize, 44);
  b.writeUInt32LE(md.id, 48);
  b.writeUInt16LE(md.count, 52);
  putString(b, 54, 16, md.provider);
  b.writeUInt16LE(md.no, 70);
  b.writeBigUInt64LE(md.provsize, 72);
  b.writeUInt32LE(md.chunkCount, 80);
  b.writeUInt32LE(md.chunkNext, 84);
  b.writeUInt16LE(md.chunkReserved, 88);
  b.writeUInt16LE(md.flags, 90);
  return b;
}

export function modelDecodeMetadata(sector: Buffer): ModelMetadata {
  return {
    magic: getString(sector, 0, 16),
    version: sector.readUInt32LE(16),
    name: getString(sector, 20, 16),
    virsize: sector.readBigUInt64LE(36),
    chunkSize: sector.readUInt32LE(44),
    id: sector.readUInt32LE(48),
    count: sector.readUInt16LE(52),
    provider: getString(sector, 54, 16),
    no: sector.readUInt16LE(70),
    provsize: sector.readBigUInt64LE(72),
    chunkCount: sector.readUInt32LE(80),
    chunkNext: sector.readUInt32LE(84),
    chunkReserved: sector.readUInt16LE(88),
    flags: sector.readUInt16LE(90),
  };
}

/** An image in memory: its provider name (base name) and bytes. */
export interface ModelImage {
  name: string;
  data: Buffer;
}

export interface ModelEntry {
  flags: number;
  providerNo: number;
  providerChunk: number;
}

export function modelReadMetadata(img: ModelImage, sectorSize: number): ModelMetadata {
  return modelDecodeMetadata(img.data.subarray(img.data.length - sectorSize));
}

export function modelWriteMetadata(img: ModelImage, md: ModelMetadata, sectorSize: number): void {
  modelEncodeMetadata(md, sectorSize).copy(img.data, img.data.length - sectorSize);
}

export interface ModelLabelOptions {
  name: string;
  chunkSize: number;
  virsize: number;
  id: number;
  sectorSize?: number;
  hardcode?: boolean;
  /** MAXPHYS of the userland that labels: chunk sizes are rounded up to it. */
  maxphys?: number;
  /** Compute chunk_count * chunk_size in 32 bits, as FreeBSD's label does. */
  truncate32?: boolean;
}

/** gvirstor label: clear last sectors, zeroed map on c0, metadata everywhere. Returns the metadata written. */
export function modelLabel(images: ModelImage[], o: ModelLabelOptions): ModelMetadata[] {
  const ss = o.sectorSize ?? 512;
  const maxphys = o.maxphys ?? 1024 * 1024;
  let chunk = o.chunkSize;
  if (chunk % maxphys !== 0) chunk = (Math.floor(chunk / maxphys) + 1) * maxphys;
  let virsize = Math.floor(o.virsize / chunk) * chunk;
  let total = virsize / chunk;
  let mapSize = total * ENTRY_SIZE;
  if (mapSize % ss !== 0) {
    total += (ss - (mapSize % ss)) / ENTRY_SIZE;
    virsize = total * chunk;
    mapSize = total * ENTRY_SIZE;
  }
  for (const img of images) {
    if (img.data.length < Math.max(4 * chunk, mapSize)) throw new Error(`model: ${img.name} too small`);
    img.data.fill(0, img.data.length - ss);
  }
  images[0]!.data.fill(0, 0, mapSize);
  const mapChunks = Math.ceil(mapSize / chunk);
  const out: ModelMetadata[] = [];
  images.forEach((img, i) => {
    const msize = img.data.length;
    let chunkCount = Math.floor(msize / chunk);
    const product = o.truncate32 ? (chunkCount * chunk) % 2 ** 32 : chunkCount * chunk;
    if (product > msize - ss) chunkCount--;
    const md: ModelMetadata = {
      magic: M_MAGIC,
      version: M_VERSION,
      name: o.name,
      virsize: BigInt(virsize),
      chunkSize: chunk,
      id: o.id,
      count: images.length,
      provider: o.hardcode ? img.name : '',
      no: i,
      provsize: BigInt(msize),
      chunkCount,
      chunkNext: i === 0 ? 2 * mapChunks : 0,
      chunkReserved: i === 0 ? 2 * mapChunks : 0,
      flags: i === 0 ? M_PROVIDER_ALLOCATED | M_PROVIDER_CURRENT : 0,
    };
    modelWriteMetadata(img, md, ss);
    out.push(md);
  });
  return out;
}

/** One I/O the kernel issues to a component (a cloned bio). */
export interface ModelIo {
  image: number;
  offset: number;
  data: Buffer;
  kind: 'map' | 'data' | 'metadata';
}

interface ModelComponent {
  image: number;
  chunkCount: number;
  chunkNext: number;
  chunkReserved: number;
  flags: number;
  hardcode: string;
}

/**
 * A tasted, running virstor geom (softc). Holds the whole map in memory, as
 * the kernel does; `images` are the component images in component order.
 */
export class ModelKernel {
  readonly name: string;
  readonly id: number;
  readonly virsize: number;
  readonly chunkSize: number;
  readonly sectorSize: number;
  readonly chunkCountVirtual: number;
  readonly map: ModelEntry[];
  readonly components: ModelComponent[];
  currComponent: number;
  /** The kernel's LOG_MSG warnings, for tests that want to see them. */
  readonly log: string[] = [];

  private constructor(
    readonly images: ModelImage[],
    md: ModelMetadata[],
    sectorSize: number,
  ) {
    const first = md[0]!;
    this.name = first.name;
    this.id = first.id;
    this.virsize = Number(first.virsize);
    this.chunkSize = first.chunkSize;
    this.sectorSize = sectorSize;
    this.components = md.map((m, i) => ({
      image: i,
      chunkCount: m.chunkCount,
      chunkNext: m.chunkNext,
      chunkReserved: m.chunkReserved,
      flags: m.flags,
      hardcode: m.provider,
    }));
    this.chunkCountVirtual = Math.floor(this.virsize / this.chunkSize);
    const c0 = images[0]!.data;
    this.map = [];
    for (let n = 0; n < this.chunkCountVirtual; n++) {
      const off = n * ENTRY_SIZE;
      this.map.push({ flags: c0.readUInt16LE(off), providerNo: c0.readUInt16LE(off + 2), providerChunk: c0.readUInt32LE(off + 4) });
    }
    // virstor_check_and_run: the current component is chosen from the
    // on-disk chunk_next, before the recount below.
    let index = this.components.findIndex((c) => c.chunkNext < c.chunkCount);
    if (index < 0) index = this.components.length - 1;
    this.currComponent = index;
    for (const c of this.components) c.chunkNext = c.chunkReserved;
    for (let n = 0; n < this.map.length; n++) {
      const e = this.map[n]!;
      const comp = this.components[e.providerNo];
      if (!comp || e.providerChunk >= comp.chunkCount) throw new Error(`model: Invalid entry ${n} in map for ${this.name}`);
      if (e.flags & M_MAP_ALLOCATED) comp.chunkNext++;
    }
  }

  /**
   * g_virstor_taste for every image, then check_and_run once complete. The
   * first image with virstor metadata decides the geom (name, id); images of
   * another id with that name are the kernel's "stale components".
   */
  static taste(images: ModelImage[], sectorSize = 512): ModelKernel {
    let name: string | undefined;
    let id: number | undefined;
    let count = 0;
    const slots = new Map<number, { img: ModelImage; md: ModelMetadata }>();
    for (const img of images) {
      const md = modelReadMetadata(img, sectorSize);
      if (md.magic !== M_MAGIC || md.version !== M_VERSION) continue;
      if (md.provsize !== BigInt(img.data.length)) continue;
      if (md.provider !== '' && md.provider !== img.name) continue;
      if (name === undefined) {
        if (md.count < 1 || md.chunkSize < 1 || md.virsize < BigInt(md.chunkSize)) throw new Error('model: Nonsensical metadata');
        name = md.name;
        id = md.id;
        count = md.count;
      }
      if (md.name !== name || md.id !== id) continue;
      if (md.no >= count) throw new Error(`model: no ${md.no} >= count ${count}`);
      if (slots.has(md.no)) throw new Error(`model: EEXIST for component ${md.no}`);
      slots.set(md.no, { img, md });
    }
    if (name === undefined) throw new Error('model: no virstor metadata');
    const ordered: { img: ModelImage; md: ModelMetadata }[] = [];
    for (let i = 0; i < count; i++) {
      const s = slots.get(i);
      if (!s) throw new Error(`model: ${name} incomplete, component ${i} missing`);
      ordered.push(s);
    }
    return new ModelKernel(
      ordered.map((s) => s.img),
      ordered.map((s) => s.md),
      sectorSize,
    );
  }

  /** allocate_chunk, exactly: returns undefined when all physical space is allocated. */
  private allocateChunk(): { comp: number; chunk: number } | undefined {
    let compNo = this.currComponent;
    let comp = this.components[compNo]!;
    if (comp.chunkNext >= comp.chunkCount) {
      if (compNo >= this.components.length - 1) {
        this.log.push(`All physical space allocated for ${this.name}`);
        return undefined;
      }
      comp.flags &= ~M_PROVIDER_CURRENT;
      this.currComponent = ++compNo;
      comp = this.components[compNo]!;
      if (compNo >= this.components.length - 1 - 1) this.log.push(`Device ${this.name} running out of components`);
      if (comp.chunkReserved > 0 && comp.chunkNext < comp.chunkReserved) comp.chunkNext = comp.chunkReserved;
      comp.flags |= M_PROVIDER_ALLOCATED | M_PROVIDER_CURRENT;
    }
    return { comp: compNo, chunk: comp.chunkNext++ };
  }

  private mapSectorIo(chunkIndex: number): ModelIo {
    const perSector = this.sectorSize / ENTRY_SIZE;
    const first = Math.floor(chunkIndex / perSector) * perSector;
    const data = Buffer.alloc(this.sectorSize);
    for (let k = 0; k < perSector; k++) {
      const e = this.map[first + k];
      if (!e) continue;
      data.writeUInt16LE(e.flags, k * ENTRY_SIZE);
      data.writeUInt16LE(e.providerNo, k * ENTRY_SIZE + 2);
      data.writeUInt32LE(e.providerChunk, k * ENTRY_SIZE + 4);
    }
    return { image: 0, offset: first * ENTRY_SIZE, data, kind: 'map' };
  }

  /**
   * g_virstor_start for BIO_WRITE: allocates and returns the bios it would
   * fire (map sectors and data), WITHOUT applying them — `apply` does, so that
   * a test can drop some to model a crash. Throws when the kernel would park
   * the request (no physical space).
   */
  write(offset: number, data: Buffer): ModelIo[] {
    if (offset % this.sectorSize !== 0 || data.length % this.sectorSize !== 0) throw new Error('model: unaligned bio');
    if (offset + data.length > this.virsize) throw new Error('model: bio past the end');
    const ios: ModelIo[] = [];
    let pos = 0;
    while (pos < data.length) {
      const voff = offset + pos;
      const chunkIndex = Math.floor(voff / this.chunkSize);
      const inChunk = voff % this.chunkSize;
      const len = Math.min(data.length - pos, this.chunkSize - inChunk);
      const me = this.map[chunkIndex]!;
      if ((me.flags & M_MAP_ALLOCATED) === 0) {
        const a = this.allocateChunk();
        if (!a) throw new Error('model: delaying BIO until free physical space can be found');
        me.providerNo = a.comp;
        me.providerChunk = a.chunk;
        me.flags |= M_MAP_ALLOCATED;
        ios.push(this.mapSectorIo(chunkIndex));
      }
      ios.push({
        image: me.providerNo,
        offset: me.providerChunk * this.chunkSize + inChunk,
        data: Buffer.from(data.subarray(pos, pos + len)),
        kind: 'data',
      });
      pos += len;
    }
    return ios;
  }

  apply(ios: readonly ModelIo[]): void {
    for (const io of ios) io.data.copy(this.images[io.image]!.data, io.offset);
  }

  /** write() and apply() everything: a write that completes. */
  writeNow(offset: number, data: Buffer): void {
    this.apply(this.write(offset, data));
  }

  /** g_virstor_start for BIO_READ: zeros for unallocated chunks. */
  read(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    let pos = 0;
    while (pos < length) {
      const voff = offset + pos;
      const chunkIndex = Math.floor(voff / this.chunkSize);
      const inChunk = voff % this.chunkSize;
      const len = Math.min(length - pos, this.chunkSize - inChunk);
      const me = this.map[chunkIndex]!;
      if (me.flags & M_MAP_ALLOCATED) {
        const src = this.images[me.providerNo]!.data;
        const p = me.providerChunk * this.chunkSize + inChunk;
        src.copy(out, pos, p, p + len);
      }
      pos += len;
    }
    return out;
  }

  /** update_metadata (last close, stop, add): chunk_next, flags and md_count on every component. */
  updateMetadata(): ModelIo[] {
    return this.components.map((c, n) => {
      const img = this.images[n]!;
      const md = modelReadMetadata(img, this.sectorSize);
      md.chunkNext = c.chunkNext;
      md.flags = c.flags;
      md.count = this.components.length;
      return { image: n, offset: img.data.length - this.sectorSize, data: modelEncodeMetadata(md, this.sectorSize), kind: 'metadata' as const };
    });
  }

  /** Last close: update_metadata applied. */
  close(): void {
    this.apply(this.updateMetadata());
  }

  /** virstor_ctl_add for complete devices: kernel's chunk_count (no last-sector rule), then update_metadata. */
  add(newImages: ModelImage[], hardcode = false): void {
    for (const img of newImages) {
      const chunkCount = Math.floor(img.data.length / this.chunkSize);
      if (chunkCount < 4) throw new Error(`model: Provider too small: ${img.name}`);
      const nc = this.components.length;
      this.images.push(img);
      this.components.push({ image: nc, chunkCount, chunkNext: 0, chunkReserved: 0, flags: 0, hardcode: hardcode ? img.name : '' });
      const md: ModelMetadata = {
        magic: M_MAGIC,
        version: M_VERSION,
        name: this.name,
        virsize: BigInt(this.virsize),
        chunkSize: this.chunkSize,
        id: this.id,
        count: nc + 1,
        provider: hardcode ? img.name : '',
        no: nc,
        provsize: BigInt(img.data.length),
        chunkCount,
        chunkNext: 0,
        chunkReserved: 0,
        flags: 0,
      };
      modelWriteMetadata(img, md, this.sectorSize);
    }
    this.close();
  }

  /** Allocated virtual chunks, the way the INVARIANTS check would count them (correctly). */
  allocatedCount(): number {
    return this.map.filter((e) => e.flags & M_MAP_ALLOCATED).length;
  }

  /** The whole virtual device (tests keep devices small). */
  readAll(): Buffer {
    return this.read(0, this.virsize);
  }
}

/** A zeroed image of `size` bytes. */
export function modelImage(name: string, size: number): ModelImage {
  return { name, data: Buffer.alloc(size) };
}
