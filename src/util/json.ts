// JSON conventions shared by every --json document (cli.md, "JSON"): 64-bit
// quantities (sizes, offsets, ids read from disk) are JSON numbers while they
// are exact in a double, and strings of decimal digits beyond 2^53, so that no
// consumer ever sees a silently rounded value.

/** A u64 (or any integer) as a JSON value: a number when ≤ 2^53 - 1 in magnitude, else a decimal string. */
export function u64Json(v: bigint | number): number | string {
  const big = typeof v === 'bigint' ? v : BigInt(v);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  return big <= limit && big >= -limit ? Number(big) : big.toString(10);
}
