// A write without -i reads standard input. When that is the terminal, the
// command would wait without a word for data the user may not know it wants:
// it says so first (issue 9, item 18).

import { isatty } from 'node:tty';
import type { Context } from './framework.js';

/** Tells the user, before the input is opened, that a write is about to read the terminal. */
export function sayWhenReadingTerminal(ctx: Context, inputPath: string | undefined): void {
  if (inputPath === undefined && isatty(0)) ctx.out.notice('reading data from standard input (end with Ctrl-D; use -i FILE to read a file)');
}
