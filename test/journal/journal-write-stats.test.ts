// journal write's counters belong to the writer (src/journal/writer.ts): it
// returns them, and the command prints them for --stats after the flush
// engine's own, where "buffers combined" is the engine's and "combined" the
// writer's gathering of queued ranges into one record entry.

import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { geomctl, scratch, sparseImage } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';

const s = scratch('geomctl-write-stats-');
afterAll(() => s.cleanup());

describe('journal write --stats', () => {
  it("prints the writer's counters after the engine's, agreeing with the JSON document", () => {
    sparseImage(s.path('d.img'), 200 << 20);
    expect(geomctl(['journal', 'label', '-s', '100M', 'd.img'], { cwd: s.dir }).status).toBe(0);
    writeFileSync(s.path('in.bin'), Buffer.alloc(3 << 20, 0x5a));
    const r = geomctl(['--stats', '--json', 'journal', 'write', '--sync', '-i', 'in.bin', 'd.img'], { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { journals: number; bytes: number; state: string };
    expect(doc).toMatchObject({ journals: 1, bytes: 3 << 20, state: 'CLEAN' });
    const lines = r.stderr.trimEnd().split('\n');
    const engineEnd = lines.findIndex((l) => l.startsWith('stats: buffers combined: '));
    expect(engineEnd).toBeGreaterThan(0);
    // 3 MiB at maxphys 1M: three entries of one record, in one journal.
    expect(lines.slice(engineEnd + 1)).toEqual(['stats: skippedBytes: 0', 'stats: records: 1', 'stats: combined: 0', `stats: switches: ${doc.journals}`, 'stats: forcedSwitches: 0']);
  });
});

describe('serve --stats of a journal provider', () => {
  const nbdcopy = tool('nbdcopy');
  it.skipIf(!nbdcopy)("prints the writer's counters once the provider is closed", () => {
    sparseImage(s.path('sd.img'), 200 << 20);
    expect(geomctl(['journal', 'label', '-s', '100M', 'sd.img'], { cwd: s.dir }).status).toBe(0);
    writeFileSync(s.path('one.bin'), Buffer.alloc(1 << 20, 0x33));
    const r = geomctl(['--stats', 'serve', '--run', `${nbdcopy} one.bin "$uri"`, 'sd.img.journal'], { cwd: s.dir });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    const engineEnd = lines.findIndex((l) => l.startsWith('stats: buffers combined: '));
    expect(lines.slice(engineEnd + 1).map((l) => l.replace(/\d+$/, 'N'))).toEqual(['stats: skippedBytes: N', 'stats: records: N', 'stats: combined: N', 'stats: switches: N', 'stats: forcedSwitches: N']);
    expect(lines).toContain('stats: switches: 1');
  });
});
