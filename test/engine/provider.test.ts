// Image providers: files, block devices, memory. Bad inputs must end in one
// GeomError naming the path and what to do; I/O failures in an IoError
// naming path, offset and errno.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeomError, IoError } from '../../src/errors.js';
import { blockDeviceGeometry, openImage, splitDev } from '../../src/provider/file.js';
import { MemoryProvider } from '../sim/memory.js';
import { ImagePool } from '../../src/provider/pool.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'geomctl-provider-'));
  // Traversable by the unprivileged user the permission tests switch to.
  fs.chmodSync(dir, 0o755);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function image(name: string, size: number): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '');
  fs.truncateSync(p, size);
  return p;
}

/** The GeomError `fn` throws (fails the test when it throws something else or nothing). */
function geomErrorOf(fn: () => unknown): GeomError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GeomError);
    return err as GeomError;
  }
  throw new Error('expected a GeomError');
}

const isRoot = process.geteuid?.() === 0;
function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

describe('openImage on image files', () => {
  it('opens a sparse file with its size, 512-byte sectors, name and identity', () => {
    const p = image('ok.img', 1 << 20);
    const prov = openImage(p, { write: true });
    try {
      const st = fs.statSync(p);
      expect(prov.size).toBe(1 << 20);
      expect(prov.mediaSectorSize).toBe(512);
      expect(prov.name).toBe('ok.img');
      expect(prov.path).toBe(p);
      expect(prov.writable).toBe(true);
      expect(prov.identity).toEqual({ dev: st.dev, ino: st.ino });
      expect(prov.fd).toBeGreaterThanOrEqual(0);
    } finally {
      prov.close();
    }
  });

  it('writes and reads back at any offset, durable after the barrier', () => {
    const p = image('rw.img', 64 * 1024);
    const prov = openImage(p, { write: true });
    const data = Buffer.from(Array.from({ length: 1536 }, (_, i) => (i * 7 + 3) & 0xff));
    prov.write(512 * 100, data);
    prov.barrier();
    expect(prov.read(512 * 100, data.length)).toEqual(data);
    const into = Buffer.alloc(512);
    prov.readInto(512 * 101, into);
    expect(into).toEqual(data.subarray(512, 1024));
    prov.close();
    prov.close(); // idempotent
    expect(fs.readFileSync(p).subarray(512 * 100, 512 * 103)).toEqual(data);
    expect(fs.statSync(p).size).toBe(64 * 1024);
  });

  it('refuses reads and writes outside the image without extending it', () => {
    const p = image('bounds.img', 4096);
    const prov = openImage(p, { write: true });
    const read = geomErrorOf(() => prov.read(4096 - 512, 1024));
    expect(read).toBeInstanceOf(IoError);
    expect(read.code).toBe('IO');
    expect(read.message).toBe(`read of ${p} at offset 3584 failed: 1024 bytes would pass the end of the image (4096 bytes)`);
    expect(geomErrorOf(() => prov.write(4096, Buffer.alloc(512))).message).toMatch(/^write of .* at offset 4096 failed/);
    expect(geomErrorOf(() => prov.read(-512, 512)).code).toBe('IO');
    prov.close();
    expect(fs.statSync(p).size).toBe(4096);
  });

  it('a read-only provider refuses writes and reads fine', () => {
    const p = image('ro.img', 4096);
    const prov = openImage(p, { write: false });
    expect(prov.writable).toBe(false);
    expect(prov.read(0, 512)).toEqual(Buffer.alloc(512));
    expect(geomErrorOf(() => prov.write(0, Buffer.alloc(512))).message).toContain('EBADF');
    prov.barrier();
    prov.close();
  });

  it('turns a short read (the file shrank) into an IoError at the missing offset', () => {
    const p = image('shrink.img', 8192);
    const prov = openImage(p, { write: false });
    fs.truncateSync(p, 4096);
    const err = geomErrorOf(() => prov.read(2048, 4096));
    expect(err.message).toBe(`read of ${p} at offset 4096 failed: unexpected end of file`);
    prov.close();
  });

  it('wraps failing system calls in IoError with the errno', () => {
    const p = image('ebadf.img', 4096);
    const prov = openImage(p, { write: true });
    fs.closeSync(prov.fd); // pull the descriptor away underneath it
    expect(geomErrorOf(() => prov.read(512, 512)).message).toBe(`read of ${p} at offset 512 failed: EBADF`);
    expect(geomErrorOf(() => prov.write(1024, Buffer.alloc(512))).message).toBe(`write of ${p} at offset 1024 failed: EBADF`);
    expect(geomErrorOf(() => prov.barrier()).message).toBe(`fsync of ${p} failed: EBADF`);
    expect(geomErrorOf(() => prov.close()).code).toBe('IO');
  });
});

describe('the image pool lends what the file provider can do', () => {
  // The pool's views are what sessions (and so serve) use: a view that drops
  // the thread-pool reads puts every pread of serve back on the event loop.
  it('a session view keeps the thread-pool reads, on the same descriptor', async () => {
    const p = image('lent.img', 64 * 1024);
    const pool = new ImagePool();
    try {
      const view = pool.session(p, true);
      expect(view.readIntoAsync).toBeTypeOf('function');
      view.write(4096, Buffer.alloc(8192, 0xa5));
      const back = Buffer.alloc(8192);
      await view.readIntoAsync?.(4096, back);
      expect(back.equals(Buffer.alloc(8192, 0xa5))).toBe(true);
      view.close();
    } finally {
      pool.closeAll();
    }
  });
});

describe('openImage refuses what is not an image', () => {
  it('a path that does not exist: NOT_FOUND, naming it', () => {
    const p = path.join(dir, 'missing.img');
    for (const write of [false, true]) {
      const err = geomErrorOf(() => openImage(p, { write }));
      expect(err.code).toBe('NOT_FOUND');
      expect(err.message).toBe(`${p}: no such file`);
      expect(err.hint).toContain('truncate -s');
    }
    // A path through a regular file (ENOTDIR) is just as missing.
    const file = image('plain.img', 512);
    expect(geomErrorOf(() => openImage(path.join(file, 'x'), { write: false })).code).toBe('NOT_FOUND');
  });

  it('a directory', () => {
    for (const write of [false, true]) {
      const err = geomErrorOf(() => openImage(dir, { write }));
      expect(err.code).toBe('NOT_IMAGE');
      expect(err.message).toBe(`${dir} is a directory, not an image`);
    }
  });

  it('a FIFO (without blocking on open), a socket, a character device', async () => {
    const fifo = path.join(dir, 'fifo');
    const mk = run('mkfifo', [fifo]);
    expect(mk.ok, mk.out).toBe(true);
    expect(geomErrorOf(() => openImage(fifo, { write: false })).message).toBe(`${fifo} is a FIFO, not an image`);

    const sock = path.join(dir, 'sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      expect(geomErrorOf(() => openImage(sock, { write: true })).message).toBe(`${sock} is a socket, not an image`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }

    const err = geomErrorOf(() => openImage('/dev/null', { write: false }));
    expect(err.code).toBe('NOT_IMAGE');
    expect(err.message).toBe('/dev/null is a character device, not an image');
  });

  it('files smaller than a sector or not a whole number of sectors', () => {
    for (const size of [0, 100, 511]) {
      const p = image(`small-${size}.img`, size);
      const err = geomErrorOf(() => openImage(p, { write: false }));
      expect(err.code).toBe('NOT_IMAGE');
      expect(err.message).toBe(`${p} is too small to be a GEOM provider (${size} bytes; at least one 512-byte sector)`);
    }
    const odd = image('odd.img', 1000);
    const err = geomErrorOf(() => openImage(odd, { write: true }));
    expect(err.code).toBe('NOT_IMAGE');
    expect(err.message).toBe(`${odd} is not a whole number of 512-byte sectors (1000 bytes)`);
    expect(openImage(image('one-sector.img', 512), { write: false }).size).toBe(512);
  });
});

describe('openImage without permission', () => {
  /** Runs `fn` as nobody when root (root bypasses file modes), as ourselves otherwise. */
  function unprivileged<T>(fn: () => T): T {
    if (!isRoot) return fn();
    const { seteuid } = process;
    if (!seteuid) throw new Error('running as root without process.seteuid: cannot drop privileges');
    seteuid(65534);
    try {
      return fn();
    } finally {
      seteuid(0);
    }
  }

  it('no read permission, no write permission: PERMISSION naming the purpose', () => {
    const unreadable = image('unreadable.img', 4096);
    fs.chmodSync(unreadable, 0o000);
    const r = unprivileged(() => geomErrorOf(() => openImage(unreadable, { write: false })));
    expect(r.code).toBe('PERMISSION');
    expect(r.message).toBe(`${unreadable}: permission denied (opened for reading)`);
    expect(r.hint).toBe('check its mode or run as its owner');

    const readOnly = image('readonly.img', 4096);
    fs.chmodSync(readOnly, 0o444);
    const w = unprivileged(() => geomErrorOf(() => openImage(readOnly, { write: true })));
    expect(w.code).toBe('PERMISSION');
    expect(w.message).toBe(`${readOnly}: permission denied (opened for writing)`);
    // Reading it is fine.
    unprivileged(() => openImage(readOnly, { write: false }).close());
  });

  it('an immutable file refuses writing even to root (chattr +i)', (ctx) => {
    const p = image('immutable.img', 4096);
    const set = run('chattr', ['+i', p]);
    if (!set.ok) ctx.skip(`chattr +i is not available here: ${set.out}`);
    try {
      const err = geomErrorOf(() => openImage(p, { write: true }));
      expect(err.code).toBe('PERMISSION');
      expect(err.message).toBe(`${p}: operation not permitted (opened for writing)`);
      expect(err.hint).toContain('chattr -i');
    } finally {
      run('chattr', ['-i', p]);
    }
  });

  it('an image on a read-only mount refuses writing even to root', (ctx) => {
    const src = fs.mkdtempSync(path.join(dir, 'bind-src-'));
    const mnt = fs.mkdtempSync(path.join(dir, 'bind-ro-'));
    fs.writeFileSync(path.join(src, 'disk.img'), Buffer.alloc(4096));
    const bind = run('mount', ['--bind', src, mnt]);
    if (!bind.ok) ctx.skip(`cannot bind-mount here (needs root and mount rights): ${bind.out}`);
    try {
      const ro = run('mount', ['-o', 'remount,ro,bind', mnt]);
      expect(ro.ok, ro.out).toBe(true);
      const p = path.join(mnt, 'disk.img');
      const err = geomErrorOf(() => openImage(p, { write: true }));
      expect(err.code).toBe('PERMISSION');
      expect(err.message).toBe(`${p}: read-only file system (opened for writing)`);
      openImage(p, { write: false }).close();
    } finally {
      run('umount', [mnt]);
    }
  });
});

/** makedev(3) for Linux's dev_t layout. */
function makedev(major: number, minor: number): number {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return Number((mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n));
}

describe('block device geometry from sysfs', () => {
  it('splitDev inverts makedev, small and large numbers', () => {
    for (const [major, minor] of [[7, 0], [8, 17], [254, 0], [259, 1_000_000], [4095, 255], [5000, 70000]] as const) {
      expect(splitDev(makedev(major, minor))).toEqual({ major, minor });
    }
    expect(splitDev(fs.statSync(dir).dev)).toEqual(expect.objectContaining({ major: expect.any(Number) }));
  });

  /** A fake /sys with a whole disk (loop3, 512) and a partition of a 4K disk (sdb1). */
  function fakeSysfs(): string {
    const root = fs.mkdtempSync(path.join(dir, 'sysfs-'));
    const put = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), text);
    };
    put('devices/virtual/block/loop3/size', '2048\n');
    put('devices/virtual/block/loop3/queue/logical_block_size', '512\n');
    put('devices/pci0000:00/block/sdb/size', '16384\n');
    put('devices/pci0000:00/block/sdb/queue/logical_block_size', '4096\n');
    put('devices/pci0000:00/block/sdb/sdb1/size', '8192\n');
    put('devices/pci0000:00/block/sdb/sdb1/partition', '1\n');
    put('devices/virtual/block/odd0/size', '8\n');
    put('devices/virtual/block/odd0/queue/logical_block_size', '1000\n');
    fs.mkdirSync(path.join(root, 'dev/block'), { recursive: true });
    fs.symlinkSync('../../devices/virtual/block/loop3', path.join(root, 'dev/block/7:3'));
    fs.symlinkSync('../../devices/pci0000:00/block/sdb/sdb1', path.join(root, 'dev/block/8:17'));
    fs.symlinkSync('../../devices/virtual/block/odd0', path.join(root, 'dev/block/9:0'));
    return root;
  }

  it('reads size (512-byte units) and the logical block size, the disk\'s for a partition', () => {
    const root = fakeSysfs();
    expect(blockDeviceGeometry(makedev(7, 3), root)).toEqual({ name: 'loop3', size: 2048 * 512, sectorSize: 512 });
    expect(blockDeviceGeometry(makedev(8, 17), root)).toEqual({ name: 'sdb1', size: 8192 * 512, sectorSize: 4096 });
  });

  it('is undefined for unknown devices, missing sysfs and impossible sector sizes', () => {
    const root = fakeSysfs();
    expect(blockDeviceGeometry(makedev(7, 4), root)).toBeUndefined();
    expect(blockDeviceGeometry(makedev(7, 3), path.join(root, 'nowhere'))).toBeUndefined();
    expect(blockDeviceGeometry(makedev(9, 0), root)).toBeUndefined();
  });

  /** Attaches a loop device over a fresh image file; skips without root or losetup. */
  function withLoop(ctx: { skip: (note?: string) => never }, args: string[], fn: (dev: string, backing: string) => void): void {
    if (!isRoot) ctx.skip('loop devices need root');
    const backing = image(`loop-${args.join('')}.img`, 1 << 20);
    const attach = run('losetup', ['-f', '--show', ...args, backing]);
    if (!attach.ok) ctx.skip(`cannot attach a loop device here: ${attach.out}`);
    try {
      fn(attach.out, backing);
    } finally {
      run('losetup', ['-d', attach.out]);
    }
  }

  it('opens a real loop device: size, sector size, I/O through it', (ctx) => {
    withLoop(ctx, [], (dev, backing) => {
      const prov = openImage(dev, { write: true });
      try {
        expect(prov.size).toBe(1 << 20);
        expect(prov.mediaSectorSize).toBe(512);
        expect(prov.name).toBe(path.basename(dev));
        const data = Buffer.alloc(512, 0x5a);
        prov.write(512 * 7, data);
        prov.barrier();
        expect(prov.read(512 * 7, 512)).toEqual(data);
      } finally {
        prov.close();
      }
      expect(fs.readFileSync(backing).subarray(512 * 7, 512 * 8)).toEqual(Buffer.alloc(512, 0x5a));
    });
  });

  it('a 4K loop device has 4096-byte media sectors', (ctx) => {
    withLoop(ctx, ['-b', '4096'], (dev) => {
      const prov = openImage(dev, { write: false });
      expect(prov.mediaSectorSize).toBe(4096);
      expect(prov.size).toBe(1 << 20);
      prov.close();
    });
  });

  it('a block device held exclusively elsewhere is refused for writing', (ctx) => {
    withLoop(ctx, [], (dev) => {
      const holder = fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_EXCL);
      try {
        const err = geomErrorOf(() => openImage(dev, { write: true }));
        expect(err.code).toBe('LOCKED');
        expect(err.message).toBe(`${dev} is in use by the system (mounted or held by another driver)`);
        openImage(dev, { write: false }).close(); // reading needs no exclusivity
      } finally {
        fs.closeSync(holder);
      }
    });
  });
});

describe('MemoryProvider', () => {
  it('reads and writes its live buffer with the file provider\'s checks', () => {
    const data = Buffer.alloc(4096);
    const prov = new MemoryProvider('/x/mem.img', data, { mediaSectorSize: 4096, ino: 42 });
    expect(prov.name).toBe('mem.img');
    expect(prov.size).toBe(4096);
    expect(prov.mediaSectorSize).toBe(4096);
    expect(prov.identity).toEqual({ dev: 0, ino: 42 });
    prov.write(100, Buffer.from('abc'));
    expect(data.subarray(100, 103).toString()).toBe('abc');
    const copy = prov.read(100, 3);
    copy[0] = 0; // a copy, not a view
    expect(data[100]).toBe(0x61);
    expect(geomErrorOf(() => prov.read(4000, 200)).code).toBe('IO');
    expect(geomErrorOf(() => prov.write(4095, Buffer.alloc(2))).code).toBe('IO');
    prov.close();
    expect(geomErrorOf(() => prov.read(0, 1)).message).toBe('read of /x/mem.img at offset 0 failed: EBADF (closed)');
  });

  it('distinct providers get distinct identities; read-only ones refuse writes', () => {
    const a = new MemoryProvider('a', Buffer.alloc(512));
    const b = new MemoryProvider('b', Buffer.alloc(512), { writable: false });
    expect(a.identity.ino).not.toBe(b.identity.ino);
    expect(geomErrorOf(() => b.write(0, Buffer.alloc(1))).code).toBe('IO');
  });
});
