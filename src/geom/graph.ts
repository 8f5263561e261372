// Tasting for stacks (providers.md, "Tasting and stacks"): every candidate
// image opened once and its last sectors read, the geoms found assembled, and
// then — as the kernel tastes each new provider — each assembled provider's
// last sector tasted in turn, so that geoms on top of geoms appear: a journal
// labeled on virstor/thin offers virstor/thin.journal; a virstor whose
// component is data.img.journal offers virstor/<name>.
//
// The graph says which providers exist and what each consumes; it does not
// open the geoms (the stack opener does, with locks and recovery). A
// provider's bytes are read as FreeBSD's taste would see them on a freshly
// assembled geom: a virstor provider through its map, a journal provider from
// its data provider (a journal not yet copied is replayed when the geom is
// opened, as the kernel replays before it announces the provider).

import { journaledProviderName, virstorProviderName } from './device-name.js';
import { GeomError } from '../errors.js';
import type { Provider } from '../provider/provider.js';
import { tasteProvider } from './taste.js';
import { decodeJournalMetadata, GJ_TYPE_COMPLETE, GJ_TYPE_DATA, GJ_TYPE_JOURNAL, type JournalMetadata } from '../journal/metadata.js';
import { decodeVirstorMetadata, type VirstorMetadata } from '../virstor/metadata.js';
import { decodeMapEntry, isAllocated, mapGeometry, VIRSTOR_MAP_ENTRY_SIZE } from '../virstor/map.js';
import { identityKey } from '../util/identity.js';

/** Stacks deeper than this are not assembled (providers.md). */
export const MAX_STACK_DEPTH = 8;

/** A provider of the graph: an image, or a geom's provider. */
export interface GraphProvider {
  /** The image's path as found, or the provider name ("virstor/thin", "imgs/data.img.journal"). */
  readonly name: string;
  readonly kind: 'image' | 'journal' | 'virstor';
  /** What it consumes, by graph name: a journal's data provider (then its journal provider), a virstor's components by index. */
  readonly consumers: readonly string[];
  /** 0 for images, 1 + the deepest consumer's depth for a geom's provider. */
  readonly depth: number;
  readonly size: number;
  readonly sectorSize: number;
  /** Reads bytes as a taste would see them. */
  read(offset: number, length: number): Buffer;
}

export interface StackGraph {
  /** Every provider found, images first, then by depth. */
  readonly providers: readonly GraphProvider[];
  get(name: string): GraphProvider | undefined;
  /** The geoms' providers only (what tasting adds to the candidates). */
  readonly offered: readonly GraphProvider[];
  /** Providers not assembled because the stack would be deeper than MAX_STACK_DEPTH. */
  readonly tooDeep: readonly string[];
  close(): void;
}

interface Tasted {
  p: GraphProvider;
  journal?: JournalMetadata;
  virstor?: VirstorMetadata;
  sectorSize: number;
}

function tasteOne(p: GraphProvider): Tasted | undefined {
  const view = { size: p.size, mediaSectorSize: p.sectorSize, read: (o: number, l: number) => p.read(o, l) } as Provider;
  let t;
  try {
    t = tasteProvider(view);
  } catch (err) {
    if (err instanceof GeomError) return undefined;
    throw err;
  }
  if (!t) return undefined;
  try {
    if (t.className === 'JOURNAL') return { p, journal: decodeJournalMetadata(t.sector, p.name), sectorSize: t.sectorSize };
    return { p, virstor: decodeVirstorMetadata(t.sector, p.name), sectorSize: t.sectorSize };
  } catch (err) {
    if (err instanceof GeomError) return undefined;
    throw err;
  }
}

/** The journal provider offered by a data provider, when its journal is found among `tasted`. */
function journalProvider(d: Tasted, tasted: readonly Tasted[]): GraphProvider | undefined {
  const md = d.journal as JournalMetadata;
  if ((md.type & GJ_TYPE_DATA) === 0) return undefined;
  const ss = d.sectorSize;
  let consumers = [d.p.name];
  let size = Number(md.jstart);
  if (md.type !== GJ_TYPE_COMPLETE) {
    const j = tasted.find((t) => t !== d && t.journal?.id === md.id && t.journal.type === GJ_TYPE_JOURNAL);
    if (!j) return undefined;
    consumers = [d.p.name, j.p.name];
    size = d.p.size - ss;
  }
  const data = d.p;
  return {
    name: journaledProviderName(data.name),
    kind: 'journal',
    consumers,
    depth: Math.max(...consumers.map((c) => tasted.find((t) => t.p.name === c)?.p.depth ?? 0)) + 1,
    size,
    sectorSize: ss,
    read: (offset, length) => data.read(offset, length),
  };
}

/** The virstor providers of complete sets among `tasted` (one id per name: the kernel takes one set). */
function virstorProviders(tasted: readonly Tasted[]): GraphProvider[] {
  const sets = new Map<string, Tasted[]>();
  for (const t of tasted) {
    if (!t.virstor) continue;
    const key = `${t.virstor.name}\0${t.virstor.id}`;
    sets.set(key, [...(sets.get(key) ?? []), t]);
  }
  const out: GraphProvider[] = [];
  for (const set of sets.values()) {
    const md = (set[0] as Tasted).virstor as VirstorMetadata;
    const byNo: (Tasted | undefined)[] = Array.from({ length: md.count }, () => undefined);
    for (const t of set) byNo[(t.virstor as VirstorMetadata).no] = t;
    // Every index once: as many images as md_count may still hold one index twice and another not at all.
    if (byNo.length !== md.count || byNo.includes(undefined) || set.length !== md.count) continue;
    const ss = (set[0] as Tasted).sectorSize;
    let geo;
    try {
      geo = mapGeometry(md.virsize, md.chunkSize, ss);
    } catch {
      continue;
    }
    const cs = md.chunkSize;
    // geomctl's providers end below 2^53 bytes (provider/provider.ts): a larger virstor is listed, not stacked on.
    if (!Number.isSafeInteger(geo.virtualChunks * cs)) continue;
    const comps = (byNo as Tasted[]).map((t) => t.p);
    const c0 = comps[0] as GraphProvider;
    const readPiece = (v: number, inChunk: number, target: Buffer): void => {
      const e = decodeMapEntry(c0.read(v * VIRSTOR_MAP_ENTRY_SIZE, VIRSTOR_MAP_ENTRY_SIZE));
      const comp = comps[e.providerNo];
      if (!isAllocated(e) || !comp || (e.providerChunk + 1) * cs > comp.size) target.fill(0);
      else comp.read(e.providerChunk * cs + inChunk, target.length).copy(target);
    };
    out.push({
      name: virstorProviderName(md.name),
      kind: 'virstor',
      consumers: comps.map((c) => c.name),
      depth: Math.max(...comps.map((c) => c.depth)) + 1,
      size: geo.virtualChunks * cs,
      sectorSize: ss,
      read(offset, length) {
        const out = Buffer.alloc(length);
        for (let at = offset; at < offset + length; ) {
          const v = Math.floor(at / cs);
          const n = Math.min(offset + length, (v + 1) * cs) - at;
          readPiece(v, at - v * cs, out.subarray(at - offset, at - offset + n));
          at += n;
        }
        return out;
      },
    });
  }
  return out;
}

/**
 * Tastes `candidates` (each opened once with `open`, read-only) and every
 * provider assembled from them, level by level, up to MAX_STACK_DEPTH.
 * Candidates that cannot be opened are skipped: the verb that names one says why.
 */
export function tasteGraph(candidates: readonly string[], open: (path: string) => Provider): StackGraph {
  const opened: Provider[] = [];
  const seen = new Set<string>();
  const images: GraphProvider[] = [];
  for (const path of candidates) {
    let p: Provider;
    try {
      p = open(path);
    } catch {
      continue;
    }
    const key = identityKey(p.identity);
    if (seen.has(key)) {
      p.close();
      continue;
    }
    seen.add(key);
    opened.push(p);
    images.push({ name: path, kind: 'image', consumers: [], depth: 0, size: p.size, sectorSize: p.mediaSectorSize, read: (o, l) => p.read(o, l) });
  }
  const all: GraphProvider[] = [...images];
  const tasted: Tasted[] = [];
  const tooDeep: string[] = [];
  let level: GraphProvider[] = images;
  while (level.length > 0) {
    for (const p of level) {
      const t = tasteOne(p);
      if (t) tasted.push(t);
    }
    const fresh: GraphProvider[] = [];
    const offers = [...tasted.flatMap((t) => (t.journal ? [journalProvider(t, tasted)] : [])), ...virstorProviders(tasted)];
    for (const o of offers) {
      if (!o || all.some((p) => p.name === o.name)) continue;
      if (o.depth > MAX_STACK_DEPTH) {
        if (!tooDeep.includes(o.name)) tooDeep.push(o.name);
        continue;
      }
      fresh.push(o);
      all.push(o);
    }
    level = fresh;
  }
  const byName = new Map(all.map((p) => [p.name, p]));
  return {
    providers: all,
    offered: all.filter((p) => p.kind !== 'image'),
    tooDeep,
    get: (name) => byName.get(name),
    close() {
      for (const p of opened) p.close();
    },
  };
}
