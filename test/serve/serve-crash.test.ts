// kill -9 of geomctl serve at random moments under load (serve.md,
// "Semantics"; issue: serve's crash tests). The load: a shell loop of qemu-io
// clients, each writing 1 MiB of its own pattern and flushing, logging its
// number once the flush was answered, beside a 16 MiB qemu-io write streaming
// into another region. GEOMCTL_SERVE_CRASH_ROUNDS sets the kills per provider. Afterwards, judged by the independent kernel models in
// test/model (not geomctl's own readers): every logged write reads back; each
// 1 MiB write is all there or not at all (a journal is all-or-nothing); the
// kernel model's view of the device equals geomctl's; and check passes.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { startServe } from '../helpers/serve.js';
import { tool } from '../helpers/tools.js';
import { kJournaledContents } from '../model/journal-kernel.js';
import { ModelKernel } from '../model/virstor-kernel.js';

const MiB = 1024 * 1024;
const clients = [tool('nbdcopy'), tool('qemu-io')].every(Boolean);
const ROUNDS = Number(process.env.GEOMCTL_SERVE_CRASH_ROUNDS ?? 3);
/** The flushed 1 MiB writes go to [0, 32 MiB); the stream to [40 MiB, 56 MiB). */
const SLOTS = 32;
const STREAM_AT = 40 * MiB;

function loadScript(uri: string): string {
  return [
    `i=1; while [ $i -le ${SLOTS} ]; do`,
    `  qemu-io -f raw -c "write -P $i $(( (i - 1) * ${MiB} )) ${MiB}" -c flush '${uri}' >/dev/null 2>&1 || exit 0`,
    '  echo $i >> done.log',
    '  i=$((i + 1))',
    'done',
  ].join('\n');
}

async function crashOnce(dir: string, provider: string, seed: number, options: string[] = []): Promise<number[]> {
  const served = await startServe(dir, [...options, provider], provider);
  spawnSync('rm', ['-f', `${dir}/done.log`]);
  // The flushed writes and a 16 MiB stream into its own region, at once.
  const load = `(\n${loadScript(served.uri)}\n) & qemu-io -f raw -c "write -s stream.bin ${STREAM_AT} ${16 * MiB}" '${served.uri}' >/dev/null 2>&1; wait`;
  const writer = spawn('sh', ['-c', load], { cwd: dir, stdio: 'ignore', detached: true });
  await new Promise((r) => setTimeout(r, 150 + (seed * 7919) % 900));
  await served.stop('SIGKILL');
  // The whole load's process group: the shell, its subshell and the clients.
  try {
    process.kill(-(writer.pid as number), 'SIGKILL');
  } catch {
    // already gone
  }
  await new Promise((r) => (writer.exitCode !== null || writer.signalCode !== null ? r(undefined) : writer.on('exit', r)));
  const log = existsSync(`${dir}/done.log`) ? readFileSync(`${dir}/done.log`, 'utf8') : '';
  const done = log.split('\n').filter(Boolean).map(Number);
  console.log(`serve crash: ${provider} killed after ${done.length} flushed writes`);
  return done;
}

function judgeSlots(device: Buffer, done: number[]): void {
  for (let i = 1; i <= SLOTS; i++) {
    const slot = device.subarray((i - 1) * MiB, i * MiB);
    const all = slot.every((b) => b === (i & 0xff));
    if (done.includes(i)) expect(all, `flushed write ${i} reads back`).toBe(true);
    else expect(all || slot.every((b) => b === 0), `write ${i} is all or nothing`).toBe(true);
  }
}

describe.skipIf(!clients)('kill -9 of geomctl serve under load', () => {
  // With --force-switch 5 a journal is finished and copied to the data area every 5 MiB:
  // the kills land amid switches and copies, not only amid records.
  it.each([
    ['', []],
    [', switching and copying every 5 MiB', ['--force-switch', '5']],
  ])(`journal provider%s: ${ROUNDS} random kills`, async (_name, options) => {
    const s = scratch('geomctl-serve-crash-');
    try {
      writeFileSync(s.path('stream.bin'), randomBytes(16 * MiB));
      sparseImage(s.path('d.img'), 192 * MiB);
      expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
      for (let round = 0; round < ROUNDS; round++) {
        const done = await crashOnce(s.dir, 'd.img.journal', round + 1, options as string[]);
        const image = readFileSync(s.path('d.img'));
        const kernel = kJournaledContents({ d: image, j: image, sectorSize: 512 }, { maxphys: 1024 * 1024 });
        judgeSlots(kernel, done);
        const ours = geomctl(['journal', 'read', '-l', String(kernel.length), 'd.img'], { cwd: s.dir });
        expect(ours.status).toBe(0);
        expect(ours.stdoutBuffer.equals(kernel), 'geomctl reads what the kernel would replay').toBe(true);
        expect(geomctl(['journal', 'check', 'd.img'], { cwd: s.dir }).status).toBe(0);
        // The next round starts from a replayed, CLEAN journal.
        expect(geomctl(['journal', 'sync', 'd.img'], { cwd: s.dir }).status).toBe(0);
      }
    } finally {
      s.cleanup();
    }
  });

  it(`virstor provider: ${ROUNDS} random kills`, async () => {
    const s = scratch('geomctl-serve-crash-');
    try {
      writeFileSync(s.path('stream.bin'), randomBytes(16 * MiB));
      sparseImage(s.path('c0.img'), 64 * MiB);
      sparseImage(s.path('c1.img'), 64 * MiB);
      expect(geomctl(['virstor', 'label', '-s', '256M', '-m', '1M', 'thin', 'c0.img', 'c1.img'], { cwd: s.dir }).status).toBe(0);
      for (let round = 0; round < ROUNDS; round++) {
        const done = await crashOnce(s.dir, 'virstor/thin', round + 11);
        // A write command first rolls back any unfinished map transaction, as the next geomctl command would.
        expect(geomctl(['virstor', 'stop', 'thin'], { cwd: s.dir }).status).toBe(0);
        expect(geomctl(['virstor', 'check', 'thin'], { cwd: s.dir }).status).toBe(0);
        const kernel = ModelKernel.taste(['c0.img', 'c1.img'].map((n) => ({ name: n, data: readFileSync(s.path(n)) }))).readAll();
        judgeSlots(kernel, done);
        const ours = geomctl(['virstor', 'read', 'thin'], { cwd: s.dir });
        expect(ours.stdoutBuffer.equals(kernel), 'geomctl reads what the kernel would').toBe(true);
      }
    } finally {
      s.cleanup();
    }
  });
});
