// journal `read` of 1 GiB with half of it still in the journal, to /dev/null,
// against `cat` of a flat file of the same 1 GiB (quality.md: target ≤ 2.5×,
// start-up included); the ratio to the bare Node loop (bench/node-stream.mjs:
// 128 KiB readSync/writeSync) over the same file is reported too.
//
// Set-up: a one-image journal with a 1 GiB data area; the first 512 MiB are
// written with --sync (they end up in the data area), the second 512 MiB
// without it and with a cache limit large enough that they stay in one
// finished, un-copied journal (the writer only switches early when the
// protected span would pass half the journal or the cache limit).
import { MiB, checkSameBytes, geomctl, geomctlArgv, geomctlJson, randomFile, run, scratch, sparseFile, versusStream, warm } from './lib.mjs';

const HALF = 512 * MiB;

export default function journalRead() {
  const s = scratch('jread');
  try {
    const a = randomFile(s.path('a.bin'), HALF);
    const b = randomFile(s.path('b.bin'), HALF);
    const flat = s.path('flat.bin');
    run(`cat '${a}' '${b}' > '${flat}'`, { shell: true });
    const img = sparseFile(s.path('data.img'), 2 * HALF + 1100 * MiB + 512);
    geomctl(['journal', 'label', '-s', '1100M', img]);
    geomctl(['journal', 'write', '--sync', '-i', a, img]);
    const w = geomctlJson(['--cache-limit', '1G', 'journal', 'write', '-o', String(HALF), '-i', b, img]);
    const pending = geomctlJson(['journal', 'list', img]).geoms?.[0]?.pendingJournals;
    console.log(`set-up: the second write finished ${w.journals} journal(s); state ${w.state}, ${pending} pending journal(s)`);
    if (w.state !== 'DIRTY' || w.journals !== 1) console.log('warning: the second half is not one un-copied journal; the read measures something else');
    const read = geomctlArgv('journal', 'read', img);
    checkSameBytes(read, flat, 'journal read');
    warm(img);
    return versusStream('journal read 1 GiB (512 MiB in the journal)', read, flat, 2.5);
  } finally {
    s.cleanup();
  }
}
