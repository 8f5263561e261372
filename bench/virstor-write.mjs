// virstor `write` of 512 MiB against `dd bs=1M conv=fsync` writing the same
// bytes to a new file (quality.md: target ≤ 1.25×). Each run starts from a
// freshly labeled device on one sparse 1 GiB component (default 4 MiB chunks,
// 2 TiB virtual size): the write allocates 128 chunks and updates the map.
import { GiB, MiB, geomctl, geomctlArgv, randomFile, scratch, sparseFile, versusDd } from './lib.mjs';

const SIZE = 512 * MiB;

export default function virstorWrite() {
  const s = scratch('vwrite');
  try {
    const input = randomFile(s.path('input.bin'), SIZE);
    const component = s.path('c0.img');
    const fresh = () => {
      sparseFile(component, GiB);
      geomctl(['virstor', 'label', 'bench', component]);
    };
    return versusDd('virstor write 512 MiB', { argv: geomctlArgv('-d', s.dir, 'virstor', 'write', '-i', input, 'bench'), setup: fresh }, input, s.dir, 1.25);
  } finally {
    s.cleanup();
  }
}
