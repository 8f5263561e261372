// Commands declared as data, in the spirit of FreeBSD's class_commands[]
// (sbin/geom/core/geom.h): each verb is a CommandSpec — name, arguments,
// options, one-line summary, example, handler — and this module registers
// them with commander. --help, the man page SYNOPSIS and shell completion are
// all derived from the same tables (test/project/manual.test.ts checks the manual and --help).

import type { Command } from 'commander';
import { UsageError, type GeomError } from '../src/errors.js';
import { parseSize, parseSizeBig } from '../src/util/size.js';
import { FREEBSD_MAXPHYS } from '../src/util/maxphys.js';
import type { Output } from './output.js';
import type { Stacks } from '../src/geom/stack.js';
import type { Session } from '../src/engine/session.js';
import type { ClassName, Tasted } from '../src/geom/taste.js';
import type { Tone } from '../src/util/style.js';

interface OptionBase {
  /** Short flag without dash ('s'), or undefined for long-only options. */
  readonly short?: string;
  /** Long name without dashes ('jsize'). Becomes the key in the parsed options (camelCase). */
  readonly long: string;
  readonly description: string;
  /** Shown in --help and the manual; the handler applies it unless `default` is given. */
  readonly defaultText?: string;
}

interface ValueOptionBase<T> extends OptionBase {
  /** Placeholder for the value ('jsize'). */
  readonly value: string;
  /** Given to the handler when the option is absent (then its type has no undefined). */
  readonly default?: T;
  /**
   * Rules of the value beyond its kind (--sectorsize a power of two, --id a
   * u32), applied as the option is parsed: a bad value is a usage error
   * before any image is opened.
   */
  readonly check?: (value: T) => void;
}

/** Given or not: true or false. `no-X` is commander's negation: true when --no-X is given. */
export interface FlagOption extends OptionBase {
  readonly kind: 'flag';
}

/** Free text: a path, an address, a command. */
export interface StringOption extends OptionBase {
  readonly kind: 'string';
  readonly value: string;
}

/** Repeatable text: every occurrence, in order (never undefined: [] when absent). */
export interface ListOption extends OptionBase {
  readonly kind: 'list';
  readonly value: string;
}

/** One word of `choices`; anything else is a usage error listing them. */
export interface EnumOption<C extends string = string> extends OptionBase {
  readonly kind: 'enum';
  readonly value: string;
  readonly choices: readonly C[];
}

/** A whole number, decimal or 0x hex, at most 2^53 - 1: an id, a port, seconds, a percentage. */
export interface CountOption extends ValueOptionBase<number> {
  readonly kind: 'count';
}

/** An expand_number(3) size or offset ("4k", "1M") that must be an exact JavaScript number (< 2^53). */
export interface SizeOption extends ValueOptionBase<number> {
  readonly kind: 'size';
}

/** An expand_number(3) size of a 64-bit on-disk field, as a bigint: up to 2^64 - 1 ("8E"). */
export interface Size64Option extends ValueOptionBase<bigint> {
  readonly kind: 'size64';
}

/**
 * An option and how its value is parsed. Each occurrence is parsed (and
 * checked) as it comes, so an invalid value is refused even when a later
 * occurrence is valid; a bad one is a usage error (exit 2) naming the option.
 */
export type OptionSpec = FlagOption | StringOption | ListOption | EnumOption | CountOption | SizeOption | Size64Option;

/** 'cache-limit' → 'cacheLimit', as commander keys options. */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

/** The value a handler gets for option `O`: parsed, checked, and defaulted when `O` has a default. */
type OptionValue<O extends OptionSpec> = O extends FlagOption
  ? boolean
  : O extends ListOption
    ? string[]
    : O extends EnumOption<infer C>
      ? C | undefined
      : O extends { readonly default: infer D }
        ? D
        : O extends Size64Option
          ? bigint | undefined
          : O extends CountOption | SizeOption
            ? number | undefined
            : string | undefined;

/** A verb's parsed options, keyed by camelCase long name; every verb also has -v. */
export type OptionsOf<Os extends readonly OptionSpec[]> = { readonly [O in Os[number] as Camel<O['long']>]: OptionValue<O> } & { readonly verbose: boolean };

export interface CommandSpec<Os extends readonly OptionSpec[] = readonly OptionSpec[]> {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** One line, shown in listings and --help. */
  readonly summary: string;
  /** Positional arguments in commander syntax: '<dataimg> [jimg]', '<img...>'. */
  readonly args: string;
  readonly options: Os;
  /** At least one example command line, shown in --help and the manual. */
  readonly examples: readonly string[];
  run(ctx: Context, args: string[], opts: OptionsOf<Os>): Promise<void> | void;
}

/**
 * A verb's table entry, its options' types inferred from the literal: the
 * handler gets each value parsed, checked and defaulted by its kind.
 */
export function defineCommand<const Os extends readonly OptionSpec[]>(spec: CommandSpec<Os>): CommandSpec {
  return spec;
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
  /** Counters a class owns (the journal writer's), for --stats after the engine's. */
  addStats<T extends { readonly [K in keyof T]: number }>(counters: T): void;
}

export const DEFAULT_CACHE_LIMIT = 256 * 1024 * 1024;

/** --maxphys: only the values FreeBSD kernels use (cli.md). */
function checkMaxphys(value: number): void {
  if (!FREEBSD_MAXPHYS.includes(value)) {
    throw new UsageError(`--maxphys ${value} is not a maxphys FreeBSD uses`, 'use 1M (FreeBSD 13 and later, 64-bit) or 128k (older or 32-bit kernels)');
  }
}

/** The global options table (cli.md, "Global options"), for commander, help and the manual. */
export const GLOBAL_OPTIONS = [
  { long: 'json', kind: 'flag', description: 'print one JSON document instead of text' },
  { short: 'v', long: 'verbose', kind: 'flag', description: 'more detail' },
  { short: 'q', long: 'quiet', kind: 'flag', description: 'no progress and no warnings (errors still)' },
  { long: 'no-color', kind: 'flag', description: 'plain text (NO_COLOR does the same)' },
  { short: 'd', long: 'dir', value: 'dir', kind: 'list', description: 'taste the images in DIR too, besides the current directory and those of the images named (repeatable; GEOMCTL_PATH adds more)' },
  { long: 'maxphys', value: 'size', kind: 'size', check: checkMaxphys, description: "the FreeBSD kernel's maxphys: 1M (FreeBSD 13+) or 128k", defaultText: '1M; detected on replay' },
  { short: 'H', long: 'ignore-hardcoded', kind: 'flag', description: 'accept components whose hardcoded provider name differs from the image name' },
  { long: 'stats', kind: 'flag', description: "print the flush engine's counters, then the journal writer's or replay's, to stderr after the command" },
  { long: 'cache-limit', value: 'size', kind: 'size', default: DEFAULT_CACHE_LIMIT, description: 'memory limit of the flush engine and journal cache', defaultText: '256M' },
  { long: 'wait', value: 'seconds', kind: 'count', default: 0, description: "wait this long for another geomctl process's lock", defaultText: '0' },
] as const satisfies readonly OptionSpec[];

/** The verbose flag every verb accepts too, so that FreeBSD's combined flags (-fv) parse. */
const VERB_VERBOSE: OptionSpec = { short: 'v', long: 'verbose', kind: 'flag', description: 'more detail' };

export function flagsOf(o: OptionSpec): string {
  const names = [o.short ? `-${o.short}` : undefined, `--${o.long}`].filter(Boolean).join(', ');
  return o.kind === 'flag' ? names : `${names} <${o.value}>`;
}

/** The option as usage errors name it: "-s", or "--sectorsize" for a long-only one. */
function optionName(o: OptionSpec): string {
  return o.short ? `-${o.short}` : `--${o.long}`;
}

/** Where commander keeps an option's value: camelCase, and --no-X under X (false when given). */
function commanderKey(o: OptionSpec): string {
  return camel(o.long.replace(/^no-/, ''));
}

function camel(long: string): string {
  return long.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** A whole number, decimal or 0x hex, that JavaScript holds exactly. */
function parseCount(v: string, what: string): number {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(v)) throw new UsageError(`invalid number '${v}' for ${what}`, 'use a whole number, decimal or 0x hex');
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new UsageError(`number '${v}' for ${what} is too large`, 'use a smaller number');
  return n;
}

/** "'a' or 'b'", "'a', 'b' or 'c'". */
function choicesText(choices: readonly string[]): string {
  const quoted = choices.map((c) => `'${c}'`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}` : (quoted[0] ?? '');
}

/** commander's parser for one occurrence of an option: parse by kind, then the option's own check. */
function optionParser(o: OptionSpec): ((v: string, prev: unknown) => unknown) | undefined {
  const what = optionName(o);
  switch (o.kind) {
    case 'flag':
    case 'string':
      return undefined;
    case 'list':
      return (v, prev) => [...(Array.isArray(prev) ? (prev as string[]) : []), v];
    case 'enum':
      return (v) => {
        if (!o.choices.includes(v)) throw new UsageError(`bad ${o.long} value '${v}' for ${what}`, `options are ${choicesText(o.choices)}`);
        return v;
      };
    case 'count':
      return (v) => checked(o, parseCount(v, what));
    case 'size':
      return (v) => checked(o, parseSize(v, what));
    case 'size64':
      return (v) => checked(o, parseSizeBig(v, what));
  }
}

function checked<T>(o: { check?: (value: T) => void }, value: T): T {
  o.check?.(value);
  return value;
}

/**
 * The values of `specs` in commander's options `merged`, as the handler gets
 * them: flags true or false, lists [] when absent, defaults applied.
 */
export function optionValues<const Os extends readonly OptionSpec[]>(specs: Os, merged: Record<string, unknown>): OptionsOf<Os> {
  const values: Record<string, unknown> = { verbose: merged.verbose === true };
  for (const o of specs) {
    const given = merged[commanderKey(o)];
    const key = camel(o.long);
    if (o.kind === 'flag') values[key] = o.long.startsWith('no-') ? given === false : given === true;
    else if (o.kind === 'list') values[key] = given ?? [];
    else if ('default' in o) values[key] = given ?? o.default;
    else values[key] = given;
  }
  return values as OptionsOf<Os>;
}

/** Adds one OptionSpec to a commander command. */
export function addOption(cmd: Command, o: OptionSpec): void {
  const parser = optionParser(o);
  // A default that depends on other options (journal -s) is applied by the handler; help shows it as text.
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
    parts.push(`[${optionName(o)}${o.kind === 'flag' ? '' : ` ${o.value}`}]`);
  }
  const args = spec.args.replace(/[<>]/g, '').replace(/\.\.\./g, ' ...').trim();
  if (args) parts.push(args);
  return parts.join(' ');
}

function withVerbose(options: readonly OptionSpec[]): readonly OptionSpec[] {
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
    try {
      await spec.run(ctx, args, optionValues(spec.options, merged));
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
