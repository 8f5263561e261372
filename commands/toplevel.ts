// The top-level verbs (cli.md, "Top-level verbs"): taste, dump, list and
// status over images of any class. Tasting is done here; each class turns the
// images that carry its magic into dump text, listings and status rows.

import { GeomError } from '../src/errors.js';
import { dumpImages, finish, keepTasteFailure } from './each.js';
import { tasteProvider, type ClassName, type Tasted } from '../src/geom/taste.js';
import { defineCommand, type ClassSpec, type ClassTopLevel, type CommandSpec, type Context, type StatusRow } from './framework.js';
import { formatStatus, LIST_OPTIONS, STATUS_OPTIONS } from './list-status.js';
import { imagesOf } from '../src/geom/naming.js';
import { demoCommand } from './demo.js';
import { serveCommand } from './serve.js';
import { completionCommand } from './completion.js';

interface TasteResult {
  path: string;
  tasted?: Tasted;
  error?: GeomError;
}

/** Reads each image's last sector under a shared lock; errors are kept per image. */
function tasteAll(ctx: Context, paths: string[]): TasteResult[] {
  return paths.map((path) => {
    try {
      const session = ctx.openSession([path], { write: false });
      try {
        const provider = session.providers[0];
        const tasted = provider ? tasteProvider(provider) : undefined;
        return tasted ? { path, tasted } : { path };
      } finally {
        session.close();
      }
    } catch (err) {
      if (err instanceof GeomError) return { path, error: err };
      throw err;
    }
  });
}

function hooksFor(classes: ClassSpec[]): Map<ClassName, ClassTopLevel> {
  const map = new Map<ClassName, ClassTopLevel>();
  for (const cls of classes) if (cls.topLevel) map.set(cls.topLevel.className, cls.topLevel);
  return map;
}

function noMetadata(path: string): GeomError {
  return new GeomError('NO_METADATA', `${path}: no GEOM metadata found (tried sector sizes 512 to 65536)`, "label it with 'geomctl journal label' or 'geomctl virstor label'");
}


function tasteCommand(classes: ClassSpec[]): CommandSpec {
  return {
    name: 'taste',
    summary: 'show which class, sector size and geom each image belongs to',
    args: '<img...>',
    options: [],
    examples: ['geomctl taste data.img journal.img c0.img'],
    run(ctx, args) {
      const hooks = hooksFor(classes);
      const failures: GeomError[] = [];
      const rows: Record<string, unknown>[] = [];
      const lines: string[] = [];
      for (const r of tasteAll(ctx, args)) {
        if (r.error) {
          failures.push(r.error);
          continue;
        }
        if (!r.tasted) {
          rows.push({ path: r.path, class: null });
          lines.push(`${r.path}: no GEOM metadata`);
          continue;
        }
        const hook = hooks.get(r.tasted.className);
        let described: { name: string; ignored?: string };
        try {
          described = hook ? hook.describe(ctx, r.path, r.tasted) : { name: '' };
        } catch (err) {
          if (!(err instanceof GeomError)) throw err;
          described = { name: '', ignored: err.message };
        }
        rows.push({ path: r.path, class: r.tasted.className, sectorSize: r.tasted.sectorSize, name: described.name, ignored: described.ignored ?? null });
        const ignored = described.ignored ? `; ignored: ${described.ignored}` : '';
        lines.push(`${r.path}: ${r.tasted.className} (sector size ${r.tasted.sectorSize})${described.name ? `, ${described.name}` : ''}${ignored}`);
      }
      ctx.out.result('taste', { images: rows }, () => lines.join('\n'));
      finish(failures);
    },
  };
}

function dumpCommand(classes: ClassSpec[]): CommandSpec {
  return {
    name: 'dump',
    summary: 'print the GEOM metadata of each image, whatever its class',
    args: '<img...>',
    options: [],
    examples: ['geomctl dump data.img c0.img'],
    run(ctx, args) {
      const hooks = hooksFor(classes);
      dumpImages(ctx, 'dump', args, (path) => {
        const [r] = tasteAll(ctx, [path]);
        if (r?.error) throw r.error;
        if (!r?.tasted) throw noMetadata(path);
        const hook = hooks.get(r.tasted.className);
        if (!hook) throw new GeomError('NO_METADATA', `${path}: ${r.tasted.className} metadata has no class module in this build`);
        const d = hook.dump(ctx, path);
        return { text: d.text, json: { class: r.tasted.className, ...d.json } };
      });
    },
  };
}

/**
 * The images list and status are asked about: each argument an image, or a
 * provider name standing for the images below it (src/geom/naming.ts).
 */
function namedImages(ctx: Context, args: string[]): string[] {
  return args.flatMap((arg) => {
    // A provider stacked on providers stands for those (the geoms list them as its consumers).
    const stacked = ctx.stacks.providerOf(arg);
    if (stacked && stacked.consumers.some((c) => ctx.stacks.providerOf(c))) return [...stacked.consumers];
    const r = imagesOf(arg, ctx.global.dirs, (p) => ctx.stacks.probe(p));
    if (r.warning !== undefined) ctx.out.warn(r.warning);
    return r.paths;
  });
}

/** Groups the tasted candidates by class for list and status. */
function tastedByClass(ctx: Context, named: string[]): { byClass: Map<ClassName, string[]>; failures: GeomError[] } {
  const byClass = new Map<ClassName, string[]>();
  const failures: GeomError[] = [];
  for (const r of tasteAll(ctx, ctx.stacks.candidates(named))) {
    if (r.error) {
      keepTasteFailure(failures, named, r.path, r.error);
      continue;
    }
    if (!r.tasted) {
      if (named.includes(r.path)) failures.push(noMetadata(r.path));
      continue;
    }
    const list = byClass.get(r.tasted.className) ?? [];
    list.push(r.path);
    byClass.set(r.tasted.className, list);
  }
  return { byClass, failures };
}

function listCommand(classes: ClassSpec[]): CommandSpec {
  return defineCommand({
    name: 'list',
    summary: 'list every journal and virstor geom found by tasting, geom(8) style',
    args: '[img...]',
    options: LIST_OPTIONS,
    examples: ['geomctl list', 'geomctl -d /images list -a', 'geomctl list virstor/thin data.img.journal'],
    run(ctx, args, opts) {
      const named = namedImages(ctx, args);
      const { all } = opts;
      const { byClass, failures } = tastedByClass(ctx, named);
      const texts: string[] = [];
      const geoms: Record<string, unknown>[] = [];
      for (const [cls, paths] of byClass) {
        const hook = hooksFor(classes).get(cls);
        if (!hook) continue;
        const r = hook.list(ctx, paths, named, all);
        failures.push(...(r.failures ?? []));
        if (r.text) texts.push(r.text);
        geoms.push(...r.json.map((g) => ({ class: cls, ...g })));
      }
      ctx.out.result('list', { geoms }, () => texts.join('\n'));
      finish(failures);
    },
  });
}

function statusCommand(classes: ClassSpec[]): CommandSpec {
  return defineCommand({
    name: 'status',
    summary: 'show the status of every journal and virstor geom found by tasting',
    args: '[img...]',
    options: STATUS_OPTIONS,
    examples: ['geomctl status', 'geomctl status -s virstor/thin'],
    run(ctx, args, opts) {
      const named = namedImages(ctx, args);
      const { byClass, failures } = tastedByClass(ctx, named);
      const rows: StatusRow[] = [];
      const geoms: Record<string, unknown>[] = [];
      for (const [cls, paths] of byClass) {
        const hook = hooksFor(classes).get(cls);
        if (!hook) continue;
        const r = hook.status(ctx, paths, named, opts.all);
        failures.push(...(r.failures ?? []));
        rows.push(...r.rows);
        geoms.push(...r.json.map((g) => ({ class: cls, ...g })));
      }
      ctx.out.result('status', { geoms }, () => (rows.length ? formatStatus(rows, opts, ctx.out.style) : ''));
      finish(failures);
    },
  });
}

export function topLevelCommands(classes: ClassSpec[]): CommandSpec[] {
  const verbs: CommandSpec[] = [tasteCommand(classes), dumpCommand(classes), listCommand(classes), statusCommand(classes), serveCommand, demoCommand];
  return [...verbs, completionCommand(classes, () => verbs)];
}
