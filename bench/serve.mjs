// geomctl serve against the peers serve.md names, same client, same run:
// nbdkit's file plugin (and qemu-nbd for qemu-img convert) serving flat files.
// Each case is timed whole in captive mode (server start, the copy, the clean
// stop), interleaved with its peer so a neighbour's load hits both alike.
// Targets (serve.md, "Performance"): nbdcopy out of virstor ≤ 1.25×, into a
// fresh virstor ≤ 1.5×, into a journal ≤ 2.5×, qemu-img convert out ≤ 1.25×;
// geomctl's peak RSS ≤ cache limit (256 MiB) + 64 MiB.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { GiB, MiB, geomctl, geomctlArgv, peakRssKiB, randomFile, report, reportLimit, scratch, sparseFile, timeInterleaved, warm } from './lib.mjs';

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
    for (const c of comps) warm(c);
    warm(flat);
    const serveArgv = (cmd, provider) => geomctlArgv('-q', '-d', s.dir, 'serve', '--run', cmd, provider);
    const nbdkit = (cmd, file) => ['nbdkit', '-U', '-', 'file', file, '--run', cmd];
    let ok = true;

    // 1. nbdcopy out of a virstor provider to null:
    const out = timeInterleaved(
      { geomctl: { argv: serveArgv('nbdcopy "$uri" null:', 'virstor/bench') }, nbdkit: { argv: nbdkit('nbdcopy "$uri" null:', flat) } },
      { runs: 3 },
    );
    ok = report('nbdcopy 1 GiB out of virstor', out.geomctl, "nbdkit's file plugin", out.nbdkit, 1.25) && ok;

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
    const into = timeInterleaved(
      {
        geomctl: { argv: geomctlArgv('-q', '-d', freshDir, 'serve', '--run', `nbdcopy --flush ${flat} "$uri"`, 'virstor/fresh'), setup: fresh },
        nbdkit: { argv: nbdkit(`nbdcopy --flush ${flat} "$uri"`, sparse), setup: () => sparseFile(sparse, GiB) },
      },
      { runs: 3 },
    );
    ok = report('nbdcopy 1 GiB into a fresh virstor', into.geomctl, "nbdkit's file plugin", into.nbdkit, 1.5) && ok;

    // 3. nbdcopy into a journal provider, then flush (every byte is written twice).
    const data = s.path('data.img');
    const journal = () => {
      sparseFile(data, GiB + 1280 * MiB);
      geomctl(['journal', 'label', '-s', '1200M', data]);
    };
    const jinto = timeInterleaved(
      {
        geomctl: { argv: serveArgv(`nbdcopy --flush ${flat} "$uri"`, `${data}.journal`), setup: journal },
        nbdkit: { argv: nbdkit(`nbdcopy --flush ${flat} "$uri"`, sparse), setup: () => sparseFile(sparse, GiB) },
      },
      { runs: 3 },
    );
    ok = report('nbdcopy 1 GiB into a journal', jinto.geomctl, "nbdkit's file plugin", jinto.nbdkit, 2.5) && ok;

    // 4. qemu-img convert -O raw out of a virstor provider.
    const conv = s.path('conv.raw');
    const convert = timeInterleaved(
      {
        geomctl: { argv: serveArgv(`qemu-img convert -f raw -O raw "$uri" ${conv}`, 'virstor/bench'), setup: () => rmSync(conv, { force: true }) },
        'qemu-nbd': { argv: qemuNbd(flat, s.path('q.sock'), `qemu-img convert -f raw -O raw "$uri" ${conv}`), setup: () => rmSync(conv, { force: true }) },
      },
      { runs: 3 },
    );
    ok = report('qemu-img convert 1 GiB out of virstor', convert.geomctl, 'qemu-nbd', convert['qemu-nbd'], 1.25) && ok;

    // Peak RSS of the server (and its client, which GNU time counts with it) during the largest copy.
    fresh();
    const rss = await peakRssKiB(geomctlArgv('-q', '-d', freshDir, 'serve', '--run', `nbdcopy --flush ${flat} "$uri"`, 'virstor/fresh'));
    ok = reportLimit('peak RSS, nbdcopy 1 GiB into virstor', rss / 1024, 'MiB', 256 + 64) && ok;
    return ok;
  } finally {
    s.cleanup();
  }
}
