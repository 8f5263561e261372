// geomctl completion bash|zsh|fish: the script is generated from the command
// tables, so bash must complete every class, verb and option they hold; and
// each shell loads it from where the README says to put it.

import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { journalClass } from '../../commands/journal.js';
import { virstorClass } from '../../commands/virstor.js';
import { BIN, geomctl, scratch } from '../helpers/cli.js';
import { packagedFile, tool } from '../helpers/tools.js';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const bashCompletion = packagedFile('/usr/share/bash-completion/bash_completion');
const zsh = tool('zsh');
const fish = tool('fish');

/** Writes `geomctl completion <shell>` where the README says to put it, under a scratch home. */
function install(home: string, shell: string, file: string): void {
  const r = geomctl(['completion', shell]);
  expect(r.status).toBe(0);
  mkdirSync(dirname(`${home}/${file}`), { recursive: true });
  writeFileSync(`${home}/${file}`, r.stdout);
}

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
    const r = geomctl(['completion', 'tcsh']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("geomctl: unknown shell 'tcsh' for completion; use bash, zsh or fish\n");
  });
});

describe('completion installed as the README says', () => {
  const s = scratch('geomctl-compl-home-');
  afterAll(() => s.cleanup());
  const home = s.dir;
  // geomctl on PATH: fish loads a command's completions only for a command it finds.
  mkdirSync(`${home}/bin`);
  symlinkSync(BIN, `${home}/bin/geomctl`);
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: `${home}/.config`, XDG_DATA_HOME: `${home}/.local/share`, PATH: `${home}/bin:${process.env.PATH}` };

  it.skipIf(!bashCompletion)('bash: bash-completion loads ~/.local/share/bash-completion/completions/geomctl on demand', () => {
    install(home, 'bash', '.local/share/bash-completion/completions/geomctl');
    const program = `source ${bashCompletion}; __load_completion geomctl; complete -p geomctl; COMP_WORDS=(geomctl virstor ''); COMP_CWORD=2; _geomctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['-c', program], { env, encoding: 'utf8' });
    expect(r.stdout.split('\n')[0]).toBe('complete -F _geomctl geomctl');
    expect(r.stdout.split('\n')).toEqual(expect.arrayContaining(virstorClass.commands.map((c) => c.name)));
  });

  it.skipIf(!zsh)('zsh: ~/.zshrc sources it after compinit', () => {
    install(home, 'zsh', '.zsh/geomctl.zsh');
    writeFileSync(`${home}/.zshrc`, 'autoload -U compinit && compinit -u\nsource ~/.zsh/geomctl.zsh\n');
    // The bash-style function runs under sh emulation (0-based arrays), as bashcompinit runs it.
    const program = `print -r -- "\${_comps[geomctl]}"; emulate sh -c 'COMP_WORDS=(geomctl journal ""); COMP_CWORD=2; _geomctl; printf "%s\\n" "\${COMPREPLY[@]}"'`;
    const r = spawnSync(zsh!, ['-i', '-c', program], { env: { ...env, ZDOTDIR: home }, encoding: 'utf8', input: '' });
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('_bash_complete -F _geomctl');
    expect(lines).toEqual(expect.arrayContaining(journalClass.commands.map((c) => c.name)));
  });

  it.skipIf(!fish)('fish: ~/.config/fish/completions/geomctl.fish is loaded on demand', () => {
    install(home, 'fish', '.config/fish/completions/geomctl.fish');
    const complete = (line: string) => spawnSync(fish!, ['-c', `complete -C '${line}'`], { env, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    expect(complete('geomctl ')).toEqual(expect.arrayContaining(['journal', 'gvirstor', 'list', 'demo', '--json']));
    expect(complete('geomctl jour')).toEqual(['journal']);
    expect(complete('geomctl -v journal ')).toEqual(expect.arrayContaining(journalClass.commands.map((c) => c.name)));
    const label = complete('geomctl virstor label -');
    for (const o of virstorClass.commands.find((c) => c.name === 'label')!.options) expect(label).toContain(`--${o.long}`);
    // After a verb, images: files are offered too.
    writeFileSync(`${home}/d.img`, '');
    expect(spawnSync(fish!, ['-c', `cd ${home}; complete -C 'geomctl journal dump d'`], { env, encoding: 'utf8' }).stdout).toContain('d.img');
  });
});
