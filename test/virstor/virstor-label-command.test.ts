// The virstor label, clear and dump verbs' handlers, run with a test context
// over in-memory images and a pass-through engine: what a user sees on stdout
// and stderr, and what lands in the images. (The black-box CLI tests run the
// built bin/geomctl once the session layer is in place.)

import { describe, expect, it } from 'vitest';
import { virstorClass } from '../../commands/virstor.js';
import { Stacks } from '../../src/geom/stack.js';
import { optionValues, type Context } from '../../commands/framework.js';
import { Output } from '../../commands/output.js';
import type { BufferType, Engine, EngineStats } from '../../src/engine/types.js';
import { GeomError, PartialFailure } from '../../src/errors.js';
import { MemoryProvider } from '../sim/memory.js';
import type { Provider } from '../../src/provider/provider.js';
import { decodeVirstorMetadata } from '../../src/virstor/metadata.js';

const MiB = 1024 * 1024;
// -m and -s as the option parser hands them over (kind 'size64', framework.ts).
const KiBn = 1024n;
const MiBn = 1024n * KiBn;

/** Writes go straight to the images: enough to see what the handlers ask for. */
function directEngine(providers: Provider[]): Engine {
  return {
    providers,
    stats: {} as EngineStats,
    critical: false,
    read: (i, offset, length) => providers[i]!.read(offset, length),
    readInto: (i, offset, target) => providers[i]!.readInto(offset, target),
    write: (i: number, offset: number, data: Buffer, _type: BufferType) => providers[i]!.write(offset, data),
    writeOrdered: (i, offset, data) => providers[i]!.write(offset, data),
    barrier() {},
    commit() {},
    abort() {},
    close() {},
  };
}

function harness(images: Record<string, Buffer>, json = false, mediaSectorSize = 512) {
  const providers = new Map(Object.entries(images).map(([p, data]) => [p, new MemoryProvider(p, data, { mediaSectorSize })]));
  const stdout: string[] = [];
  const stderr: string[] = [];
  const stream = (sink: string[]) => ({ write: (s: string | Buffer) => sink.push(s.toString()), isTTY: false }) as unknown as NodeJS.WriteStream;
  const openImages = (paths: string[]) => {
    const ps = paths.map((p) => {
      const provider = providers.get(p);
      if (!provider) throw new GeomError('NOT_FOUND', `${p}: no such file`);
      return provider;
    });
    return { engine: directEngine(ps), providers: ps, recovered: [], close() {} };
  };
  // One context (and Output: one JSON document) per command, as main.ts makes them.
  const context = (): Context => ({
    global: { json, verbose: false, quiet: false, color: false, dirs: [], maxphys: undefined, ignoreHardcoded: false, stats: false, cacheLimit: 1 << 28, wait: 0 },
    out: new Output({ json, quiet: false, color: false, stdout: stream(stdout), stderr: stream(stderr) }),
    openSession: openImages,
    stacks: new Stacks({
      dirs: [],
      ignoreHardcoded: false,
      cacheLimit: 1 << 28,
      maxphys: undefined,
      openImages,
      probeImage: (p) => {
        const provider = providers.get(p);
        if (!provider) throw new GeomError('NOT_FOUND', `${p}: no such file`);
        return provider;
      },
      warn: () => {},
    }),
    addStats() {},
  });
  // `given` as commander hands options over; the handler gets them parsed and defaulted.
  const run = (verb: string, args: string[], given: Record<string, unknown> = {}) => {
    const spec = virstorClass.commands.find((c) => c.name === verb)!;
    return spec.run(context(), args, optionValues(spec.options, given));
  };
  return { run, stdout, stderr };
}

const DUMP_C0 = `Metadata on c0.img:
          Magic string: GEOM::VIRSTOR
      Metadata version: 1
           Device name: mydata
             Device ID: 42
        Provider index: 0
      Active providers: 2
    Hardcoded provider: (not hardcoded)
          Virtual size: 128 MB
            Chunk size: 1024 kB
    Chunks on provider: 63
           Chunks free: 61
       Reserved chunks: 2

`;

describe('virstor label, dump and clear handlers', () => {
  it('label writes what dump then prints', async () => {
    const c0 = Buffer.alloc(64 * MiB, 0xaa);
    const c1 = Buffer.alloc(64 * MiB);
    const h = harness({ 'c0.img': c0, 'c1.img': c1 });
    await h.run('label', ['mydata', 'c0.img', 'c1.img'], { chunksize: 1000n * KiBn, virsize: 128n * MiBn, id: 42 });
    expect(h.stderr.join('')).toBe('Resizing chunk size to be a multiple of MAXPHYS (1024 kB).\nNew chunk size: 1024 kB\n');
    expect(h.stdout).toEqual([]);
    // The map: 128 entries, 1024 zero bytes at the start of c0; the old bytes after it stay.
    expect(c0.subarray(0, 1024).every((b) => b === 0)).toBe(true);
    expect(c0[1024]).toBe(0xaa);
    expect(decodeVirstorMetadata(c1.subarray(c1.length - 512), 'c1.img')).toMatchObject({ no: 1, chunkCount: 63, flags: 0 });
    await h.run('dump', ['c0.img', 'c1.img']);
    const text = h.stdout.join('');
    expect(text.startsWith(DUMP_C0)).toBe(true);
    expect(text).toContain('Metadata on c1.img:\n');
    expect(text).toContain('           Chunks free: 63\n       Reserved chunks: 0\n\n');
  });

  it('label -v prints FreeBSD\'s verbose lines and "Done."', async () => {
    const h = harness({ 'c0.img': Buffer.alloc(64 * MiB), 'c1.img': Buffer.alloc(64 * MiB) });
    await h.run('label', ['mydata', 'c0.img', 'c1.img'], { chunksize: MiBn, virsize: 128n * MiBn, id: 42, verbose: true, hardcode: true });
    expect(h.stdout.join('')).toBe(
      'Total virtual chunks: 128 (1 MB each), 128 MB total virtual size.\n' +
        'Clearing metadata on c0.img c1.img.\n' +
        'Writing allocation table to c0.img... (0 MB, 1 chunks) \n' +
        'Storing metadata on c0.img (64 chunks) (2 reserved) c1.img (64 chunks) Done.\n',
    );
    await h.run('dump', ['c1.img']);
    expect(h.stdout.join('')).toContain('    Hardcoded provider: c1.img\n');
  });

  it('label refuses without touching the images', async () => {
    const c0 = Buffer.alloc(8 * MiB, 0xaa);
    const h = harness({ 'c0.img': c0 });
    await expect(async () => h.run('label', ['mydata', 'c0.img'], {})).rejects.toThrow('Device c0.img is too small');
    expect(c0.every((b) => b === 0xaa)).toBe(true);
    await expect(async () => h.run('label', ['mydata'], {})).rejects.toThrow(/needs a name and at least one image/);
  });

  it('--sectorsize below the medium\'s sectors: the refusal journal label gives (exit 1), images untouched', async () => {
    const c0 = Buffer.alloc(64 * MiB, 0xaa);
    const h = harness({ 'c0.img': c0 }, false, 4096);
    const err = await (async () => h.run('label', ['mydata', 'c0.img'], { sectorsize: 512 }))().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GeomError);
    expect((err as GeomError).exitStatus).toBe(1);
    expect((err as GeomError).line).toBe("c0.img: sector size 512 is smaller than the medium's 4096; use --sectorsize 4096 or more");
    expect(c0.every((b) => b === 0xaa)).toBe(true);
  });

  it('dump --json gives the fields', async () => {
    const h = harness({ 'c0.img': Buffer.alloc(64 * MiB) }, true);
    await h.run('label', ['vs', 'c0.img'], { chunksize: MiBn, virsize: 32n * MiBn, id: 7 });
    h.stdout.length = 0;
    await h.run('dump', ['c0.img']);
    const doc = JSON.parse(h.stdout.join(''));
    // 32 map entries fill half a sector: label rounds up to 64 chunks.
    expect(doc).toMatchObject({ command: 'virstor dump', images: [{ path: 'c0.img', sectorSize: 512, metadata: { name: 'vs', id: 7, chunkSize: MiB, virsize: 64 * MiB, chunkReserved: 2 } }] });
  });

  it('clear erases virstor metadata, reports the others and carries on', async () => {
    const c0 = Buffer.alloc(64 * MiB);
    const plain = Buffer.alloc(MiB);
    const h = harness({ 'c0.img': c0, 'plain.img': plain });
    await h.run('label', ['mydata', 'c0.img'], { chunksize: MiBn, virsize: 64n * MiBn, id: 1 });
    await expect(async () => h.run('clear', ['plain.img', 'c0.img', 'gone.img'], { verbose: true })).rejects.toThrow(PartialFailure);
    expect(h.stdout.join('')).toBe('Metadata cleared on c0.img.\n');
    expect(c0.subarray(c0.length - 512).every((b) => b === 0)).toBe(true);
    await expect(async () => h.run('dump', ['c0.img'])).rejects.toThrow('c0.img: no virstor metadata');
  });
});
