// Index sorts for the walk and the copy, which order up to a million entries
// by offset: a comparator sort of that many indexes costs about a second, a
// native numeric sort of packed keys a fraction of it.

/** Entry offsets are sector-aligned, and sectors are multiples of 512 bytes. */
const SECTOR = 512;

/**
 * Indexes 0..count-1 ordered by keys[i], then by i. When every (key, index)
 * pair packs into one exact double — key / unit · count + index, unit 512
 * when every key is a multiple of it — the packed keys are sorted natively;
 * otherwise (keys too large, negative or fractional) a comparator sort.
 */
export function orderBy(keys: ArrayLike<number>, count: number): Uint32Array {
  const order = new Uint32Array(count);
  let max = 0;
  let unit = SECTOR;
  let packable = true;
  for (let i = 0; i < count; i++) {
    const k = keys[i] as number;
    if (!(k >= 0 && Number.isInteger(k))) packable = false;
    if (k > max) max = k;
    if (k % SECTOR !== 0) unit = 1;
  }
  if (packable && (Math.floor(max / unit) + 1) * count <= Number.MAX_SAFE_INTEGER) {
    const packed = new Float64Array(count);
    for (let i = 0; i < count; i++) packed[i] = ((keys[i] as number) / unit) * count + i;
    packed.sort();
    // fmod of exact integers is exact: the remainder is the index.
    for (let i = 0; i < count; i++) order[i] = (packed[i] as number) % count;
    return order;
  }
  for (let i = 0; i < count; i++) order[i] = i;
  return order.sort((a, b) => (keys[a] as number) - (keys[b] as number) || a - b);
}
