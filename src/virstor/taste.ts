// Tasting for one virstor device (virstor.md, "open"): what the kernel does
// in g_virstor_taste and add_provider_to_geom (sys/geom/virstor/g_virstor.c),
// for image files, but refusing clearly where the kernel logs and gives up,
// and safer where a crashed kernel leaves stale metadata:
//
//  - taste every candidate, keep the images whose metadata names the device,
//    ignore (with a warning) those whose provsize or hardcoded name does not
//    match the image (image.ts ignoreReason, the kernel's rules), group by
//    md_id, order by `no`;
//  - two sets under one name: use the complete one, warn about the other;
//  - for writing, when the taste finds no usable set, roll back the crashed
//    transactions covering any candidate and taste again: their images may
//    carry a name they are about to lose.
//
// Opening the set chosen is device.ts's job.

import { GeomError, UsageError } from '../errors.js';
import type { Provider, ProviderIdentity } from '../provider/provider.js';
import { tasteProvider } from '../geom/taste.js';
import { identityKey } from '../util/identity.js';
import type { TasteHost, VirstorHost } from './host.js';
import { ignoreReason } from './image.js';
import { decodeVirstorMetadata, type VirstorMetadata } from './metadata.js';

/** A tasted image that carries this device's name. */
export interface Member {
  path: string;
  name: string;
  identity: ProviderIdentity;
  size: number;
  sectorSize: number;
  sector: Buffer;
  md: VirstorMetadata;
}

/**
 * A virstor image that tasting passes over, as the kernel does (logging
 * why): its metadata does not decode, or its provsize or hardcoded name does
 * not match the image.
 */
export interface IgnoredImage {
  path: string;
  error: GeomError;
  /** The device name its metadata carries; none when the metadata does not decode. */
  device?: string;
}

/** One pass over the candidates: the virstor images found, and those the kernel passes over, in the order met. */
export interface Tasting {
  members: Member[];
  passedOver: IgnoredImage[];
}

export interface TasteOutcome {
  /** The complete set to open, in component order. */
  chosen?: Member[];
  /** Why no set can be opened (thrown after giving recovery its chance). */
  refusal?: GeomError;
  /** Every image that carries the name (recovery must see them all). */
  all: Member[];
  /** Images carrying the name that the kernel would ignore. */
  ignored: IgnoredImage[];
  /** Other warnings (stale components passed over). */
  warnings: string[];
}

/**
 * Tastes every candidate and keeps those carrying the device's name (every
 * virstor image when `name` is undefined), applying the kernel's ignore rules.
 */
export function tasteCandidates(host: TasteHost, name?: string): Tasting {
  const members: Member[] = [];
  const passedOver: IgnoredImage[] = [];
  const seen = new Set<string>();
  for (const path of host.candidates) {
    let provider: Provider;
    try {
      provider = host.probe(path);
    } catch {
      continue; // not an image (or unreadable): not a candidate of this device
    }
    try {
      const key = identityKey(provider.identity);
      if (seen.has(key)) continue;
      seen.add(key);
      const tasted = tasteProvider(provider);
      if (!tasted || tasted.className !== 'VIRSTOR') continue;
      let md: VirstorMetadata;
      try {
        md = decodeVirstorMetadata(tasted.sector, path);
      } catch (err) {
        if (err instanceof GeomError) passedOver.push({ path, error: err });
        continue;
      }
      if (name !== undefined && md.name !== name) continue;
      const reason = ignoreReason(md, provider, host.ignoreHardcoded);
      if (reason !== undefined) {
        passedOver.push({ path, error: new GeomError('MISMATCH', `${path}: ignored: ${reason}`), device: md.name });
        continue;
      }
      members.push({ path, name: provider.name, identity: provider.identity, size: provider.size, sectorSize: tasted.sectorSize, sector: tasted.sector, md });
    } finally {
      provider.close();
    }
  }
  return { members, passedOver };
}

/** Why a set of members with one id is not a complete device, or undefined when it is. */
function setProblem(name: string, set: Member[]): GeomError | undefined {
  const first = set[0] as Member;
  for (const m of set) {
    const differs: string[] = [];
    if (m.md.virsize !== first.md.virsize) differs.push(`virsize ${m.md.virsize} vs ${first.md.virsize}`);
    if (m.md.chunkSize !== first.md.chunkSize) differs.push(`chunk size ${m.md.chunkSize} vs ${first.md.chunkSize}`);
    if (m.md.count !== first.md.count) differs.push(`component count ${m.md.count} vs ${first.md.count}`);
    if (m.sectorSize !== first.sectorSize) differs.push(`sector size ${m.sectorSize} vs ${first.sectorSize}`);
    if (differs.length) {
      return new GeomError('MISMATCH', `virstor ${name}: components ${first.path} and ${m.path} disagree: ${differs.join(', ')}`, 'run \'geomctl virstor check\' or clear the stale component');
    }
  }
  const duplicate = duplicateClaim(name, set);
  if (duplicate) return duplicate;
  const present = new Set(set.map((m) => m.md.no));
  for (let i = 0; i < first.md.count; i++) {
    if (!present.has(i)) {
      return new GeomError('NOT_FOUND', `virstor ${name} is incomplete: component ${i} of ${first.md.count} not found`, 'name the directory that holds it with -d DIR');
    }
  }
  return undefined;
}

/**
 * Two images of one set claiming the same component index (a copied
 * component image, say): nothing says which one the device uses, so it
 * cannot be used, read or listed as if it could.
 */
export function duplicateClaim(name: string, set: readonly Member[]): GeomError | undefined {
  const byNo = new Map<number, Member>();
  for (const m of set) {
    const other = byNo.get(m.md.no);
    if (other) {
      return new GeomError(
        'MISMATCH',
        `virstor ${name}: ${other.path} and ${m.path} both claim component ${m.md.no}`,
        "move the copy out of the directories tasted, or clear the stale one with 'geomctl virstor clear'",
      );
    }
    byNo.set(m.md.no, m);
  }
  return undefined;
}

function describeSet(set: Member[]): string {
  return `id ${(set[0] as Member).md.id} (${set.map((m) => m.path).join(', ')})`;
}

/** Taste for one device: its images, the set to use, or why none can be used. Opens no session. */
export function tasteDevice(host: TasteHost, name: string): TasteOutcome {
  return judgeDevice(tasteCandidates(host, name), name);
}

/** The device `name` among what a taste found: its images, the set to use, or why none can be used. */
export function judgeDevice(tasting: Tasting, name: string): TasteOutcome {
  const all = tasting.members.filter((m) => m.md.name === name);
  const ignored = tasting.passedOver.filter((i) => i.device === name);
  const undecodable = tasting.passedOver.filter((i) => i.device === undefined);
  const warnings: string[] = [];
  // An image ignored, or whose metadata does not decode, may be the missing component: say so.
  const notes = [...ignored.map((i) => i.error.message), ...undecodable.map((u) => `unreadable metadata: ${u.error.message}`)];
  if (all.length === 0) {
    // Every image of the name may have been ignored (provsize, hardcoded name): that is the reason to give.
    const extra = notes.length ? ` (${notes.join('; ')})` : '';
    return {
      all,
      ignored,
      warnings,
      refusal: new GeomError('NOT_FOUND', `no virstor device named ${name} found${extra}`, 'name the directory that holds its images with -d DIR'),
    };
  }
  const sets = new Map<number, Member[]>();
  for (const m of all) {
    const list = sets.get(m.md.id) ?? [];
    list.push(m);
    sets.set(m.md.id, list);
  }
  const judged = [...sets.values()].map((set) => ({ set, problem: setProblem(name, set) }));
  const complete = judged.filter((j) => !j.problem);
  if (judged.length === 1) {
    const only = judged[0] as { set: Member[]; problem: GeomError | undefined };
    if (only.problem) {
      const refusal = notes.length
        ? new GeomError(only.problem.code, `${only.problem.message} (${notes.join('; ')})`, only.problem.hint)
        : only.problem;
      return { all, ignored, warnings, refusal };
    }
  } else if (complete.length !== 1) {
    const listing = judged.map((j) => describeSet(j.set)).join(' and ');
    const state = complete.length === 0 ? 'none of them is complete' : 'each of them is complete';
    return {
      all,
      ignored,
      warnings,
      refusal: new GeomError('MISMATCH', `virstor ${name}: components with different ids: ${listing}; ${state}`, "clear the stale components with 'geomctl virstor clear'"),
    };
  } else {
    for (const j of judged) {
      if (j.problem) warnings.push(`virstor ${name}: ignoring stale components ${describeSet(j.set)}; clear them with 'geomctl virstor clear'`);
    }
  }
  const chosen = [...(complete[0] as { set: Member[] }).set].sort((a, b) => a.md.no - b.md.no);
  return { all, ignored, warnings, chosen };
}

/**
 * The session opens each image once (by device and inode), so an extra image
 * must be none of the components and named once: refuse before opening.
 */
export function checkExtras(host: VirstorHost, name: string, members: Member[], extra: string[]): void {
  const seen = new Map<string, string>();
  for (const m of members) seen.set(identityKey(m.identity), m.path);
  for (const path of extra) {
    const p = host.probe(path);
    try {
      const key = identityKey(p.identity);
      const member = members.find((m) => identityKey(m.identity) === key);
      if (member) throw new GeomError('REFUSED', `${path} is already a component of virstor ${name} (component ${member.md.no}, ${member.path})`);
      const other = seen.get(key);
      if (other !== undefined) throw new UsageError(`${path} is named twice${other !== path ? ` (also as ${other})` : ''}`);
      seen.set(key, path);
    } finally {
      p.close();
    }
  }
}

/**
 * The taste of an open. A refusal may be an unfinished transaction's doing:
 * a killed relabel of the device's images leaves them (or some of them)
 * carrying the new name, and the session that would roll it back is never
 * opened over images that no longer carry this one. A writing open then
 * rolls back the transactions covering any candidate and tastes again. Only
 * on a refusal: a device that is found gets a session over its images, whose
 * recovery rolls back what concerns them, and other devices' transactions
 * are left to their own commands.
 */
export function tasteForOpen(host: VirstorHost, name: string, write: boolean): TasteOutcome {
  const outcome = tasteDevice(host, name);
  if (!outcome.refusal) return outcome;
  if (write) return host.rollBackCandidates && host.rollBackCandidates().length > 0 ? tasteDevice(host, name) : outcome;
  // A read-only open cannot roll back: say that the names it tasted may be half changed.
  const crashed = host.unfinished?.()[0];
  if (!crashed) return outcome;
  const image = crashed.paths[0] as string;
  const refusal = new GeomError(
    'UNFINISHED',
    `${outcome.refusal.message}, and ${image} has an unfinished transaction (${crashed.log}) that may have changed its names`,
    `run a writing command to roll it back (e.g. 'geomctl virstor stop ${name}'), then try again`,
  );
  return { ...outcome, refusal };
}
