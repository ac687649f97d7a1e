import type { Command } from 'commander';
import { VERSION } from '../version.js';
import type { ApiArg } from './api-flags.js';

// Modules are loaded when a command needs them, not up front: `serve` or `scan` evaluate only what
// they run (issue 22: loading the whole CLI cost a second per start). `--version` alone is answered
// by the entry before this bundle runs (./launch.ts).

// `mcp-warden … | head` closes the pipe early: that ends the output, it is not a crash.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });

const io = {
  stdout: (s: string) => process.stdout.write(s),
  stderr: (s: string) => process.stderr.write(s),
};

// `serve --spec`: the spec loads on another thread while this one loads the gateway's modules.
async function prefetch(): Promise<void> {
  if (process.argv[2] !== 'serve') return;
  const spec = flagValue('--spec');
  if (spec === undefined) return;
  const { prefetchSpec } = await import('../openapi/prefetch.js');
  const refRoot = flagValue('--ref-root');
  prefetchSpec(spec, {
    remoteRefs: (flagValue('--remote-refs') ?? 'same-origin') as 'same-origin',
    ...(refRoot !== undefined ? { refRoot } : {}),
    ...(process.argv.includes('--no-spec-cache') ? { specCache: false } : {}),
  });
}

/**
 * The value of a flag as commander will read it (`--flag v` or `--flag=v`; the last one wins). Only
 * a guess for the prefetch: the loader uses a prefetched spec only for the same source and options.
 */
function flagValue(name: string): string | undefined {
  let value: string | undefined;
  const args = process.argv.slice(3);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === name && i + 1 < args.length) value = args[++i];
    else if (a.startsWith(`${name}=`)) value = a.slice(name.length + 1);
  }
  return value;
}

// Loaded by run() before anything below uses them: not at the top, where `--version` needs none of
// them. (No top-level await: the build runs this module as CommonJS, src/lib/code-cache.ts.)
let CommandClass: typeof import('commander').Command;
let CommanderError: typeof import('commander').CommanderError;
let Option: typeof import('commander').Option;
let exitCode: typeof import('../errors/index.js').exitCode;
let formatError: typeof import('../errors/index.js').formatError;
let toWardenError: typeof import('../errors/index.js').toWardenError;
let WardenError: typeof import('../errors/index.js').WardenError;
let parseApiFlag: typeof import('./api-flags.js').parseApiFlag;

const SPEC_CACHE_HELP = 'neither read nor write the cache of loaded specs (docs/files.md)';

function fail(e: unknown): never {
  const err = toWardenError(e);
  io.stderr(`${formatError(err)}\n`);
  if (err.code === 'INTERNAL' && process.env.MCP_WARDEN_DEBUG)
    io.stderr(`${String((err.cause as Error)?.stack ?? err.cause)}\n`);
  process.exit(exitCode(err.code));
}

/** The admin API client, loaded with the rest of ./policy.js on first use. */
async function adminCall(...args: Parameters<typeof import('./policy.js').adminCall>): Promise<unknown> {
  return (await import('./policy.js')).adminCall(...args);
}

/** The commands defined in this file, by the command word that selects them. */
const GROUPS: Record<string, (program: Command) => void | Promise<void>> = {
  scan: addScan,
  serve: addServe,
  toolsets: addServe,
  audit: addAudit,
  keys: addKeys,
};

/**
 * The whole command tree, or only the group `command` belongs to: a run of `serve` does not need
 * the admin commands' modules (help, completion and unknown words get the whole tree).
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new CommandClass('mcp-warden')
    .description('Serve an HTTP API to AI agents as MCP tools, behind a security guard pipeline.')
    .version(VERSION)
    .exitOverride()
    // `--no-spec-cache` of the commands that load a spec without load options of their own (serve and
    // scan pass theirs): the loader's switch for the rest of this process.
    .hook('preAction', (_, action) => {
      if (action.opts().specCache === false) process.env.MCP_WARDEN_SPEC_CACHE = 'off';
    })
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const group = command !== undefined && Object.hasOwn(GROUPS, command) ? GROUPS[command] : undefined;
  if (group) {
    await group(program);
    return program;
  }
  const [{ addRuntime, admin }, { addApprovals }, { addConnections }, { addRestricted }, { addCompletion }] =
    await Promise.all([
      import('./runtime.js'),
      import('./approvals.js'),
      import('./connections.js'),
      import('./restricted.js'),
      import('./completion.js'),
    ]);
  addScan(program);
  addServe(program);
  addPolicy(program, admin);
  addAudit(program);
  addKeys(program);
  addRuntime(program, io);
  addApprovals(program, io);
  addConnections(program, io);
  addRestricted(program, io);
  addCompletion(program, io);
  return program;
}

/** A whole-number option, refused with a usage error below `min`. */
function int(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new WardenError('USAGE', `${name} must be an integer >= ${min}, not ${v}`);
    return n;
  };
}

/** `scan`: what a spec would serve, and at what risk. */
function addScan(program: Command): void {
  program
    .command('scan')
    .description(
      'Load an OpenAPI 3.0/3.1 or Swagger 2.0 spec and report its tools, risks, data classes and default exposure; several specs make one report for the API set.',
    )
    .argument(
      '[spec...]',
      'spec file paths or http(s) URLs (JSON or YAML); several: an API set, each named for its title',
    )
    .option(
      '--api <name=spec>',
      'an API of the set with its name (repeatable): its tools are prefixed name_',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .addOption(
      new Option('-f, --format <format>', 'report format')
        .choices(['table', 'json', 'sarif'])
        .default('table'),
    )
    .option('-o, --output <file>', 'write the report to a file instead of stdout')
    .option('-q, --quiet', 'no progress lines on stderr')
    .addOption(
      new Option(
        '--remote-refs <policy>',
        'remote $refs: none, same-origin (only for a URL-loaded spec), any',
      )
        .choices(['none', 'same-origin', 'any'])
        .default('same-origin'),
    )
    .option('--ref-root <dir>', "directory local $refs must stay inside (default: the spec's directory)")
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .option('--max-spec-mb <n>', 'largest spec accepted, in MiB', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0)
        throw new WardenError('USAGE', `--max-spec-mb must be a positive number, not ${v}`);
      return n;
    })
    .action(async (specs: string[], opts) => {
      const { runScan } = await import('./scan.js');
      await runScan(specs, opts, io);
    });
}

/** `serve` and `toolsets`: the gateway itself. */
function addServe(program: Command): void {
  program
    .command('serve')
    .description(
      "Serve the spec's operations as MCP tools, every call through the guard pipeline; several APIs with --api or the policy's apis:.",
    )
    .option('--spec <file|url>', 'OpenAPI 3.0/3.1 or Swagger 2.0 spec (JSON or YAML)')
    .option(
      '--api <name=spec[,base-url]>',
      'serve an API set: one API per flag, its tools prefixed name_ (repeat; or apis: in the policy)',
      (v: string, acc: ApiArg[] = []) => [...acc, parseApiFlag(v)],
    )
    .option('--base-url <url>', "upstream API base URL (overrides the spec's servers; fixed at start-up)")
    .option('--policy <file>', 'policy file (YAML or JSON); watched, valid edits apply without restart')
    .addOption(
      new Option('--env <name>', 'environment whose upstream credentials are used').choices([
        'dev',
        'staging',
        'prod',
      ]),
    )
    .option(
      '--admin-port <n>',
      'serve the admin API on this port (needs admin.token in the policy)',
      int('--admin-port', 0),
    )
    .option('--admin-host <addr>', 'interface for the admin API', '127.0.0.1')
    .option('--no-watch', 'do not watch the policy file')
    .option(
      '--watch-spec',
      'reload a local spec file when it changes (new or changed tools wait for approval)',
    )
    .option('--state <url>', 'Redis for state shared by instances (redis://… or env:NAME)')
    .option('--audit-db <url>', 'PostgreSQL to mirror the audit to (postgres://… or env:NAME)')
    .option(
      '--pins <file>',
      'pin approved tool definitions in this file (default: in memory, trusting the first spec)',
    )
    .option(
      '--audit-file <path>',
      'JSON Lines audit file (default: audit.jsonl in the per-user state directory; see docs/files.md)',
    )
    .option(
      '--state-dir <dir>',
      'root of the per-spec default folders (default: $XDG_STATE_HOME/mcp-warden or ~/.local/state/mcp-warden)',
    )
    .option('--stdio', 'serve MCP over stdin/stdout (logs go to stderr)')
    .option('--port <n>', 'serve Streamable HTTP at /mcp on this port (0: any free port)', int('--port', 0))
    .option('--host <addr>', 'interface to bind for HTTP', '127.0.0.1')
    .option(
      '--allowed-host <name...>',
      'host names accepted in Host/Origin headers (default: loopback names)',
    )
    .option('--timeout <ms>', 'upstream timeout per call, in milliseconds', int('--timeout', 1), 10_000)
    .option(
      '--max-response-bytes <n>',
      'upstream response size cap',
      int('--max-response-bytes', 1),
      1024 * 1024,
    )
    .option(
      '--max-page-size <n>',
      'clamp for page-size arguments the spec leaves unbounded',
      int('--max-page-size', 1),
      100,
    )
    .addOption(
      new Option('--log-level <level>', 'log level (stderr)')
        .choices(['debug', 'info', 'warn', 'error'])
        .default('info'),
    )
    .addOption(
      new Option('--remote-refs <policy>', 'remote $refs: none, same-origin, any')
        .choices(['none', 'same-origin', 'any'])
        .default('same-origin'),
    )
    .option('--ref-root <dir>', "directory local $refs must stay inside (default: the spec's directory)")
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .option('--toolsets <names>', 'serve only these toolsets, comma-separated (see `mcp-warden toolsets`)')
    .option(
      '--dynamic',
      'list three meta-tools (search_tools, describe_tool, call_tool) instead of every tool',
    )
    .action(async (opts) => {
      const { runServe } = await import('./serve.js');
      await runServe(opts, io);
    });

  program
    .command('toolsets')
    .description('List the toolsets of a spec (tags, path groups, policy groups) for `serve --toolsets`.')
    .argument('[spec]', 'spec file or URL (none: the API set of --policy)')
    .option('--policy <file>', 'policy file (for its `toolsets:` and to count what it exposes)')
    .addOption(new Option('-f, --format <format>', 'output').choices(['text', 'json']).default('text'))
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .action(async (spec: string | undefined, opts) =>
      (await import('./policy.js')).runToolsets(spec, opts, io),
    );
}

/** `policy …`, `init`, `explain`: writing and checking policies. */
function addPolicy(program: Command, admin: (cmd: Command) => Command): void {
  const policy = program
    .command('policy')
    .description('Check a policy; see, diff and roll back the running one.');
  policy
    .command('check')
    .description('Validate a policy file against its schema and a spec (unknown names are errors).')
    .argument('<file>', 'policy file')
    .option('--spec <file|url>', 'the spec the policy is for (none: the policy describes an API set)')
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .action(async (file: string, opts) => (await import('./policy.js')).runPolicyCheck(file, opts, io));
  admin(policy.command('history').description('List the running policy versions.')).action(async (opts) => {
    const r = (await adminCall('GET', '/policy/versions', undefined, opts)) as {
      current: number;
      versions: Array<Record<string, unknown>>;
    };
    for (const v of r.versions)
      io.stdout(
        `${v.version === r.current ? '*' : ' '} v${v.version}  ${v.time}  ${String(v.source).padEnd(8)} ${v.actor}  ${String(v.sha256).slice(0, 12)}\n`,
      );
  });
  admin(policy.command('diff').description('Diff two versions (default: the previous and the current).'))
    .option('--from <n>', 'older version', int('--from', 1))
    .option('--to <n>', 'newer version', int('--to', 1))
    .action(async (opts) => {
      const q = new URLSearchParams();
      if (opts.from) q.set('from', String(opts.from));
      if (opts.to) q.set('to', String(opts.to));
      const r = (await adminCall('GET', `/policy/diff?${q}`, undefined, opts)) as { diff: string };
      io.stdout(r.diff);
    });
  admin(
    policy
      .command('rollback')
      .description('Re-apply an earlier policy version (and write it back to the file).'),
  )
    .argument('<version>', 'version number', int('<version>', 1))
    .action(async (version: number, opts) => {
      const r = (await adminCall('POST', '/policy/rollback', { version }, opts)) as { version: number };
      io.stdout(`rolled back to v${version}: now running v${r.version}\n`);
    });

  program
    .command('init')
    .description(
      'Write a commented starter policy for a spec: the secure defaults spelled out, every tool listed; several specs: an `apis:` policy for the API set.',
    )
    .argument('[spec...]', 'spec files or URLs; several: an API set, each named for its title')
    .option(
      '--api <name=spec[,base-url]>',
      'an API of the set with its name and, optionally, its base URL (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('-o, --output <file>', 'policy file to write', 'warden.yaml')
    .option('--force', 'overwrite an existing file')
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .action(async (specs: string[], opts) => (await import('./policy.js')).runInit(specs, opts, io));

  program
    .command('explain')
    .description(
      'Show which rule decided what for one tool: exposed or hidden, scopes, confirmation, limits.',
    )
    .argument('<tool>', 'tool name')
    .option('--spec <file|url>', 'the spec (none: the API set of --policy)')
    .option('--policy <file>', 'policy file (default: none, the secure defaults)')
    .addOption(new Option('--env <name>', 'environment').choices(['dev', 'staging', 'prod']))
    .addOption(new Option('-f, --format <format>', 'output').choices(['text', 'json']).default('text'))
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .action(async (tool: string, opts) => (await import('./policy.js')).runExplain(tool, opts, io));
}

/** `audit …`: verify, query and follow the audit trail. */
function addAudit(program: Command): void {
  const audit = program.command('audit').description('Verify, query and follow the audit file.');
  audit
    .command('verify')
    .description('Check the hash chain and checkpoints of an audit file and its rotated segments.')
    .argument('[file]', 'the audit file (default: the one in the state directory)')
    .option('--state-dir <dir>', 'where to look for it without [file] (as `serve --state-dir`)')
    .option('--key-env <name>', 'environment variable holding the checkpoint signing key')
    .option(
      '--db-env <name>',
      "environment variable holding the PostgreSQL URL: verify an instance's mirrored chain",
    )
    .option('--instance <name>', 'the instance to verify in the database')
    .action(async (file: string | undefined, opts) => {
      const { runAuditVerify } = await import('./audit.js');
      const code = await runAuditVerify(file, opts, io);
      if (code !== 0) process.exitCode = code;
    });
  const filters = (cmd: Command) =>
    cmd
      .option('--tool <name>', 'only this tool')
      .option('--principal <id>', 'only this caller (key:<id>, jwt:<issuer>#<sub>, stdio:<name>, anonymous)')
      .option('--decision <d>', 'allowed or denied')
      .option('--kind <k>', 'call, intent, control, approval or checkpoint')
      .option('--approval <id>', "one approval request's story: its requests, decisions and the call it ran")
      .option('--since <t>', 'ISO date-time or a duration ago (15m, 2h, 7d)')
      .option('--until <t>', 'ISO date-time or a duration ago')
      .addOption(new Option('--format <f>', 'output').choices(['table', 'json']).default('table'));
  filters(audit.command('query').description('Records that match, oldest first, across rotated files.'))
    .argument('[file]', 'the audit file (default: the one in the state directory)')
    .option('--state-dir <dir>', 'where to look for it without [file] (as `serve --state-dir`)')
    .option('--limit <n>', 'at most this many')
    .option('--db-env <name>', 'environment variable holding the PostgreSQL URL: query every instance there')
    .action(async (file: string | undefined, opts) =>
      (await import('./audit.js')).runAuditQuery(file, opts, io),
    );
  filters(audit.command('tail').description('The last records; with --follow, new ones as they arrive.'))
    .argument('[file]', 'the audit file (default: the one in the state directory)')
    .option('--state-dir <dir>', 'where to look for it without [file] (as `serve --state-dir`)')
    .option('-n, --lines <n>', 'how many', '20')
    .option('-f, --follow', 'keep printing new records')
    .action(async (file: string | undefined, opts) =>
      (await import('./audit.js')).runAuditTail(file, opts, io),
    );
  audit
    .command('rightsize')
    .description(
      'Propose a tightened policy from the audit: a unified diff removing the scopes, write enables and credentials no call used in the window (refusals at the grant checks are no use), and lowering limits far above the observed peaks.',
    )
    .argument(
      '[file]',
      "the audit file (default: the policy's audit.postgres, else the one in the state directory)",
    )
    .requiredOption('--policy <file>', 'the policy to tighten')
    .option('--spec <file|url>', 'the spec the policy is for (none: the API set of --policy)')
    .option('--since <t>', 'the window: ISO date-time or a duration ago (15m, 2h, 7d)', '30d')
    .option('--state-dir <dir>', 'where to look for the audit without [file] (as `serve --state-dir`)')
    .option('--db-env <name>', 'environment variable holding the PostgreSQL URL: read the mirrored audit')
    .option('--instance <name>', 'with the database: only this instance (default: every instance there)')
    .option(
      '--key-env <name>',
      "environment variable holding the checkpoint signing key (default: the policy's audit.signingKey)",
    )
    .option('--write <file>', 'also write the tightened policy to this file')
    .option('--no-spec-cache', SPEC_CACHE_HELP)
    .action(async (file: string | undefined, opts) =>
      (await import('./rightsize.js')).runRightsize(file, opts, io),
    );
}

/** `keys create`: API keys for HTTP callers. */
function addKeys(program: Command): void {
  const keys = program.command('keys').description('API keys for HTTP callers.');
  keys
    .command('create')
    .description(
      'Make an API key: the key is printed once (stdout); its policy entry, with only the hash, on stderr.',
    )
    .requiredOption('--id <id>', 'the key id; its caller is the principal key:<id>')
    .requiredOption('--scopes <list>', 'scopes, comma- or space-separated')
    .addOption(
      new Option('--env <name>', 'accept the key only in this environment').choices([
        'dev',
        'staging',
        'prod',
      ]),
    )
    .option('--expires <iso>', 'expiry date-time')
    .action(async (opts) => (await import('./policy.js')).runKeysCreate(opts, io));
}

async function main(argv: string[]): Promise<void> {
  try {
    await (await buildProgram(argv[2])).parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      process.exit(e.exitCode === 0 ? 0 : exitCode('USAGE'));
    }
    fail(e);
  }
}

async function run(): Promise<void> {
  await prefetch();
  ({ Command: CommandClass, CommanderError, Option } = await import('commander'));
  ({ exitCode, formatError, toWardenError, WardenError } = await import('../errors/index.js'));
  ({ parseApiFlag } = await import('./api-flags.js'));
  process.on('unhandledRejection', fail);
  await main(process.argv);
}

/** The whole run; settled when the command's action has returned (tests and the bundle's entry). */
export const done = run();
