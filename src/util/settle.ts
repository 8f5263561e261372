// Waiting for several reads into parts of one buffer: Promise.all settles at
// the first failure while the other reads may still be writing into the
// buffer (and using their descriptors), so a caller that reuses the buffer or
// closes the images must wait for all of them.

/** Resolves once every promise has settled; rejects with the first failure, if any. */
export async function allSettled(promises: readonly Promise<void>[]): Promise<void> {
  if (promises.length === 1) return promises[0];
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
