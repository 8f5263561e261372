// geomctl's entry: builds the commander program from the command tables,
// parses, runs one verb, and maps every outcome to an exit status through the
// single top-level handler (cli.md, "Exit status and messages"): 0 success,
// 1 failure, 2 usage error; one "geomctl: ..." line per error on stderr and no
// stack trace unless GEOMCTL_DEBUG=1.

import { fstatSync, statSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { Command, CommanderError } from 'commander';
import { GeomError, IoError, PartialFailure } from '../src/errors.js';
import { openSession, type Session } from '../src/engine/session.js';
import { tasteDirs } from '../src/geom/candidates.js';
import { Stacks } from '../src/geom/stack.js';
import { ImagePool } from '../src/provider/pool.js';
import { GLOBAL_OPTIONS, addOption, optionValues, registerCommand, type ClassSpec, type Context, type GlobalOptions } from './framework.js';
import { Output, stdoutStream } from './output.js';
import { colourWanted, streamStyles } from './colour.js';
import { formatCounters, formatStats } from './stats.js';
import { journalClass } from './journal.js';
import { virstorClass } from './virstor.js';
import { topLevelCommands } from './toplevel.js';
import { nativeStatus } from '../src/platform/fs-ext.js';
import { lockMethod } from '../src/platform/lock.js';

declare const GEOMCTL_VERSION: string;

export const CLASSES: ClassSpec[] = [journalClass, virstorClass];

function globalsFrom(merged: Record<string, unknown>, env: NodeJS.ProcessEnv): GlobalOptions {
  const g = optionValues(GLOBAL_OPTIONS, merged);
  return {
    json: g.json,
    verbose: g.verbose,
    quiet: g.quiet,
    // NO_COLOR does what --no-color does when it is set and not empty (no-color.org).
    color: !g.noColor && (env.NO_COLOR ?? '') === '',
    dirs: tasteDirs(g.dir, env),
    maxphys: g.maxphys,
    ignoreHardcoded: g.ignoreHardcoded,
    stats: g.stats,
    cacheLimit: g.cacheLimit,
    wait: g.wait,
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The Context main.ts makes: it keeps what --stats prints after the command. */
interface CommandContext extends Context {
  sessions: Session[];
  classStats: Record<string, number>[];
}

async function makeContext(merged: Record<string, unknown>): Promise<Context> {
  const global = globalsFrom(merged, process.env);
  const styles = await streamStyles(colourWanted(global, process.env), process.env);
  const out = new Output({ json: global.json, quiet: global.quiet, color: global.color, styles });
  // A -d (or GEOMCTL_PATH) directory that is not there tastes nothing: say so rather than list nothing.
  for (const dir of global.dirs) if (!isDirectory(dir)) out.warn(`${dir}: no such directory; no images are tasted there (check -d and GEOMCTL_PATH)`);
  // A terminal is a character device: the cheap fstat first spares scripts (stderr a
  // pipe or a file) the creation of process.stderr, which Output also leaves until used.
  if (!global.json && !global.quiet && stderrIsCharacterDevice() && process.stderr.isTTY) {
    // ora is loaded only when a spinner can be shown: start-up stays fast for scripts.
    const { default: ora } = await import('ora');
    out.setSpinnerFactory((o) => ora({ ...o, isEnabled: true }));
  }
  const sessions: Session[] = [];
  const pool = new ImagePool();
  const stacks = new Stacks({
    dirs: global.dirs,
    ignoreHardcoded: global.ignoreHardcoded,
    cacheLimit: global.cacheLimit,
    maxphys: global.maxphys,
    openImages(paths, write) {
      const session = openSession(paths, { write, wait: global.wait, cacheLimit: global.cacheLimit, dirs: global.dirs, open: (path, w) => pool.session(path, w), progress: (label, total) => out.progress(label, total) });
      // A rollback changed the images (back to before a command that was killed): say so.
      for (const log of session.recovered) out.notice(`rolled back an unfinished transaction (undo log ${shownPath(log)}): its images are as they were before the command that was interrupted`);
      return session;
    },
    probeImage: (path) => pool.probe(path),
    warn: (message) => out.warn(message),
  });
  const classStats: Record<string, number>[] = [];
  const ctx: CommandContext = {
    global,
    out,
    sessions,
    classStats,
    stacks,
    addStats(counters) {
      classStats.push({ ...counters });
    },
    openSession(paths, opts) {
      const session = stacks.openSession(paths, opts);
      sessions.push(session);
      return session;
    },
  };
  return ctx;
}

/** A path as short as it can be said: relative to the working directory when it lies under it. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** fstat of descriptor 2; false when it is closed (`2>&-`) rather than a crash at start-up. */
function stderrIsCharacterDevice(): boolean {
  try {
    return fstatSync(2).isCharacterDevice();
  } catch {
    return false;
  }
}

function afterCommand(context: Context): void {
  const ctx = context as CommandContext;
  if (ctx.global.stats) {
    for (const s of ctx.sessions) for (const line of formatStats(s.engine.stats)) ctx.out.diagnostic(line);
    for (const counters of ctx.classStats) for (const line of formatCounters(counters)) ctx.out.diagnostic(line);
  }
}

/**
 * The commander program for the command line `argv`. A class's verbs are
 * registered only when `argv` names the class (or an alias): nothing else on
 * the line can reach them, and building commander commands for every verb of
 * every class cost start-up time for nothing (quality.md, "Performance").
 * The class itself is always there, for the top-level help and suggestions.
 */
export function buildProgram(argv: readonly string[]): Command {
  const program = new Command('geomctl')
    .description("FreeBSD's GEOM journal and virstor classes for disk images, offline")
    .version(GEOMCTL_VERSION, '--version', 'print the version')
    .helpOption('--help', 'display help')
    .usage('[global options] <class> <verb> [options] [args] | list|status|dump|taste|serve|demo|completion [args]')
    .showSuggestionAfterError(true)
    .exitOverride()
    // Help and --version go through stdoutStream, which creates process.stdout only then.
    .configureOutput({ writeOut: (text) => stdoutStream().write(text), outputError: () => {} });
  for (const o of GLOBAL_OPTIONS) addOption(program, o);
  const hooks = { makeContext, after: afterCommand };
  for (const cls of CLASSES) {
    const classCmd = program.command(cls.name).description(cls.summary).helpOption('--help', 'display help');
    for (const alias of cls.aliases) classCmd.alias(alias);
    if (![cls.name, ...cls.aliases].some((name) => argv.includes(name))) continue;
    for (const spec of cls.commands) registerCommand(classCmd, spec, hooks);
  }
  for (const spec of topLevelCommands(CLASSES)) registerCommand(program, spec, hooks);
  // Every subcommand inherits exitOverride and the silent error output; its
  // usage errors point at its own --help ("see 'geomctl journal label --help'").
  const inherit = (cmd: Command, path: string): void => {
    for (const sub of cmd.commands) {
      const name = `${path} ${sub.name()}`;
      sub
        .exitOverride((err) => {
          throw Object.assign(err, { helpCommand: name });
        })
        .configureOutput({ outputError: () => {} });
      inherit(sub, name);
    }
  };
  inherit(program, 'geomctl');
  return program;
}

function usageHint(err: CommanderError & { helpCommand?: string }): string {
  const text = err.message.replace(/^error: /, '').replace(/\.$/, '');
  return `${text}; see '${err.helpCommand ?? 'geomctl'} --help'`;
}

/** The single top-level handler: every outcome becomes an exit status here. */
export function reportError(err: unknown, out: Output): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    out.error(usageHint(err));
    return 2;
  }
  if (err instanceof PartialFailure) {
    for (const f of err.failures) out.error(f.line);
    return 1;
  }
  // A reader that goes away (`geomctl virstor read vs | head`) is not an error, as for
  // stream writes (output.ts stdoutStream): the data was only ever read.
  if (err instanceof IoError && err.image === 'stdout' && err.errno === 'EPIPE') return 0;
  if (err instanceof GeomError) {
    out.error(err.line);
    if (process.env.GEOMCTL_DEBUG === '1' && err.stack) out.diagnostic(err.stack);
    return err.exitStatus;
  }
  const message = err instanceof Error ? err.message : String(err);
  out.error(`internal error: ${message} (please report it; GEOMCTL_DEBUG=1 shows where)`);
  if (process.env.GEOMCTL_DEBUG === '1' && err instanceof Error && err.stack) out.diagnostic(err.stack);
  return 1;
}

/**
 * `geomctl --version -v`: the version, the Node.js running it, and how this
 * run locks images and finds holes — which depends on whether the optional
 * native module fs-ext loads here (src/platform/fs-ext.ts).
 */
function verboseVersion(): string {
  const native = nativeStatus();
  const holes = native.loaded ? 'lseek(2) SEEK_DATA/SEEK_HOLE through fs-ext' : 'found by reading the images';
  return [
    `geomctl ${GEOMCTL_VERSION}`,
    `node ${process.versions.node} (${process.platform} ${process.arch})`,
    `native: ${native.loaded ? `fs-ext ${native.version}` : `none; ${native.reason}`}`,
    `locks: ${lockMethod()}`,
    `holes: ${holes}`,
  ].join('\n') + '\n';
}

const VERBOSE = ['-v', '--verbose'];

export async function main(argv: string[]): Promise<number> {
  // commander prints --version as soon as it meets it, before it could see -v.
  if (argv.includes('--version') && argv.some((a) => VERBOSE.includes(a))) {
    stdoutStream().write(verboseVersion());
    return 0;
  }
  const program = buildProgram(argv);
  if (argv.length === 0) {
    program.outputHelp();
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return reportError(err, await errorOutput(argv));
  }
}

/**
 * The output that reports a failed command: its errors are red on a
 * terminal. Options may not have been parsed (a usage error), so --json and
 * --no-color are looked for on the command line itself, up to "--".
 */
async function errorOutput(argv: readonly string[]): Promise<Output> {
  const end = argv.indexOf('--');
  const options = end === -1 ? argv : argv.slice(0, end);
  const wanted = colourWanted({ json: options.includes('--json'), color: !options.includes('--no-color') }, process.env);
  return new Output({ json: false, quiet: false, color: wanted, styles: await streamStyles(wanted, process.env) });
}

main(process.argv.slice(2)).then(
  (code) => {
    // A verb may have set its own status (serve --run: its command's).
    process.exitCode = code !== 0 ? code : (process.exitCode ?? 0);
  },
  (err: unknown) => {
    process.exitCode = reportError(err, new Output({ json: false, quiet: false, color: false }));
  },
);
