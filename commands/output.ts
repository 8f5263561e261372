// The one output layer (cli.md, "JSON", "Progress"; quality.md, "User
// experience"): text or one JSON document on stdout, warnings and errors on
// stderr, colour only on a terminal without --json/NO_COLOR/--no-color
// (commands/colour.ts decides, per stream), and a progress spinner only on a
// TTY without --json/--quiet. Commands never write to process.stdout/stderr
// themselves.

import type { Ora } from 'ora';
import { humanize } from '../src/util/size.js';
import { writeFully } from '../src/io/output-file.js';
import { IoError, errnoOf } from '../src/errors.js';
import { PLAIN, type TextStyle } from '../src/util/style.js';
import type { StreamStyles } from './colour.js';

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  color: boolean;
  /** How each stream marks up its text (commands/colour.ts streamStyles); plain when not given. */
  styles?: StreamStyles;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

/** A progress report for a long verb: bytes done out of a total, with rate. */
export interface Progress {
  update(done: number): void;
  stop(): void;
}

const SILENT_PROGRESS: Progress = { update() {}, stop() {} };

/** How long an operation runs before its spinner shows a rate. */
const RATE_AFTER_MS = 500;

let stdoutCreated = false;

/**
 * process.stdout, created on first use. Creating it turns a pipe on descriptor
 * 1 non-blocking (libuv), after which the blocking writes of read's data come
 * back short or with EAGAIN: `virstor read | cat` of 1 GiB took 1.9 s instead
 * of 0.8 s. So nothing creates it before something writes through it (and it
 * costs start-up time besides). A reader that goes away
 * (`geomctl dump d.img | head`) is not an error.
 */
export function stdoutStream(): NodeJS.WriteStream {
  if (!stdoutCreated) {
    stdoutCreated = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
    });
  }
  return process.stdout;
}

type OraFactory = (options: { text: string; stream: NodeJS.WriteStream; discardStdin: boolean; color: 'cyan' | false }) => Ora;

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** --no-color / NO_COLOR not given (the spinner's own colour also depends on it). */
  private readonly colorWanted: boolean;
  private readonly streams: { stdout?: NodeJS.WriteStream; stderr?: NodeJS.WriteStream };
  private readonly styles: StreamStyles;
  private jsonWritten = false;
  private oraFactory: OraFactory | undefined;

  constructor(opts: OutputOptions) {
    this.json = opts.json;
    this.quiet = opts.quiet;
    this.streams = { stdout: opts.stdout, stderr: opts.stderr };
    this.colorWanted = opts.color;
    this.styles = opts.styles ?? { stdout: PLAIN, stderr: PLAIN };
  }

  // process.stdout and process.stderr are created on first use (stdoutStream):
  // a stream costs start-up time (a socket on a pipe) that verbs writing their
  // data to descriptor 1 themselves (read, export) never need.
  private get stdout(): NodeJS.WriteStream {
    return this.streams.stdout ?? stdoutStream();
  }

  private get stderr(): NodeJS.WriteStream {
    return this.streams.stderr ?? process.stderr;
  }

  /** How text results mark up headings and status words: PLAIN off a terminal and with --json. */
  get style(): TextStyle {
    return this.json ? PLAIN : this.styles.stdout;
  }

  /**
   * Text lines for stdout (ignored under --json: the command emits its
   * document instead). No text is no output: a listing that finds nothing
   * prints zero bytes, not an empty line.
   */
  text(text: string): void {
    if (this.json || text === '') return;
    this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /**
   * Raw bytes for stdout (dump text, read without -O). Written with a blocking
   * write when stdout is a descriptor: callers may reuse the buffer at once.
   */
  raw(data: Buffer): void {
    // Descriptor 1 itself unless a stream was given: no process.stdout (stdoutStream).
    const given = this.streams.stdout;
    const fd = given === undefined ? 1 : (given as { fd?: unknown }).fd;
    if (typeof fd !== 'number') {
      given?.write(Buffer.from(data));
      return;
    }
    try {
      writeFully(fd, data, null);
    } catch (err) {
      // A full disk or a closed pipe behind stdout is an I/O error, not a bug (main.ts
      // reportError lets a closed pipe go).
      throw new IoError('stdout', 'write', undefined, errnoOf(err), 'check where standard output goes (a full disk?)');
    }
  }

  /** The verb's single JSON document (cli.md: an object with a "command" field). */
  document(command: string, fields: Record<string, unknown>): void {
    if (!this.json) return;
    if (this.jsonWritten) throw new Error('a command wrote two JSON documents');
    this.jsonWritten = true;
    this.stdout.write(`${JSON.stringify({ command, ...fields }, null, 2)}\n`);
  }

  /** Text or JSON, whichever the user asked for. */
  result(command: string, fields: Record<string, unknown>, text: () => string): void {
    if (this.json) this.document(command, fields);
    else this.text(text());
  }

  /** geom's "warning: ..." lines; silenced by --quiet. */
  warn(message: string): void {
    if (this.quiet) return;
    this.stderr.write(`${this.styles.stderr.tone('geomctl: warning:', 'caution')} ${message}\n`);
  }

  /**
   * Informational messages FreeBSD prints to stderr (e.g. gvirstor label's
   * resizing notes); silenced by --quiet, and by --json, whose document
   * carries the same facts (a successful --json command leaves stderr empty).
   */
  note(message: string): void {
    if (this.quiet || this.json) return;
    this.stderr.write(`${message}\n`);
  }

  /**
   * What geomctl is doing that the user must know and that no document
   * carries: it rolled back an earlier command's unfinished transaction, or
   * it waits for input typed at the terminal. "geomctl: ..." on stderr, with
   * --json too; silenced by --quiet alone.
   */
  notice(message: string): void {
    if (this.quiet) return;
    this.stderr.write(`geomctl: ${message}\n`);
  }

  /** Diagnostics that go to stderr whatever the mode (--stats). */
  diagnostic(message: string): void {
    this.stderr.write(`${message}\n`);
  }

  error(message: string): void {
    this.stderr.write(`${this.styles.stderr.tone('geomctl:', 'bad')} ${message}\n`);
  }

  /** Lets main.ts hand over ora lazily: it is loaded only when a spinner can be shown. */
  setSpinnerFactory(factory: OraFactory): void {
    this.oraFactory = factory;
  }

  get canShowProgress(): boolean {
    return this.oraFactory !== undefined && !this.json && !this.quiet && this.stderr.isTTY === true;
  }

  /** A spinner showing `label: done / total (rate)`; silent off a TTY, with --json or --quiet. */
  progress(label: string, total: number): Progress {
    if (!this.canShowProgress || !this.oraFactory) return SILENT_PROGRESS;
    // A pseudo-terminal without a window size (script(1) without a terminal, some CI
    // runners) reports 0 columns: ora divides by them and then clears lines forever.
    if (!this.stderr.columns) (this.stderr as { columns: number }).columns = 80;
    const spinner = this.oraFactory({ text: label, stream: this.stderr, discardStdin: false, color: this.colorWanted ? 'cyan' : false });
    spinner.start();
    const started = Date.now();
    let lastRender = 0;
    return {
      update(done: number) {
        const now = Date.now();
        if (now - lastRender < 100 && done < total) return;
        lastRender = now;
        // A rate measured over a few milliseconds is noise ("100M in 1 ms: 98G/s"):
        // it is shown once the operation has run for RATE_AFTER_MS.
        const elapsed = now - started;
        const rate = elapsed >= RATE_AFTER_MS ? ` (${humanize(Math.round((done * 1000) / elapsed))}/s)` : '';
        spinner.text = `${label}: ${humanize(done)} / ${humanize(total)}${rate}`;
        spinner.render();
      },
      stop() {
        spinner.stop();
      },
    };
  }
}
