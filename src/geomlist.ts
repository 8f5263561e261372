// geom(8)'s `list` text (FreeBSD sbin/geom/core/geom.c: list_one_geom,
// list_one_provider, list_one_consumer) for any class: a geom's config
// lines, its providers and consumers with their dumpconf lines. Classes turn
// their state into GeomNode values; this module only lays them out.

import { humanize } from './size.js';

/** One provider, as seen by geom(8): the geom's own or a consumer's. */
export interface GeomProviderNode {
  name: string;
  mediasize: number | bigint;
  sectorsize: number;
  /** Access counts; geomctl works offline, so "r0w0e0". */
  mode: string;
  /** dumpconf lines for a provider or a consumer, in order. */
  config: ReadonlyArray<readonly [string, string]>;
}

export interface GeomNode {
  name: string;
  config: ReadonlyArray<readonly [string, string]>;
  providers: GeomProviderNode[];
  consumers: GeomProviderNode[];
}

export const OFFLINE_MODE = 'r0w0e0';

function providerLines(p: GeomProviderNode, n: number): string[] {
  const prefix = '   ';
  return [
    `${n}. Name: ${p.name}`,
    `${prefix}Mediasize: ${p.mediasize} (${humanize(p.mediasize)})`,
    `${prefix}Sectorsize: ${p.sectorsize}`,
    `${prefix}Mode: ${p.mode}`,
    ...p.config.map(([k, v]) => `${prefix}${k}: ${v}`),
  ];
}

/** list_one_geom: the geom's block, ending with its blank line. */
export function renderGeom(g: GeomNode): string {
  const lines = [`Geom name: ${g.name}`, ...g.config.map(([k, v]) => `${k}: ${v}`)];
  if (g.providers.length) {
    lines.push('Providers:');
    g.providers.forEach((p, i) => lines.push(...providerLines(p, i + 1)));
  }
  if (g.consumers.length) {
    lines.push('Consumers:');
    g.consumers.forEach((c, i) => lines.push(...providerLines(c, i + 1)));
  }
  return `${lines.join('\n')}\n\n`;
}
