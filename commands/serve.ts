// geomctl serve: any provider over NBD (serve.md), with nbdkit's and
// qemu-nbd's command line. The provider is resolved by name (providers.md,
// "Naming a provider"): an existing file is served as an image; otherwise
// `virstor/NAME` is a virstor device and `X.journal` the journal on data
// image X (a leading /dev/ is dropped). The server runs until SIGINT or
// SIGTERM, `--once`'s first disconnect, or `--run`'s command ending.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeomError, UsageError } from '../src/errors.js';
import { checkDeviceName } from '../src/geom/device-name.js';
import { NbdServer, exportInfo, type Listen } from '../src/nbd/server.js';
import { humanize } from '../src/util/size.js';
import { defineCommand } from './framework.js';
import { openProvider } from './providers.js';

/** kern.geom.journal's defaults (g_journal.c: g_journal_switch_time, g_journal_force_switch). */
const DEFAULT_SWITCH_TIME = 10;
const DEFAULT_FORCE_SWITCH = 70;

function checkPort(port: number): void {
  if (port > 65535) throw new UsageError(`-p ${port} is not a TCP port`, 'use 0..65535 (10809 is NBD\'s)');
}

function checkSwitchTime(seconds: number): void {
  if (seconds < 1) throw new UsageError(`--switch-time ${seconds} is too short`, 'give at least 1 second');
}

function checkForceSwitch(percent: number): void {
  if (percent < 1 || percent > 100) throw new UsageError(`--force-switch ${percent} is not a percentage`, 'give 1..100');
}

function where({ unix, port, ipaddr }: { unix: string | undefined; port: number | undefined; ipaddr: string | undefined }): { listen: Listen; cleanup?: () => void } {
  if (unix !== undefined && port !== undefined) throw new UsageError('-U and -p exclude each other', 'serve on a Unix socket or on TCP');
  if (port !== undefined) return { listen: { port, host: ipaddr ?? '127.0.0.1' } };
  if (unix !== undefined) {
    if (existsSync(unix)) throw new GeomError('REFUSED', `${unix} already exists`, 'remove it if no server uses it, or give another -U path');
    return { listen: { unix }, cleanup: () => rmSync(unix, { force: true }) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'geomctl-serve-'));
  return { listen: { unix: join(dir, 'nbd.sock') }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function uriOf(listen: Listen, exportName: string, port: number | undefined): string {
  const path = encodeURI(exportName);
  if ('unix' in listen) return `nbd+unix:///${path}?socket=${listen.unix}`;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `nbd://${host}:${port}/${path}`;
}

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve an image, journal or virstor provider over NBD (nbd-client, qemu, nbdcopy, nbdinfo)',
  args: '<provider>',
  options: [
    { short: 'U', long: 'unix', value: 'socket', kind: 'string', description: 'listen on this Unix socket', defaultText: 'one in a fresh temporary directory' },
    { short: 'p', long: 'port', value: 'port', kind: 'count', check: checkPort, description: "listen on TCP (NBD's port is 10809)" },
    { short: 'i', long: 'ipaddr', value: 'addr', kind: 'string', description: 'the address -p binds (there is no authentication)', defaultText: '127.0.0.1' },
    { short: 'r', long: 'readonly', kind: 'flag', description: 'a read-only export; shared locks on the images' },
    { short: 'e', long: 'exportname', value: 'name', kind: 'string', description: 'the export name', defaultText: 'the provider name' },
    { long: 'run', value: 'cmd', kind: 'string', description: 'captive mode: run CMD with $uri, $unixsocket, $port and $nbd set, stop when it exits, exit with its status' },
    { long: 'once', kind: 'flag', description: 'stop after the first client disconnects' },
    { long: 'pidfile', value: 'file', kind: 'string', description: 'write the pid here once connections are accepted' },
    { long: 'switch-time', value: 'seconds', kind: 'count', default: DEFAULT_SWITCH_TIME, check: checkSwitchTime, description: "journal: switch this often while records are pending (kern.geom.journal.switch_time)", defaultText: String(DEFAULT_SWITCH_TIME) },
    { long: 'force-switch', value: 'percent', kind: 'count', default: DEFAULT_FORCE_SWITCH, check: checkForceSwitch, description: 'journal: switch once the active journal fills this much of the journal space (kern.geom.journal.force_switch)', defaultText: String(DEFAULT_FORCE_SWITCH) },
  ],
  examples: ['geomctl serve --run \'nbdinfo "$uri"\' virstor/thin', 'geomctl serve -U /tmp/thin.sock virstor/thin', 'geomctl serve -r -p 10809 data.img.journal'],
  async run(ctx, args, opts) {
    const name = args[0];
    if (name === undefined || args.length !== 1) throw new UsageError('serve needs exactly one provider', "e.g. 'geomctl serve virstor/thin'");
    const { switchTime, forceSwitch, exportname: exportName } = opts;
    // A name the user gives follows FreeBSD's device names (the default, the provider name, may hold virstor/).
    if (exportName !== undefined) checkDeviceName(exportName, 'export name (-e)');
    const { listen, cleanup } = where(opts);
    const provider = openProvider(ctx, name, { write: !opts.readonly, switchTime, forceSwitch });
    const exp = exportInfo(provider, exportName ?? provider.name);
    const verbose = ctx.global.verbose;
    let stopRequested: (() => void) | undefined;
    const stopped = new Promise<void>((resolve) => {
      stopRequested = resolve;
    });
    const server = new NbdServer(provider, exp, {
      ...(verbose ? { log: (line: string) => ctx.out.diagnostic(`serve: ${line}`) } : {}),
      ...(opts.once ? { disconnected: () => stopRequested?.() } : {}),
    });
    try {
      await server.listen(listen);
    } catch (err) {
      provider.close();
      cleanup?.();
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new GeomError('REFUSED', `cannot listen on ${'unix' in listen ? listen.unix : `${listen.host}:${listen.port}`} (${why})`, 'choose another -U path or -p port');
    }
    const uri = uriOf(listen, exp.name, server.port);
    const { pidfile } = opts;
    if (pidfile) writeFileSync(pidfile, `${process.pid}\n`);
    const socket = 'unix' in listen ? listen.unix : undefined;
    // The line a script reads the URI from (serve.md); with --json, the document instead.
    if (ctx.out.json) ctx.out.document('serve', { uri, exportName: exp.name, size: exp.size, ...(socket ? { socket } : { port: server.port }) });
    else if (!ctx.global.quiet) ctx.out.error(`serving ${provider.name} (${humanize(provider.mediaSize)}) at ${uri}`);

    const ticker = setInterval(() => {
      try {
        provider.tick?.();
      } catch (err) {
        ctx.out.warn(`serve: background work failed: ${(err as Error).message}`);
        stopRequested?.();
      }
    }, 1000);
    const onSignal = (): void => stopRequested?.();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    let exitStatus = 0;
    const { run } = opts;
    if (run !== undefined) {
      const env = { ...process.env, uri, nbd: uri, unixsocket: socket ?? '', port: server.port === undefined ? '' : String(server.port) };
      const child = spawn('/bin/sh', ['-c', run], { stdio: 'inherit', env });
      child.on('exit', (code, signal) => {
        exitStatus = code ?? (signal ? 128 : 1);
        stopRequested?.();
      });
      child.on('error', () => {
        exitStatus = 127;
        stopRequested?.();
      });
    }
    await stopped;
    clearInterval(ticker);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    try {
      await server.stop();
    } finally {
      cleanup?.();
      if (pidfile) rmSync(pidfile, { force: true });
    }
    // main.ts keeps a status set here: --run exits with its command's status, as nbdkit does.
    if (exitStatus !== 0) process.exitCode = exitStatus;
  },
});
