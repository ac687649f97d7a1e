import { Argument, type Command, type Option } from 'commander';
import type { Io } from './policy.js';

/**
 * `mcp-warden completion bash|zsh|fish`: a completion script generated from the commander tree, so
 * a new command, option or choice completes without touching this file. What a value completes to
 * comes from the tree too: its choices, else file names when the value's name (`<file>`, `<path>`,
 * `<file|url>`, an argument called `spec` or `file`) says it is one, directories for `<dir>`.
 */

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

type Value = { kind: 'choices'; choices: string[] } | { kind: 'file' } | { kind: 'dir' } | { kind: 'any' };

interface Flag {
  short?: string;
  long?: string;
  description: string;
  /** Absent for a switch. An optional value (`[x]`) completes as a switch: its next word may not be its. */
  value?: Value;
}

interface Node {
  /** Subcommand names from the root, joined by one space ('' for the root). */
  path: string;
  subcommands: Array<{ name: string; description: string }>;
  flags: Flag[];
  /** Positional arguments in order; a variadic last one repeats. */
  args: Value[];
  variadic: boolean;
}

// Every word the scripts emit outside a description; anything else would need quoting in three shells.
const TOKEN = /^[A-Za-z0-9_.@%+,/=-]+$/;

function token(s: string): string {
  if (!TOKEN.test(s)) throw new Error(`completion: "${s}" is not a plain word, cannot emit it`);
  return s;
}

function valueKind(name: string, choices: readonly string[] | undefined): Value {
  if (choices?.length) return { kind: 'choices', choices: choices.map(token) };
  const words = name.toLowerCase().split(/[^a-z]+/);
  if (words.some((w) => w === 'dir' || w === 'directory')) return { kind: 'dir' };
  if (words.some((w) => w === 'file' || w === 'path' || w === 'spec')) return { kind: 'file' };
  return { kind: 'any' };
}

function flagOf(o: Option): Flag {
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1] ?? '';
  return {
    ...(o.short ? { short: token(o.short) } : {}),
    ...(o.long ? { long: token(o.long) } : {}),
    description: o.description,
    ...(o.required ? { value: valueKind(valueName, o.argChoices) } : {}),
  };
}

const oneLine = (s: string) => s.split('\n')[0]!.trim();

/** The command tree as the scripts need it, root first, each command before its subcommands. */
function commandTree(program: Command): Node[] {
  const nodes: Node[] = [];
  const visit = (cmd: Command, path: string) => {
    const help = cmd.createHelp();
    const subs = help.visibleCommands(cmd);
    const args = cmd.registeredArguments;
    nodes.push({
      path,
      subcommands: subs.map((c) => ({
        name: token(c.name()),
        description: oneLine(c.summary() || c.description()),
      })),
      flags: help.visibleOptions(cmd).map(flagOf),
      args: args.map((a) => valueKind(a.name(), a.argChoices)),
      variadic: args.at(-1)?.variadic ?? false,
    });
    // Hidden commands are neither listed nor walked; the implicit `help` is listed, not walked.
    for (const c of subs.filter((s) => cmd.commands.includes(s)))
      visit(c, path ? `${path} ${c.name()}` : c.name());
  };
  visit(program, '');
  return nodes;
}

export function completionScript(program: Command, shell: Shell): string {
  const prog = token(program.name());
  const fn = prog.replace(/[^A-Za-z0-9]/g, '_');
  const nodes = commandTree(program);
  if (shell === 'bash') return bash(prog, fn, nodes);
  if (shell === 'zsh') return zsh(prog, fn, nodes);
  return fish(prog, fn, nodes);
}

/** Registers `completion <shell>` on the program it completes. */
export function addCompletion(program: Command, io: Io): void {
  program
    .command('completion')
    .description('Print a shell completion script (see docs/cli.md to install it).')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: Shell) => {
      io.stdout(completionScript(program, shell));
    });
}

// --- shared by the scripts -------------------------------------------------------------------

const names = (f: Flag) => [f.short, f.long].filter((n): n is string => n !== undefined);
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A value kind as the bash and zsh scripts encode it in REPLY. */
const kind = (v: Value) => (v.kind === 'choices' ? `choices ${v.choices.join(' ')}` : v.kind);

/** `case` arms: `'key') REPLY=value ;;`. */
const arms = (entries: Array<[string, string]>, indent: string) =>
  entries.map(([k, v]) => `${indent}${sq(k)}) REPLY=${sq(v)} ;;`).join('\n');

function valueArms(nodes: Node[], indent: string): string {
  const entries: Array<[string, string]> = [];
  for (const n of nodes)
    for (const f of n.flags)
      if (f.value) for (const name of names(f)) entries.push([`${n.path}|${name}`, kind(f.value)]);
  return arms(entries, indent);
}

function argArms(nodes: Node[], indent: string): string {
  const lines: string[] = [];
  for (const n of nodes) {
    n.args.forEach((a, i) => {
      if (a.kind !== 'any') lines.push(`${indent}${sq(`${n.path}|${i}`)}) REPLY=${sq(kind(a))} ;;`);
    });
    const last = n.args.at(-1);
    // Later positions of a variadic argument: any index not matched above.
    if (n.variadic && last && last.kind !== 'any')
      lines.push(`${indent}${sq(`${n.path}|`)}*) REPLY=${sq(kind(last))} ;;`);
  }
  return lines.join('\n');
}

const header = (shell: Shell, prog: string) =>
  `# ${shell} completion for ${prog}, generated by \`${prog} completion ${shell}\` from its commands.`;

// --- bash ------------------------------------------------------------------------------------

/** The shell functions bash and zsh share: what an option's value and a positional argument complete to. */
function kindLookups(fn: string, nodes: Node[]): string {
  return `# REPLY: what option $2 of command path $1 takes ('choices a b', file, dir, any); fails for a switch.
__${fn}_value() {
  case "$1|$2" in
${valueArms(nodes, '    ')}
    *) return 1 ;;
  esac
}

# REPLY: what positional argument $2 (from 0) of command path $1 completes to.
__${fn}_arg() {
  case "$1|$2" in
${argArms(nodes, '    ')}
    *) return 1 ;;
  esac
}
`;
}
function bash(prog: string, fn: string, nodes: Node[]): string {
  const subArms = arms(
    nodes
      .filter((n) => n.subcommands.length)
      .map((n) => [n.path, n.subcommands.map((s) => s.name).join(' ')]),
    '    ',
  );
  const flagArms = arms(
    nodes.map((n) => [n.path, n.flags.flatMap(names).join(' ')]),
    '    ',
  );
  return `${header('bash', prog)}
# Install: add \`source <(${prog} completion bash)\` to ~/.bashrc (docs/cli.md). Needs no other package.

# REPLY: the subcommands of command path $1.
__${fn}_subs() {
  case $1 in
${subArms}
    *) return 1 ;;
  esac
}

# REPLY: the options of command path $1.
__${fn}_flags() {
  case $1 in
${flagArms}
    *) return 1 ;;
  esac
}

${kindLookups(fn, nodes)}
# Sets COMPREPLY for a value of kind $1 that starts with $2.
__${fn}_complete_value() {
  local IFS=$'\\n'
  case $1 in
    choices*) IFS=$' \\t\\n'; COMPREPLY=($(compgen -W "\${1#choices }" -- "$2")) ;;
    file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$2")) ;;
    dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$2")) ;;
  esac
}

_${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd='' word pending='' REPLY
  local i skip=0 npos=0
  COMPREPLY=()
  # Walk the words before the cursor: subcommands deepen the path, option values are skipped.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=\${COMP_WORDS[i]}
    # --opt=value: bash splits it as --opt, =, value when = is a word break.
    [[ $word == = ]] && continue
    if ((skip)); then skip=0; continue; fi
    case $word in
      --*=*) continue ;;
      -*) if __${fn}_value "$cmd" "$word"; then skip=1; pending=$word; fi; continue ;;
    esac
    if ((npos == 0)) && __${fn}_subs "$cmd" && [[ " $REPLY " == *" $word "* ]]; then
      cmd=\${cmd:+$cmd }$word
    else
      npos=$((npos + 1))
    fi
  done
  if ((skip)); then
    __${fn}_value "$cmd" "$pending"
    if [[ $cur == = ]]; then
      __${fn}_complete_value "$REPLY" ''
      for i in "\${!COMPREPLY[@]}"; do COMPREPLY[i]="=\${COMPREPLY[i]}"; done
    else
      __${fn}_complete_value "$REPLY" "$cur"
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    __${fn}_flags "$cmd" && COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
    return 0
  fi
  if ((npos == 0)) && __${fn}_subs "$cmd"; then
    COMPREPLY=($(compgen -W "$REPLY" -- "$cur"))
  elif __${fn}_arg "$cmd" "$npos"; then
    __${fn}_complete_value "$REPLY" "$cur"
  fi
  return 0
}

complete -F _${fn} ${prog}
`;
}

// --- zsh -------------------------------------------------------------------------------------

/** A `name:description` entry for `_describe`, single-quoted. */
const described = (name: string, description: string) =>
  sq(`${name}:${oneLine(description).replace(/\\/g, '\\\\').replace(/:/g, '\\:')}`);

function zsh(prog: string, fn: string, nodes: Node[]): string {
  const listArms = (entries: Array<[string, string[]]>) =>
    entries.map(([k, v]) => `    ${sq(k)}) reply=(\n      ${v.join('\n      ')}\n    ) ;;`).join('\n');
  const subArms = listArms(
    nodes
      .filter((n) => n.subcommands.length)
      .map((n) => [n.path, n.subcommands.map((s) => described(s.name, s.description))]),
  );
  const flagArms = listArms(
    nodes.map((n) => [
      n.path,
      n.flags.flatMap((f) => names(f).map((name) => described(name, f.description))),
    ]),
  );
  return `#compdef ${prog}
${header('zsh', prog)}
# Install: see docs/cli.md (a file _${prog} in $fpath, or \`source <(${prog} completion zsh)\` after compinit).

# reply: 'name:description' for each subcommand of command path $1.
__${fn}_subs() {
  case $1 in
${subArms}
    *) return 1 ;;
  esac
}

# reply: 'option:description' for each option of command path $1.
__${fn}_flags() {
  case $1 in
${flagArms}
    *) return 1 ;;
  esac
}

${kindLookups(fn, nodes)}
__${fn}_complete_value() {
  case $1 in
    choices*) local -a choices; choices=(\${=1#choices }); compadd -a choices ;;
    file) _files ;;
    dir) _files -/ ;;
    *) _message 'value' ;;
  esac
}

_${fn}() {
  local cmd='' word pending='' REPLY cur=\${words[CURRENT]}
  local -a reply subs
  integer i skip=0 npos=0
  # Walk the words before the cursor: subcommands deepen the path, option values are skipped.
  for ((i = 2; i < CURRENT; i++)); do
    word=\${words[i]}
    if ((skip)); then skip=0; continue; fi
    case $word in
      --*=*) continue ;;
      -*) if __${fn}_value "$cmd" "$word"; then skip=1; pending=$word; fi; continue ;;
    esac
    if ((npos == 0)) && __${fn}_subs "$cmd" && subs=(\${reply%%:*}) && ((\${subs[(Ie)$word]})); then
      cmd=\${cmd:+$cmd }$word
    else
      npos+=1
    fi
  done
  if ((skip)); then
    __${fn}_value "$cmd" "$pending"
    __${fn}_complete_value "$REPLY"
    return
  fi
  if [[ $cur == --*=* ]] && __${fn}_value "$cmd" "\${cur%%=*}"; then
    compset -P '*='
    __${fn}_complete_value "$REPLY"
    return
  fi
  if [[ $cur == -* ]]; then
    __${fn}_flags "$cmd" && _describe -t options 'option' reply
    return
  fi
  if ((npos == 0)) && __${fn}_subs "$cmd"; then
    _describe -t commands 'command' reply
  elif __${fn}_arg "$cmd" "$npos"; then
    __${fn}_complete_value "$REPLY"
  fi
}

if [[ \${funcstack[1]} == _${prog} ]]; then
  _${fn} "$@"
else
  compdef _${fn} ${prog}
fi
`;
}

// --- fish ------------------------------------------------------------------------------------

const fq = (s: string) => `'${oneLine(s).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fishValue(v: Value): string {
  if (v.kind === 'choices') return `-x -a ${fq(v.choices.join(' '))}`;
  if (v.kind === 'file') return '-r -F';
  if (v.kind === 'dir') return "-x -a '(__fish_complete_directories (commandline -ct))'";
  return '-x';
}

function fish(prog: string, fn: string, nodes: Node[]): string {
  const subs = nodes.flatMap((n) => n.subcommands.map((s) => fq(`${n.path}|${s.name}`)));
  const valued = nodes.flatMap((n) =>
    n.flags.filter((f) => f.value).flatMap((f) => names(f).map((name) => fq(`${n.path}|${name}`))),
  );
  const lines: string[] = [];
  const c = `complete -c ${prog}`;
  for (const n of nodes) {
    const at = `-n ${fq(`__${fn}_at ${sq(n.path)}`)}`;
    const first = `-n ${fq(`__${fn}_at ${sq(n.path)} 0`)}`;
    for (const s of n.subcommands) lines.push(`${c} ${first} -f -a ${s.name} -d ${fq(s.description)}`);
    for (const f of n.flags) {
      const opts = [f.short ? `-s ${f.short.slice(1)}` : '', f.long ? `-l ${f.long.slice(2)}` : '']
        .filter(Boolean)
        .join(' ');
      lines.push(
        `${c} ${at} ${opts} ${f.value ? fishValue(f.value) : ''} -d ${fq(f.description)}`.replace(
          / {2,}/g,
          ' ',
        ),
      );
    }
    n.args.forEach((a, i) => {
      if (a.kind === 'any') return;
      const last = n.variadic && i === n.args.length - 1;
      const pos = `-n ${fq(`__${fn}_at ${sq(n.path)} ${i}${last ? '+' : ''}`)}`;
      lines.push(
        a.kind === 'choices'
          ? `${c} ${pos} -f -a ${fq(a.choices.join(' '))}`
          : a.kind === 'file'
            ? `${c} ${pos} -F`
            : `${c} ${pos} -f -a '(__fish_complete_directories (commandline -ct))'`,
      );
    });
  }
  return `${header('fish', prog)}
# Install: ${prog} completion fish > ~/.config/fish/completions/${prog}.fish

# 'path|name' of every subcommand, and of every option that takes a value.
set -g __${fn}_subs ${subs.join(' ')}
set -g __${fn}_valued ${valued.join(' ')}

# Prints "<positional count>|<command path>" for the words before the cursor.
function __${fn}_state
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmd ''
    set -l skip 0
    set -l npos 0
    for w in $words
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $w
            case '--*=*'
                continue
            case '-*'
                contains -- "$cmd|$w" $__${fn}_valued; and set skip 1
                continue
        end
        if test $npos -eq 0; and contains -- "$cmd|$w" $__${fn}_subs
            set cmd (string trim -- "$cmd $w")
        else
            set npos (math $npos + 1)
        end
    end
    echo "$npos|$cmd"
end

# True while completing command path $argv[1], at positional argument $argv[2] if given (N+: N or later).
function __${fn}_at
    set -l state (string split -m 1 '|' -- (__${fn}_state))
    test "$state[2]" = "$argv[1]"; or return 1
    set -q argv[2]; or return 0
    if string match -q -- '*+' $argv[2]
        test $state[1] -ge (string trim -c + -- $argv[2])
    else
        test $state[1] -eq $argv[2]
    end
end

${c} -f
${lines.join('\n')}
`;
}
