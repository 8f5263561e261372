// Byte ranges [start, end): the union of overlapping or touching ones, in
// offset order (a provider's data regions, what pending journals cover).

/** Sorts `ranges` in place and returns their union; empty ranges vanish. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  ranges.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of ranges) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else if (e > s) out.push([s, e]);
  }
  return out;
}
