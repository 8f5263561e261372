// FreeBSD's maxphys, the largest I/O the kernel hands a GEOM class: it sizes
// journal records and rounds virstor chunks, so both classes, the journal
// walk's detection and --maxphys share these values.

/** FreeBSD 13 and later on 64-bit kernels. */
export const MAXPHYS_1M = 1024 * 1024;
/** Older and 32-bit kernels. */
export const MAXPHYS_128K = 128 * 1024;

/** The maxphys values FreeBSD uses: what --maxphys accepts. */
export const FREEBSD_MAXPHYS: readonly number[] = [MAXPHYS_128K, MAXPHYS_1M];

/** The maxphys new geoms are made for unless --maxphys says otherwise. */
export const DEFAULT_MAXPHYS = MAXPHYS_1M;

/** 1048576 -> "1M", 131072 -> "128k": a maxphys as --maxphys takes it. */
export function maxphysText(n: number): string {
  return n % MAXPHYS_1M === 0 ? `${n / MAXPHYS_1M}M` : `${n / 1024}k`;
}
