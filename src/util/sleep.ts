// geomctl's I/O loops are synchronous (flush-engine.md): a wait inside one —
// for a lock, for a pipe that is not ready — blocks the thread rather than
// yielding to an event loop that has nothing else to do.

/** A word nobody ever notifies: Atomics.wait on it is a plain timed sleep. */
const sleepWord = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps `ms` milliseconds without returning to the event loop. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepWord, 0, 0, ms);
}
