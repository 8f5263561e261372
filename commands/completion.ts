// geomctl completion bash|zsh|fish: a completion script generated from the
// same command tables as --help and the manual, so it can never list a verb or
// an option that does not exist. README says where each shell looks for it.

import { UsageError } from '../src/errors.js';
import { GLOBAL_OPTIONS, type ClassSpec, type CommandSpec, type OptionSpec } from './framework.js';

function optionWords(options: readonly OptionSpec[]): string[] {
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

/** A word or key as a fish single-quoted string (the table holds no quotes, but stay safe). */
const fishQuote = (w: string): string => `'${w.replace(/[\\']/g, (c) => `\\${c}`)}'`;

/**
 * fish: the key (class, then verb) from the words before the cursor that are
 * not options, as bash's; its words are offered, and files too once a verb
 * (or a top-level verb) is named, since that is where images go.
 */
function fishScript(table: Map<string, string[]>, classNames: string[]): string {
  const cases = [...table].map(([key, words]) => `        case ${fishQuote(key)}\n            printf '%s\\n' ${words.map(fishQuote).join(' ')}`).join('\n');
  return `# fish completion for geomctl; install with:
#   geomctl completion fish > ~/.config/fish/completions/geomctl.fish
function __geomctl_key
    set -l key ''
    for w in (commandline -opc)[2..-1]
        string match -q -- '-*' $w; and continue
        if test -z "$key"
            set key $w
        else if not string match -q -- '* *' $key
            set key "$key $w"
        end
    end
    echo $key
end
function __geomctl_words
    switch (__geomctl_key)
${cases}
    end
end
function __geomctl_takes_files
    set -l key (__geomctl_key)
    test -n "$key"; and not contains -- $key ${classNames.map(fishQuote).join(' ')}
end
complete -c geomctl -f
complete -c geomctl -a '(__geomctl_words)'
complete -c geomctl -n __geomctl_takes_files -F
`;
}

const SHELLS = ['bash', 'zsh', 'fish'] as const;

export function completionCommand(classes: ClassSpec[], topLevel: () => CommandSpec[]): CommandSpec {
  return {
    name: 'completion',
    summary: 'print a shell completion script for bash, zsh or fish',
    args: '<shell>',
    options: [],
    examples: ['source <(geomctl completion bash)'],
    run(ctx, args) {
      const table = completionTable(classes, topLevel());
      const shell = SHELLS.find((s) => s === args[0]);
      if (!shell) throw new UsageError(`unknown shell '${args[0]}' for completion`, 'use bash, zsh or fish');
      const script = shell === 'bash' ? bashScript(table) : shell === 'zsh' ? zshScript(table) : fishScript(table, classes.flatMap((c) => [c.name, ...c.aliases]));
      ctx.out.result('completion', { shell, script }, () => script);
    },
  };
}
