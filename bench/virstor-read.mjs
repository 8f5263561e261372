// virstor `read` of 1 GiB to /dev/null against `cat` of a flat file of the
// same 1 GiB (quality.md: target ≤ 2.5×, start-up included); the ratio to the
// bare Node loop (bench/node-stream.mjs: 128 KiB readSync/writeSync) over the
// same file is reported too. The device: two sparse 768 MiB components, 1 GiB written
// once (256 chunks, spread over both components).
import { GiB, MiB, checkSameBytes, geomctl, geomctlArgv, randomFile, scratch, sparseFile, versusStream, warm } from './lib.mjs';

export default function virstorRead() {
  const s = scratch('vread');
  try {
    const flat = randomFile(s.path('flat.bin'), GiB);
    const components = ['c0.img', 'c1.img'].map((c) => sparseFile(s.path(c), 768 * MiB));
    geomctl(['virstor', 'label', 'bench', ...components]);
    geomctl(['-d', s.dir, 'virstor', 'write', '-i', flat, 'bench']);
    const read = geomctlArgv('-d', s.dir, 'virstor', 'read', '-l', '1G', 'bench');
    checkSameBytes(read, flat, 'virstor read');
    for (const c of components) warm(c);
    return versusStream('virstor read 1 GiB', read, flat, 2.5);
  } finally {
    s.cleanup();
  }
}
