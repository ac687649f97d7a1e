import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { completionScript, type Shell } from '../../src/cli/completion.js';
import { exitCode } from '../../src/errors/index.js';
import { CLI, tempTree } from '../support/paths.js';
import { runCli } from '../support/stdio.js';

/**
 * The completion scripts in the real shells: bash driven through its completion function, zsh
 * through a Tab typed into an interactive zsh on a pseudo-terminal (zsh/zpty), fish through
 * `complete -C`. CI installs zsh and fish (.ci/run); without them their tests skip, saying so.
 */

const have = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const HAVE_ZSH = have('zsh');
const HAVE_FISH = have('fish');
for (const [shell, ok] of [
  ['zsh', HAVE_ZSH],
  ['fish', HAVE_FISH],
] as const)
  if (!ok)
    console.warn(
      `SKIPPING the ${shell} completion tests: ${shell} is not installed (apt-get install -y ${shell}; .ci/run installs it)`,
    );
const skipped = (shell: string, ok: boolean) =>
  ok ? shell : `${shell} (SKIPPED: ${shell} is not installed)`;

/** A home with `mcp-warden` on its PATH (the built CLI), as after `npm i -g`. */
function home(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempTree({});
  mkdirSync(join(dir, 'bin'));
  const bin = join(dir, 'bin', 'mcp-warden');
  writeFileSync(bin, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  chmodSync(bin, 0o755);
  return {
    dir,
    env: {
      PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, '.config'),
    },
  };
}

/** What file completion sees: a spec, a policy and a folder. */
const project = tempTree({ 'shop.yaml': 'openapi: 3.0.3\n', 'policy.json': '{}', 'specs/a.yaml': '' });

function script(shell: Shell): string {
  const r = runCli(['completion', shell]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const file = join(tempTree({}), `completion.${shell}`);
  writeFileSync(file, r.stdout);
  return file;
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');
// fish marks folders with a slash; the other two leave that to the line editor.
const sorted = (xs: string[]) => [...new Set(xs.map((x) => x.replace(/\/$/, '')))].sort();

/** Completes the last word of `line` in bash, with `load` run first (a `source` line). */
function bash(load: string, line: string, fn = '_mcp_warden', env?: NodeJS.ProcessEnv): string[] {
  const words = line.split(' ');
  const r = spawnSync(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      `${load}\nCOMP_WORDS=("\${@:1}"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`,
      'bash',
      ...words,
    ],
    { cwd: project, encoding: 'utf8', timeout: 30_000, env: env ?? process.env },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return sorted(lines(r.stdout));
}

/**
 * Completes `line` in an interactive zsh: `setup` (zsh lines: compinit and the script) runs first,
 * then `line` and a Tab are typed. Every match handed to compadd is written to a file, and a marker
 * printed when the completion has finished is what the driver waits for.
 */
function zsh(setup: string, line: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = tempTree({});
  const out = join(dir, 'matches');
  writeFileSync(
    join(dir, 'setup.zsh'),
    `PS1='> '
${setup}
compadd() {
  # compadd calls that only filter (-O, -A, -D) are the completion system's own; pass them through.
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
  local -a hits
  builtin compadd -O hits "$@"
  (($#hits)) && print -rl -- $hits >> ${out}
  builtin compadd "$@"
}
__test_done() { print -r -- '<''<done>>' }
comppostfuncs=(__test_done)
bindkey '^I' complete-word
`,
  );
  writeFileSync(
    join(dir, 'driver.zsh'),
    `zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "source \${(q)1}"
zpty -w -n z "$2"$'\\t'
zpty -r z output '*<<done>>*' || exit 4
zpty -d z
`,
  );
  const r = spawnSync('zsh', ['-f', join(dir, 'driver.zsh'), join(dir, 'setup.zsh'), line], {
    cwd: project,
    encoding: 'utf8',
    timeout: 30_000,
    env,
  });
  expect(r.status, r.stderr).toBe(0);
  let matches = '';
  try {
    matches = readFileSync(out, 'utf8');
  } catch {
    // No match at all: the file is never written.
  }
  return sorted(lines(matches));
}

/** Completes `line` with fish's `complete -C`, after `load` (fish lines). */
function fish(load: string, line: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const r = spawnSync('fish', ['--no-config', '-c', `${load}\ncomplete -C $argv[1]`, line], {
    cwd: project,
    encoding: 'utf8',
    timeout: 30_000,
    env,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return sorted(lines(r.stdout).map((l) => l.split('\t')[0]!));
}

/** The same questions for every shell: the line typed so far, and what its last word completes to. */
const CASES: Array<[string, string[]]> = [
  ['mcp-warden serve --e', ['--env']],
  ['mcp-warden serve --env ', ['dev', 'prod', 'staging']],
  ['mcp-warden audit ', ['help', 'query', 'rightsize', 'tail', 'verify']],
  ['mcp-warden policy check --s', ['--spec']],
  ['mcp-warden serve --stdio --spec shop.yaml --log-level ', ['debug', 'error', 'info', 'warn']],
  ['mcp-warden scan --format j', ['json']],
  ['mcp-warden completion ', ['bash', 'fish', 'zsh']],
  ['mcp-warden serve --spec sh', ['shop.yaml']],
  ['mcp-warden serve --ref-root ', ['specs']],
  ['mcp-warden scan ', ['policy.json', 'shop.yaml', 'specs']],
];
const TOP = ['audit', 'completion', 'policy', 'scan', 'serve', 'tools'];

/** The install lines docs/cli.md gives, run as they are written. */
const BASH_RC = 'source <(mcp-warden completion bash)';
const ZSH_RC = 'source <(mcp-warden completion zsh)';
const ZSH_FPATH = [
  'mkdir -p ~/.zfunc && mcp-warden completion zsh > ~/.zfunc/_mcp-warden',
  'fpath=(~/.zfunc $fpath)',
];
const FISH_FILE =
  'mkdir -p ~/.config/fish/completions && mcp-warden completion fish > ~/.config/fish/completions/mcp-warden.fish';

describe('mcp-warden completion', () => {
  it('refuses a shell it does not know with the usage exit code, and no stack trace', () => {
    const r = runCli(['completion', 'tcsh']);
    expect(r.code).toBe(exitCode('USAGE'));
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("'tcsh' is invalid");
    expect(r.stderr).toContain('bash, zsh, fish');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(runCli(['completion']).code).toBe(exitCode('USAGE'));
  });

  it('documents an install line for each shell in docs/cli.md, the lines these tests run', () => {
    const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    for (const line of [BASH_RC, ZSH_RC, ...ZSH_FPATH, FISH_FILE]) expect(doc).toContain(line);
  });
});

describe('bash', () => {
  const file = script('bash');
  const load = `source '${file}'`;

  it('passes bash -n and registers the completion function for mcp-warden', () => {
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
    const r = spawnSync('bash', ['--norc', '-c', `${load}; complete -p mcp-warden`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('complete -F _mcp_warden mcp-warden');
  });

  it('completes the commands at the top level', () => {
    expect(bash(load, 'mcp-warden ')).toEqual(expect.arrayContaining(TOP));
  });

  it.each(CASES)('%s → %j', (line, want) => {
    expect(bash(load, line)).toEqual(want);
  });

  it('completes a value after --opt= (bash splits it at the =)', () => {
    expect(bash(load, 'mcp-warden serve --env = st')).toEqual(['staging']);
    expect(bash(load, 'mcp-warden serve --env =')).toEqual(['=dev', '=prod', '=staging']);
    // The path is still `serve` after an --opt=value, and the value is not taken for a command.
    expect(bash(load, 'mcp-warden serve --env = prod --log-level ')).toEqual([
      'debug',
      'error',
      'info',
      'warn',
    ]);
  });

  it('offers every option `serve --help` lists', () => {
    const help = runCli(['serve', '--help']).stdout;
    const listed = [...help.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
    expect(listed.length).toBeGreaterThan(20);
    expect(bash(load, 'mcp-warden serve --')).toEqual(sorted(listed));
  });

  it('works installed as docs/cli.md says: sourced from the command on PATH', () => {
    const { env } = home();
    expect(bash(BASH_RC, 'mcp-warden serve --env ', '_mcp_warden', env)).toEqual(['dev', 'prod', 'staging']);
  });
});

describe.skipIf(!HAVE_ZSH)(skipped('zsh', HAVE_ZSH), () => {
  const file = HAVE_ZSH ? script('zsh') : '';
  const setup = `autoload -Uz compinit && compinit -u -D\nsource '${file}'`;

  it('passes zsh -n', () => {
    const r = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('completes the commands at the top level', () => {
    expect(zsh(setup, 'mcp-warden ')).toEqual(expect.arrayContaining(TOP));
  });

  it.each(CASES)('%s → %j', (line, want) => {
    expect(zsh(setup, line)).toEqual(want);
  });

  it('completes a value after --opt=', () => {
    expect(zsh(setup, 'mcp-warden serve --env=')).toEqual(['dev', 'prod', 'staging']);
  });

  it('works installed as docs/cli.md says: sourced, or as _mcp-warden on $fpath', () => {
    const a = home();
    expect(zsh(`autoload -Uz compinit && compinit -u -D\n${ZSH_RC}`, 'mcp-warden audit ', a.env)).toEqual([
      'help',
      'query',
      'rightsize',
      'tail',
      'verify',
    ]);
    const b = home();
    const written = spawnSync('sh', ['-c', ZSH_FPATH[0]!], { env: b.env, encoding: 'utf8' });
    expect(written.stderr).toBe('');
    expect(
      zsh(`${ZSH_FPATH[1]}\nautoload -Uz compinit && compinit -u -D`, 'mcp-warden audit ', b.env),
    ).toEqual(['help', 'query', 'rightsize', 'tail', 'verify']);
  });
});

describe.skipIf(!HAVE_FISH)(skipped('fish', HAVE_FISH), () => {
  const file = HAVE_FISH ? script('fish') : '';
  const load = `source '${file}'`;

  it('passes fish --no-execute', () => {
    const r = spawnSync('fish', ['--no-execute', file], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('completes the commands at the top level, with their descriptions', () => {
    expect(fish(load, 'mcp-warden ')).toEqual(expect.arrayContaining(TOP));
    const r = spawnSync('fish', ['--no-config', '-c', `${load}\ncomplete -C 'mcp-warden serve --e'`], {
      encoding: 'utf8',
    });
    expect(r.stdout).toBe('--env\tenvironment whose upstream credentials are used\n');
  });

  it.each(CASES)('%s → %j', (line, want) => {
    expect(fish(load, line)).toEqual(want);
  });

  it('works installed as docs/cli.md says: a file in ~/.config/fish/completions', () => {
    const { env } = home();
    const written = spawnSync('sh', ['-c', FISH_FILE], { env, encoding: 'utf8' });
    expect(written.stderr).toBe('');
    // fish loads it by itself, for the command on PATH (no `source`; the user's config is the home's).
    const r = spawnSync('fish', ['-c', 'complete -C $argv[1]', 'mcp-warden completion '], {
      cwd: project,
      encoding: 'utf8',
      env,
    });
    expect(sorted(lines(r.stdout))).toEqual(['bash', 'fish', 'zsh']);
  });
});

describe('the scripts come from the command tree', () => {
  // A program this file builds: the generator knows nothing of it.
  const demo = () => {
    const p = new Command('demo-cli');
    const run = p.command('run').description('Run: it: now');
    run.addOption(new Option('--color <c>', "paint's colour").choices(['red', 'green']));
    run.option('--config <file>', 'a file').option('--out-dir <dir>', 'a folder').option('--dry', 'a switch');
    run.command('deep').option('--depth <n>', 'how deep');
    return p;
  };
  const write = (shell: Shell) => {
    const file = join(tempTree({}), `demo.${shell}`);
    writeFileSync(file, completionScript(demo(), shell));
    return file;
  };

  it('completes a new command, option and choice in bash', () => {
    const load = `source '${write('bash')}'`;
    expect(bash(load, 'demo-cli r', '_demo_cli')).toEqual(['run']);
    expect(bash(load, 'demo-cli run --', '_demo_cli')).toEqual(
      sorted(['--color', '--config', '--out-dir', '--dry', '-h', '--help']).filter((f) => f.startsWith('--')),
    );
    expect(bash(load, 'demo-cli run --color ', '_demo_cli')).toEqual(['green', 'red']);
    expect(bash(load, 'demo-cli run --config sh', '_demo_cli')).toEqual(['shop.yaml']);
    expect(bash(load, 'demo-cli run --out-dir ', '_demo_cli')).toEqual(['specs']);
    expect(bash(load, 'demo-cli run --dry de', '_demo_cli')).toEqual(['deep']);
    expect(bash(load, 'demo-cli run deep --d', '_demo_cli')).toEqual(['--depth']);
  });

  it.skipIf(!HAVE_ZSH)('in zsh, with descriptions that hold colons and quotes', () => {
    const setup = `autoload -Uz compinit && compinit -u -D\nsource '${write('zsh')}'`;
    expect(zsh(setup, 'demo-cli run --color ')).toEqual(['green', 'red']);
    expect(zsh(setup, 'demo-cli ')).toEqual(['help', 'run']);
  });

  it.skipIf(!HAVE_FISH)('in fish, with descriptions that hold colons and quotes', () => {
    const load = `source '${write('fish')}'`;
    expect(fish(load, 'demo-cli run --color ')).toEqual(['green', 'red']);
    const r = spawnSync('fish', ['--no-config', '-c', `${load}\ncomplete -C 'demo-cli run --col'`], {
      encoding: 'utf8',
    });
    expect(r.stdout).toBe("--color\tpaint's colour\n");
  });

  it('refuses to emit a word that would need quoting', () => {
    const p = new Command('demo-cli');
    p.command('run').addOption(new Option('--x <v>').choices(['a b']));
    expect(() => completionScript(p, 'bash')).toThrow(/not a plain word/);
  });
});
