// Colour on a terminal (issue 12; geomctl(8), ENVIRONMENT): decided once per
// stream — stdout for results, stderr for errors and warnings — by geomctl
// itself rather than by chalk's auto-detection, so that the rule is one
// place and testable. A stream is coloured when it is a terminal (and TERM
// is not "dumb"), unless --json, --no-color or a non-empty NO_COLOR
// (no-color.org) says otherwise; FORCE_COLOR, in chalk's convention, replaces
// the terminal test: 0 or "false" turns colour off, 1 to 3 (or "true", or
// empty) turns it on off a terminal too. chalk is loaded only when some
// stream is coloured: scripts and pipes never pay for it at start-up.

import { isatty } from 'node:tty';
import { PLAIN, type TextStyle, type Tone } from '../src/util/style.js';

/** chalk's colour levels: 0 none, 1 the 16 basic colours, 2 256 colours, 3 truecolor. */
export type ColourLevel = 0 | 1 | 2 | 3;

/** FORCE_COLOR as chalk (supports-color) reads it; undefined when it is not set. */
export function forcedLevel(env: NodeJS.ProcessEnv): ColourLevel | undefined {
  const value = env.FORCE_COLOR;
  if (value === undefined) return undefined;
  if (value === '' || value === 'true') return 1;
  if (value === 'false') return 0;
  const n = Number.parseInt(value, 10);
  // supports-color colours on any other word ("yes"): forced on, at the basic level.
  if (Number.isNaN(n)) return 1;
  return Math.max(0, Math.min(n, 3)) as ColourLevel;
}

/** The level for descriptor `fd` (1 stdout, 2 stderr); `wanted` is false under --json, --no-color and NO_COLOR. */
export function colourLevel(fd: 1 | 2, wanted: boolean, env: NodeJS.ProcessEnv): ColourLevel {
  if (!wanted) return 0;
  const forced = forcedLevel(env);
  if (forced !== undefined) return forced;
  // The basic colours are all geomctl uses: a higher level would change nothing.
  return isatty(fd) && env.TERM !== 'dumb' ? 1 : 0;
}

/** Whether the user's options and environment allow colour at all: no --json, no --no-color, no NO_COLOR. */
export function colourWanted(opts: { json: boolean; color: boolean }, env: NodeJS.ProcessEnv): boolean {
  // NO_COLOR counts when it is set and not empty (no-color.org).
  return !opts.json && opts.color && (env.NO_COLOR ?? '') === '';
}

export interface StreamStyles {
  stdout: TextStyle;
  stderr: TextStyle;
}

/** The styles of stdout and stderr: PLAIN for a stream without colour, chalk's markup for one with. */
export async function streamStyles(wanted: boolean, env: NodeJS.ProcessEnv): Promise<StreamStyles> {
  const stdout = colourLevel(1, wanted, env);
  const stderr = colourLevel(2, wanted, env);
  if (stdout === 0 && stderr === 0) return { stdout: PLAIN, stderr: PLAIN };
  const { Chalk } = await import('chalk');
  const styleOf = (level: ColourLevel): TextStyle => {
    if (level === 0) return PLAIN;
    const c = new Chalk({ level });
    const tones: Record<Tone, (text: string) => string> = { good: c.green, caution: c.yellow, bad: c.red };
    // Colours that say nothing good or bad, so that a column is not read as a status;
    // the last column (map's file) keeps the terminal's own colour.
    const columns = [c.cyan, c.magenta, c.blue];
    return {
      tone: (text, tone) => tones[tone](text),
      heading: (text) => c.bold(text),
      column: (text, index) => columns[index]?.(text) ?? text,
    };
  };
  return { stdout: styleOf(stdout), stderr: styleOf(stderr) };
}
