// Start-up: `geomctl --version` against a bare `node -e 0` (target ≤ 2×).
import { BIN, report, timeCommand } from './lib.mjs';

export default function startup() {
  const node = timeCommand([process.execPath, '-e', '0'], { runs: 15 });
  const version = timeCommand([process.execPath, BIN, '--version'], { runs: 15 });
  return report('geomctl --version', version, 'node -e 0', node, 2);
}
