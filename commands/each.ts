// Verbs that take several images behave as geom(8) does when some of them
// fail: the others are still processed, every failure is reported, and the
// exit status is 1 ("Not fully done"; cli.md, "Exit status and messages").

import { GeomError, PartialFailure } from '../src/errors.js';
import type { Context } from './framework.js';

/** Runs `fn` on each item (an image, a device); a GeomError for one is kept and the rest still run. */
export function forEachItem<I, T>(items: readonly I[], fn: (item: I) => T): { results: { item: I; value: T }[]; failures: GeomError[] } {
  const results: { item: I; value: T }[] = [];
  const failures: GeomError[] = [];
  for (const item of items) {
    try {
      results.push({ item, value: fn(item) });
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
      failures.push(err);
    }
  }
  return { results, failures };
}

/** Throws what failed, once everything that worked has been printed. */
export function finish(failures: GeomError[]): void {
  if (failures.length === 1 && failures[0]) throw failures[0];
  if (failures.length > 1) throw new PartialFailure(failures);
}

export type ImageDump = { text: string; json: Record<string, unknown> };

/** The dump verbs: each image's text as FreeBSD prints it, or one JSON document listing them. */
export function dumpImages(ctx: Context, command: string, paths: string[], dump: (path: string) => ImageDump): void {
  const { results, failures } = forEachItem(paths, dump);
  if (ctx.out.json) ctx.out.document(command, { images: results.map((r) => ({ path: r.item, ...r.value.json })) });
  else if (results.length) ctx.out.raw(Buffer.from(results.map((r) => r.value.text).join('')));
  finish(failures);
}

/**
 * list and status: keeps, among `failures`, the error of an image that could
 * not be opened for tasting when it must be reported — and says whether it
 * was. Named images must open. A file of a tasted directory that cannot be
 * read is skipped, as the kernel would — but not one half way through a
 * transaction when no image is named: hiding its geom would pass a crash off
 * as nothing. That is said once (the other images of the transaction would
 * only repeat it); with images named, only the named ones are asked about.
 */
export function keepTasteFailure(failures: GeomError[], named: readonly string[], path: string, err: GeomError): boolean {
  const unfinished = named.length === 0 && err.code === 'UNFINISHED' && !failures.some((f) => f.code === 'UNFINISHED');
  if (!named.includes(path) && !unfinished) return false;
  failures.push(err);
  return true;
}
