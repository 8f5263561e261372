// geom(8)-style list and status for journal devices: journal.md's example
// (golden file, with geomctl's State/Checksum/Journal used/Pending journals
// lines under the geom), a two-image device, status rows and JSON.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeJournalMetadata, encodeJournalMetadata, type JournalMetadataFields } from '../../src/journal/metadata.js';
import { journalListingJson, journalStatusRow, renderJournalList, type JournalListingDevice } from '../../src/journal/listing.js';
import type { TextStyle } from '../../src/util/style.js';

/** A style that shows its markup as text: what a terminal would colour, and how. */
const MARKED: TextStyle = { tone: (t, tone) => `<${tone}>${t}</${tone}>`, heading: (t) => `*${t}*`, column: (t, i) => `[${i}:${t}]` };

const base: JournalMetadataFields = {
  magic: 'GEOM::JOURNAL', version: 0, id: 1886289645, type: 3, jstart: 3221224960n, jend: 4294966784n, joffset: 0n, jid: 0, flags: 1n, provider: '', provsize: 4294967296n,
};
const md = (over: Partial<JournalMetadataFields> = {}) => decodeJournalMetadata(encodeJournalMetadata({ ...base, ...over }), 'x');

const oneImage: JournalListingDevice = {
  md: md(),
  sectorSize: 512,
  data: { path: 'imgs/data.img', name: 'data.img', size: 4294967296 },
  state: 'CLEAN',
  journalUsedBytes: 0,
  pendingJournals: 0,
};

const twoImages: JournalListingDevice = {
  md: md({ id: 7, type: 1, jstart: 0n, jend: 104857088n, flags: 2n, provsize: 1073741824n }),
  sectorSize: 512,
  data: { path: 'data.img', name: 'data.img', size: 1073741824 },
  journal: { path: 'j/journal.img', name: 'journal.img', size: 104857600 },
  state: 'DIRTY',
  journalUsedBytes: 52428032, // one sector under half of 104857088
  pendingJournals: 2,
};

describe('journal list', () => {
  it("prints journal.md's example exactly (golden file)", () => {
    expect(renderJournalList([oneImage])).toBe(readFileSync(join(__dirname, '..', 'golden', 'journal-list.txt'), 'utf8'));
  });

  it('lists a two-image device: Data consumer, then Journal consumer with Jstart/Jend', () => {
    expect(renderJournalList([twoImages])).toBe(
      [
        'Geom name: gjournal 7',
        'ID: 7',
        'State: DIRTY',
        'Checksum: yes',
        'Journal used: 49%',
        'Pending journals: 2',
        'Providers:',
        '1. Name: data.img.journal',
        '   Mediasize: 1073741312 (1.0G)',
        '   Sectorsize: 512',
        '   Mode: r0w0e0',
        'Consumers:',
        '1. Name: data.img',
        '   Mediasize: 1073741824 (1.0G)',
        '   Sectorsize: 512',
        '   Mode: r0w0e0',
        '   Role: Data',
        '2. Name: journal.img',
        '   Mediasize: 104857600 (100M)',
        '   Sectorsize: 512',
        '   Mode: r0w0e0',
        '   Role: Journal',
        '   Jstart: 0',
        '   Jend: 104857088',
        '',
        '',
      ].join('\n'),
    );
  });

  it("marks up for a terminal: headings, the state by meaning, a journal past the kernel's force_switch (70%) running out of space", () => {
    const golden = readFileSync(join(__dirname, '..', 'golden', 'journal-list.txt'), 'utf8');
    const marked = renderJournalList([oneImage], MARKED);
    expect(marked.replace(/<\/?good>|\*/g, '')).toBe(golden);
    expect(marked).toMatch(/^\*Geom name: gjournal 1886289645\*\n/);
    expect(marked).toContain('\nState: <good>CLEAN</good>\n');
    expect(marked).toContain('\n*Providers:*\n');
    expect(marked).toContain('\n*Consumers:*\n');
    expect(marked).toContain('\nJournal used: 0%\n');
    expect(renderJournalList([{ ...twoImages, state: 'BROKEN' }], MARKED)).toContain('\nState: <bad>BROKEN</bad>\n');
    const space = 104857088;
    const used = (bytes: number): string => renderJournalList([{ ...twoImages, journalUsedBytes: bytes }], MARKED);
    expect(used(Math.ceil(space * 0.7))).toContain('\nJournal used: 70%\n');
    expect(used(Math.ceil(space * 0.71))).toContain('\nJournal used: <caution>71%</caution>\n');
    expect(used(Math.ceil(space * 0.71)).replace(/<\/?\w+>|\*/g, '')).toBe(renderJournalList([{ ...twoImages, journalUsedBytes: Math.ceil(space * 0.71) }]));
  });

  it('clamps Journal used to 0..100 %', () => {
    expect(renderJournalList([{ ...oneImage, journalUsedBytes: 10 * 4294967296 }])).toContain('\nJournal used: 100%\n');
  });
});

describe('journal status and JSON', () => {
  it('gives one row per device with its state and images', () => {
    expect(journalStatusRow(oneImage)).toEqual({ name: 'data.img.journal', geom: `gjournal ${oneImage.md.id}`, hasProvider: true, status: 'CLEAN', tone: 'good', components: ['data.img'] });
    expect(journalStatusRow(twoImages)).toEqual({ name: 'data.img.journal', geom: `gjournal ${twoImages.md.id}`, hasProvider: true, status: 'DIRTY', tone: 'caution', components: ['data.img', 'journal.img'] });
    // The tone a terminal colours the state by: a broken journal needs mending.
    expect(journalStatusRow({ ...oneImage, state: 'BROKEN' }).tone).toBe('bad');
  });

  it('has a stable JSON form', () => {
    expect(journalListingJson(twoImages)).toEqual({
      name: 'gjournal 7',
      id: 7,
      provider: { name: 'data.img.journal', mediasize: 1073741312, sectorsize: 512, mode: 'r0w0e0' },
      state: 'DIRTY',
      checksum: true,
      journalUsedPercent: 49,
      journalUsedBytes: 52428032,
      pendingJournals: 2,
      jstart: 0,
      jend: 104857088,
      consumers: [
        { name: 'data.img', path: 'data.img', mediasize: 1073741824, sectorsize: 512, mode: 'r0w0e0', role: 'Data' },
        { name: 'journal.img', path: 'j/journal.img', mediasize: 104857600, sectorsize: 512, mode: 'r0w0e0', role: 'Journal' },
      ],
    });
  });
});
