// Runs `geomctl serve` in the background for real-client tests: waits until
// the socket accepts connections (--pidfile is written then), and stops it
// with a signal, returning its exit status and stderr.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './cli.js';

export interface Served {
  child: ChildProcess;
  socket: string;
  uri: string;
  stderr(): string;
  /** Open descriptors of the server process (for leak checks). */
  fds(): number;
  /** Resident set size in KiB. */
  rssKiB(): number;
  stop(signal?: NodeJS.Signals): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

export async function startServe(cwd: string, args: string[], exportName: string, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const socket = join(cwd, `nbd-${Date.now()}-${Math.random().toString(36).slice(2)}.sock`);
  const pidfile = `${socket}.pid`;
  const child = spawn(process.execPath, [BIN, 'serve', '-U', socket, '--pidfile', pidfile, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (status, signal) => resolve({ status, signal })));
  const deadline = Date.now() + 20_000;
  while (!existsSync(pidfile)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    socket,
    uri: `nbd+unix:///${exportName}?socket=${socket}`,
    stderr: () => err,
    fds: () => readdirSync(`/proc/${child.pid}/fd`).length,
    rssKiB: () => {
      const m = /VmRSS:\s+(\d+)/.exec(spawnSync('cat', [`/proc/${child.pid}/status`], { encoding: 'utf8' }).stdout);
      return m ? Number(m[1]) : 0;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const r = await exited;
      return { ...r, stderr: err };
    },
  };
}

