// Memory on a huge virstor device (quality.md: a 1 PiB device with 4 MiB
// chunks has a 2 GiB map that must not have to fit in memory): label, then
// scattered 4 MiB writes, a read-back and a check, on sparse components. The
// peak RSS of every command must stay ≤ 160 MiB with --cache-limit 64M, and
// ≤ the limit + 96 MiB with the default limit (256M).
import { readFileSync } from 'node:fs';
import { GiB, MiB, geomctlArgv, peakRssKiB, randomFile, run, scratch, sparseFile } from './lib.mjs';

const CHUNK = 4 * MiB;
const VIRSIZE = 2 ** 50;
const WRITES = 8;
const DEFAULT_LIMIT_MIB = 256;

/** Chunk-aligned offsets spread over the whole device (first and last chunk included). */
function offsets() {
  const chunks = VIRSIZE / CHUNK;
  const out = [0, VIRSIZE - CHUNK];
  let x = 0x9e3779b9;
  while (out.length < WRITES) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(Math.floor((x / 2 ** 32) * chunks) * CHUNK);
  }
  return out;
}

/** Label, writes, a read-back and a check under `global` options; returns [command, peak MiB, seconds][]. */
async function session(s, global) {
  // c0 holds the map (2 GiB, twice that reserved, as FreeBSD's label does) and some chunks; all sparse.
  sparseFile(s.path('c0.img'), 6 * GiB);
  sparseFile(s.path('c1.img'), 2 * GiB);
  const rows = [];
  const measure = async (name, args) => {
    const start = process.hrtime.bigint();
    const kib = await peakRssKiB(geomctlArgv(...global, '-d', s.dir, ...args));
    rows.push([name, kib / 1024, Number(process.hrtime.bigint() - start) / 1e9]);
  };
  await measure('label -s 1P -m 4M', ['virstor', 'label', '-s', String(VIRSIZE), '-m', String(CHUNK), 'pib', s.path('c0.img'), s.path('c1.img')]);
  const data = s.path('chunk.bin');
  for (const o of offsets()) await measure(`write -o ${o}`, ['virstor', 'write', '-o', String(o), '-i', data, 'pib']);
  const last = offsets()[WRITES - 1];
  await measure(`read -o ${last}`, ['virstor', 'read', '-o', String(last), '-l', String(CHUNK), '-O', s.path('back.bin'), 'pib']);
  if (!readFileSync(s.path('back.bin')).equals(readFileSync(data))) throw new Error(`virstor read at ${last} did not return the chunk written there`);
  await measure('check', ['virstor', 'check', 'pib']);
  const check = run(geomctlArgv('--json', ...global, '-d', s.dir, 'virstor', 'check', 'pib'));
  const allocated = JSON.parse(check).allocatedChunks;
  if (allocated !== WRITES) throw new Error(`virstor check counts ${allocated} allocated chunks, not ${WRITES}`);
  return rows;
}

function print(title, rows, limit) {
  let ok = true;
  console.log(`${title} (limit ${limit} MiB):`);
  for (const [name, mib, seconds] of rows) {
    const within = mib <= limit;
    ok &&= within;
    console.log(`  ${name.padEnd(28)} peak RSS ${mib.toFixed(1).padStart(6)} MiB  ${seconds.toFixed(2).padStart(6)} s${within ? '' : '  MISSED'}`);
  }
  const worst = Math.max(...rows.map((r) => r[1]));
  console.log(`  worst: ${worst.toFixed(1)} MiB (${ok ? 'met' : 'MISSED'})`);
  return ok;
}

export default async function virstorPib() {
  const s = scratch('vpib');
  try {
    randomFile(s.path('chunk.bin'), CHUNK);
    const small = print('--cache-limit 64M', await session(s, ['--cache-limit', '64M']), 160);
    const dflt = print(`default cache limit (${DEFAULT_LIMIT_MIB}M)`, await session(s, []), DEFAULT_LIMIT_MIB + 96);
    return small && dflt;
  } finally {
    s.cleanup();
  }
}
