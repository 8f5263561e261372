// The data passes of the class verbs `read` and `export`, with the command's
// spinner and stdout: the bytes move through the one provider interface
// (src/io/transfer.ts), whatever class — or stack of classes — offers it.

import type { BlockProvider } from '../src/provider/block.js';
import { pieceSizeFor } from '../src/io/output-file.js';
import { exportToFile, readRange, readToFile, type ExportResult } from '../src/io/transfer.js';
import type { Context } from './framework.js';

/**
 * A read verb's data pass: [offset, offset + length) of `p` to the -O file
 * `output` (none is left after a failure) or to stdout, with a spinner.
 * A reader that goes away (`read | head`) ends the command quietly: main.ts
 * lets the closed pipe's error go.
 */
export function readOut(ctx: Context, p: BlockProvider, range: { offset: number; length: number }, output: string | undefined, label: string): void {
  const { offset, length } = range;
  const progress = ctx.out.progress(label, length);
  const onProgress = (done: number): void => progress.update(done);
  try {
    if (output !== undefined) readToFile(p, offset, length, output, onProgress);
    else readRange(p, offset, length, { pieceSize: pieceSizeFor(1), write: (data) => ctx.out.raw(data) }, onProgress);
  } finally {
    progress.stop();
  }
}

/** An export verb's data pass: the whole of `p` into the sparse file `path`, with a spinner. */
export function exportOut(ctx: Context, p: BlockProvider, path: string, label: string): ExportResult {
  const progress = ctx.out.progress(label, p.mediaSize);
  try {
    return exportToFile(p, path, (done) => progress.update(done));
  } finally {
    progress.stop();
  }
}
