// journal `write --sync` of 256 MiB against `dd bs=1M conv=fsync` writing the
// same bytes once (quality.md: target ≤ 2.5×; journaling writes them twice:
// into the journal, then to the data area). Each run starts from a freshly
// labeled sparse image, as dd starts from a new file: both allocate blocks.
import { GiB, MiB, geomctl, geomctlArgv, randomFile, scratch, sparseFile, versusDd } from './lib.mjs';

const SIZE = 256 * MiB;

export default function journalWrite() {
  const s = scratch('jwrite');
  try {
    const input = randomFile(s.path('input.bin'), SIZE);
    const img = s.path('data.img');
    // A data area of exactly the input, the default 1 GiB journal and cache limit.
    const fresh = () => {
      sparseFile(img, SIZE + GiB + 512);
      geomctl(['journal', 'label', img]);
    };
    return versusDd('journal write --sync 256 MiB', { argv: geomctlArgv('journal', 'write', '--sync', '-i', input, img), setup: fresh }, input, s.dir, 2.5);
  } finally {
    s.cleanup();
  }
}
