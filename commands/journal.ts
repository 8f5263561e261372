// The journal class (gjournal(8)): its verbs declared as data. Logic lives in
// src/journal/; handlers here only parse, call, and print.

import { CorruptError, GeomError, UsageError } from '../src/errors.js';
import { u64Json } from '../src/util/json.js';
import { byteCount } from '../src/util/size.js';
import type { Tasted } from '../src/geom/taste.js';
import { clearJournal, labelJournal } from '../src/journal/label.js';
import {
  decodeJournalMetadata,
  dumpJournalMetadata,
  journalMetadataJson,
  readJournalMetadata,
  validateJournalMetadata,
  type JournalMetadata,
} from '../src/journal/metadata.js';
import { journalGeomName } from '../src/journal/listing.js';
import { defineCommand, type ClassSpec, type ClassTopLevel, type Context, type OptionSpec } from './framework.js';
import { dumpImages, finish, forEachItem, keepTasteFailure } from './each.js';
import { refuseOutput } from '../src/io/output-file.js';
import { fileLookup } from '../src/geom/owner.js';
import { checkJournal } from '../src/journal/check.js';
import { JournalDevice, type RecoverResult } from '../src/journal/device.js';
import { journalBlockProvider, type JournalSwitchPolicy } from '../src/journal/provider.js';
import type { BlockProvider } from '../src/provider/block.js';
import { exportOut, readOut } from './data-out.js';
import { checkWriteRange } from '../src/journal/input.js';
import { writeFromFile } from '../src/io/transfer.js';
import { checkInputPath, openInput } from '../src/io/input-file.js';
import { sayWhenReadingTerminal } from './stdin.js';
import { journalImages } from '../src/journal/resolve.js';
import { discoverJournals } from '../src/journal/discover.js';
import { journalImageOf } from '../src/geom/naming.js';
import { journalSummary, renderScan, scanJournal, scanJson } from '../src/journal/scan.js';
import { journalListingJson, journalStatusRow, renderJournalList, type JournalListingDevice } from '../src/journal/listing.js';
import { candidateImages } from '../src/geom/candidates.js';
import { rollBackCandidates, type Session } from '../src/engine/session.js';
import { tasteProvider } from '../src/geom/taste.js';
import type { Provider } from '../src/provider/provider.js';
import { formatStatus, LIST_OPTIONS, STATUS_OPTIONS } from './list-status.js';
import type { Progress } from './output.js';
import { tuneGjournal, ufsSummary, type GjournalFlagChange } from '../src/journal/tunefs.js';
import { FORCE_OUTPUT_OPTION, HARDCODE_OPTION, ID_OPTION, SECTORSIZE_OPTION } from './shared-options.js';

function verboseOf(ctx: Context, opts: { verbose: boolean }): boolean {
  return opts.verbose || ctx.global.verbose;
}

const labelCommand = defineCommand({
  name: 'label',
  summary: 'make images a journaled device (gjournal label): data and journal on one image, or on two',
  args: '<dataimg> [jimg]',
  options: [
    { short: 'c', long: 'checksum', kind: 'flag', description: 'checksum journal records (MD5)' },
    { short: 'f', long: 'force', kind: 'flag', description: 'label even over a file system, or an image of a geom, whose data is then lost' },
    HARDCODE_OPTION,
    { short: 's', long: 'jsize', value: 'jsize', kind: 'size64', description: 'journal size, one image only (at least 100M, a multiple of the sector size)', defaultText: '1G' },
    ID_OPTION,
    SECTORSIZE_OPTION,
    { short: 'J', long: 'gjournal', kind: 'flag', description: "also set the gjournal flag of the UFS on the data image, as 'tunefs -J enable' does, in the same transaction" },
  ],
  examples: ['geomctl journal label -s 256M data.img', 'geomctl journal label -c data.img journal.img', 'geomctl journal label -J -s 100M ufs.img'],
  run(ctx, args, opts) {
    if (args.length < 1 || args.length > 2) throw new UsageError('Invalid number of arguments.', 'give a data image and, optionally, a journal image');
    const session = ctx.openSession(args, { write: true });
    try {
      // The session opens each image once: the same image twice shows as fewer providers.
      if (session.providers.length !== args.length) throw new UsageError('the data image and the journal image are the same image', 'give one image for an all-in-one journal');
      const r = labelJournal(session.engine, {
        checksum: opts.checksum,
        force: opts.force,
        hardcode: opts.hardcode,
        jsize: opts.jsize,
        id: opts.id,
        sectorSize: opts.sectorsize,
        maxphys: ctx.global.maxphys,
        gjournal: opts.gjournal,
        lookup: fileLookup(args, ctx.global.dirs, ctx.global.ignoreHardcoded, (p) => ctx.stacks.probe(p)),
      });
      if (verboseOf(ctx, opts)) ctx.out.text(r.images.map((img) => `Metadata value stored on ${img.path}.`).join('\n'));
      if (r.gjournal) ctx.out.note(gjournalNote(r.gjournal));
      ctx.out.document('journal label', {
        id: r.id,
        sectorSize: r.sectorSize,
        images: r.images.map((img) => ({
          path: img.path,
          type: img.metadata.type,
          jstart: u64Json(img.metadata.jstart),
          jend: u64Json(img.metadata.jend),
          flags: u64Json(img.metadata.flags),
          hcprovider: img.metadata.provider,
          provsize: u64Json(img.metadata.provsize),
        })),
        ...(r.gjournal ? { gjournal: gjournalJson(r.gjournal) } : {}),
      });
    } finally {
      session.close();
    }
  },
});

const clearCommand = defineCommand({
  name: 'clear',
  summary: 'erase the journal metadata of images (gjournal clear)',
  args: '<img...>',
  options: [],
  examples: ['geomctl journal clear data.img journal.img'],
  run(ctx, args, opts) {
    // One session: clearing both images of a journal is one undo transaction.
    const session = ctx.openSession(args, { write: true });
    let failures: GeomError[];
    let cleared: string[];
    try {
      ({ cleared, failures } = clearJournal(session.engine));
    } finally {
      session.close();
    }
    if (verboseOf(ctx, opts) && cleared.length) ctx.out.text(cleared.map((p) => `Metadata cleared on ${p}.`).join('\n'));
    ctx.out.document('journal clear', { cleared });
    finish(failures);
  },
});

/**
 * gjournal dump of one image: FreeBSD's text and the JSON form (also for the
 * top-level dump). A metadata that does not decode is skipped with FreeBSD's
 * "..., skipping." (e.g. "MD5 hash mismatch for data.img, skipping.").
 */
export function journalDump(ctx: Context, path: string): { text: string; json: Record<string, unknown> } {
  const session = ctx.openSession([path], { write: false });
  try {
    const provider = session.providers[0];
    if (!provider) throw new UsageError('dump needs an image');
    let found: ReturnType<typeof readJournalMetadata>;
    try {
      found = readJournalMetadata(provider);
    } catch (err) {
      if (err instanceof CorruptError) throw new CorruptError(`${err.message}, skipping.`);
      throw err;
    }
    return { text: dumpJournalMetadata(found.md, path), json: { sectorSize: found.sectorSize, metadata: journalMetadataJson(found.md) } };
  } finally {
    session.close();
  }
}

/**
 * For `geomctl taste`: the geom a journal image belongs to, and why the kernel
 * would ignore it (bad metadata, provsize or hardcoded name mismatch).
 */
export function journalDescribe(ctx: Context, path: string, tasted: Tasted): { name: string; ignored?: string } {
  let md: JournalMetadata;
  try {
    md = decodeJournalMetadata(tasted.sector, path);
  } catch (err) {
    if (err instanceof GeomError) return { name: '', ignored: err.message };
    throw err;
  }
  const session = ctx.openSession([path], { write: false });
  try {
    const p = session.providers[0];
    if (p) validateJournalMetadata(md, { path, name: p.name, size: p.size, sectorSize: tasted.sectorSize }, { ignoreHardcoded: ctx.global.ignoreHardcoded });
    return { name: journalGeomName(md.id) };
  } catch (err) {
    if (err instanceof GeomError) return { name: journalGeomName(md.id), ignored: err.message };
    throw err;
  } finally {
    session.close();
  }
}

const dumpCommand = defineCommand({
  name: 'dump',
  summary: 'print the journal metadata of images as gjournal dump does',
  args: '<img...>',
  options: [],
  examples: ['geomctl journal dump data.img'],
  run(ctx, args) {
    dumpImages(ctx, 'journal dump', args, (path) => journalDump(ctx, path));
  },
});


// ---------------------------------------------------------------------------
// The engine verbs: write, read, sync, stop, scan, check, export.
// Logic lives in src/journal/ (device, writer, walk, scan, check, export).

/** The images of the device a verb names: the data image as given or as found, and the journal image if given. */
export interface DeviceArgs {
  data: string;
  jimg: string | undefined;
}

/**
 * dataimg [jimg]: the data image may be named by its journal provider
 * ("data.img.journal", "/dev/data.img.journal"), as gjournal(8) names it
 * (src/geom/naming.ts).
 */
export function journalArgs(ctx: Context, args: string[]): DeviceArgs {
  if (args.length < 1 || args.length > 2) throw new UsageError('Invalid number of arguments.', 'give the data image (or its provider, data.img.journal) and, for a two-image journal, the journal image');
  const arg = args[0] as string;
  // A journal on a geom's provider (virstor/thin, or virstor/thin.journal for its journal): the stack's graph knows it.
  const stacked = ctx.stacks.providerOf(arg);
  if (stacked?.kind === 'virstor') return { data: arg, jimg: args[1] };
  if (stacked?.kind === 'journal' && ctx.stacks.providerOf(stacked.consumers[0] as string)) {
    return { data: stacked.consumers[0] as string, jimg: args[1] ?? stacked.consumers[1] };
  }
  const data = journalImageOf(arg, ctx.global.dirs, (p) => ctx.stacks.probe(p));
  if (data.warning !== undefined) ctx.out.warn(data.warning);
  return { data: data.path, jimg: args[1] };
}

/**
 * A spinner fed by (done, total) reports (cli.md, "Progress"), started by the
 * first one; a new total (a second maxphys walk) starts it afresh.
 */
function spinner(ctx: Context, label: string): { update: (done: number, total: number) => void; stop: () => void } {
  let shown: Progress | undefined;
  let shownTotal = -1;
  return {
    update(done, total) {
      if (total !== shownTotal) {
        shown?.stop();
        shown = ctx.out.progress(label, total);
        shownTotal = total;
      }
      shown?.update(done);
    },
    stop() {
      shown?.stop();
      shown = undefined;
      shownTotal = -1;
    },
  };
}

/**
 * A session over the images of the journal device of `args`: both as given,
 * or the journal image of a two-image journal found by tasting
 * (journalImages). Tasting reads the images as they are, and a killed
 * relabel leaves them half way: the data image may carry an id whose journal
 * image is not labeled yet, or name one the rollback takes back. So a writing
 * verb that tastes rolls back the crashed transactions covering the
 * candidates when the search finds nothing (rollBackCandidates), and tastes
 * again when opening its session rolled one back.
 */
function openDevice(ctx: Context, images: DeviceArgs, write: boolean): { session: Session; paths: string[] } {
  const { data, jimg } = images;
  const tastes = write && jimg === undefined;
  const resolve = (): string[] => {
    try {
      return journalImages(data, jimg, ctx.global.dirs, (p) => ctx.stacks.probe(p));
    } catch (err) {
      if (!tastes || !(err instanceof GeomError)) throw err;
      const rolledBack = rollBackCandidates(candidateImages([data], ctx.global.dirs), ctx.global.dirs, (paths) => ctx.openSession(paths, { write: true }));
      if (rolledBack.length === 0) throw err;
      return journalImages(data, jimg, ctx.global.dirs, (p) => ctx.stacks.probe(p));
    }
  };
  let paths = resolve();
  let session = ctx.openSession(paths, { write });
  if (tastes && session.recovered.length > 0) {
    session.close();
    paths = resolve();
    session = ctx.openSession(paths, { write });
  }
  return { session, paths };
}

/**
 * Opens the journal device of `args` (finding a two-image journal's journal
 * image by tasting) and runs `body`. The walk of a device that is not CLEAN
 * shows a spinner unless `progress` is false (list and status).
 */
function withDevice<T>(ctx: Context, images: DeviceArgs, o: { write: boolean; details?: boolean; progress?: boolean }, body: (dev: JournalDevice) => T): T {
  const { dev, session } = openJournalDevice(ctx, images, o);
  try {
    return body(dev);
  } finally {
    session.close();
  }
}

/** Opens the journal device of `images` (see withDevice); the caller closes the session. */
export function openJournalDevice(ctx: Context, images: DeviceArgs, o: { write: boolean; details?: boolean; progress?: boolean }): { dev: JournalDevice; session: Session } {
  const { session, paths } = openDevice(ctx, images, o.write);
  try {
    if (session.providers.length !== paths.length) throw new UsageError('the data image and the journal image are the same image', 'give one image for an all-in-one journal');
    const walking = o.progress === false ? undefined : spinner(ctx, 'walking the journal');
    let dev: JournalDevice;
    try {
      dev = JournalDevice.open(session.engine, {
        maxphys: ctx.global.maxphys,
        ignoreHardcoded: ctx.global.ignoreHardcoded,
        cacheLimit: ctx.global.cacheLimit,
        details: o.details,
        ...(walking ? { onWalk: walking.update } : {}),
      });
    } finally {
      walking?.stop();
    }
    for (const w of dev.warnings) ctx.out.warn(w);
    return { dev, session };
  } catch (err) {
    session.close();
    throw err;
  }
}

/**
 * The journal provider of the device of `images` (src/journal/provider.ts),
 * whose close() ends the session: for writing, recovered first (a journal
 * must be CLEAN to take writes) and its writer's counters added to --stats
 * when it closes; read-only, the journal as it is, with what a read of it
 * should tell the user.
 */
export function openJournalProvider(ctx: Context, images: DeviceArgs, o: { write: boolean; policy?: JournalSwitchPolicy }): { dev: JournalDevice; provider: BlockProvider } {
  const { dev, session } = openJournalDevice(ctx, images, { write: o.write });
  try {
    if (o.write) {
      recoveryNote(ctx, dev, dev.recover(false));
      // The writer now: a journal space too small for maxphys is refused before anything is written.
      dev.writer();
    } else for (const w of dev.readWarnings()) ctx.out.warn(w);
    const closed = (): void => {
      // Closing syncs the journal: the writer's counters are then complete, for --stats.
      if (o.write) ctx.addStats(dev.writer().counters);
      session.close();
    };
    return { dev, provider: journalBlockProvider(dev, closed, o.policy) };
  } catch (err) {
    session.close();
    throw err;
  }
}

/** What recover() did, for the user. */
export function recoveryNote(ctx: Context, dev: JournalDevice, r: RecoverResult): void {
  if (r.action === 'replay') ctx.out.note(`${dev.dataPath}: replayed ${r.journals} journal${r.journals === 1 ? '' : 's'} (${r.bytes} bytes, maxphys ${r.maxphys})`);
  if (r.action === 'repair') {
    ctx.out.warn(
      `${dev.dataPath}: journal reinitialised${r.journals ? ` after replaying ${r.journals} journal${r.journals === 1 ? '' : 's'}` : ''}${r.ufsMarkedDirty ? '; the UFS on it is marked dirty: run fsck' : ''}`,
    );
  }
}

function recoveryJson(r: RecoverResult): Record<string, unknown> {
  return { action: r.action, journals: r.journals, bytes: r.bytes, ufsMarkedDirty: r.ufsMarkedDirty, ...(r.maxphys ? { maxphys: r.maxphys } : {}) };
}

/** Refuses an -O that is one of the device's images, or (without -f, `force`) an image of another geom. */
function checkOutputTarget(ctx: Context, dev: JournalDevice, output: string, force: boolean): void {
  refuseOutput(output, dev.engine.providers, `journal ${dev.dataPath}.journal`, { force, lookup: fileLookup([output], ctx.global.dirs, ctx.global.ignoreHardcoded, (p) => ctx.stacks.probe(p)) });
}

const FORCE_REPAIR = { short: 'f', long: 'force', kind: 'flag', description: 'repair a broken journal as the kernel does: reinitialise it and mark the UFS dirty' } as const satisfies OptionSpec;

const writeCommand = defineCommand({
  name: 'write',
  summary: 'write data through the journal at an offset of the journaled provider (stdin without -i)',
  args: '<dataimg> [jimg]',
  options: [
    FORCE_REPAIR,
    { short: 'o', long: 'offset', value: 'offset', kind: 'size', default: 0, description: 'where to write, a multiple of the sector size', defaultText: '0' },
    { short: 'i', long: 'input', value: 'file', kind: 'string', description: 'read the data from this file instead of stdin' },
    { long: 'sync', kind: 'flag', description: 'then copy the journal to the data area and mark it CLEAN, as sync does' },
  ],
  examples: ['geomctl journal write -o 1M -i boot.bin data.img', 'dd if=/dev/urandom bs=1M count=4 | geomctl journal write --sync data.img journal.img'],
  run(ctx, args, opts) {
    const { offset, input: inputPath } = opts;
    // The images are validated before the input is opened (a FIFO waits for its writer) and
    // the input is known whole before the journal is replayed or written: nothing changes first.
    checkInputPath(inputPath);
    withDevice(ctx, journalArgs(ctx, args), { write: true }, (dev) => {
      checkWriteRange(dev, offset, undefined);
      sayWhenReadingTerminal(ctx, inputPath);
      const input = openInput(inputPath, Math.max(0, dev.dataSize - offset), `journal ${dev.dataPath}.journal`, dev.engine.providers);
      try {
        checkWriteRange(dev, offset, input.size);
        const rec = dev.recover(opts.force);
        recoveryNote(ctx, dev, rec);
        // The session is withDevice's to close: the provider's end only syncs (--sync) or not.
        const provider = journalBlockProvider(dev, () => {});
        const progress = ctx.out.progress('write', input.size);
        let bytes: number;
        try {
          bytes = writeFromFile(provider, input.fd, input.name, offset, (done) => progress.update(done));
        } finally {
          progress.stop();
        }
        // Ordering 1: the journal finished. Without --sync it stays un-copied (DIRTY), as
        // FreeBSD finds it after a crash; with it, copied and marked CLEAN, as sync does.
        provider.flush();
        provider.close({ clean: opts.sync });
        const { maxphys, counters } = dev.writer();
        ctx.addStats(counters);
        const switches = counters.switches;
        if (verboseOf(ctx, opts)) ctx.out.text(`Wrote ${byteCount(bytes)} at ${offset} of ${dev.dataPath}.journal (${switches} journal${switches === 1 ? '' : 's'} finished, maxphys ${maxphys}).`);
        ctx.out.document('journal write', { data: dev.dataPath, journal: dev.journalPath, offset, bytes, journals: switches, maxphys, state: dev.md.flags & 1n ? 'CLEAN' : 'DIRTY', recovery: recoveryJson(rec) });
      } finally {
        input.close();
      }
    });
  },
});

const readCommand = defineCommand({
  name: 'read',
  summary: 'read the journaled provider: the data area with every journal not yet copied laid over it',
  args: '<dataimg> [jimg]',
  options: [
    { short: 'o', long: 'offset', value: 'offset', kind: 'size', default: 0, description: 'where to start', defaultText: '0' },
    { short: 'l', long: 'length', value: 'length', kind: 'size', description: 'how many bytes', defaultText: 'to the end' },
    { short: 'O', long: 'output', value: 'file', kind: 'string', description: 'write to this file instead of stdout' },
    FORCE_OUTPUT_OPTION,
  ],
  examples: ['geomctl journal read -o 1M -l 4k data.img | hexdump -C', 'geomctl journal read -O copy.bin data.img journal.img'],
  run(ctx, args, opts) {
    const { output, offset, length: given } = opts;
    if (ctx.out.json && output === undefined) throw new UsageError('read --json needs -O file: the data itself would go to stdout', 'add -O FILE, or drop --json');
    const { dev, provider } = openJournalProvider(ctx, journalArgs(ctx, args), { write: false });
    try {
      // A well-formed offset or length outside this device is about the image, not usage (exit 1).
      if (given === undefined && offset > dev.dataSize) throw new GeomError('REFUSED', `-o ${offset} is past the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, `use an offset of at most ${dev.dataSize}`);
      const length = given ?? dev.dataSize - offset;
      if (offset + length > dev.dataSize) throw new GeomError('REFUSED', `-o ${offset} -l ${length} passes the end of ${dev.dataPath}.journal (${dev.dataSize} bytes)`, `use -o and -l within ${dev.dataSize} bytes`);
      if (output !== undefined) checkOutputTarget(ctx, dev, output, opts.force);
      readOut(ctx, provider, { offset, length }, output, 'read');
      ctx.out.document('journal read', { data: dev.dataPath, journal: dev.journalPath, offset, length, output });
    } finally {
      provider.close();
    }
  },
});

/**
 * The replay of sync and stop, with a spinner for the bytes it copies (cli.md,
 * "Progress"); its own counters go to --stats after the engine's.
 */
function replayWithProgress(ctx: Context, dev: JournalDevice, force: boolean): RecoverResult {
  const progress = ctx.out.progress('replaying the journal', dev.replayBytes);
  let rec: RecoverResult;
  try {
    rec = dev.recover(force, (copied) => progress.update(copied));
  } finally {
    progress.stop();
  }
  ctx.addStats({ copiedBytes: rec.bytes, copiesCombined: rec.combined });
  return rec;
}

/** sync of one device: replays, says what it did, and returns its JSON form. */
function syncDevice(ctx: Context, dev: JournalDevice, force: boolean, say: boolean): Record<string, unknown> {
  const rec = replayWithProgress(ctx, dev, force);
  recoveryNote(ctx, dev, rec);
  if (say) ctx.out.text(`${dev.dataPath}.journal: CLEAN${rec.action === 'none' ? ' (nothing to replay)' : ''}.`);
  return { data: dev.dataPath, journal: dev.journalPath, state: dev.state, recovery: recoveryJson(rec) };
}

/**
 * sync without arguments: every journal found by tasting, as gjournal(8)'s
 * sync does, each in its own session — one that fails (BROKEN without -f, a
 * lock held) is reported and the others are still synced; one line per
 * journal says what was found and done. A writing command: crashed
 * transactions over the tasted images are rolled back first, as a session
 * over them would (tasting alone only refuses them). Images the kernel would
 * pass over (a half without its other half, metadata that does not decode)
 * are warnings, as in list.
 */
function syncAll(ctx: Context, force: boolean): void {
  rollBackCandidates(candidateImages([], ctx.global.dirs), ctx.global.dirs, (paths) => ctx.openSession(paths, { write: true }));
  // An image another process holds is not passed over: its journal would go unsynced unseen.
  const tasted = tastedJournals(ctx, [], { lockedFails: true });
  const found = discoverJournals(tasted.paths, [], tasted.untasted, (p) => ctx.stacks.probe(p));
  for (const w of found.warnings) ctx.out.warn(w);
  const synced = forEachItem(found.groups, (g) => withDevice(ctx, { data: g.data, jimg: g.journal }, { write: true }, (dev) => syncDevice(ctx, dev, force, true)));
  ctx.out.document('journal sync', { devices: synced.results.map((r) => r.value) });
  finish([...tasted.failures, ...synced.failures]);
}

const syncCommand = defineCommand({
  name: 'sync',
  summary: 'replay the journal into the data area and mark it CLEAN (gjournal sync); every journal found when none is named',
  args: '[dataimg] [jimg]',
  options: [FORCE_REPAIR],
  examples: ['geomctl journal sync data.img', 'geomctl journal sync -f data.img journal.img', 'geomctl -d /images journal sync'],
  run(ctx, args, opts) {
    if (args.length === 0) {
      syncAll(ctx, opts.force);
      return;
    }
    withDevice(ctx, journalArgs(ctx, args), { write: true }, (dev) => {
      ctx.out.document('journal sync', syncDevice(ctx, dev, opts.force, verboseOf(ctx, opts)));
    });
  },
});

const stopCommand = defineCommand({
  name: 'stop',
  summary: 'sync, then verify that the data image alone holds the journaled provider (gjournal stop)',
  args: '<dataimg> [jimg]',
  options: [FORCE_REPAIR],
  examples: ['geomctl journal stop -v data.img'],
  run(ctx, args, opts) {
    withDevice(ctx, journalArgs(ctx, args), { write: true }, (dev) => {
      const walk = dev.choice?.walk;
      const rec = replayWithProgress(ctx, dev, opts.force);
      recoveryNote(ctx, dev, rec);
      const v = walk && walk.finished > 0 ? dev.verifyReplay(walk) : { ranges: 0, bytes: 0, mismatches: 0 };
      if (v.mismatches > 0) {
        throw new GeomError('CHECK', `${dev.dataPath} differs from its journal in ${v.mismatches} place${v.mismatches === 1 ? '' : 's'} after the replay (first at ${v.firstMismatch})`, "run 'geomctl journal check' and keep the images for inspection");
      }
      if (verboseOf(ctx, opts)) ctx.out.text(`Device ${dev.dataPath}.journal stopped: ${dev.dataPath} holds its contents (${v.bytes} replayed bytes verified).`);
      ctx.out.document('journal stop', { data: dev.dataPath, journal: dev.journalPath, state: dev.state, recovery: recoveryJson(rec), verified: v });
    });
  },
});

const scanCommand = defineCommand({
  name: 'scan',
  summary: 'show the journal headers and records a replay would walk, and what it would copy',
  args: '<dataimg> [jimg]',
  options: [{ long: 'all', kind: 'flag', description: 'also list every header and record anywhere in the journal space' }],
  examples: ['geomctl journal scan data.img', 'geomctl --json journal scan --all data.img journal.img'],
  run(ctx, args, opts) {
    withDevice(ctx, journalArgs(ctx, args), { write: false, details: true }, (dev) => {
      const walking = spinner(ctx, 'walking the journal');
      const reading = spinner(ctx, 'reading the journal space');
      let report: ReturnType<typeof scanJournal>;
      try {
        report = scanJournal(dev, {
          maxphys: ctx.global.maxphys,
          all: opts.all,
          onWalk: walking.update,
          onReadAll: (done, total) => {
            walking.stop();
            reading.update(done, total);
          },
        });
      } finally {
        walking.stop();
        reading.stop();
      }
      ctx.out.result('journal scan', scanJson(report), () => renderScan(report, ctx.out.style));
    });
  },
});

const checkCommand = defineCommand({
  name: 'check',
  summary: 'verify the metadata, the geometry and the journal; -y repairs as -f would',
  args: '<dataimg> [jimg]',
  options: [{ short: 'y', long: 'yes', kind: 'flag', description: 'repair: replay, or reinitialise a broken journal and mark the UFS dirty' }],
  examples: ['geomctl journal check data.img', 'geomctl journal check -y data.img journal.img'],
  run(ctx, args, opts) {
    const repair = opts.yes;
    const images = journalArgs(ctx, args);
    const data = images.data;
    const { session } = openDevice(ctx, images, repair);
    let report: ReturnType<typeof checkJournal>;
    const walking = spinner(ctx, 'walking the journal');
    const replaying = spinner(ctx, 'replaying the journal');
    try {
      report = checkJournal(session.engine, {
        maxphys: ctx.global.maxphys,
        ignoreHardcoded: ctx.global.ignoreHardcoded,
        cacheLimit: ctx.global.cacheLimit,
        repair,
        onWalk: walking.update,
        onReplay: (done, total) => {
          walking.stop();
          replaying.update(done, total);
        },
      });
    } finally {
      walking.stop();
      replaying.stop();
      session.close();
    }
    const fixed = report.repaired !== undefined && report.state === 'CLEAN';
    ctx.out.result(
      'journal check',
      { data, problems: report.problems, notes: report.notes, state: report.state, ...(report.repaired ? { repaired: recoveryJson(report.repaired) } : {}) },
      () => {
        const style = ctx.out.style;
        const verdict = report.problems.length === 0 ? 'no problems' : `${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}${fixed ? ', repaired' : ''}`;
        return [
          ...report.problems.map((p) => `${style.tone('problem:', 'bad')} ${p}`),
          ...report.notes.map((n) => `${n}`),
          ...(report.repaired ? [`${style.tone('repaired:', 'caution')} ${report.repaired.action}${report.repaired.ufsMarkedDirty ? ', UFS marked dirty (run fsck)' : ''}`] : []),
          `${data}: ${style.tone(verdict, report.problems.length === 0 ? 'good' : fixed ? 'caution' : 'bad')}`,
        ].join('\n');
      },
    );
    // checkJournal names -y only where -y would act: never offered when it repairs nothing.
    if (report.problems.length > 0 && !fixed) throw new GeomError('CHECK', `${data}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} found`, report.remedy);
  },
});

const exportCommand = defineCommand({
  name: 'export',
  summary: 'write the whole journaled provider to a sparse file',
  args: '<dataimg> [jimg]',
  options: [{ short: 'O', long: 'output', value: 'file', kind: 'string', description: 'the file to write (required)' }, FORCE_OUTPUT_OPTION],
  examples: ['geomctl journal export -O fs.img data.img'],
  run(ctx, args, opts) {
    const { output } = opts;
    if (output === undefined) throw new UsageError('journal export needs -O file', 'add -O FILE: the file to write the journaled provider to');
    const { dev, provider } = openJournalProvider(ctx, journalArgs(ctx, args), { write: false });
    try {
      checkOutputTarget(ctx, dev, output, opts.force);
      const r = exportOut(ctx, provider, output, 'export');
      if (verboseOf(ctx, opts)) ctx.out.text(`Exported ${r.bytes} bytes of ${dev.dataPath}.journal to ${output} (${r.written} written, the rest holes).`);
      ctx.out.document('journal export', { data: dev.dataPath, journal: dev.journalPath, output, bytes: r.bytes, written: r.written });
    } finally {
      provider.close();
    }
  },
});

/** tunefs's own words for what it did: "gjournal set", "gjournal remains unchanged as enabled", ... */
function gjournalNote(c: GjournalFlagChange): string {
  const state = c.gjournal ? 'enabled' : 'disabled';
  return `${c.provider}: ${c.changed ? `gjournal ${c.gjournal ? 'set' : 'cleared'}` : `gjournal remains unchanged as ${state}`}`;
}

function gjournalJson(c: GjournalFlagChange): Record<string, unknown> {
  return { provider: c.provider, ufs: c.ufs, offset: c.offset, gjournal: c.gjournal, changed: c.changed, ...(c.ckhash !== undefined ? { ckhash: c.ckhash } : {}) };
}

const tunefsCommand = defineCommand({
  name: 'tunefs',
  summary: 'set or clear the gjournal flag of the UFS on the journaled provider, as tunefs -J does',
  args: '<dataimg> [jimg]',
  options: [
    { short: 'J', long: 'gjournal', value: 'enable|disable', kind: 'enum', choices: ['enable', 'disable'], description: 'enable sets FS_GJOURNAL in the UFS superblock, disable clears it' },
    { short: 'f', long: 'force', kind: 'flag', description: 'change a UFS that is not clean (mounted, or not checked after a crash)' },
  ],
  examples: ['geomctl journal tunefs -J enable data.img', 'geomctl journal tunefs -J disable data.img journal.img'],
  run(ctx, args, opts) {
    const setting = opts.gjournal;
    if (setting === undefined) throw new UsageError('journal tunefs needs -J enable or -J disable');
    withDevice(ctx, journalArgs(ctx, args), { write: true }, (dev) => {
      const { change, recovery } = tuneGjournal(dev, setting === 'enable', opts.force);
      if (recovery) recoveryNote(ctx, dev, recovery);
      ctx.out.note(gjournalNote(change));
      ctx.out.document('journal tunefs', { data: dev.dataPath, journal: dev.journalPath, ...gjournalJson(change), state: dev.state, ...(recovery ? { recovery: recoveryJson(recovery) } : {}) });
    });
  },
});

/** Journal devices for list and status, and what went wrong with the images named. */
interface JournalListing {
  devices: JournalListingDevice[];
  failures: GeomError[];
}

/**
 * The journal devices among `paths` (tasted as JOURNAL), found by the class's
 * discovery policy (src/journal/discover.ts) and opened read-only, as list
 * and status show them.
 */
function journalDevices(ctx: Context, paths: string[], named: string[], untasted: GeomError[] = []): JournalListing {
  const found = discoverJournals(paths, named, untasted, (p) => ctx.stacks.probe(p));
  for (const w of found.warnings) ctx.out.warn(w);
  const failures = [...found.failures];
  const devices: JournalListingDevice[] = [];
  for (const g of found.groups) {
    try {
      withDevice(ctx, { data: g.data, jimg: g.journal }, { write: false, progress: false }, (dev) => {
        const shortfall = dev.maxphysShortfall;
        if (shortfall) ctx.out.warn(`${shortfall}; the state shown is that of --maxphys: ${dev.maxphysRemedy}`);
        const [dp, jp] = dev.engine.providers;
        const image = (p: Provider): { path: string; name: string; size: number } => ({ path: p.path, name: p.name, size: p.size });
        const ufs = ufsSummary((o, l) => dev.read(o, l), dev.dataSize, dev.sectorSize);
        devices.push({ md: dev.md, sectorSize: dev.sectorSize, data: image(dp as Provider), ...(jp ? { journal: image(jp) } : {}), ...journalSummary(dev), ufs });
      });
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
      if (found.concernsNamed(g.journal ? [g.data, g.journal] : [g.data])) failures.push(err);
      else ctx.out.warn(err.line);
    }
  }
  return { devices, failures };
}

/**
 * The journal images among the candidates (named images first, then the -d
 * directories), each tasted in a read-only session as the top-level list
 * tastes them: an image half way through a transaction is refused there.
 * A named image that cannot be read or holds no journal metadata is a
 * failure, and so is the first unfinished transaction when none is named
 * (keepTasteFailure); a directory's file that cannot be read is skipped,
 * and kept to be named if a device then lacks an image.
 */
function tastedJournals(ctx: Context, named: string[], o: { lockedFails?: boolean } = {}): { paths: string[]; failures: GeomError[]; untasted: GeomError[] } {
  const paths: string[] = [];
  const failures: GeomError[] = [];
  const untasted: GeomError[] = [];
  for (const path of ctx.stacks.candidates(named)) {
    let session: ReturnType<Context['openSession']> | undefined;
    try {
      session = ctx.openSession([path], { write: false });
      const p = session.providers[0] as Provider;
      if (tasteProvider(p)?.className === 'JOURNAL') paths.push(path);
      else if (named.includes(path)) failures.push(new GeomError('NO_METADATA', `${path}: no journal metadata in its last sector`, "label it with 'geomctl journal label', or see 'geomctl taste' for what it holds"));
    } catch (err) {
      if (!(err instanceof GeomError)) throw err;
      if (o.lockedFails && err.code === 'LOCKED') failures.push(err);
      else if (!keepTasteFailure(failures, named, path, err) && (err.code === 'PERMISSION' || err.code === 'IO')) untasted.push(err);
    } finally {
      session?.close();
    }
  }
  return { paths, failures, untasted };
}

/** list and status of the class: the devices found, then (geom's "Not fully done") what failed for the images named. */
function listedDevices(ctx: Context, named: string[]): JournalListing {
  const tasted = tastedJournals(ctx, named);
  const r = journalDevices(ctx, tasted.paths, named, tasted.untasted);
  return { devices: r.devices, failures: [...tasted.failures, ...r.failures] };
}

/** The images list and status name: images, or journal providers standing for their data images. */
function namedJournalImages(ctx: Context, args: string[]): string[] {
  return args.map((arg) => journalArgs(ctx, [arg]).data);
}

// Every journal geom has a provider (the kernel creates the geom when both of
// its images are there), so -a shows no more journals: it is accepted as
// geom(8) accepts it. A half without its other half is a warning.
const listCommand = defineCommand({
  name: 'list',
  summary: 'list journal devices, geom(8) style, with their state and pending journals',
  args: '[img...]',
  options: LIST_OPTIONS,
  examples: ['geomctl journal list', 'geomctl journal list data.img journal.img', 'geomctl journal list data.img.journal'],
  run(ctx, args) {
    const { devices, failures } = listedDevices(ctx, namedJournalImages(ctx, args));
    ctx.out.result('journal list', { geoms: devices.map(journalListingJson) }, () => renderJournalList(devices, ctx.out.style).replace(/\n$/, ''));
    finish(failures);
  },
});

const statusCommand = defineCommand({
  name: 'status',
  summary: 'show the status (CLEAN, DIRTY, BROKEN) of journal devices, geom(8) style',
  args: '[img...]',
  options: STATUS_OPTIONS,
  examples: ['geomctl journal status', 'geomctl journal status -gs'],
  run(ctx, args, opts) {
    const { devices, failures } = listedDevices(ctx, namedJournalImages(ctx, args));
    const rows = devices.map(journalStatusRow);
    ctx.out.result('journal status', { geoms: devices.map(journalListingJson) }, () => (rows.length ? formatStatus(rows, opts, ctx.out.style) : ''));
    finish(failures);
  },
});

// The class's part in the top-level dump, list, status and taste.
const journalTopLevel: ClassTopLevel = {
  className: 'JOURNAL',
  dump: journalDump,
  describe: journalDescribe,
  list(ctx, paths, named) {
    const { devices, failures } = journalDevices(ctx, paths, named);
    return { text: renderJournalList(devices, ctx.out.style).replace(/\n$/, ''), json: devices.map(journalListingJson), failures };
  },
  status(ctx, paths, named) {
    const { devices, failures } = journalDevices(ctx, paths, named);
    return { rows: devices.map(journalStatusRow), json: devices.map(journalListingJson), failures };
  },
};

/** The class as one table (FreeBSD's class_commands[]): every verb, in the order --help lists them. */
export const journalClass: ClassSpec = {
  name: 'journal',
  aliases: ['gjournal'],
  summary: 'block-level journaling (gjournal): label, write, replay, sync, inspect',
  commands: [labelCommand, clearCommand, dumpCommand, writeCommand, readCommand, syncCommand, stopCommand, scanCommand, checkCommand, exportCommand, listCommand, statusCommand, tunefsCommand],
  topLevel: journalTopLevel,
};
