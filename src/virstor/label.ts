// gvirstor(8) label (FreeBSD sbin/geom/class/virstor/geom_virstor.c,
// virstor_label): the same rounding rules and messages, computed up front by a
// pure planner so that every refusal comes before anything is written
// (virstor.md, "label"). Deliberate divergences from FreeBSD: names and
// values that do not fit their fields are refused instead of truncated, a
// component that is too small stops the label instead of printing an error
// and carrying on, and chunk_count (and 4 × chunk size) is computed in 64 bits.

import { GeomError, UsageError } from '../errors.js';
import { checkDeviceName } from '../geom/device-name.js';
import type { Engine } from '../engine/types.js';
import type { Provider } from '../provider/provider.js';
import { alignedDataRegions } from '../provider/holes.js';
import { mapGeometry, type MapGeometry } from './map.js';
import {
  encodeVirstorMetadata,
  newVirstorMetadata,
  VIRSTOR_NAME_MAX,
  VIRSTOR_PROVIDER_ALLOCATED,
  VIRSTOR_PROVIDER_CURRENT,
  type VirstorMetadata,
} from './metadata.js';
import { identityKey } from '../util/identity.js';

/** gvirstor's defaults (GVIRSTOR_CHUNK_SIZE, GVIRSTOR_VIR_SIZE). */
export const DEFAULT_CHUNK_SIZE = 4n << 20n;
export const DEFAULT_VIRSIZE = 2n << 40n;

const U16_MAX = 0xffffn;
const U32_MAX = 0xffffffffn;
const OFF_T_MAX = (1n << 63n) - 1n;
const MB = 1n << 20n;

export interface LabelComponent {
  /** The path as the user gave it: FreeBSD prints its argument, geomctl the path. */
  path: string;
  /** The provider name (the image's base name): what -h hardcodes. */
  name: string;
  /** Media size in bytes. */
  size: number;
  /** The sector size the device is labeled with (--sectorsize, else the medium's). */
  sectorSize: number;
  /** When known, how duplicates under other paths are recognised. */
  identity?: { dev: number; ino: number };
}

export interface VirstorLabelInput {
  name: string;
  components: LabelComponent[];
  /** -m, as given (default DEFAULT_CHUNK_SIZE). */
  chunkSize: bigint;
  /** -s, as given (default DEFAULT_VIRSIZE). */
  virsize: bigint;
  /** The FreeBSD MAXPHYS chunk sizes are rounded to (--maxphys). */
  maxphys: number;
  /** -h: record each component's provider name. */
  hardcode: boolean;
  /** md_id: --id, or a random one (randomU32, FreeBSD's arc4random()). */
  id: number;
}

/**
 * What FreeBSD prints on the way: 'notice' lines go to stderr always (the
 * resizing notes, the WARNING); 'verbose' lines go to stdout with -v.
 */
export interface LabelMessage {
  kind: 'notice' | 'verbose';
  text: string;
}

export interface VirstorLabelPlan {
  name: string;
  id: number;
  /** After rounding to maxphys. */
  chunkSize: number;
  /** After rounding to chunks and to whole map sectors. */
  virsize: bigint;
  sectorSize: number;
  geometry: MapGeometry;
  components: LabelComponent[];
  /** One per component, in component order. */
  metadata: VirstorMetadata[];
}

export interface VirstorLabelResult {
  plan: VirstorLabelPlan;
  messages: LabelMessage[];
}

function refuse(message: string, hint?: string): never {
  throw new GeomError('REFUSED', message, hint);
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function checkArguments(input: VirstorLabelInput): void {
  checkDeviceName(input.name, 'virstor name');
  const nameBytes = Buffer.byteLength(input.name, 'utf8');
  // FreeBSD's strlcpy would silently cut the name; a truncated name would not be found again.
  if (nameBytes > VIRSTOR_NAME_MAX) {
    refuse(`virstor name '${input.name}' is ${nameBytes} bytes long, more than the ${VIRSTOR_NAME_MAX} md_name holds`, 'choose a shorter name');
  }
  if (input.components.length === 0) throw new UsageError('virstor label needs at least one component image');
  if (BigInt(input.components.length) > U16_MAX) refuse(`${input.components.length} components are more than md_count (u16) holds (${U16_MAX})`);
  if (!Number.isInteger(input.id) || input.id < 0 || input.id > Number(U32_MAX)) throw new UsageError(`--id ${input.id} does not fit md_id (0 to ${U32_MAX})`);
  if (!isPowerOfTwo(input.maxphys) || input.maxphys < 512) throw new UsageError(`--maxphys ${input.maxphys} is not a power of two of at least 512 bytes`);
  const seen = new Map<string, string>();
  for (const c of input.components) {
    const key = c.identity ? identityKey(c.identity) : `path:${c.path}`;
    const other = seen.get(key);
    if (other !== undefined) throw new UsageError(`${c.path} is named twice${other !== c.path ? ` (also as ${other})` : ''}`);
    seen.set(key, c.path);
    if (input.hardcode && Buffer.byteLength(c.name, 'utf8') > VIRSTOR_NAME_MAX) {
      refuse(`cannot hardcode ${c.path}: its name '${c.name}' is longer than ${VIRSTOR_NAME_MAX} bytes`, 'rename the image or label without -h');
    }
    if (!isPowerOfTwo(c.sectorSize) || c.sectorSize < 512 || c.sectorSize > 65536) {
      throw new UsageError(`sector size ${c.sectorSize} of ${c.path} is not a power of two from 512 to 65536`);
    }
    if (c.size < c.sectorSize || c.size % c.sectorSize !== 0) {
      refuse(`${c.path} (${c.size} bytes) is not a whole number of ${c.sectorSize}-byte sectors`);
    }
  }
}

/** Where planVirstorLabel's steps put gvirstor's messages, in order. */
interface Say {
  notice(text: string): void;
  verbose(text: string): void;
}

/**
 * gvirstor label's arithmetic and messages, and geomctl's refusals. Throws a
 * GeomError (REFUSED, MISMATCH or USAGE) naming the rule; returns the metadata
 * of every component otherwise.
 */
export function planVirstorLabel(input: VirstorLabelInput): VirstorLabelResult {
  checkArguments(input);
  const messages: LabelMessage[] = [];
  const say: Say = {
    notice: (text) => void messages.push({ kind: 'notice', text }),
    verbose: (text) => void messages.push({ kind: 'verbose', text }),
  };
  if (input.virsize === 0n || input.chunkSize === 0n) refuse('Virtual size and chunk size must be non-zero', 'give -s and -m sizes above 0');
  const chunk = chunkSizeOf(input, say);
  const wholeChunks = virsizeInChunks(input.virsize, chunk, say);
  const { sectorSize, physical } = commonSectorSize(input.components);
  const secsize = BigInt(sectorSize);
  if (chunk % secsize !== 0n) refuse(`Chunk size (in bytes) must be multiple of ${sectorSize}.`);
  const { virsize, totalChunks } = mapInWholeSectors(wholeChunks, chunk, secsize, say);
  const mapSize = totalChunks * 8n;
  say.verbose(`Total virtual chunks: ${totalChunks} (${chunk / MB} MB each), ${virsize / MB} MB total virtual size.`);
  if (virsize < physical) say.notice(`WARNING: Virtual storage size < Physical available storage (${virsize} < ${physical})`);
  const geometry = mapGeometryFor(input.components, virsize, chunk, sectorSize, mapSize);
  const { metadata, stored } = componentMetadata(input, virsize, chunk, secsize, geometry.reserved);
  say.verbose(`Clearing metadata on ${input.components.map((c) => c.path).join(' ')}.`);
  say.verbose(`Writing allocation table to ${input.components[0]!.path}... (${mapSize / MB} MB, ${geometry.mapChunks} chunks) `);
  say.verbose(`Storing metadata on ${stored.join(' ')} `);
  return {
    plan: { name: input.name, id: input.id, chunkSize: Number(chunk), virsize, sectorSize, geometry, components: input.components, metadata },
    messages,
  };
}

/** -m rounded up to a multiple of maxphys, as gvirstor does; it must fit md_chunk_size. */
function chunkSizeOf(input: VirstorLabelInput, say: Say): bigint {
  const maxphys = BigInt(input.maxphys);
  let chunk = input.chunkSize;
  if (chunk % maxphys !== 0n) {
    chunk = (chunk / maxphys + 1n) * maxphys;
    say.notice(`Resizing chunk size to be a multiple of MAXPHYS (${maxphys / 1024n} kB).`);
    say.notice(`New chunk size: ${chunk / 1024n} kB`);
  }
  if (chunk > U32_MAX) refuse(`chunk size ${chunk} does not fit md_chunk_size (u32, at most ${U32_MAX} bytes)`, 'use a smaller -m');
  return chunk;
}

/** -s rounded down to whole chunks, as gvirstor does; geomctl refuses what rounds to nothing. */
function virsizeInChunks(requested: bigint, chunk: bigint, say: Say): bigint {
  let virsize = requested;
  if (virsize % chunk !== 0n) {
    virsize = (virsize / chunk) * chunk;
    say.notice('Resizing virtual size to be a multiple of chunk size.');
    say.notice(`New virtual size: ${virsize / MB} MB`);
  }
  // FreeBSD would go on with a virtual size of 0, which its kernel then rejects as nonsensical.
  if (virsize === 0n) refuse(`virtual size ${requested} is smaller than the chunk size ${chunk}`, 'use a larger -s or a smaller -m');
  return virsize;
}

/** The components' one sector size (they must agree) and their total size. */
function commonSectorSize(components: readonly LabelComponent[]): { sectorSize: number; physical: bigint } {
  const sectorSize = components[0]!.sectorSize;
  let physical = 0n;
  for (const c of components) {
    physical += BigInt(c.size);
    if (c.sectorSize !== sectorSize) {
      throw new GeomError('MISMATCH', `Devices need to have same sector size (${c.sectorSize} on ${c.path} needs to be ${sectorSize}).`, 'label them all with one --sectorsize');
    }
  }
  return { sectorSize, physical };
}

/** The map must be a whole number of sectors: virtual chunks are added until it is. */
function mapInWholeSectors(virsize: bigint, chunk: bigint, secsize: bigint, say: Say): { virsize: bigint; totalChunks: bigint } {
  let totalChunks = virsize / chunk;
  const partial = (totalChunks * 8n) % secsize;
  if (partial === 0n) return { virsize, totalChunks };
  const added = (secsize - partial) / 8n;
  totalChunks += added;
  const grown = totalChunks * chunk;
  // FreeBSD keeps virsize in an off_t: a size pushed past 2^63 - 1 by this rounding would wrap there.
  if (grown > OFF_T_MAX) refuse(`virtual size ${grown} does not fit FreeBSD's off_t (at most ${OFF_T_MAX} bytes)`, 'use a smaller -s');
  say.notice('Resizing virtual size to fit virstor structures.');
  say.notice(`New virtual size: ${grown / MB} MB (${added} new chunks)`);
  return { virsize: grown, totalChunks };
}

/** Where the map goes, once every component is known to hold 4 chunks and the map, and chunk_reserved to hold its chunks. */
function mapGeometryFor(components: readonly LabelComponent[], virsize: bigint, chunk: bigint, sectorSize: number, mapSize: bigint): MapGeometry {
  const minimum = mapSize > 4n * chunk ? mapSize : 4n * chunk;
  for (const c of components) {
    if (BigInt(c.size) < minimum) {
      refuse(`Device ${c.path} is too small`, `every component must hold at least ${minimum} bytes (4 chunks, and the ${mapSize}-byte map)`);
    }
  }
  const geometry = mapGeometry(virsize, Number(chunk), sectorSize);
  if (BigInt(geometry.reserved) > U16_MAX) {
    refuse(
      `the ${mapSize}-byte map needs ${geometry.reserved} reserved chunks, more than chunk_reserved (u16) holds (${U16_MAX})`,
      'use a larger chunk size (-m) or a smaller virtual size (-s)',
    );
  }
  return geometry;
}

/** Every component's metadata, and gvirstor's "Storing metadata on" list of them. */
function componentMetadata(input: VirstorLabelInput, virsize: bigint, chunk: bigint, secsize: bigint, mapReserved: number): { metadata: VirstorMetadata[]; stored: string[] } {
  const metadata: VirstorMetadata[] = [];
  const stored: string[] = [];
  input.components.forEach((c, i) => {
    const provsize = BigInt(c.size);
    const whole = provsize / chunk;
    stored.push(`${c.path} (${whole & U32_MAX} chunks)`);
    if (whole > U32_MAX) refuse(`${c.path} holds ${whole} chunks, more than chunk_count (u32) holds`, 'use a larger chunk size (-m)');
    // The last chunk must not cover the metadata sector (64-bit: FreeBSD's 32-bit product misses this).
    const chunkCount = whole * chunk > provsize - secsize ? whole - 1n : whole;
    const first = i === 0;
    const reserved = first ? mapReserved : 0;
    if (first) {
      stored.push(`(${reserved} reserved)`);
      if (chunkCount <= BigInt(reserved)) {
        refuse(`component 0 (${c.path}) holds ${chunkCount} chunks, not more than the ${reserved} reserved for the allocation map`, 'use a larger first image or a smaller virtual size (-s)');
      }
    }
    metadata.push(
      newVirstorMetadata({
        name: input.name,
        virsize,
        chunkSize: Number(chunk),
        id: input.id,
        count: input.components.length,
        provider: input.hardcode ? c.name : '',
        no: i,
        provsize,
        chunkCount: Number(chunkCount),
        chunkNext: reserved,
        chunkReserved: reserved,
        flags: first ? VIRSTOR_PROVIDER_ALLOCATED | VIRSTOR_PROVIDER_CURRENT : 0,
      }),
    );
  });
  return { metadata, stored };
}

/** Map bytes zeroed per engine write: bounds memory whatever the map's size. */
const MAP_PIECE = 1 << 20;

/**
 * Writes a planned label through `engine`, whose images are the plan's
 * components in order, as one transaction: the zeroed map at offset 0 of
 * component 0 (META; pieces that already read as zeros are left alone, which
 * keeps sparse images sparse and the undo log small — the bytes are the same),
 * then every component's metadata sector (VOLUME; writing the whole sector is
 * FreeBSD's "clear the last sector" and "store metadata" in one), then commit.
 *
 * Pieces in holes of component 0's image are not even read: a hole reads as
 * zeros. Asking the image rather than the engine is exact here: the engine
 * is fresh (nothing dirty), and a piece is only ever written after it was read.
 */
export function labelVirstor(engine: Engine, plan: VirstorLabelPlan, onProgress?: (done: number, total: number) => void): void {
  const { mapSize } = plan.geometry;
  const zeros = Buffer.alloc(Math.min(MAP_PIECE, mapSize));
  // One reused buffer for the reads: a 2 GiB map read piece by piece must not allocate 2 GiB.
  const current = Buffer.alloc(zeros.length);
  let done = 0;
  for (const [start, end] of alignedDataRegions(engine.providers[0] as Provider, 0, mapSize, MAP_PIECE)) {
    for (let off = start; off < end; off += MAP_PIECE) {
      const length = Math.min(MAP_PIECE, end - off);
      const piece = zeros.subarray(0, length);
      const old = current.subarray(0, length);
      engine.readInto(0, off, old);
      if (!old.equals(piece)) engine.write(0, off, piece, 'META');
      done = off + length;
      onProgress?.(done, mapSize);
    }
  }
  if (done < mapSize) onProgress?.(mapSize, mapSize);
  plan.metadata.forEach((md, i) => {
    const sector = encodeVirstorMetadata(md, Buffer.alloc(plan.sectorSize));
    engine.write(i, plan.components[i]!.size - plan.sectorSize, sector, 'VOLUME');
  });
  engine.commit();
}
