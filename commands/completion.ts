// geomctl completion bash|zsh: a completion script generated from the same
// command tables as --help and the manual, so it can never list a verb or an
// option that does not exist.

import { UsageError } from '../src/errors.js';
import { GLOBAL_OPTIONS, type ClassSpec, type CommandSpec, type OptionSpec } from './framework.js';

function optionWords(options: OptionSpec[]): string[] {
  return options.flatMap((o) => [o.short ? `-${o.short}` : undefined, `--${o.long}`]).filter((w): w is string => w !== undefined);
}

/** Words completed after `geomctl`, after `geomctl <class>`, and after each verb. */
export function completionTable(classes: ClassSpec[], topLevel: CommandSpec[]): Map<string, string[]> {
  const globals = [...optionWords(GLOBAL_OPTIONS), '--help', '--version'];
  const table = new Map<string, string[]>();
  table.set('', [...classes.flatMap((c) => [c.name, ...c.aliases]), ...topLevel.map((c) => c.name), ...globals]);
  for (const cls of classes) {
    const verbs = cls.commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    for (const name of [cls.name, ...cls.aliases]) {
      table.set(name, verbs);
      for (const verb of cls.commands) {
        const words = [...optionWords(verb.options), ...globals];
        for (const v of [verb.name, ...(verb.aliases ?? [])]) table.set(`${name} ${v}`, words);
      }
    }
  }
  for (const verb of topLevel) table.set(verb.name, [...optionWords(verb.options), ...globals]);
  return table;
}

function bashScript(table: Map<string, string[]>): string {
  const cases = [...table].map(([key, words]) => `    ${JSON.stringify(key)}) words=${JSON.stringify(words.join(' '))} ;;`).join('\n');
  return `# bash completion for geomctl; load with: source <(geomctl completion bash)
_geomctl() {
  local cur key="" i w words
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if [ -z "$key" ]; then key="$w"; elif [ "\${key#* }" = "$key" ]; then key="$key $w"; fi
  done
  case "$key" in
${cases}
    *) words="" ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  [ \${#COMPREPLY[@]} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _geomctl geomctl
`;
}

function zshScript(table: Map<string, string[]>): string {
  return `#compdef geomctl
# zsh completion for geomctl; load with: source <(geomctl completion zsh)
autoload -U bashcompinit && bashcompinit
${bashScript(table)}`;
}

export function completionCommand(classes: ClassSpec[], topLevel: () => CommandSpec[]): CommandSpec {
  return {
    name: 'completion',
    summary: 'print a shell completion script for bash or zsh',
    args: '<shell>',
    options: [],
    examples: ['source <(geomctl completion bash)'],
    run(ctx, args) {
      const table = completionTable(classes, topLevel());
      const shell = args[0];
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`unknown shell '${shell}' for completion`, 'use bash or zsh');
      const script = shell === 'bash' ? bashScript(table) : zshScript(table);
      ctx.out.result('completion', { shell, script }, () => script);
    },
  };
}
