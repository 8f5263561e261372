// fs-ext ships no types; geomctl uses flockSync (src/platform/lock.ts) and seekSync (src/provider/file.ts),
// loading it on first use (src/platform/fs-ext.ts).
declare module 'fs-ext' {
  /** flock(2): throws an Error whose `code` is the errno name (EAGAIN when a non-blocking lock is held). */
  export function flockSync(fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void;
  /** lseek(2): returns the new offset; throws an Error whose `code` is the errno name (ENXIO: no data after it). */
  export function seekSync(fd: number, offset: number, whence: number): number;
  const fsExt: { flockSync: typeof flockSync; seekSync: typeof seekSync };
  export default fsExt;
}
