// Image files and (Linux) block devices as GEOM providers. Every failure a
// user can cause — a wrong path, a directory, a file too small to hold a
// sector, missing permissions — becomes a one-line GeomError naming the path
// and what to do (cli.md, "Exit status and messages"); every failed read,
// write or fsync becomes an IoError naming the path, offset and errno, which
// is what makes the flush engine go critical (flush-engine.md, "Errors").

import fs from 'node:fs';
import nodePath from 'node:path';
import { fsExt } from '../platform/fs-ext.js';
import { GeomError, IoError, errnoOf } from '../errors.js';
import { checkBounds } from './bounds.js';
import { readDataRegions, seekDataRegions } from './holes.js';
import type { Provider, ProviderIdentity } from './provider.js';
import { Writeback } from './writeback.js';
import { readFully } from '../util/read-fully.js';

export interface OpenImageOptions {
  write: boolean;
}

/** What sysfs says about a block device. */
export interface BlockGeometry {
  /** The kernel's name for it (loop0, sda1). */
  name: string;
  size: number;
  /** queue/logical_block_size: the medium's sector size. */
  sectorSize: number;
}

/** An image file's sector: files have no sector size of their own, GEOM's md(4) uses 512. */
const FILE_SECTOR = 512;
/** fs.writeSync refuses lengths of 2 GiB and more; bigger requests loop (reads: util/read-fully.ts). */
const MAX_CHUNK = 1 << 30;

/** Splits a Linux dev_t (st_dev, st_rdev) into major and minor, as glibc's major()/minor(). */
export function splitDev(dev: number): { major: number; minor: number } {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

function readSysfsNumber(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'latin1').trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A block device's size and logical sector size from sysfs (Node has no
 * BLKGETSIZE64 ioctl). /sys/dev/block/MAJ:MIN links to the device's directory
 * (the same one /sys/class/block/<name> links to); `size` there counts
 * 512-byte units whatever the sector size. A partition has no queue/ of its
 * own: its disk, the parent directory, has. Undefined when sysfs does not
 * know the device (not Linux, sysfs not mounted).
 */
export function blockDeviceGeometry(rdev: number, sysfsRoot = '/sys'): BlockGeometry | undefined {
  const { major, minor } = splitDev(rdev);
  let dir: string;
  try {
    dir = fs.realpathSync(nodePath.join(sysfsRoot, 'dev', 'block', `${major}:${minor}`));
  } catch {
    return undefined;
  }
  const units = readSysfsNumber(nodePath.join(dir, 'size'));
  const queueDir = fs.existsSync(nodePath.join(dir, 'partition')) ? nodePath.dirname(dir) : dir;
  const sectorSize = readSysfsNumber(nodePath.join(queueDir, 'queue', 'logical_block_size'));
  if (units === undefined || sectorSize === undefined) return undefined;
  // A sector size that is not a power of two of at least 512 is not one GEOM could use.
  if (sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0) return undefined;
  return { name: nodePath.basename(dir), size: units * 512, sectorSize };
}

type Kind = 'file' | 'block';

/** Regular files and block devices are images; anything else is refused by name. */
function kindOf(path: string, st: fs.Stats): Kind {
  if (st.isFile()) return 'file';
  if (st.isBlockDevice()) return 'block';
  const what = st.isDirectory()
    ? 'a directory'
    : st.isFIFO()
      ? 'a FIFO'
      : st.isSocket()
        ? 'a socket'
        : st.isCharacterDevice()
          ? 'a character device'
          : 'not a regular file';
  throw new GeomError('NOT_IMAGE', `${path} is ${what}, not an image`, 'name an image file or a block device');
}

/** Turns a failed stat or open into the message a user can act on. */
function openError(path: string, err: unknown, write: boolean): GeomError {
  const errno = errnoOf(err);
  const purpose = `opened for ${write ? 'writing' : 'reading'}`;
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new GeomError('NOT_FOUND', `${path}: no such file`, `check the path, or create the image first (e.g. 'truncate -s 64M ${path}')`);
    case 'EISDIR':
      return new GeomError('NOT_IMAGE', `${path} is a directory, not an image`, 'name an image file or a block device');
    case 'EACCES':
      return new GeomError('PERMISSION', `${path}: permission denied (${purpose})`, 'check its mode or run as its owner');
    case 'EPERM':
      return new GeomError('PERMISSION', `${path}: operation not permitted (${purpose})`, "check its mode and attributes ('lsattr'; an immutable file needs 'chattr -i')");
    case 'EROFS':
      return new GeomError('PERMISSION', `${path}: read-only file system (${purpose})`, 'copy the image to a writable file system or remount it read-write');
    case 'EBUSY':
      // O_EXCL on a Linux block device: mounted, or held by another driver.
      return new GeomError('LOCKED', `${path} is in use by the system (mounted or held by another driver)`, 'unmount or release it first');
    default:
      return new IoError(path, 'open', undefined, errno);
  }
}

export class FileProvider implements Provider {
  readonly name: string;
  private closed = false;
  /** Starts writing dirty pages back while geomctl goes on (provider/writeback.ts). */
  private readonly writeback: Writeback;
  /** What goes with the descriptor (a lock file, lock.ts). */
  private readonly closers: (() => void)[] = [];

  constructor(
    readonly path: string,
    /** The open file descriptor; lock.ts flocks it (or makes a lock file for its device and inode). */
    readonly fd: number,
    readonly size: number,
    readonly mediaSectorSize: number,
    readonly writable: boolean,
    readonly identity: ProviderIdentity,
  ) {
    this.name = nodePath.basename(path);
    this.writeback = new Writeback(path, identity);
  }

  read(offset: number, length: number): Buffer {
    const target = Buffer.allocUnsafe(length);
    this.readInto(offset, target);
    return target;
  }

  readInto(offset: number, target: Buffer): void {
    checkBounds(this.path, 'read', offset, target.length, this.size);
    const n = readFully(this.fd, target, offset, this.path);
    // The size was checked above, so a short read means the file shrank under us.
    if (n < target.length) throw new IoError(this.path, 'read', offset + n, 'unexpected end of file', 'the image shrank while geomctl was using it');
  }

  readIntoAsync(offset: number, target: Buffer): Promise<void> {
    checkBounds(this.path, 'read', offset, target.length, this.size);
    return new Promise((resolve, reject) => {
      const next = (done: number): void => {
        if (done === target.length) return resolve();
        fs.read(this.fd, target, done, Math.min(target.length - done, MAX_CHUNK), offset + done, (err, n) => {
          if (err) reject(new IoError(this.path, 'read', offset + done, errnoOf(err)));
          else if (n === 0) reject(new IoError(this.path, 'read', offset + done, 'unexpected end of file', 'the image shrank while geomctl was using it'));
          else next(done + n);
        });
      };
      next(0);
    });
  }

  /**
   * SEEK_DATA/SEEK_HOLE on the descriptor (provider/holes.ts); pread/pwrite
   * ignore the file position it moves. Without fs-ext there is no lseek: the
   * holes are found by reading the range (blocks of zeros).
   */
  dataRegions(offset: number, length: number): Iterable<readonly [number, number]> {
    const native = fsExt();
    // Past the end of the image there is no data, as SEEK_DATA would say.
    if (!native) return readDataRegions((at, target) => this.readInto(at, target), offset, Math.max(0, Math.min(length, this.size - offset)));
    return seekDataRegions((at, whence) => native.seekSync(this.fd, at, whence), offset, length);
  }

  write(offset: number, data: Buffer): void {
    if (!this.writable) throw new IoError(this.path, 'write', offset, 'EBADF (opened read-only)');
    checkBounds(this.path, 'write', offset, data.length, this.size);
    let done = 0;
    while (done < data.length) {
      try {
        done += fs.writeSync(this.fd, data, done, Math.min(data.length - done, MAX_CHUNK), offset + done);
      } catch (err) {
        throw new IoError(this.path, 'write', offset + done, errnoOf(err));
      }
    }
    this.writeback.wrote(data.length);
  }

  barrier(): void {
    // Nothing was written through a read-only descriptor: nothing to make durable.
    if (!this.writable) return;
    try {
      fs.fsyncSync(this.fd);
    } catch (err) {
      throw new IoError(this.path, 'fsync', undefined, errnoOf(err));
    }
    this.writeback.synced();
  }

  onClose(release: () => void): void {
    this.closers.push(release);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.writeback.close();
    try {
      fs.closeSync(this.fd);
    } catch (err) {
      throw new IoError(this.path, 'close', undefined, errnoOf(err));
    } finally {
      for (const release of this.closers.splice(0)) release();
    }
  }
}

/**
 * Opens an image file or a Linux block device as a provider, read-only or
 * read-write. The type is checked with stat(2) before open(2) (opening a FIFO
 * would block) and again on the open descriptor (the path may have changed
 * in between). A block device opened for writing gets O_EXCL, which Linux
 * refuses for a mounted device.
 */
export function openImage(path: string, opts: OpenImageOptions): FileProvider {
  let kind: Kind;
  try {
    kind = kindOf(path, fs.statSync(path));
  } catch (err) {
    throw err instanceof GeomError ? err : openError(path, err, opts.write);
  }
  const { O_RDONLY, O_RDWR, O_EXCL } = fs.constants;
  const flags = opts.write ? O_RDWR | (kind === 'block' ? O_EXCL : 0) : O_RDONLY;
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (err) {
    throw openError(path, err, opts.write);
  }
  try {
    const st = fs.fstatSync(fd);
    kind = kindOf(path, st);
    let size = st.size;
    let sectorSize = FILE_SECTOR;
    if (kind === 'block') {
      const geometry = blockDeviceGeometry(st.rdev);
      if (!geometry) {
        throw new GeomError('NOT_IMAGE', `${path} is a block device whose size geomctl cannot read`, 'block devices are supported on Linux with /sys mounted; use an image file');
      }
      size = geometry.size;
      sectorSize = geometry.sectorSize;
    }
    if (size < sectorSize) {
      throw new GeomError('NOT_IMAGE', `${path} is too small to be a GEOM provider (${size} bytes; at least one ${sectorSize}-byte sector)`, `make it larger (e.g. 'truncate -s 64M ${path}')`);
    }
    if (size % sectorSize !== 0) {
      throw new GeomError('NOT_IMAGE', `${path} is not a whole number of ${sectorSize}-byte sectors (${size} bytes)`, `resize it to a multiple of ${sectorSize} bytes`);
    }
    return new FileProvider(path, fd, size, sectorSize, opts.write, { dev: st.dev, ino: st.ino });
  } catch (err) {
    fs.closeSync(fd);
    throw err instanceof GeomError ? err : new IoError(path, 'stat', undefined, errnoOf(err));
  }
}
