// `geomctl dump` of one image against a bare `node -e 0` (quality.md: target
// ≤ 2×): start-up plus tasting and decoding one metadata sector. Measured for
// a journal image and for a virstor component; both must meet the target.
import { MiB, geomctl, geomctlArgv, report, scratch, sparseFile, timeInterleaved } from './lib.mjs';

export default function dump() {
  const s = scratch('dump');
  try {
    const journal = sparseFile(s.path('data.img'), 256 * MiB);
    geomctl(['journal', 'label', '-s', '128M', journal]);
    const component = sparseFile(s.path('c0.img'), 64 * MiB);
    geomctl(['virstor', 'label', '-s', '1G', 'bench', component]);
    const t = timeInterleaved(
      {
        node: { argv: [process.execPath, '-e', '0'] },
        journal: { argv: geomctlArgv('dump', journal) },
        virstor: { argv: geomctlArgv('dump', component) },
      },
      { runs: 15 },
    );
    const j = report('geomctl dump (journal image)', t.journal, 'node -e 0', t.node, 2);
    const v = report('geomctl dump (virstor component)', t.virstor, 'node -e 0', t.node, 2);
    return j && v;
  } finally {
    s.cleanup();
  }
}
