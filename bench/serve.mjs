// geomctl serve against the peers serve.md names, same client, same run:
// nbdkit's file plugin (and qemu-nbd for qemu-img convert) serving flat files.
// Each case is timed whole in captive mode (server start, the copy, the clean
// stop), interleaved with its peer so a neighbour's load hits both alike.
// The peers of the reads serve a flat copy of the virstor provider: its 1 GiB
// of data in a sparse file of its whole virtual size (2 TiB, virstor's
// default), so that both sides answer the same block-status walk over the
// holes (nbdcopy asks 128 MiB at a time: 16384 requests) — against a 1 GiB
// file, half of geomctl's time was a walk its peer did not make.
// Targets (serve.md, "Performance"): nbdcopy out of virstor ≤ 1.25×, into a
// fresh virstor ≤ 1.5×, into a journal ≤ 2.5×, qemu-img convert out ≤ 1.25×;
// geomctl's peak RSS ≤ cache limit (256 MiB) + 64 MiB.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFileSync, truncateSync } from 'node:fs';
import { GiB, MiB, geomctl, geomctlArgv, geomctlJson, median, peakRssKiB, randomFile, report, reportLimit, scratch, sparseFile, timeInterleavedRuns, warm } from './lib.mjs';

/** The medians' ratio against its target, and the range of the rounds' own ratios (a shared machine's noise). */
function reportRounds(name, times, ref, refName, target) {
  const ours = times.geomctl;
  const theirs = times[ref];
  const ratios = ours.map((t, i) => t / theirs[i]);
  const ok = report(name, median(ours), refName, median(theirs), target);
  console.log(`  rounds: geomctl ${ours.map((t) => t.toFixed(2)).join(' ')} s, ${refName} ${theirs.map((t) => t.toFixed(2)).join(' ')} s, ratios ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×`);
  return ok;
}

const have = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** qemu-nbd has no captive mode: a shell that starts it, waits for its socket, runs `cmd`, stops it. */
function qemuNbd(file, sock, cmd) {
  return [
    'sh',
    '-c',
    `qemu-nbd -r -f raw -t -k ${sock} ${file} & p=$!; while [ ! -S ${sock} ]; do sleep 0.01; done; uri='nbd+unix:///?socket=${sock}'; ${cmd}; s=$?; kill $p; wait $p 2>/dev/null; rm -f ${sock}; exit $s`,
  ];
}

export default async function serve() {
  if (!['nbdcopy', 'nbdkit', 'qemu-nbd', 'qemu-img'].every(have)) {
    console.log('serve: SKIPPED (needs nbdcopy, nbdkit, qemu-nbd, qemu-img: apt-get install libnbd-bin nbdkit qemu-utils)');
    return true;
  }
  const s = scratch('serve');
  try {
    const flat = randomFile(s.path('flat.bin'), GiB);
    const comps = ['c0.img', 'c1.img'].map((c) => sparseFile(s.path(c), 768 * MiB));
    geomctl(['virstor', 'label', 'bench', ...comps]);
    geomctl(['-d', s.dir, 'virstor', 'write', '-i', flat, 'bench']);
    // The flat copy of the provider the read peers serve: same bytes, same size
    // (its data is in the page cache from the copy; warm() would read the holes too).
    const providerSize = geomctlJson(['-d', s.dir, 'virstor', 'list', 'bench']).geoms[0].provider.mediasize;
    const flatProvider = s.path('flat-provider.bin');
    copyFileSync(flat, flatProvider);
    truncateSync(flatProvider, providerSize);
    for (const c of comps) warm(c);
    warm(flat);
    const serveArgv = (cmd, provider) => geomctlArgv('-q', '-d', s.dir, 'serve', '--run', cmd, provider);
    const nbdkit = (cmd, file) => ['nbdkit', '-U', '-', 'file', file, '--run', cmd];
    let ok = true;

    // 1. nbdcopy out of a virstor provider to null:
    const outArgv = serveArgv('nbdcopy "$uri" null:', 'virstor/bench');
    const out = timeInterleavedRuns(
      { geomctl: { argv: outArgv }, nbdkit: { argv: nbdkit('nbdcopy "$uri" null:', flatProvider) } },
      { runs: 3 },
    );
    ok = reportRounds('nbdcopy 1 GiB out of virstor', out, 'nbdkit', "nbdkit's file plugin", 1.25) && ok;

    // 2. nbdcopy into a fresh virstor provider, then flush.
    const freshComps = ['f0.img', 'f1.img'].map((c) => s.path(c));
    const freshDir = s.path('fresh');
    spawnSync('mkdir', ['-p', freshDir]);
    const fresh = () => {
      rmSync(freshDir, { recursive: true, force: true });
      spawnSync('mkdir', ['-p', freshDir]);
      const cs = ['f0.img', 'f1.img'].map((c) => sparseFile(`${freshDir}/${c}`, 768 * MiB));
      geomctl(['virstor', 'label', 'fresh', ...cs]);
    };
    const sparse = s.path('sparse.out');
    const intoArgv = geomctlArgv('-q', '-d', freshDir, 'serve', '--run', `nbdcopy --flush ${flat} "$uri"`, 'virstor/fresh');
    const into = timeInterleavedRuns(
      {
        geomctl: { argv: intoArgv, setup: fresh },
        nbdkit: { argv: nbdkit(`nbdcopy --flush ${flat} "$uri"`, sparse), setup: () => sparseFile(sparse, GiB) },
      },
      { runs: 3 },
    );
    ok = reportRounds('nbdcopy 1 GiB into a fresh virstor', into, 'nbdkit', "nbdkit's file plugin", 1.5) && ok;

    // 3. nbdcopy into a journal provider, then flush (every byte is written twice).
    const data = s.path('data.img');
    const journal = () => {
      sparseFile(data, GiB + 1280 * MiB);
      geomctl(['journal', 'label', '-s', '1200M', data]);
    };
    const journalArgv = serveArgv(`nbdcopy --flush ${flat} "$uri"`, `${data}.journal`);
    const jinto = timeInterleavedRuns(
      {
        geomctl: { argv: journalArgv, setup: journal },
        nbdkit: { argv: nbdkit(`nbdcopy --flush ${flat} "$uri"`, sparse), setup: () => sparseFile(sparse, GiB) },
      },
      { runs: 3 },
    );
    ok = reportRounds('nbdcopy 1 GiB into a journal', jinto, 'nbdkit', "nbdkit's file plugin", 2.5) && ok;

    // 4. qemu-img convert -O raw out of a virstor provider.
    const conv = s.path('conv.raw');
    const convertArgv = serveArgv(`qemu-img convert -f raw -O raw "$uri" ${conv}`, 'virstor/bench');
    const removeConv = () => rmSync(conv, { force: true });
    const convert = timeInterleavedRuns(
      {
        geomctl: { argv: convertArgv, setup: removeConv },
        'qemu-nbd': { argv: qemuNbd(flatProvider, s.path('q.sock'), `qemu-img convert -f raw -O raw "$uri" ${conv}`), setup: removeConv },
      },
      { runs: 3 },
    );
    ok = reportRounds('qemu-img convert 1 GiB out of virstor', convert, 'qemu-nbd', 'qemu-nbd', 1.25) && ok;

    // Peak RSS during each case (serve.md: ≤ cache limit + 64 MiB): GNU time
    // reports the largest of the server and its client, so this bounds the server's.
    const peaks = [
      ['out of virstor', () => {}, outArgv],
      ['into a fresh virstor', fresh, intoArgv],
      ['into a journal', journal, journalArgv],
      ['qemu-img convert', removeConv, convertArgv],
    ];
    for (const [name, setup, argv] of peaks) {
      setup();
      const rss = await peakRssKiB(argv);
      ok = reportLimit(`peak RSS, ${name}`, rss / 1024, 'MiB', 256 + 64) && ok;
    }
    return ok;
  } finally {
    s.cleanup();
  }
}
