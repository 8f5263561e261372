// geomctl serve with real NBD clients (serve.md, "Tests with real clients"):
// nbdinfo, nbdcopy, qemu-img and qemu-io against image, journal and virstor
// providers, captive mode, hostile clients and kill -9 under load. The tools
// come from libnbd-bin and qemu-utils; without them the tests skip, except
// under CI=true, where a missing tool fails naming its package.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { geomctl, scratch, sha256, sparseImage } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tool } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const clients = [tool('nbdinfo'), tool('nbdcopy'), tool('nbddump'), tool('qemu-img'), tool('qemu-io')].every(Boolean);

function sh(cmd: string, cwd: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('sh', ['-c', cmd], { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(cmd: string, cwd: string): string {
  const r = sh(cmd, cwd);
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(!clients)('geomctl serve with real NBD clients', () => {
  let s: ReturnType<typeof scratch>;
  let served: Served | undefined;
  beforeEach(() => {
    s = scratch('geomctl-serve-');
    sparseImage(s.path('c0.img'), 64 * MiB);
    sparseImage(s.path('c1.img'), 64 * MiB);
    expect(geomctl(['virstor', 'label', '-s', '1G', '-m', '4M', 'thin', 'c0.img', 'c1.img'], { cwd: s.dir }).status).toBe(0);
  });
  afterEach(async () => {
    await served?.stop('SIGKILL');
    served = undefined;
    s.cleanup();
  });

  it('nbdinfo shows the size, block sizes, the export name, --list and a --map that follows the virstor map', async () => {
    writeFileSync(s.path('four.bin'), randomBytes(4 * MiB));
    expect(geomctl(['virstor', 'write', '-o', '100M', '-i', 'four.bin', 'thin'], { cwd: s.dir }).status).toBe(0);
    served = await startServe(s.dir, ['virstor/thin'], 'virstor/thin');
    const info = JSON.parse(ok(`nbdinfo --json '${served.uri}'`, s.dir));
    const exp = info.exports[0];
    expect(exp['export-name']).toBe('virstor/thin');
    expect(exp['export-size']).toBe(1024 * MiB);
    expect(exp['block_size_minimum']).toBe(512);
    expect(exp['block_size_maximum']).toBe(32 * MiB);
    expect(exp['can_flush']).toBe(true);
    expect(exp['can_multi_conn']).toBe(true);
    expect(ok(`nbdinfo --list '${served.uri}'`, s.dir)).toContain('export="virstor/thin"');
    const map = ok(`nbdinfo --map --totals '${served.uri}'`, s.dir);
    // 4 MiB allocated (one chunk) out of 1 GiB: the rest is hole,zero.
    expect(map).toMatch(/^\s*4194304\s+0\.4%\s+0\s+data/m);
    expect(ok(`nbdinfo --map '${served.uri}'`, s.dir)).toMatch(/104857600\s+4194304\s+0\s+data/);
    const stop = await served.stop();
    expect(stop.status).toBe(0);
  });

  it('nbdcopy writes with four connections and reads back; the clean stop leaves check passing', async () => {
    const data = randomBytes(24 * MiB);
    writeFileSync(s.path('in.bin'), data);
    served = await startServe(s.dir, ['virstor/thin'], 'virstor/thin');
    ok(`nbdcopy --flush in.bin '${served.uri}'`, s.dir);
    ok(`nbdcopy '${served.uri}' out.bin`, s.dir);
    expect(readFileSync(s.path('out.bin')).subarray(0, data.length).equals(data)).toBe(true);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    expect(geomctl(['virstor', 'check', 'thin'], { cwd: s.dir }).status).toBe(0);
    const back = geomctl(['virstor', 'read', '-l', String(data.length), 'thin'], { cwd: s.dir });
    expect(back.stdoutBuffer.equals(data)).toBe(true);
  });

  it('qemu-img converts a qcow2 straight into a virstor device; compare, map and info agree', async () => {
    writeFileSync(s.path('disk.raw'), Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(8 * MiB), randomBytes(MiB)]));
    ok('qemu-img convert -f raw -O qcow2 disk.raw disk.qcow2', s.dir);
    served = await startServe(s.dir, ['virstor/thin'], 'virstor/thin');
    ok(`qemu-img convert -n -f qcow2 -O raw disk.qcow2 '${served.uri}'`, s.dir);
    // compare wants equal sizes: the device is 1 GiB, so compare the first 11 MiB through qemu-io's view.
    ok(`truncate -s 1G big.raw && dd if=disk.raw of=big.raw conv=notrunc status=none`, s.dir);
    expect(ok(`qemu-img compare -f raw -F raw big.raw '${served.uri}'`, s.dir)).toContain('identical');
    expect(ok(`qemu-img info '${served.uri}'`, s.dir)).toContain('1 GiB');
    const map = JSON.parse(ok(`qemu-img map --output=json -f raw '${served.uri}'`, s.dir)) as { start: number; length: number; data: boolean }[];
    // The all-zero middle was never allocated (qemu-img writes zeros as WRITE_ZEROES or skips them).
    expect(map.some((e) => !e.data && e.start <= 4 * MiB && e.start + e.length >= 8 * MiB)).toBe(true);
    expect((await served.stop()).status).toBe(0);
  });

  it('qemu-io aligned and unaligned reads, writes, zero writes and flushes match a model', async () => {
    served = await startServe(s.dir, ['virstor/thin'], 'virstor/thin');
    const model = Buffer.alloc(16 * MiB);
    const ops: string[] = [];
    const write = (pattern: number, off: number, len: number): void => {
      ops.push(`write -P ${pattern} ${off} ${len}`);
      model.fill(pattern, off, off + len);
    };
    write(0xab, 0, 65536);
    write(0xcd, 1000, 3000);
    write(0x11, 4 * MiB - 700, 1500);
    ops.push('flush');
    ops.push(`write -z ${2048 + 512} ${8192}`);
    model.fill(0, 2560, 2560 + 8192);
    write(0x5a, 9 * MiB + 1, 511);
    ops.push(`read -P 0xcd 1000 1000`);
    const cmd = `qemu-io -f raw ${ops.map((o) => `-c '${o}'`).join(' ')} '${served.uri}'`;
    ok(cmd, s.dir);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    const back = geomctl(['virstor', 'read', '-l', String(model.length), 'thin'], { cwd: s.dir });
    expect(back.status).toBe(0);
    expect(back.stdoutBuffer.equals(model)).toBe(true);
    expect(geomctl(['virstor', 'check', 'thin'], { cwd: s.dir }).status).toBe(0);
  });

  it('serves a journal provider: writes go through the journal, SIGTERM leaves it CLEAN with the data in place', async () => {
    sparseImage(s.path('d.img'), 256 * MiB);
    expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
    const data = randomBytes(12 * MiB);
    writeFileSync(s.path('in.bin'), data);
    served = await startServe(s.dir, ['d.img.journal'], 'd.img.journal');
    ok(`nbdcopy --flush in.bin '${served.uri}'`, s.dir);
    ok(`nbdcopy '${served.uri}' out.bin`, s.dir);
    expect(readFileSync(s.path('out.bin')).subarray(0, data.length).equals(data)).toBe(true);
    // base:allocation: what was written (in the data area or still in a journal) is data, the rest holes.
    const map = ok(`nbdinfo --map '${served.uri}'`, s.dir);
    expect(map).toMatch(new RegExp(`^\\s*0\\s+${data.length}\\s+0\\s+data`, 'm'));
    expect(map).toMatch(new RegExp(`^\\s*${data.length}\\s+\\d+\\s+3\\s+hole,zero`, 'm'));
    expect((await served.stop('SIGTERM')).status).toBe(0);
    served = undefined;
    const st = geomctl(['--json', 'journal', 'status', 'd.img'], { cwd: s.dir });
    expect(st.stdout).toContain('CLEAN');
    // CLEAN: the data area itself holds the bytes.
    expect(readFileSync(s.path('d.img')).subarray(0, data.length).equals(data)).toBe(true);
  });

  it('a journal provider borrows the payload buffers: 24 MiB of overlapping writes, aligned and not, read back and land as written', async () => {
    // The provider borrows 20 MiB (20 records of maxphys) between settles: 24 MiB
    // of writes reuse payload buffers while the queue still holds some. qemu-io
    // in writeback mode: its default, writethrough, flushes after every write.
    sparseImage(s.path('d.img'), 256 * MiB);
    expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
    served = await startServe(s.dir, ['d.img.journal'], 'd.img.journal');
    const model = Buffer.alloc(16 * MiB);
    const ops: string[] = [];
    for (let i = 0; i < 64; i++) {
      const pattern = (i % 250) + 1;
      // Some overlap an earlier one; every fifth starts mid-sector.
      const off = ((i * 7) % 40) * 320 * 1024 + (i % 5 === 4 ? 700 : 0);
      const len = 384 * 1024;
      ops.push(`write -P ${pattern} ${off} ${len}`);
      model.fill(pattern, off, off + len);
      if (i === 30) ops.push('flush');
    }
    ok(`qemu-io -t writeback -f raw ${ops.map((o) => `-c '${o}'`).join(' ')} '${served.uri}'`, s.dir);
    // Read back while served: from the queue, the journals and the data area.
    ok(`nbdcopy '${served.uri}' out.bin`, s.dir);
    expect(readFileSync(s.path('out.bin')).subarray(0, model.length).equals(model)).toBe(true);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    expect(geomctl(['journal', 'status', 'd.img'], { cwd: s.dir }).stdout).toMatch(/CLEAN/);
    expect(readFileSync(s.path('d.img')).subarray(0, model.length).equals(model)).toBe(true);
  });

  it('serves a stacked provider: nbdcopy into virstor/thin.journal, nbddump and nbdcopy read it back, the stop leaves both layers clean', async () => {
    expect(geomctl(['journal', 'label', '-s', '100M', 'virstor/thin'], { cwd: s.dir }).status).toBe(0);
    const data = randomBytes(6 * MiB);
    writeFileSync(s.path('in.bin'), data);
    served = await startServe(s.dir, ['virstor/thin.journal'], 'virstor/thin.journal');
    ok(`nbdcopy --flush in.bin '${served.uri}'`, s.dir);
    // nbddump: the first line is the first 16 bytes, as hexdump -C would show them.
    const first = [...data.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    expect(ok(`nbddump '${served.uri}' | head -1`, s.dir)).toContain(`0000000000: ${first}`);
    ok(`nbdcopy '${served.uri}' out.bin`, s.dir);
    expect(readFileSync(s.path('out.bin')).subarray(0, data.length).equals(data)).toBe(true);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    expect(geomctl(['journal', 'status', 'virstor/thin'], { cwd: s.dir }).stdout).toMatch(/CLEAN/);
    expect(geomctl(['virstor', 'check', 'thin'], { cwd: s.dir }).status).toBe(0);
    // The journal copied everything into virstor/thin itself.
    expect(geomctl(['virstor', 'read', '-l', String(data.length), 'thin'], { cwd: s.dir }).stdoutBuffer.equals(data)).toBe(true);
  });

  it('SIGTERM under load is a clean stop: exit 0, the journal CLEAN, check passing', async () => {
    sparseImage(s.path('d.img'), 256 * MiB);
    expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
    writeFileSync(s.path('in.bin'), randomBytes(16 * MiB));
    served = await startServe(s.dir, ['d.img.journal'], 'd.img.journal');
    const load = spawn('sh', ['-c', `qemu-io -f raw -c 'write -s in.bin 0 ${16 * MiB}' '${served.uri}'`], { cwd: s.dir, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const stop = await served.stop('SIGTERM');
    served = undefined;
    await new Promise((r) => (load.exitCode !== null ? r(undefined) : load.on('exit', r)));
    expect(stop.status).toBe(0);
    expect(geomctl(['journal', 'status', 'd.img'], { cwd: s.dir }).stdout).toMatch(/CLEAN/);
    expect(geomctl(['journal', 'check', 'd.img'], { cwd: s.dir }).status).toBe(0);
  });

  it('serves TCP on 127.0.0.1 with -p (0: any free port), reported by --json', () => {
    const r = geomctl(['--json', 'serve', '-p', '0', '--run', 'nbdinfo --size "$uri" >&2; echo "$port" >&2', 'virstor/thin'], { cwd: s.dir });
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.uri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/virstor\/thin$/);
    expect(doc.port).toBeGreaterThan(0);
    expect(r.stderr).toContain(String(1024 * MiB));
    expect(r.stderr).toContain(String(doc.port));
  });

  it('--once stops after the first client disconnects', async () => {
    served = await startServe(s.dir, ['--once', 'virstor/thin'], 'virstor/thin');
    expect(ok(`nbdinfo --size '${served.uri}'`, s.dir).trim()).toBe(String(1024 * MiB));
    const exited = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 10_000);
      served?.child.on('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      if (served?.child.exitCode !== null) resolve(served?.child.exitCode ?? null);
    });
    expect(exited).toBe(0);
    served = undefined;
  });

  it('an image served -r refuses writes and stays unchanged', async () => {
    sparseImage(s.path('plain.img'), 8 * MiB, randomBytes(MiB));
    const before = sha256(s.path('plain.img'));
    served = await startServe(s.dir, ['-r', 'plain.img'], 'plain.img');
    const info = JSON.parse(ok(`nbdinfo --json '${served.uri}'`, s.dir));
    expect(info.exports[0]['is_read_only']).toBe(true);
    expect(sh(`qemu-io -f raw -c 'write -P 1 0 512' '${served.uri}'`, s.dir).status).not.toBe(0);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    expect(sha256(s.path('plain.img'))).toBe(before);
  });

  it('--run is captive: it sets $uri, stops when the command exits, and exits with its status', () => {
    const r = geomctl(['serve', '--run', 'nbdinfo --size "$uri"; exit 3', 'virstor/thin'], { cwd: s.dir });
    expect(r.stdout.trim()).toBe(String(1024 * MiB));
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^geomctl: serving virstor\/thin \(1\.0G\) at nbd\+unix:\/\/\/virstor\/thin\?socket=/);
    const good = geomctl(['serve', '--run', 'nbdinfo --size "$uri"', 'virstor/thin'], { cwd: s.dir });
    expect(good.status).toBe(0);
  });

  it('hostile clients do not stop the server nor leak descriptors or memory', async () => {
    served = await startServe(s.dir, ['virstor/thin'], 'virstor/thin');
    ok(`nbdinfo --size '${served.uri}'`, s.dir);
    const fdsBefore = served.fds();
    const rssBefore = served.rssKiB();
    const socketPath = served.socket;
    const talk = (bytes: Buffer): Promise<void> =>
      new Promise((resolve) => {
        const c = connect(socketPath);
        c.on('error', () => resolve());
        c.on('connect', () => {
          c.write(bytes);
          setTimeout(() => {
            c.destroy();
            resolve();
          }, 5);
        });
      });
    const hello = Buffer.from('0000000349484156454f50540000000700000000', 'hex'); // flags, then a truncated GO
    for (let i = 0; i < 300; i++) await talk(i % 3 === 0 ? randomBytes(64) : i % 3 === 1 ? Buffer.alloc(0) : hello);
    // After a complete handshake: a bad magic, an unknown command, an oversized write.
    const afterGo = (tail: Buffer): Promise<Buffer> =>
      new Promise((resolve) => {
        const c = connect(socketPath);
        const got: Buffer[] = [];
        c.on('data', (d) => got.push(d));
        c.on('close', () => resolve(Buffer.concat(got)));
        c.on('error', () => resolve(Buffer.concat(got)));
        const go = Buffer.from('00000003' + '49484156454f5054' + '00000007' + '00000006' + '00000000' + '0000', 'hex');
        c.write(Buffer.concat([go, tail]));
        setTimeout(() => c.destroy(), 300);
      });
    const unknown = Buffer.from('25609513' + '0000' + '0063' + '0102030405060708' + '0000000000000000' + '00000200', 'hex');
    const replies = await afterGo(unknown);
    // The unknown command gets EINVAL (22) in a simple reply, and the connection stays usable.
    expect(replies.includes(Buffer.from('67446698000000160102030405060708', 'hex'))).toBe(true);
    const oversized = Buffer.from('25609513' + '0000' + '0001' + '0102030405060708' + '0000000000000000' + '04000000', 'hex');
    await afterGo(Buffer.concat([oversized, Buffer.alloc(1 << 20)]));
    await afterGo(Buffer.from('deadbeef'.repeat(7), 'hex'));
    await new Promise((r) => setTimeout(r, 200));
    expect(ok(`nbdinfo --size '${served.uri}'`, s.dir).trim()).toBe(String(1024 * MiB));
    expect(served.fds()).toBeLessThanOrEqual(fdsBefore);
    expect(served.rssKiB() - rssBefore).toBeLessThan(64 * 1024);
    expect((await served.stop()).status).toBe(0);
    served = undefined;
    expect(geomctl(['virstor', 'check', 'thin'], { cwd: s.dir }).status).toBe(0);
  });

  it('kill -9 after flushed writes: check passes and every flushed write reads back', async () => {
    sparseImage(s.path('d.img'), 256 * MiB);
    expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
    for (const [name, target] of [
      ['virstor/thin', ['virstor', 'thin']],
      ['d.img.journal', ['journal', 'd.img']],
    ] as const) {
      served = await startServe(s.dir, [name], name);
      ok(`qemu-io -f raw -c 'write -P 0x41 0 1M' -c flush -c 'write -P 0x42 5M 1M' -c flush -c 'write -P 0x43 9M 1M' '${served.uri}'`, s.dir);
      await served.stop('SIGKILL');
      served = undefined;
      const [cls, dev] = target;
      if (cls === 'virstor') expect(geomctl(['virstor', 'check', dev], { cwd: s.dir }).status).toBe(0);
      else expect(geomctl(['journal', 'check', dev], { cwd: s.dir }).status).toBe(0);
      const read = geomctl([cls, 'read', '-l', String(10 * MiB), dev], { cwd: s.dir });
      expect(read.status).toBe(0);
      expect(read.stdoutBuffer.subarray(0, MiB).every((b) => b === 0x41)).toBe(true);
      expect(read.stdoutBuffer.subarray(5 * MiB, 6 * MiB).every((b) => b === 0x42)).toBe(true);
      // The unflushed write is all there or not at all (one write, one journal record / one chunk's data).
      const c = read.stdoutBuffer.subarray(9 * MiB, 10 * MiB);
      expect(c.every((b) => b === 0x43) || c.every((b) => b === 0)).toBe(true);
    }
  });
});

describe('geomctl serve: usage errors before anything is opened or served', () => {
  it.each([['a/b'], ['..'], ['bad\nname']])('-e %j is refused as a device name would be (exit 2)', (name) => {
    const r = geomctl(['serve', '-e', name, '--run', 'true', 'nothing.img']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^geomctl: invalid export name \(-e\) /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a provider that is neither a file nor a geom is named, exit 1', () => {
    const s = scratch('geomctl-serve-');
    try {
      const r = geomctl(['serve', '--run', 'true', 'nothere.img'], { cwd: s.dir });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('nothere.img');
      expect(r.stderr).not.toContain('serving');
    } finally {
      s.cleanup();
    }
  });
});
