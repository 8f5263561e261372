// geomctl's virstor label planner against an independent transcription of
// FreeBSD's userland label (sbin/geom/class/virstor/geom_virstor.c,
// virstor_label), written here from FreeBSD's source with C's integer widths
// (uint32_t md_chunk_size and chunk_count, uint16_t chunk_reserved, 32-bit
// products) — it does not call geomctl's code. For many random sizes, the
// messages and every metadata field must agree, except for the two
// divergences virstor.md names: chunk_count computed in 64 bits, and
// refusals where FreeBSD truncates, wraps or prints an error and carries on.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GeomError } from '../../src/errors.js';
import { planVirstorLabel, type LabelComponent } from '../../src/virstor/label.js';

const RUNS = Number(process.env.GEOMCTL_FUZZ_RUNS ?? 3000);
const U16 = 0xffffn;
const U32 = 0xffffffffn;
const U64 = (1n << 64n) - 1n;
const MiB = 1048576n;

interface FbComponent {
  name: string;
  msize: bigint;
  ssize: bigint;
}

interface FbMetadata {
  virsize: bigint;
  chunkSize: bigint;
  count: bigint;
  no: bigint;
  provsize: bigint;
  chunkCount: bigint;
  chunkNext: bigint;
  chunkReserved: bigint;
  flags: bigint;
}

interface FbOutcome {
  /** The first gctl_error() message, if any (FreeBSD keeps the first). */
  error?: string;
  /** A division by zero: the process dies with SIGFPE. */
  crashed?: boolean;
  stderr: string;
  stdout: string;
  md: FbMetadata[];
  mapSize: bigint;
  mapChunks: bigint;
}

/** virstor_label() with C semantics (verbose on, so stdout holds the -v text). */
function freebsdLabel(comps: FbComponent[], chunkArg: bigint, virArg: bigint, MAXPHYS: bigint): FbOutcome {
  const out: FbOutcome = { stderr: '', stdout: '', md: [], mapSize: 0n, mapChunks: 0n };
  const gctlError = (m: string): void => {
    if (out.error === undefined) out.error = m;
  };
  let mdVirsize = virArg & U64;
  let mdChunkSize = chunkArg & U32;
  const mdCount = BigInt(comps.length) & U16;
  if (mdVirsize === 0n || mdChunkSize === 0n) {
    gctlError('Virtual size and chunk size must be non-zero');
    return out;
  }
  if (mdChunkSize % MAXPHYS !== 0n) {
    let newSize = (mdChunkSize / MAXPHYS) * MAXPHYS;
    if (newSize < mdChunkSize) newSize += MAXPHYS;
    out.stderr += `Resizing chunk size to be a multiple of MAXPHYS (${MAXPHYS / 1024n} kB).\n`;
    out.stderr += `New chunk size: ${newSize / 1024n} kB\n`;
    mdChunkSize = newSize & U32;
  }
  if (mdChunkSize === 0n) {
    out.crashed = true; // md_virsize % md_chunk_size
    return out;
  }
  if (mdVirsize % mdChunkSize !== 0n) {
    const chunkCount = mdVirsize / mdChunkSize;
    mdVirsize = (chunkCount * mdChunkSize) & U64;
    out.stderr += 'Resizing virtual size to be a multiple of chunk size.\n';
    out.stderr += `New virtual size: ${mdVirsize / MiB} MB\n`;
  }
  let msize = 0n;
  let secsize = 0n;
  for (const c of comps) {
    msize += c.msize;
    if (secsize === 0n) secsize = c.ssize;
    else if (secsize !== c.ssize) {
      gctlError(`Devices need to have same sector size (${c.ssize} on ${c.name} needs to be ${secsize}).`);
      return out;
    }
  }
  if (mdChunkSize % secsize !== 0n) {
    out.stderr += 'Error: chunk size is not a multiple of sector size.';
    gctlError(`Chunk size (in bytes) must be multiple of ${secsize}.`);
    return out;
  }
  let totalChunks = mdVirsize / mdChunkSize;
  let mapSize = (totalChunks * 8n) & U64;
  const rest = mapSize % secsize;
  if (rest !== 0n) {
    const addChunks = (secsize - rest) / 8n;
    totalChunks += addChunks;
    mdVirsize = (totalChunks * mdChunkSize) & U64;
    mapSize = (totalChunks * 8n) & U64;
    out.stderr += 'Resizing virtual size to fit virstor structures.\n';
    out.stderr += `New virtual size: ${mdVirsize / MiB} MB (${addChunks} new chunks)\n`;
  }
  out.stdout += `Total virtual chunks: ${totalChunks} (${mdChunkSize / MiB} MB each), ${mdVirsize / MiB} MB total virtual size.\n`;
  const signedVirsize = mdVirsize >= 1n << 63n ? mdVirsize - (1n << 64n) : mdVirsize;
  if (signedVirsize < msize) out.stderr += `WARNING: Virtual storage size < Physical available storage (${mdVirsize} < ${msize})\n`;
  out.stdout += 'Clearing metadata on';
  for (const c of comps) {
    out.stdout += ` ${c.name}`;
    const fourChunks = (mdChunkSize * 4n) & U32; // uint32_t * int
    const minimum = fourChunks > mapSize ? fourChunks : mapSize;
    if (c.msize < minimum) gctlError(`Device ${c.name} is too small`);
  }
  out.stdout += `.\nWriting allocation table to ${comps[0]!.name}...`;
  let mapChunks = (mapSize / mdChunkSize) & U32;
  if (mapSize % mdChunkSize !== 0n) mapChunks = (mapChunks + 1n) & U32;
  out.stdout += ` (${mapSize / MiB} MB, ${mapChunks} chunks) `;
  out.stdout += '\nStoring metadata on ';
  comps.forEach((c, i) => {
    out.stdout += `${c.name} `;
    let chunkCount = (c.msize / mdChunkSize) & U32;
    out.stdout += `(${chunkCount} chunks) `;
    if (((chunkCount * mdChunkSize) & U32) > c.msize - c.ssize) chunkCount = (chunkCount - 1n) & U32;
    let chunkReserved = 0n;
    let flags = 0n;
    let chunkNext = 0n;
    if (i === 0) {
      chunkReserved = (mapChunks * 2n) & U16;
      flags = 3n;
      chunkNext = chunkReserved;
      out.stdout += `(${chunkReserved} reserved) `;
    }
    out.md.push({ virsize: mdVirsize, chunkSize: mdChunkSize, count: mdCount, no: BigInt(i), provsize: c.msize, chunkCount, chunkNext, chunkReserved, flags });
  });
  out.mapSize = mapSize;
  out.mapChunks = mapChunks;
  return out;
}

/** A value between 2^lo and 2^(hi+1), spread over the magnitudes. */
function logBig(lo: number, hi: number): fc.Arbitrary<bigint> {
  return fc.tuple(fc.integer({ min: lo, max: hi }), fc.bigInt({ min: 0n, max: U64 })).map(([e, m]) => (1n << BigInt(e)) + (m % (1n << BigInt(e))));
}

interface Case {
  maxphys: bigint;
  sector: bigint;
  chunkArg: bigint;
  virArg: bigint;
  comps: FbComponent[];
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    maxphys: fc.constantFrom(1n << 20n, 1n << 17n, 1n << 20n, 1n << 17n, 4096n, 512n),
    sector: fc.constantFrom(512n, 512n, 4096n, 65536n),
    chunkExact: fc.boolean(),
    chunkLog: logBig(9, 33),
    chunkMultiple: fc.integer({ min: 1, max: 8192 }),
    virArg: fc.oneof(logBig(0, 62), fc.constantFrom(2n << 40n, 8n << 50n, 1n << 50n)),
    comps: fc.array(
      fc.record({ exact: fc.integer({ min: 0, max: 2 }), size: logBig(12, 44), mult: fc.bigInt({ min: 1n, max: 1n << 14n }), odd: fc.boolean() }),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map((r) => {
    const chunkArg = r.chunkExact ? BigInt(r.chunkMultiple) * r.maxphys : r.chunkLog;
    const comps = r.comps.map((c, i) => {
      // One in three components is an exact number of (rounded) chunks: its last chunk covers the metadata sector.
      const rounded = ((chunkArg + r.maxphys - 1n) / r.maxphys) * r.maxphys;
      const raw = c.exact === 0 ? c.mult * rounded : c.size;
      const ssize = c.odd && i > 0 && r.comps.length > 1 && c.exact === 1 ? (r.sector === 512n ? 4096n : 512n) : r.sector;
      const msize = raw < ssize ? ssize : (raw / ssize) * ssize;
      return { name: `c${i}.img`, msize, ssize };
    });
    return { maxphys: r.maxphys, sector: r.sector, chunkArg, virArg: r.virArg, comps };
  })
  .filter((c) => c.comps.every((x) => x.msize <= BigInt(Number.MAX_SAFE_INTEGER)));

/** Where virstor.md says geomctl refuses although FreeBSD goes on (or fails too). */
function expectedRefusal(c: Case, fb: FbOutcome): string | undefined {
  if (fb.error !== undefined) return `FreeBSD: ${fb.error}`;
  if (fb.crashed) return 'FreeBSD divides by zero';
  const chunk = ((c.chunkArg + c.maxphys - 1n) / c.maxphys) * c.maxphys;
  if (chunk > U32) return 'chunk size beyond u32';
  const md0 = fb.md[0]!;
  if (md0.virsize === 0n) return 'virtual size rounded to 0';
  if (md0.virsize > (1n << 63n) - 1n) return "virtual size beyond FreeBSD's off_t";
  const minimum = 4n * chunk > fb.mapSize ? 4n * chunk : fb.mapSize;
  if (c.comps.some((x) => x.msize < minimum)) return 'component too small (64-bit 4 * chunk)';
  if (2n * fb.mapChunks > U16) return 'reserved chunks beyond u16';
  if (c.comps.some((x) => x.msize / chunk > U32)) return 'chunk_count beyond u32';
  const first = c.comps[0]!;
  if (count64(first, chunk) <= 2n * fb.mapChunks) return 'component 0 holds no chunk beyond the reserved ones';
  return undefined;
}

/** The chunk_count rule computed in 64 bits (virstor.md's divergence). */
function count64(x: FbComponent, chunk: bigint): bigint {
  const whole = x.msize / chunk;
  return whole * chunk > x.msize - x.ssize ? whole - 1n : whole;
}

function components(c: Case): LabelComponent[] {
  return c.comps.map((x) => ({ path: x.name, name: x.name, size: Number(x.msize), sectorSize: Number(x.ssize) }));
}

describe('virstor label against FreeBSD userland rules', () => {
  it('agrees field by field for random sizes', () => {
    const tally = { labeled: 0, refused: 0, chunkCountDiverged: 0, warned: 0, resizedMap: 0, resizedChunk: 0 };
    fc.assert(
      fc.property(caseArb, (c) => {
        const fb = freebsdLabel(c.comps, c.chunkArg, c.virArg, c.maxphys);
        const refusal = expectedRefusal(c, fb);
        const run = () =>
          planVirstorLabel({ name: 'vs', components: components(c), chunkSize: c.chunkArg, virsize: c.virArg, maxphys: Number(c.maxphys), hardcode: false, id: 7 });
        if (refusal !== undefined) {
          tally.refused++;
          let thrown: unknown;
          try {
            run();
          } catch (err) {
            thrown = err;
          }
          expect(thrown, refusal).toBeInstanceOf(GeomError);
          return;
        }
        tally.labeled++;
        const { plan, messages } = run();
        const notices = messages.filter((m) => m.kind === 'notice').map((m) => `${m.text}\n`).join('');
        expect(notices).toBe(fb.stderr);
        expect(messages.filter((m) => m.kind === 'verbose').map((m) => m.text).join('\n')).toBe(fb.stdout);
        if (fb.stderr.includes('WARNING')) tally.warned++;
        if (fb.stderr.includes('fit virstor structures')) tally.resizedMap++;
        if (fb.stderr.includes('MAXPHYS')) tally.resizedChunk++;
        expect(plan.geometry.mapSize).toBe(Number(fb.mapSize));
        plan.metadata.forEach((md, i) => {
          const f = fb.md[i]!;
          const x = c.comps[i]!;
          expect(md.virsize).toBe(f.virsize);
          expect(BigInt(md.chunkSize)).toBe(f.chunkSize);
          expect(BigInt(md.count)).toBe(f.count);
          expect(BigInt(md.no)).toBe(f.no);
          expect(md.provsize).toBe(f.provsize);
          expect(BigInt(md.chunkNext)).toBe(f.chunkNext);
          expect(BigInt(md.chunkReserved)).toBe(f.chunkReserved);
          expect(BigInt(md.flags)).toBe(f.flags);
          expect(md.name).toBe('vs');
          expect(md.id).toBe(7);
          expect(md.provider).toBe('');
          // The divergence: 64-bit chunk_count; FreeBSD's may keep the chunk over the last sector.
          const expected = count64(x, f.chunkSize);
          expect(BigInt(md.chunkCount)).toBe(expected);
          expect(BigInt(md.chunkCount) * f.chunkSize).toBeLessThanOrEqual(x.msize - x.ssize);
          if (expected !== f.chunkCount) {
            tally.chunkCountDiverged++;
            expect(f.chunkCount).toBe(expected + 1n);
          }
        });
      }),
      { numRuns: RUNS },
    );
    // The generator must reach every interesting path, or the comparison proves little.
    expect(tally.labeled).toBeGreaterThan(RUNS / 10);
    expect(tally.refused).toBeGreaterThan(RUNS / 10);
    expect(tally.chunkCountDiverged).toBeGreaterThan(0);
    expect(tally.warned).toBeGreaterThan(0);
    expect(tally.resizedMap).toBeGreaterThan(0);
    expect(tally.resizedChunk).toBeGreaterThan(0);
  });

  it('reproduces the 8 GiB example of virstor.md (FreeBSD 2048 chunks, geomctl 2047)', () => {
    const comps = [{ name: 'c0.img', msize: 8n << 30n, ssize: 512n }];
    const fb = freebsdLabel(comps, 4n << 20n, 2n << 40n, 1n << 20n);
    expect(fb.md[0]!.chunkCount).toBe(2048n);
    const { plan } = planVirstorLabel({
      name: 'vs',
      components: comps.map((x) => ({ path: x.name, name: x.name, size: Number(x.msize), sectorSize: 512 })),
      chunkSize: 4n << 20n,
      virsize: 2n << 40n,
      maxphys: 1 << 20,
      hardcode: false,
      id: 1,
    });
    expect(plan.metadata[0]!.chunkCount).toBe(2047);
  });
});
