// geom(8)'s standard verbs `list [-a] [name ...]` and `status [-ags] [name
// ...]` (FreeBSD sbin/geom/core/geom.c, std_list and std_status), shared by
// the classes' list and status and the top-level ones: which geoms are shown
// and how the status table is laid out.

import type { ListingFlags, OptionSpec, StatusRow } from './framework.js';
import { PLAIN, type TextStyle } from '../src/util/style.js';

const ALL = { short: 'a', long: 'all', kind: 'flag', description: 'also geoms without a provider (incomplete virstor devices)' } as const satisfies OptionSpec;

/** list's options, as geom(8)'s. */
export const LIST_OPTIONS = [ALL] as const;

/** status's options, as geom(8)'s. */
export const STATUS_OPTIONS = [
  ALL,
  { short: 'g', long: 'geoms', kind: 'flag', description: 'one row per geom, named by the geom, instead of one per provider' },
  { short: 's', long: 'script', kind: 'flag', description: 'script form: no header, and the name and status on every component line' },
] as const satisfies readonly OptionSpec[];

/**
 * geom(8)'s status table: printf("%*s  %*s  %s"), Name and Status
 * right-aligned to the widest value. Each row is a provider (its geom's name
 * with -g; a geom without a provider, shown with -a, under its own name).
 * -s drops the header (and with it the columns' minimum widths) and repeats
 * the name and status on each component's line, for scripts. `style` marks
 * up the header and each status by its tone, outside the padding, so that the
 * columns line up on a terminal as they do off it.
 */
export function formatStatus(rows: readonly StatusRow[], flags: Pick<ListingFlags, 'geoms' | 'script'> = { geoms: false, script: false }, style: TextStyle = PLAIN): string {
  const named = rows.map((r) => ({ ...r, name: flags.geoms ? r.geom : r.name }));
  const nameW = Math.max(flags.script ? 0 : 'Name'.length, ...named.map((r) => r.name.length));
  const statusW = Math.max(flags.script ? 0 : 'Status'.length, ...named.map((r) => r.status.length));
  const pad = (text: string, width: number): string => ' '.repeat(Math.max(0, width - text.length));
  const line = (name: string, status: string, component: string, styled = status): string => `${name.padStart(nameW)}  ${pad(status, statusW)}${styled}  ${component}`;
  const lines = flags.script ? [] : [style.heading(line('Name', 'Status', 'Components'))];
  for (const r of named) {
    const components = r.components.length ? r.components : ['N/A'];
    components.forEach((c, i) => lines.push(i === 0 || flags.script ? line(r.name, r.status, c, style.tone(r.status, r.tone)) : line('', '', c)));
  }
  return lines.join('\n');
}
