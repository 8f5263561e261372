// Opening images and providers for a command (providers.md, "Naming a
// provider on the command line", "Tasting and stacks", "Crash safety across
// layers"). A verb names images or providers; a provider name that is not a
// file is resolved through the tasting graph to the geoms below it, down to
// the images at the bottom. One session — one lock set, one recovery, one
// flush engine, one undo log — covers every bottom image of the command; the
// geoms in between are opened over views of it, lowest first, and the class
// of the verb gets an engine whose images are what it named.
//
// Unstacked commands (every name a file) get the plain session, unchanged.

import { journaledProviderName, JOURNAL_SUFFIX, VIRSTOR_PREFIX, withoutDev } from './device-name.js';
import { GeomError } from '../errors.js';
import { candidateImages } from './candidates.js';
import type { Session } from '../engine/session.js';
import { providerView, type Provider } from '../provider/provider.js';
import type { Engine } from '../engine/types.js';
import { JournalDevice } from '../journal/device.js';
import { journalLayer } from '../journal/layer.js';
import { openVirstor } from '../virstor/device.js';
import type { VirstorHost, VirstorSession } from '../virstor/host.js';
import { virstorLayer } from '../virstor/layer.js';
import { MAX_STACK_DEPTH, tasteGraph, type GraphProvider, type StackGraph } from './graph.js';
import { StackEngine, type Layer } from './stack-engine.js';
import { isFile } from './naming.js';

export interface StackOptions {
  /** The places tasted (cli.md, "Tasting"). */
  dirs: string[];
  ignoreHardcoded: boolean;
  cacheLimit: number;
  maxphys: number | undefined;
  /** The plain session over image files (src/engine/session.ts openSession with the command's options). */
  openImages(paths: string[], write: boolean): Session;
  /** Opens an image read-only, unlocked, for tasting. */
  probeImage(path: string): Provider;
  warn(message: string): void;
}

/** A name resolved down to the images: a bottom image, or a geom's provider over what it consumes. */
type Resolved = { image: string } | { provider: GraphProvider; below: Resolved[] };

export class Stacks {
  private tasted: StackGraph | undefined;

  constructor(private readonly o: StackOptions) {}

  /** The graph of the tasted places and `named` (built once per command, then reused). */
  graph(named: readonly string[] = []): StackGraph {
    const files = named.filter(isFile);
    if (this.tasted && files.every((f) => this.tasted?.get(f))) return this.tasted;
    this.tasted?.close();
    this.tasted = tasteGraph(candidateImages(files, this.o.dirs), (p) => this.o.probeImage(p));
    for (const name of this.tasted.tooDeep) this.o.warn(`${name}: not assembled: stacks are at most ${MAX_STACK_DEPTH} levels deep`);
    return this.tasted;
  }

  /** Forget the graph: a command changed what the images carry (a label, a stop). */
  forget(): void {
    this.tasted?.close();
    this.tasted = undefined;
  }

  /** The geom's provider `arg` names, if it is one (and not a file). */
  providerOf(arg: string): GraphProvider | undefined {
    if (isFile(arg)) return undefined;
    const name = withoutDev(arg);
    if (!name.startsWith(VIRSTOR_PREFIX) && !name.endsWith(JOURNAL_SUFFIX)) return undefined;
    const g = this.graph();
    const exact = g.get(name);
    if (exact) return exact;
    // "data.img.journal" names imgs/data.img.journal when that is the only one so named.
    const matches = g.offered.filter((p) => p.kind === 'journal' && p.name.endsWith(`/${name}`));
    return matches.length === 1 ? matches[0] : undefined;
  }

  /**
   * What a command tastes: the images named and those of the places tasted
   * (candidates.ts), then the providers assembled from them — a journal may
   * lie on virstor/thin, a virstor component may be data.img.journal — each once.
   */
  candidates(named: readonly string[] = []): string[] {
    return [...new Set([...candidateImages([...named], this.o.dirs), ...this.graph(named).offered.map((p) => p.name)])];
  }

  /** An image or provider opened read-only for tasting; close() it. */
  probe(arg: string): Provider {
    if (!this.providerOf(arg)) return this.o.probeImage(arg);
    const session = this.openSession([arg], { write: false });
    return providerView(session.providers[0] as Provider, { close: () => session.close() });
  }

  /**
   * A session over `paths`, each an image or a provider. `above` is the
   * provider the session's class will offer (virstor/thin for virstor thin's
   * components): a path that lies on it is a loop.
   */
  openSession(paths: string[], opts: { write: boolean; above?: string }): Session {
    const resolved = paths.map((p) => this.resolve(p, opts.above === undefined ? [] : [opts.above]));
    if (resolved.every((r) => 'image' in r)) return this.o.openImages(paths, opts.write);
    const bottomPaths: string[] = [];
    const collect = (r: Resolved): void => {
      if ('image' in r) bottomPaths.push(r.image);
      else r.below.forEach(collect);
    };
    resolved.forEach(collect);
    const bottom = this.o.openImages(bottomPaths, opts.write);
    try {
      const builder = new StackBuilder(bottom.engine, this.o, opts.write);
      const routes = resolved.map((r) => builder.route(r));
      const engine = new StackEngine(bottom.engine, routes, builder.layers);
      return { engine, providers: [...engine.providers], recovered: bottom.recovered, close: () => bottom.close() };
    } catch (err) {
      bottom.close();
      throw err;
    }
  }

  private resolve(arg: string, chain: string[]): Resolved {
    const p = this.providerOf(arg);
    if (!p) return { image: arg };
    const path = [...chain, p.name];
    if (chain.includes(p.name)) {
      throw new GeomError('REFUSED', `a loop of providers: ${path.join(' → ')}`, 'a geom cannot consume its own provider; name another image');
    }
    if (path.length > MAX_STACK_DEPTH) throw new GeomError('REFUSED', `a stack deeper than ${MAX_STACK_DEPTH} levels: ${path.join(' → ')}`);
    return { provider: p, below: p.consumers.map((c) => this.resolve(c, path)) };
  }
}

/** Opens the geoms of resolved names over one bottom engine, lowest first, each once. */
class StackBuilder {
  /** Every layer opened, lowest first. */
  readonly layers: Layer[] = [];
  private readonly byName = new Map<string, Layer>();
  private readonly bottomIndex = new Map<string, number>();
  private next = 0;

  constructor(
    private readonly bottom: Engine,
    private readonly o: StackOptions,
    private readonly write: boolean,
  ) {}

  route(r: Resolved): { image: number } | { layer: Layer } {
    if ('image' in r) {
      let i = this.bottomIndex.get(r.image);
      if (i === undefined) {
        i = this.next++;
        this.bottomIndex.set(r.image, i);
      }
      return { image: i };
    }
    const below = r.below.map((b) => this.route(b));
    const known = this.byName.get(r.provider.name);
    if (known) return { layer: known };
    const view = (routes: ({ image: number } | { layer: Layer })[]): StackEngine => new StackEngine(this.bottom, routes, [...this.layers]);
    const layer = r.provider.kind === 'journal' ? this.journal(r.provider, view(below)) : this.virstor(r.provider, r.provider.consumers, below, view);
    this.layers.push(layer);
    this.byName.set(r.provider.name, layer);
    return { layer };
  }

  private journal(p: GraphProvider, engine: StackEngine): Layer {
    // GEOM names it after its data provider: data.img.journal, virstor/thin.journal.
    const name = journaledProviderName((engine.providers[0] as Provider).name);
    const dev = JournalDevice.open(engine, { cacheLimit: this.o.cacheLimit, maxphys: this.o.maxphys, ignoreHardcoded: this.o.ignoreHardcoded });
    for (const w of dev.warnings) this.o.warn(w);
    // A journal's provider is announced after its replay (the kernel's g_journal_sync at start).
    if (this.write) dev.recover(false);
    return journalLayer(dev, { name, path: p.name }, this.write);
  }

  private virstor(p: GraphProvider, names: readonly string[], below: ({ image: number } | { layer: Layer })[], view: (routes: ({ image: number } | { layer: Layer })[]) => StackEngine): Layer {
    const routeOf = new Map(names.map((n, i) => [n, below[i] as { image: number } | { layer: Layer }]));
    const host: VirstorHost = {
      candidates: names,
      ignoreHardcoded: this.o.ignoreHardcoded,
      probe: (name) => {
        const r = routeOf.get(name);
        if (!r) throw new GeomError('NOT_FOUND', `${name} is not below ${p.name}`);
        return providerView(view([r]).providers[0] as Provider, { close: () => {} });
      },
      openSession: (paths): VirstorSession => {
        const engine = view(paths.map((n) => routeOf.get(n) as { image: number } | { layer: Layer }));
        return { engine, providers: engine.providers, recovered: [], close: () => {} };
      },
    };
    const dev = openVirstor(host, p.name.slice(VIRSTOR_PREFIX.length), { write: this.write, scan: this.write });
    for (const w of dev.warnings) this.o.warn(w);
    return virstorLayer(dev, (w) => this.o.warn(w));
  }
}

