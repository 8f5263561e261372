// The virstor class (gvirstor(8)): its verbs declared as data. Logic lives in
// src/virstor/; handlers here only parse, call, and print.

import { GeomError, UsageError } from '../src/errors.js';
import { u64Json } from '../src/util/json.js';
import { byteCount } from '../src/util/size.js';
import type { Provider } from '../src/provider/provider.js';
import { DEFAULT_CHUNK_SIZE, DEFAULT_VIRSIZE, labelVirstor, planVirstorLabel, type LabelComponent } from '../src/virstor/label.js';
import { DEFAULT_MAXPHYS } from '../src/util/maxphys.js';
import { randomU32 } from '../src/util/random.js';
import { decodeVirstorMetadata, dumpVirstorMetadata, virstorMetadataJson, type VirstorMetadata } from '../src/virstor/metadata.js';
import { clearVirstor, readVirstorMetadata, virstorTasteVerdict } from '../src/virstor/image.js';
import { defineCommand, type ClassSpec, type ClassTopLevel, type CommandSpec, type Context } from './framework.js';
import type { Progress } from './output.js';
import { dumpImages, finish, forEachItem } from './each.js';
import { rollBackCandidates, unfinishedCovering } from '../src/engine/session.js';
import { openVirstor, type OpenVirstorOptions, type VirstorDevice } from '../src/virstor/device.js';
import type { VirstorHost } from '../src/virstor/host.js';
import { checkOffset, checkVirtualRange } from '../src/virstor/io.js';
import { writeFromFile } from '../src/io/transfer.js';
import { virstorBlockProvider } from '../src/virstor/provider.js';
import type { BlockProvider, WritePlan } from '../src/provider/block.js';
import { exportOut, readOut } from './data-out.js';
import { checkInputPath, openInput } from '../src/io/input-file.js';
import { refuseOutput } from '../src/io/output-file.js';
import { refuseRelabel } from '../src/geom/owner.js';
import { checkDeviceName } from '../src/geom/device-name.js';
import { sayWhenReadingTerminal } from './stdin.js';
import { renderVirstorList, virstorListingJson, virstorStatusRow, type VirstorListingDevice } from '../src/virstor/listing.js';
import { checkDevice, stopDevice, type CheckReport } from '../src/virstor/check.js';
import { addComponents, removeComponents } from '../src/virstor/components.js';
import { devicesAmongImages, discoverVirstor, shownDevices } from '../src/virstor/discover.js';
import { formatExtent, MAP_HEADER, mapExtents } from '../src/virstor/extents.js';
import type { MapProgress } from '../src/virstor/map-scan.js';
import { formatStatus, LIST_OPTIONS, STATUS_OPTIONS } from './list-status.js';
import { virstorDeviceName } from '../src/geom/naming.js';
import { checkSectorSizeFits } from '../src/geom/label-options.js';
import { FORCE_OUTPUT_OPTION, HARDCODE_OPTION, ID_OPTION, SECTORSIZE_OPTION } from './shared-options.js';

function verboseOf(ctx: Context, opts: { verbose: boolean }): boolean {
  return opts.verbose || ctx.global.verbose;
}

/** The metadata of one image, read under a shared lock. */
export function readVirstorImage(ctx: Context, path: string): { md: VirstorMetadata; sectorSize: number } {
  const session = ctx.openSession([path], { write: false });
  try {
    return readVirstorMetadata(session.providers[0] as Provider, path);
  } finally {
    session.close();
  }
}

/** gvirstor dump of one image: FreeBSD's text and the JSON form (also for the top-level dump). */
export function virstorDump(ctx: Context, path: string): { text: string; json: Record<string, unknown> } {
  const { md, sectorSize } = readVirstorImage(ctx, path);
  return { text: dumpVirstorMetadata(md, path), json: { sectorSize, metadata: virstorMetadataJson(md) } };
}

const labelCommand = defineCommand({
  name: 'label',
  summary: 'create a virstor device on images (gvirstor label)',
  args: '<name> <img...>',
  options: [
    { short: 'f', long: 'force', kind: 'flag', description: 'label even over an image of a geom, whose data is then lost' },
    HARDCODE_OPTION,
    { short: 'm', long: 'chunksize', value: 'chunksize', kind: 'size64', default: DEFAULT_CHUNK_SIZE, description: 'allocation unit, rounded up to a multiple of maxphys', defaultText: '4M' },
    { short: 's', long: 'virsize', value: 'virsize', kind: 'size64', default: DEFAULT_VIRSIZE, description: 'virtual size of the device', defaultText: '2T' },
    ID_OPTION,
    SECTORSIZE_OPTION,
  ],
  examples: ['geomctl virstor label -s 1T mydata c0.img c1.img'],
  run(ctx, args, opts) {
    const [name, ...images] = args;
    if (name === undefined || images.length === 0) throw new UsageError('virstor label needs a name and at least one image');
    checkDeviceName(name, 'virstor name');
    const { chunksize: chunkSize, virsize, sectorsize: requested } = opts;
    const session = ctx.openSession(images, { write: true });
    try {
      // The session opens each image once: the same image twice would show as fewer providers.
      if (session.providers.length !== images.length) throw new UsageError('an image is named twice');
      const components: LabelComponent[] = session.providers.map((p: Provider, i: number) => {
        if (requested !== undefined) checkSectorSizeFits(requested, p);
        return { path: images[i] ?? p.path, name: p.name, size: p.size, sectorSize: requested ?? p.mediaSectorSize, identity: p.identity };
      });
      const { plan, messages } = planVirstorLabel({
        name,
        components,
        chunkSize,
        virsize,
        maxphys: ctx.global.maxphys ?? DEFAULT_MAXPHYS,
        hardcode: opts.hardcode,
        id: opts.id ?? randomU32(),
      });
      // After the arguments' own refusals, before the plan's notices: an image of a geom says what relabelling it loses.
      if (!opts.force) {
        const lookup = hostOf(ctx, images);
        session.providers.forEach((p, i) => refuseRelabel(p, images[i] ?? p.path, lookup));
      }
      for (const m of messages) {
        if (m.kind !== 'notice') continue;
        // FreeBSD's "WARNING: Virtual storage size < ..." stays a warning under --json, where notes are silent.
        if (ctx.out.json && m.text.startsWith('WARNING: ')) ctx.out.warn(m.text.slice('WARNING: '.length));
        else ctx.out.note(m.text);
      }
      const progress = ctx.out.progress('writing the allocation map', plan.geometry.mapSize);
      try {
        labelVirstor(session.engine, plan, (done) => progress.update(done));
      } finally {
        progress.stop();
      }
      if (verboseOf(ctx, opts)) {
        // FreeBSD's last verbose line has no newline; geom(8) then prints "Done.".
        ctx.out.text(`${messages.filter((m) => m.kind === 'verbose').map((m) => m.text).join('\n')}Done.`);
      }
      ctx.out.document('virstor label', {
        name: plan.name,
        id: plan.id,
        chunkSize: plan.chunkSize,
        virsize: u64Json(plan.virsize),
        sectorSize: plan.sectorSize,
        mapSize: plan.geometry.mapSize,
        components: plan.metadata.map((md, i) => ({ path: plan.components[i]?.path, ...virstorMetadataJson(md) })),
      });
    } finally {
      session.close();
    }
  },
});

const clearCommand = defineCommand({
  name: 'clear',
  summary: 'erase the virstor metadata of images (gvirstor clear)',
  args: '<img...>',
  options: [],
  examples: ['geomctl virstor clear c0.img c1.img'],
  run(ctx, args, opts) {
    // One image per session: a failure on one leaves the others to be cleared, as FreeBSD does.
    const { results, failures } = forEachItem(args, (path) => {
      const session = ctx.openSession([path], { write: true });
      try {
        clearVirstor(session.engine, 0, path);
      } finally {
        session.close();
      }
      if (verboseOf(ctx, opts)) ctx.out.text(`Metadata cleared on ${path}.`);
    });
    ctx.out.document('virstor clear', { cleared: results.map((r) => r.item) });
    finish(failures);
  },
});

const dumpCommand = defineCommand({
  name: 'dump',
  summary: 'print the virstor metadata of images as gvirstor dump does',
  args: '<img...>',
  options: [],
  examples: ['geomctl virstor dump c0.img'],
  run(ctx, args) {
    dumpImages(ctx, 'virstor dump', args, (path) => virstorDump(ctx, path));
  },
});


// ---- The engine verbs: stop, add, remove, list, status, write,
// read, check, map, export. Logic in src/virstor/{device,io,ops}.ts.

/** The images a virstor command may taste, and how it opens them (cli.md, "Tasting"). */
export function hostOf(ctx: Context, named: string[] = [], candidates = ctx.stacks.candidates(named)): VirstorHost {
  return {
    candidates,
    probe: (path) => ctx.stacks.probe(path),
    openSession: (paths, o) => ctx.openSession(paths, o),
    ignoreHardcoded: ctx.global.ignoreHardcoded,
    rollBackCandidates: () => rollBackCandidates(candidates, ctx.global.dirs, (paths) => ctx.openSession(paths, { write: true })),
    unfinished: () => unfinishedCovering(candidates, ctx.global.dirs),
  };
}

function warnAll(ctx: Context, warnings: readonly string[]): void {
  for (const w of warnings) ctx.out.warn(w);
}

function needName(args: string[], verb: string): string {
  const name = args[0];
  if (name === undefined || args.length !== 1) throw new UsageError(`virstor ${verb} needs exactly one device name`);
  return virstorDeviceName(name);
}

/**
 * The provider of device `name` (src/virstor/provider.ts), whose close()
 * commits what was written and closes the device; opened for writing, the
 * map is scanned for the allocator.
 */
export function openVirstorProvider(ctx: Context, name: string, o: { write: boolean }): { dev: VirstorDevice; provider: BlockProvider } {
  const dev = openDevice(ctx, name, { write: o.write, scan: o.write });
  return { dev, provider: virstorBlockProvider(dev, (w) => ctx.out.warn(w)) };
}

/** Opens the device for a verb, reporting open's warnings; the caller closes it. */
function openDevice(ctx: Context, name: string, opts: OpenVirstorOptions): VirstorDevice {
  const dev = openVirstor(hostOf(ctx), name, opts);
  warnAll(ctx, dev.warnings);
  return dev;
}

/**
 * gvirstor's stop and destroy, one verb under two names as in FreeBSD's
 * class_commands[]: each is its own table entry, so that the manual's
 * SYNOPSIS, --help and the JSON document name the verb the user typed.
 */
function stopVerb(verb: 'stop' | 'destroy'): CommandSpec {
  return defineCommand({
    name: verb,
    summary: `update the metadata, verify the map and report the allocated chunks (gvirstor ${verb}${verb === 'destroy' ? ', the same as stop' : ''})`,
    args: '<name...>',
    options: [{ short: 'f', long: 'force', kind: 'flag', description: 'accepted for compatibility (nothing is ever open)' }],
    examples: [`geomctl virstor ${verb} mydata`],
    run(ctx, args, opts) {
      const failures: GeomError[] = [];
      const results: Record<string, unknown>[] = [];
      for (const name of args.map(virstorDeviceName)) {
        try {
          const r = stopDevice(hostOf(ctx), name);
          warnAll(ctx, r.warnings);
          for (const e of r.errors) ctx.out.warn(e);
          results.push({ name, allocatedChunks: r.allocated, errors: r.errors, warnings: r.warnings });
          if (verboseOf(ctx, opts)) ctx.out.text(`Device ${name} has ${r.allocated} allocated chunks`);
          if (r.errors.length) {
            failures.push(new GeomError('CHECK', `ALLOCATION TABLE CORRUPTED FOR ${name} (${r.errors.length} problems)`, `run 'geomctl virstor check ${name}'`));
          } else if (verboseOf(ctx, opts)) ctx.out.text(`Allocation table ok for ${name}`);
        } catch (err) {
          if (!(err instanceof GeomError)) throw err;
          failures.push(err);
        }
      }
      ctx.out.document(`virstor ${verb}`, { devices: results });
      finish(failures);
    },
  });
}

const addCommand = defineCommand({
  name: 'add',
  summary: 'add components to a virstor device (gvirstor add)',
  args: '<name> <img...>',
  options: [
    { short: 'f', long: 'force', kind: 'flag', description: 'overwrite GEOM metadata found on a new image' },
    HARDCODE_OPTION,
  ],
  examples: ['geomctl virstor add mydata c2.img'],
  run(ctx, args, opts) {
    const [given, ...images] = args;
    if (given === undefined || images.length === 0) throw new UsageError('virstor add needs a name and at least one image');
    const name = virstorDeviceName(given);
    const r = addComponents(hostOf(ctx, images), name, images, { hardcode: opts.hardcode, force: opts.force });
    warnAll(ctx, r.warnings);
    if (verboseOf(ctx, opts)) ctx.out.text(r.added.map((a) => `Added ${a.path} to ${name} as component ${a.index} (${a.chunkCount} chunks)`).join('\n'));
    ctx.out.document('virstor add', { name, added: r.added });
  },
});

const removeCommand = defineCommand({
  name: 'remove',
  summary: 'remove components that hold no data from a virstor device (gvirstor remove)',
  args: '<name> <img...>',
  options: [],
  examples: ['geomctl virstor remove mydata c2.img'],
  run(ctx, args, opts) {
    const [given, ...images] = args;
    if (given === undefined || images.length === 0) throw new UsageError('virstor remove needs a name and at least one image');
    const name = virstorDeviceName(given);
    const r = removeComponents(hostOf(ctx, images), name, images);
    warnAll(ctx, r.warnings);
    if (verboseOf(ctx, opts)) ctx.out.text(`Removed ${r.removed.join(', ')} from ${name}`);
    ctx.out.document('virstor remove', { name, removed: r.removed, remaining: r.remaining });
  },
});

/**
 * The devices of list and status (by name, "virstor/thin" or "thin"), their
 * warnings reported (ignored images first), and the failures to finish with.
 */
function listed(ctx: Context, args: string[], all: boolean): { devices: VirstorListingDevice[]; failures: GeomError[] } {
  const names = args.map(virstorDeviceName);
  const found = discoverVirstor(hostOf(ctx), names);
  warnAll(ctx, found.ignored.map((i) => i.error.message));
  warnAll(ctx, found.warnings);
  return { devices: shownDevices(found.devices, names, all), failures: found.failures.map((f) => f.error) };
}

const listCommand = defineCommand({
  name: 'list',
  summary: 'list virstor devices, geom(8) style',
  args: '[name...]',
  options: LIST_OPTIONS,
  examples: ['geomctl virstor list', 'geomctl -d /images virstor list mydata', 'geomctl virstor list -a', 'geomctl virstor list virstor/mydata'],
  run(ctx, args, opts) {
    const r = listed(ctx, args, opts.all);
    ctx.out.result('virstor list', { geoms: r.devices.map(virstorListingJson) }, () => renderVirstorList(r.devices, ctx.out.style).replace(/\n$/, ''));
    finish(r.failures);
  },
});

const statusCommand = defineCommand({
  name: 'status',
  summary: 'show the status of virstor devices, geom(8) style',
  args: '[name...]',
  options: STATUS_OPTIONS,
  examples: ['geomctl virstor status', 'geomctl virstor status -as'],
  run(ctx, args, opts) {
    const r = listed(ctx, args, opts.all);
    const rows = r.devices.map(virstorStatusRow);
    ctx.out.result('virstor status', { geoms: r.devices.map(virstorListingJson) }, () => (rows.length ? formatStatus(rows, opts, ctx.out.style) : ''));
    finish(r.failures);
  },
});

const writeCommand = defineCommand({
  name: 'write',
  summary: 'write data into a virstor device, allocating chunks on first write',
  args: '<name>',
  options: [
    { short: 'o', long: 'offset', value: 'offset', kind: 'size', default: 0, description: 'virtual byte offset (a multiple of the sector size)', defaultText: '0' },
    { short: 'i', long: 'input', value: 'file', kind: 'string', description: 'read the data from FILE', defaultText: 'stdin' },
    { long: 'sparse', kind: 'flag', description: 'do not allocate chunks for all-zero input' },
  ],
  examples: ['geomctl virstor write -i disk.raw --sparse mydata', 'echo hello | geomctl virstor write -o 1M mydata'],
  run(ctx, args, opts) {
    const name = needName(args, 'write');
    const { offset, input: inputPath } = opts;
    // The device is opened (and its images validated) before the input: opening a FIFO waits for its writer.
    checkInputPath(inputPath);
    const { dev, provider } = openVirstorProvider(ctx, name, { write: true });
    try {
      checkOffset(dev, offset);
      sayWhenReadingTerminal(ctx, inputPath);
      const input = openInput(inputPath, Math.max(0, dev.size - offset), `virstor ${name}`, dev.engine.providers);
      const progress = ctx.out.progress(`writing ${name}`, input.size);
      try {
        // The provider plans the whole input first (refusing, nothing written, when the free chunks fall short).
        let newChunks = 0;
        let skippedChunks = 0;
        const onPlan = (plan: WritePlan): void => {
          newChunks = plan.allocates;
          skippedChunks = plan.skips;
        };
        const bytes = writeFromFile(provider, input.fd, input.name, offset, (done) => progress.update(done), { sparse: opts.sparse, onPlan });
        progress.stop();
        // One transaction: the map and metadata follow the data; the watermark warnings come here.
        // An empty write commits nothing, not even stale metadata: opening only rolled back.
        if (bytes > 0) provider.flush();
        if (verboseOf(ctx, opts)) ctx.out.text(`Wrote ${byteCount(bytes)} to ${name} (${newChunks} new chunks${skippedChunks ? `, ${skippedChunks} zero chunks skipped` : ''})`);
        ctx.out.document('virstor write', { name, bytes, newChunks, skippedChunks });
      } finally {
        progress.stop();
        input.close();
      }
    } finally {
      // Not provider.close(): that commits, and a write that failed must leave nothing.
      dev.close();
    }
  },
});

/** Refuses an -O that is one of the device's images, or (without -f, `force`) an image of another geom. */
function checkOutputTarget(ctx: Context, dev: VirstorDevice, output: string, force: boolean): void {
  refuseOutput(output, dev.engine.providers, `virstor ${dev.name}`, { force, lookup: hostOf(ctx, [output]) });
}

const readCommand = defineCommand({
  name: 'read',
  summary: 'read data from a virstor device (unallocated chunks read as zeros)',
  args: '<name>',
  options: [
    { short: 'o', long: 'offset', value: 'offset', kind: 'size', default: 0, description: 'virtual byte offset', defaultText: '0' },
    { short: 'l', long: 'length', value: 'length', kind: 'size', description: 'bytes to read', defaultText: 'to the end of the device' },
    { short: 'O', long: 'output', value: 'file', kind: 'string', description: 'write the data to FILE', defaultText: 'stdout' },
    FORCE_OUTPUT_OPTION,
  ],
  examples: ['geomctl virstor read -o 1M -l 4k mydata | hexdump -C'],
  run(ctx, args, opts) {
    const name = needName(args, 'read');
    const { dev, provider } = openVirstorProvider(ctx, name, { write: false });
    try {
      const { offset, length: given, output } = opts;
      if (given === undefined) checkOffset(dev, offset);
      const length = given ?? dev.size - offset;
      if (ctx.out.json && output === undefined) throw new UsageError('virstor read --json needs -O FILE (the data would mix with the JSON document)', 'add -O FILE');
      // Refused before the -O file is touched: an existing one keeps its bytes.
      checkVirtualRange(dev, offset, length, 'read');
      if (output !== undefined) checkOutputTarget(ctx, dev, output, opts.force);
      readOut(ctx, provider, { offset, length }, output, `reading ${name}`);
      ctx.out.document('virstor read', { name, offset, bytes: length });
    } finally {
      provider.close();
    }
  },
});

/** Passes over a smaller map end before a spinner could say anything (cli.md: "longer than a second"). */
const MAP_PROGRESS_MIN = 64 * 1024 * 1024;

/**
 * The spinner of a verb that streams the map (check, map), made on the first
 * report once the total is known, and only when that many map bytes may take
 * a while: a 2 GiB map on a medium whose holes cannot be skipped.
 */
function mapProgress(ctx: Context, label: string): { report: MapProgress; stop(): void } {
  let progress: Progress | undefined;
  return {
    report(done, total) {
      if (!progress) {
        if (total < MAP_PROGRESS_MIN) return;
        progress = ctx.out.progress(label, total);
      }
      progress.update(done);
    },
    stop: () => progress?.stop(),
  };
}

const checkCommand = defineCommand({
  name: 'check',
  summary: 'check the metadata and the allocation map of a virstor device (read-only)',
  args: '<name>',
  options: [],
  examples: ['geomctl virstor check mydata'],
  run(ctx, args) {
    const name = needName(args, 'check');
    const progress = mapProgress(ctx, `checking ${name}`);
    let r: CheckReport;
    try {
      r = checkDevice(hostOf(ctx), name, progress.report);
    } finally {
      progress.stop();
    }
    const style = ctx.out.style;
    const text = [
      ...r.errors.map((e) => `${style.tone('error:', 'bad')} ${e}`),
      ...r.warnings.map((w) => `${style.tone('warning:', 'caution')} ${w}`),
      `virstor ${name}: ${r.allocated} allocated chunks, ${style.tone(`${r.errors.length} errors, ${r.warnings.length} warnings`, r.errors.length ? 'bad' : r.warnings.length ? 'caution' : 'good')}`,
    ];
    ctx.out.result('virstor check', { name, allocatedChunks: r.allocated, errors: r.errors, warnings: r.warnings }, () => text.join('\n'));
    if (r.errors.length) throw new GeomError('CHECK', `virstor ${name} has ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}`);
  },
});

const mapCommand = defineCommand({
  name: 'map',
  summary: 'show the allocated extents: virtual range to component and physical range',
  args: '<name>',
  options: [],
  examples: ['geomctl virstor map mydata', 'geomctl --json virstor map mydata'],
  run(ctx, args) {
    const name = needName(args, 'map');
    const dev = openDevice(ctx, name, { write: false, scan: false });
    const progress = mapProgress(ctx, `reading the map of ${name}`);
    try {
      if (ctx.out.json) {
        // A virtual offset can pass 2^53 (4 GiB chunks, a 16 MiB map): computed exactly, as cli.md's 64-bit rule asks.
        const cs = BigInt(dev.chunkSize);
        const extents = [...mapExtents(dev)].map((e) => ({ ...e, offset: u64Json(BigInt(e.virtualChunk) * cs) }));
        ctx.out.document('virstor map', { name, chunkSize: dev.chunkSize, extents });
        return;
      }
      // Streamed: a large device may have more extents than fit in one string (ora keeps the spinner below them).
      ctx.out.text(ctx.out.style.heading(MAP_HEADER));
      for (const e of mapExtents(dev, progress.report)) ctx.out.text(formatExtent(e, ctx.out.style));
    } finally {
      progress.stop();
      dev.close();
    }
  },
});

const exportCommand = defineCommand({
  name: 'export',
  summary: 'copy the device into a sparse flat file of its virtual size',
  args: '<name>',
  options: [{ short: 'O', long: 'output', value: 'file', kind: 'string', description: 'the file to create' }, FORCE_OUTPUT_OPTION],
  examples: ['geomctl virstor export -O mydata.raw mydata'],
  run(ctx, args, opts) {
    const name = needName(args, 'export');
    const path = opts.output;
    if (path === undefined) throw new UsageError('virstor export needs -O FILE', 'add -O FILE, the flat file to create');
    const { dev, provider } = openVirstorProvider(ctx, name, { write: false });
    try {
      checkOutputTarget(ctx, dev, path, opts.force);
      const r = exportOut(ctx, provider, path, `exporting ${name}`);
      // virsize is whole chunks (virstor label rounds it down), so data bytes are whole chunks too.
      ctx.out.document('virstor export', { name, output: path, bytes: r.bytes, allocatedChunks: r.allocated / dev.chunkSize });
    } finally {
      provider.close();
    }
  },
});


/** The virstor devices among tasted images, for the top-level list and status (src/virstor/discover.ts says which). */
function devicesAmong(ctx: Context, paths: string[], named: string[], all: boolean): { devices: VirstorListingDevice[]; failures: GeomError[] } {
  const { devices, failures, warnings } = devicesAmongImages(discoverVirstor(hostOf(ctx, [], paths), []), named, all);
  warnAll(ctx, warnings);
  return { devices, failures };
}

// The class's part in the top-level dump, list, status and taste.
const virstorTopLevel: ClassTopLevel = {
  className: 'VIRSTOR',
  dump: virstorDump,
  describe(ctx, path, tasted) {
    const md = decodeVirstorMetadata(tasted.sector, path);
    const session = ctx.openSession([path], { write: false });
    try {
      return virstorTasteVerdict(md, session.providers[0] as Provider, ctx.global.ignoreHardcoded);
    } finally {
      session.close();
    }
  },
  list(ctx, paths, named, all) {
    const { devices, failures } = devicesAmong(ctx, paths, named, all);
    return { text: renderVirstorList(devices, ctx.out.style).replace(/\n$/, ''), json: devices.map(virstorListingJson), failures };
  },
  status(ctx, paths, named, all) {
    const { devices, failures } = devicesAmong(ctx, paths, named, all);
    return { rows: devices.map(virstorStatusRow), json: devices.map(virstorListingJson), failures };
  },
};

/** The class as one table (FreeBSD's class_commands[]): every verb, in the order --help lists them. */
export const virstorClass: ClassSpec = {
  name: 'virstor',
  aliases: ['gvirstor'],
  summary: 'thin-provisioned virtual disks (gvirstor): label, write, add, remove, inspect',
  commands: [
    labelCommand,
    clearCommand,
    dumpCommand,
    stopVerb('stop'),
    stopVerb('destroy'),
    addCommand,
    removeCommand,
    listCommand,
    statusCommand,
    writeCommand,
    readCommand,
    checkCommand,
    mapCommand,
    exportCommand,
  ],
  topLevel: virstorTopLevel,
};
