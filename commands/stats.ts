// --stats: the flush engine's counters (flush-engine.md, "Counters"), one
// "name: value" line each on stderr, in HAMMER's spirit; then the counters of
// the classes' own objects (a journal writer's, a replay's), which the
// commands hand to Context.addStats.

import type { EngineStats } from '../src/engine/types.js';

export function formatStats(stats: EngineStats): string[] {
  const lines = [
    `stats: disk reads: ${stats.reads} (${stats.readBytes} bytes)`,
  ];
  for (const type of Object.keys(stats.writes) as (keyof EngineStats['writes'])[]) {
    lines.push(`stats: ${type.toLowerCase()} writes: ${stats.writes[type]} (${stats.writeBytes[type]} bytes)`);
  }
  lines.push(
    `stats: barriers: ${stats.barriers}`,
    `stats: undo records: ${stats.undoRecords} (${stats.undoBytes} bytes)`,
    `stats: cache hits: ${stats.cacheHits}, misses: ${stats.cacheMisses}, evictions: ${stats.evictions}`,
    `stats: buffers combined: ${stats.combined}`,
  );
  return lines;
}

/** Counters as --stats prints them: "stats: name: value", one a line. */
export function formatCounters(counters: Readonly<Record<string, number>>): string[] {
  return Object.entries(counters).map(([name, value]) => `stats: ${name}: ${value}`);
}
