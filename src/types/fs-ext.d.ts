// fs-ext ships no types; geomctl uses only flockSync (src/lock.ts).
declare module 'fs-ext' {
  /** flock(2): throws an Error whose `code` is the errno name (EAGAIN when a non-blocking lock is held). */
  export function flockSync(fd: number, flags: 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'): void;
  const fsExt: { flockSync: typeof flockSync };
  export default fsExt;
}
