// The reference "bare Node loop" of quality.md's read benchmarks: stream a file
// to stdout with readSync/writeSync through one reused 128 KiB buffer (the
// buffer size the spec measured as fastest: 64–128 KiB). Not a benchmark
// itself (run.mjs skips it): `node bench/node-stream.mjs FILE > /dev/null`.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export const BUFFER_SIZE = 128 * 1024;

/** Streams `path` to `outFd`; returns the bytes copied. */
export function streamFile(path, outFd = 1, bufferSize = BUFFER_SIZE) {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(bufferSize);
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      for (let off = 0; off < n; ) off += writeSync(outFd, buf, off, n - off);
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

// Run as a script (not when run.mjs or a benchmark imports it).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: node bench/node-stream.mjs FILE > /dev/null\n');
    process.exit(2);
  }
  streamFile(path, 1, process.argv[3] ? Number(process.argv[3]) : BUFFER_SIZE);
}
