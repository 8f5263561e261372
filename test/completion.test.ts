// geomctl completion bash|zsh: the script is generated from the command
// tables, so bash must complete every class, verb and option they hold.

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { journalClass } from '../commands/journal.js';
import { virstorClass } from '../commands/virstor.js';
import { geomctl, scratch } from './helpers/cli.js';
import { writeFileSync } from 'node:fs';

/** Asks bash for the completions of `words` (the last one being completed) with the generated script. */
function complete(script: string, words: string[]): string[] {
  const s = scratch('geomctl-compl-');
  try {
    writeFileSync(s.path('c.bash'), script);
    const line = ['geomctl', ...words];
    const program = `source ${s.path('c.bash')}; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _geomctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['-c', program], { cwd: s.dir, encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean);
  } finally {
    s.cleanup();
  }
}

describe('completion', () => {
  const bash = geomctl(['completion', 'bash']);

  it('prints a bash script, and a zsh one', () => {
    expect(bash.status).toBe(0);
    expect(bash.stdout).toContain('complete -F _geomctl geomctl');
    const zsh = geomctl(['completion', 'zsh']);
    expect(zsh.status).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef geomctl/);
  });

  it('completes classes and top-level verbs', () => {
    expect(complete(bash.stdout, [''])).toEqual(expect.arrayContaining(['journal', 'gjournal', 'virstor', 'gvirstor', 'list', 'status', 'dump', 'taste', 'demo', '--json']));
  });

  it('completes every verb and its options from the command tables', () => {
    for (const cls of [journalClass, virstorClass]) {
      expect(complete(bash.stdout, [cls.name, ''])).toEqual(expect.arrayContaining(cls.commands.map((c) => c.name)));
      for (const verb of cls.commands) {
        const got = complete(bash.stdout, [cls.name, verb.name, '-']);
        for (const o of verb.options) expect(got).toContain(`--${o.long}`);
        expect(got).toContain('--json');
      }
    }
  });

  it('refuses an unknown shell with a usage error', () => {
    const r = geomctl(['completion', 'fish']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^geomctl: unknown shell 'fish'/);
  });
});
