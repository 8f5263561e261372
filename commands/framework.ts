// Commands declared as data, in the spirit of FreeBSD's class_commands[]
// (sbin/geom/core/geom.h): each verb is a CommandSpec — name, arguments,
// options, one-line summary, example, handler — and this module registers
// them with commander. --help, the man page SYNOPSIS and shell completion are
// all derived from the same tables (test/manual.test.ts checks the manual and --help).

import type { Command } from 'commander';
import { UsageError, type GeomError } from '../src/errors.js';
import { parseSize, parseSizeBig } from '../src/size.js';
import type { Output } from './output.js';
import type { Stacks } from '../src/geom/stack.js';
import type { Session } from '../src/session.js';
import type { ClassName, Tasted } from '../src/taste.js';
import type { Tone } from '../src/style.js';

/**
 * How an option's value is parsed: 'size' is an expand_number(3) size that
 * must be an exact JavaScript number, 'bigsize' one that may go beyond 2^53
 * (a bigint: virstor's virtual size). Each occurrence is parsed as it comes,
 * so an invalid value is refused even when a later occurrence is valid.
 */
export type OptionKind = 'flag' | 'size' | 'bigsize' | 'int' | 'string' | 'list';

export interface OptionSpec {
  /** Short flag without dash ('s'), or undefined for long-only options. */
  short?: string;
  /** Long name without dashes ('jsize'). Becomes the key in the parsed options (camelCase). */
  long: string;
  /** Placeholder for options that take a value ('jsize'); absent for flags. */
  value?: string;
  kind: OptionKind;
  description: string;
  /** Shown in --help and the manual; the handler applies it. */
  defaultText?: string;
}

export interface CommandSpec {
  name: string;
  aliases?: string[];
  /** One line, shown in listings and --help. */
  summary: string;
  /** Positional arguments in commander syntax: '<dataimg> [jimg]', '<img...>'. */
  args: string;
  options: OptionSpec[];
  /** At least one example command line, shown in --help and the manual. */
  examples: string[];
  run(ctx: Context, args: string[], opts: ParsedOptions): Promise<void> | void;
}

/** A class's table: declared once as a literal, never changed after (readonly). */
export interface ClassSpec {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
  /** What the top-level verbs (dump, list, status, taste) ask of the class. */
  readonly topLevel?: ClassTopLevel;
}

/** One geom in geom(8)'s status table: "Name  Status  Components". */
export interface StatusRow {
  /** The geom's provider, or the geom's own name when it has none (an incomplete device). */
  name: string;
  /** The geom's name: the Name column of `status -g`. */
  geom: string;
  /** Whether the geom offers a provider: without -a, list and status show only those (geom(8)). */
  hasProvider: boolean;
  status: string;
  /** What the status means (its colour on a terminal). */
  tone: Tone;
  components: string[];
}

/** How list and status choose and lay out geoms: geom(8)'s `list [-a]` and `status [-ags]`. */
export interface ListingFlags {
  /** -a: also geoms without a provider. */
  all: boolean;
  /** -g: one row per geom, by geom name, instead of per provider. */
  geoms: boolean;
  /** -s: no header, no padding, name and status on every component's line. */
  script: boolean;
}

/**
 * The class's part in the top-level verbs (cli.md, "Top-level verbs"). Each
 * function gets the images that tasted as this class and returns data; the
 * top-level verb prints text or one JSON document for all classes together.
 */
export interface ClassTopLevel {
  className: ClassName;
  /** dump of one image: FreeBSD's text and its JSON form. Throws a GeomError on bad metadata. */
  dump(ctx: Context, path: string): { text: string; json: Record<string, unknown> };
  /**
   * Every geom of this class found among the tasted `candidates` (images with
   * this class's magic), in geom(8) list form — only those with a component in
   * `named` when it is not empty; without `all` (-a) and nothing named, only
   * those that offer a provider, as geom(8) lists. Warnings go to ctx.out; `failures` are
   * what went wrong with named images (reported after the listing, exit 1).
   */
  list(ctx: Context, candidates: string[], named: string[], all: boolean): { text: string; json: Record<string, unknown>[]; failures?: GeomError[] };
  /** The same geoms as status rows. */
  status(ctx: Context, candidates: string[], named: string[], all: boolean): { rows: StatusRow[]; json: Record<string, unknown>[]; failures?: GeomError[] };
  /** For taste: the geom name the image belongs to and why it would be ignored, if it would. */
  describe(ctx: Context, path: string, tasted: Tasted): { name: string; ignored?: string };
}

export type ParsedOptions = Record<string, string | number | bigint | boolean | string[] | undefined>;

/** The global options of cli.md, after parsing and defaults. */
export interface GlobalOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
  dirs: string[];
  maxphys: number | undefined;
  ignoreHardcoded: boolean;
  stats: boolean;
  cacheLimit: number;
  wait: number;
}

export interface Context {
  global: GlobalOptions;
  out: Output;
  /**
   * Opens images — or providers of geoms, stacked on them — through the flush
   * engine with the global options applied (locks, --wait, cache limit,
   * recovery): src/geom/stack.ts. `above`: the provider the verb's geom offers
   * (a path lying on it is a loop).
   */
  openSession(paths: string[], opts: { write: boolean; above?: string }): Session;
  /** The command's tasting graph and stack opener (providers.md, "Tasting and stacks"). */
  stacks: Stacks;
}

export const DEFAULT_CACHE_LIMIT = 256 * 1024 * 1024;

/** The global options table (cli.md, "Global options"), for commander, help and the manual. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  { long: 'json', kind: 'flag', description: 'print one JSON document instead of text' },
  { short: 'v', long: 'verbose', kind: 'flag', description: 'more detail' },
  { short: 'q', long: 'quiet', kind: 'flag', description: 'no progress and no warnings (errors still)' },
  { long: 'no-color', kind: 'flag', description: 'plain text (NO_COLOR does the same)' },
  { short: 'd', long: 'dir', value: 'dir', kind: 'list', description: 'taste the images in DIR too, besides the current directory and those of the images named (repeatable; GEOMCTL_PATH adds more)' },
  { long: 'maxphys', value: 'size', kind: 'size', description: "the FreeBSD kernel's maxphys: 1M (FreeBSD 13+) or 128k", defaultText: '1M; detected on replay' },
  { short: 'H', long: 'ignore-hardcoded', kind: 'flag', description: 'accept components whose hardcoded provider name differs from the image name' },
  { long: 'stats', kind: 'flag', description: "print the flush engine's counters to stderr after the command" },
  { long: 'cache-limit', value: 'size', kind: 'size', description: 'memory limit of the flush engine and journal cache', defaultText: '256M' },
  { long: 'wait', value: 'seconds', kind: 'int', description: "wait this long for another geomctl process's lock", defaultText: '0' },
];

/** The verbose flag every verb accepts too, so that FreeBSD's combined flags (-fv) parse. */
const VERB_VERBOSE: OptionSpec = { short: 'v', long: 'verbose', kind: 'flag', description: 'more detail' };

export function flagsOf(o: OptionSpec): string {
  const names = [o.short ? `-${o.short}` : undefined, `--${o.long}`].filter(Boolean).join(', ');
  return o.value ? `${names} <${o.value}>` : names;
}

function camel(long: string): string {
  return long.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function optionParser(o: OptionSpec): ((v: string, prev: unknown) => unknown) | undefined {
  const what = o.short ? `-${o.short}` : `--${o.long}`;
  switch (o.kind) {
    case 'size':
      return (v) => parseSize(v, what);
    case 'bigsize':
      return (v) => parseSizeBig(v, what);
    case 'int':
      return (v) => {
        if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) throw new UsageError(`invalid number '${v}' for ${what}`, 'use a whole number, decimal or 0x hex');
        const n = Number(v);
        if (!Number.isSafeInteger(n)) throw new UsageError(`number '${v}' for ${what} is too large`, 'use a smaller number');
        return n;
      };
    case 'list':
      return (v, prev) => [...(Array.isArray(prev) ? (prev as string[]) : []), v];
    default:
      return undefined;
  }
}

/** Adds one OptionSpec to a commander command. */
export function addOption(cmd: Command, o: OptionSpec): void {
  const parser = optionParser(o);
  // Defaults are applied by the handlers (some depend on other options); help shows them as text.
  const description = o.defaultText ? `${o.description} (default: ${o.defaultText})` : o.description;
  if (parser) cmd.option(flagsOf(o), description, parser);
  else cmd.option(flagsOf(o), description);
}

/** Whether a verb uses -h itself (label and add: hardcode), so help is --help only. */
function usesShortH(spec: CommandSpec): boolean {
  return spec.options.some((o) => o.short === 'h');
}

/** The verb's synopsis line, FreeBSD style: "label [-cfhv] [-s jsize] dataimg [jimg]". */
export function synopsis(spec: CommandSpec): string {
  const opts = withVerbose(spec.options);
  const flags = opts.filter((o) => o.kind === 'flag' && o.short).map((o) => o.short).sort().join('');
  const parts = [spec.name];
  if (flags) parts.push(`[-${flags}]`);
  for (const o of opts) {
    if (o.kind === 'flag' && o.short) continue;
    parts.push(`[${o.short ? `-${o.short}` : `--${o.long}`}${o.value ? ` ${o.value}` : ''}]`);
  }
  const args = spec.args.replace(/[<>]/g, '').replace(/\.\.\./g, ' ...').trim();
  if (args) parts.push(args);
  return parts.join(' ');
}

function withVerbose(options: OptionSpec[]): OptionSpec[] {
  return options.some((o) => o.long === 'verbose') ? options : [...options, VERB_VERBOSE];
}

export interface RegisterHooks {
  /** Builds the Context for a verb from commander's merged options. */
  makeContext(merged: Record<string, unknown>): Promise<Context> | Context;
  /** Runs after the handler (e.g. --stats). */
  after(ctx: Context): void;
}

/** Registers one verb on a commander parent (a class command or the program itself). */
export function registerCommand(parent: Command, spec: CommandSpec, hooks: RegisterHooks): Command {
  const cmd = parent.command(spec.name).description(spec.summary);
  // The Usage line is the manual's SYNOPSIS line: both come from synopsis().
  cmd.usage(synopsis(spec).slice(spec.name.length + 1));
  for (const alias of spec.aliases ?? []) cmd.alias(alias);
  if (usesShortH(spec)) cmd.helpOption('--help', 'display help for the command');
  for (const a of spec.args.split(/\s+/).filter(Boolean)) cmd.argument(a);
  for (const o of withVerbose(spec.options)) addOption(cmd, o);
  cmd.addHelpText('after', `\nExample${spec.examples.length > 1 ? 's' : ''}:\n${spec.examples.map((e) => `  ${e}`).join('\n')}\n`);
  cmd.action(async (...actionArgs: unknown[]) => {
    const command = actionArgs[actionArgs.length - 1] as Command;
    const merged = command.optsWithGlobals();
    const args = command.args.length ? flattenArgs(actionArgs.slice(0, -2)) : [];
    const ctx = await hooks.makeContext(merged);
    const local: ParsedOptions = {};
    for (const o of withVerbose(spec.options)) {
      const key = camel(o.long);
      local[key] = merged[key] as ParsedOptions[string];
    }
    try {
      await spec.run(ctx, args, local);
    } finally {
      hooks.after(ctx);
    }
  });
  return cmd;
}

function flattenArgs(values: unknown[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    if (Array.isArray(v)) out.push(...(v as string[]));
    else if (typeof v === 'string') out.push(v);
  }
  return out;
}
