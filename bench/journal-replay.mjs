// Replay (`journal sync`) of a 512 MiB dirty journal labeled with -c
// (checksums: every record's MD5 is verified) against `md5sum` of those
// 512 MiB plus `dd bs=1M conv=fsync` copying them, one after the other
// (quality.md: target ≤ 1.2×).
//
// Set-up: one `journal write` without --sync, with a journal and a cache
// limit large enough that the 512 MiB stay in one finished, un-copied journal
// (journal.md, "write": the device is left DIRTY, the next open replays it).
// The replay writes only the data area and the metadata sector, so before
// each run the dirty metadata sector is put back and the data area punched
// out again: every run replays the same journal into unallocated blocks, as
// dd writes into a new file.
import { rmSync } from 'node:fs';
import { MiB, geomctl, geomctlArgv, geomctlJson, randomFile, readAt, report, rewindReplay, run, scratch, sparseFile, timeInterleaved, warm } from './lib.mjs';

const SIZE = 512 * MiB;
const JSIZE = 1100 * MiB;

export default function journalReplay() {
  const s = scratch('jreplay');
  try {
    const input = randomFile(s.path('input.bin'), SIZE);
    const imgSize = SIZE + JSIZE + 512;
    const img = sparseFile(s.path('data.img'), imgSize);
    geomctl(['journal', 'label', '-c', '-s', String(JSIZE), img]);
    const w = geomctlJson(['--cache-limit', '1G', 'journal', 'write', '-i', input, img]);
    console.log(`set-up: write finished ${w.journals} journal(s), state ${w.state}`);
    if (w.state !== 'DIRTY' || w.journals !== 1) console.log('warning: the 512 MiB are not one un-copied journal; the replay measures something else');
    const dirty = readAt(img, imgSize - 512, 512);
    const out = s.path('dd.out');
    warm(img);
    warm(input);
    const t = timeInterleaved(
      {
        geomctl: { argv: geomctlArgv('journal', 'sync', img), setup: () => rewindReplay(img, imgSize - 512, dirty, SIZE) },
        'md5sum + dd': {
          argv: `md5sum '${input}' >/dev/null && dd if='${input}' of='${out}' bs=1M conv=fsync status=none`,
          shell: true,
          setup: () => rmSync(out, { force: true }),
        },
      },
      { runs: 5 },
    );
    const state = geomctlJson(['journal', 'list', img]).geoms?.[0]?.state;
    const want = run(['md5sum', input]).split(' ')[0];
    const got = run(`head -c ${SIZE} '${img}' | md5sum`, { shell: true }).split(' ')[0];
    if (want !== got || state !== 'CLEAN') throw new Error(`after the replay the data area is ${want === got ? 'right' : 'wrong'} and the device ${state}`);
    return report('journal sync (replay 512 MiB, checksums)', t.geomctl, 'md5sum + dd conv=fsync', t['md5sum + dd'], 1.2);
  } finally {
    s.cleanup();
  }
}
