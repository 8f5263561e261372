// allSettled (src/util/settle.ts): several reads into one buffer are waited
// for all, even when one fails first, before the buffer or the images may be
// reused; Promise.all would give up at the first failure.

import { describe, expect, it } from 'vitest';
import { allSettled } from '../../src/util/settle.js';

describe('allSettled', () => {
  it('rejects with the first failure only once every promise has settled', async () => {
    let slowDone = false;
    const slow = new Promise<void>((resolve) =>
      setTimeout(() => {
        slowDone = true;
        resolve();
      }, 30),
    );
    const failing = Promise.reject(new Error('EIO'));
    await expect(allSettled([failing, slow])).rejects.toThrow('EIO');
    expect(slowDone).toBe(true);
  });

  it('resolves when all resolve, including none and one', async () => {
    await expect(allSettled([])).resolves.toBeUndefined();
    await expect(allSettled([Promise.resolve()])).resolves.toBeUndefined();
    await expect(allSettled([Promise.resolve(), Promise.resolve()])).resolves.toBeUndefined();
  });
});
