// The manual and --help come from one command table (cli.md, "Manual"): every
// verb's synopsis, as framework.synopsis() derives it from the table, must
// appear in man/geomctl.8's SYNOPSIS, every option in its text, and every verb
// must have an example; the page must be lint-clean under mandoc.

import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GLOBAL_OPTIONS, flagsOf, synopsis } from '../../commands/framework.js';
import { journalClass } from '../../commands/journal.js';
import { virstorClass } from '../../commands/virstor.js';
import { serveCommand } from '../../commands/serve.js';
import { topLevelCommands } from '../../commands/toplevel.js';
import { geomctl } from '../helpers/cli.js';
import { tool } from '../helpers/tools.js';

const PAGE = resolve(__dirname, '../../man/geomctl.8');
const mandoc = tool('mandoc');
const haveMandoc = mandoc !== undefined;

/** The page as plain text, overstrike removed and whitespace folded. */
function rendered(): string {
  const out = execFileSync(mandoc!, ['-Tascii', '-Owidth=400', PAGE], { encoding: 'utf8' });
  return out.replace(/.\x08/g, '').replace(/\s+/g, ' ');
}

describe.skipIf(!haveMandoc)('man/geomctl.8', () => {
  it('is lint-clean at warning level', () => {
    const r = spawnSync(mandoc!, ['-Tlint', '-Wwarning', PAGE], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  const text = haveMandoc ? rendered() : '';
  for (const cls of [journalClass, virstorClass]) {
    for (const spec of cls.commands) {
      it(`documents ${cls.name} ${spec.name}: synopsis, options, an example`, () => {
        expect(text).toContain(`geomctl ${cls.name} ${synopsis(spec)}`);
        for (const o of spec.options) expect(text).toContain(o.short ? `-${o.short}` : `--${o.long}`);
        expect(text).toMatch(new RegExp(`geomctl (\\S+ )*${cls.name} ${spec.name}\\b`));
      });
    }
  }

  for (const spec of topLevelCommands([journalClass, virstorClass])) {
    it(`documents the top-level ${spec.name}: synopsis and options`, () => {
      expect(text).toContain(`geomctl ${synopsis(spec)}`);
      for (const o of spec.options) expect(text).toContain(o.short ? `-${o.short}` : `--${o.long}`);
    });
  }

  it('documents serve: every option and an example', () => {
    expect(text).toContain('geomctl serve');
    for (const o of serveCommand.options) expect(text).toContain(o.short ? `-${o.short}` : `--${o.long}`);
    expect(text).toMatch(/geomctl serve --run/);
  });

  it('documents every global option', () => {
    for (const o of GLOBAL_OPTIONS) expect(text).toContain(`--${o.long}`);
  });

  it.each(['EXIT STATUS', 'ENVIRONMENT', 'FILES', 'EXAMPLES', 'SEE ALSO', 'COMPATIBILITY', 'BUGS'])('has a %s section', (section) => {
    expect(text).toContain(section);
  });
});

describe('--help', () => {
  for (const cls of [journalClass, virstorClass]) {
    for (const spec of cls.commands) {
      it(`${cls.name} ${spec.name} --help has the summary, every option with its default, and an example`, () => {
        const r = geomctl([cls.name, spec.name, '--help']);
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/Examples?:\n {2}geomctl /);
        // commander wraps at the terminal width: compare with white space folded.
        const help = r.stdout.replace(/\s+/g, ' ');
        const names = [spec.name, ...(spec.aliases ?? [])].join('|'); // commander shows aliases as stop|destroy
        expect(help).toContain(`Usage: geomctl ${cls.name} ${names}${synopsis(spec).slice(spec.name.length)}`);
        expect(help).toContain(spec.summary);
        for (const o of spec.options) {
          expect(help).toContain(flagsOf(o).split(' <')[0]);
          if (o.defaultText) expect(help).toContain(o.defaultText.replace(/\s+/g, ' '));
        }
      });
    }
  }
});
