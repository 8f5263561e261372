// System tools some tests need (makefs for real UFS images, mandoc for the
// manual, script for a pseudo-terminal, the shells for completion, ...). On a
// developer's machine a missing tool skips the tests that need it, with a
// warning; under CI=true it fails the test file, naming the package to
// install, so CI can never pass by skipping what matters. .ci/run installs
// every package of PACKAGES.

import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** Each tool the suite runs, and the Debian package that has it (keep .ci/run's list in step). */
export const PACKAGES = {
  makefs: 'makefs',
  mandoc: 'mandoc',
  man: 'man-db',
  script: 'bsdutils',
  flock: 'util-linux',
  bash: 'bash',
  zsh: 'zsh',
  fish: 'fish',
  nbdinfo: 'libnbd-bin',
  nbdcopy: 'libnbd-bin',
  nbddump: 'libnbd-bin',
  strace: 'strace',
  'qemu-img': 'qemu-utils',
  'qemu-io': 'qemu-utils',
} as const;

/** Files some tests load, and their Debian packages (in .ci/run's list too). */
export const FILE_PACKAGES = {
  '/usr/share/bash-completion/bash_completion': 'bash-completion',
} as const;

export type ToolName = keyof typeof PACKAGES;

/** Where a tool may be: PATH, and the sbin directories that are not on every PATH. */
const defaultDirs = (): string[] => [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter((d) => d.startsWith('/'));

function find(name: string, dirs: string[]): string | undefined {
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The absolute path of `name`, or undefined (after a warning) when it is not
 * installed and CI is not set. Under CI=true a missing tool throws: the test
 * file that asked fails, and says what to install.
 */
export function tool(name: ToolName, opts: { env?: NodeJS.ProcessEnv; dirs?: string[] } = {}): string | undefined {
  return find(name, opts.dirs ?? defaultDirs()) ?? missing(name, PACKAGES[name], opts.env ?? process.env);
}

/** The same for a file a package installs: its path, or undefined (or a throw under CI=true). */
export function packagedFile(path: keyof typeof FILE_PACKAGES, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    accessSync(path, constants.R_OK);
    return path;
  } catch {
    return missing(path, FILE_PACKAGES[path], env);
  }
}

function missing(what: string, pkg: string, env: NodeJS.ProcessEnv): undefined {
  const text = `${what} is not installed (Debian package ${pkg}: apt-get install ${pkg}; .ci/run installs it)`;
  if (env.CI === 'true') throw new Error(`${text}; under CI=true the tests that need it fail rather than skip`);
  console.warn(`${text}: skipping the tests that need it`);
  return undefined;
}
