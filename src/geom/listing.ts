// geom(8)'s `list` text (FreeBSD sbin/geom/core/geom.c: list_one_geom,
// list_one_provider, list_one_consumer) for any class: a geom's config
// lines, its providers and consumers with their dumpconf lines. Classes turn
// their state into GeomNode values; this module only lays them out.

import { humanize } from '../util/size.js';
import { PLAIN, type Tone, type TextStyle } from '../util/style.js';

/** A dumpconf line: name and value, and what the value means when it is a status (coloured on a terminal). */
export type ConfigLine = readonly [string, string] | readonly [string, string, Tone];

/** One provider, as seen by geom(8): the geom's own or a consumer's. */
export interface GeomProviderNode {
  name: string;
  mediasize: number | bigint;
  sectorsize: number;
  /** Access counts; geomctl works offline, so "r0w0e0". */
  mode: string;
  /** dumpconf lines for a provider or a consumer, in order. */
  config: ReadonlyArray<ConfigLine>;
}

export interface GeomNode {
  name: string;
  config: ReadonlyArray<ConfigLine>;
  providers: GeomProviderNode[];
  consumers: GeomProviderNode[];
}

export const OFFLINE_MODE = 'r0w0e0';

function configLine([name, value, tone]: ConfigLine, style: TextStyle): string {
  return `${name}: ${tone ? style.tone(value, tone) : value}`;
}

function providerLines(p: GeomProviderNode, n: number, style: TextStyle): string[] {
  const prefix = '   ';
  return [
    `${n}. Name: ${p.name}`,
    `${prefix}Mediasize: ${p.mediasize} (${humanize(p.mediasize)})`,
    `${prefix}Sectorsize: ${p.sectorsize}`,
    `${prefix}Mode: ${p.mode}`,
    ...p.config.map((c) => `${prefix}${configLine(c, style)}`),
  ];
}

/** list_one_geom: the geom's block, ending with its blank line; headings and status values marked up by `style`. */
export function renderGeom(g: GeomNode, style: TextStyle = PLAIN): string {
  const lines = [style.heading(`Geom name: ${g.name}`), ...g.config.map((c) => configLine(c, style))];
  if (g.providers.length) {
    lines.push(style.heading('Providers:'));
    g.providers.forEach((p, i) => lines.push(...providerLines(p, i + 1, style)));
  }
  if (g.consumers.length) {
    lines.push(style.heading('Consumers:'));
    g.consumers.forEach((c, i) => lines.push(...providerLines(c, i + 1, style)));
  }
  return `${lines.join('\n')}\n\n`;
}
