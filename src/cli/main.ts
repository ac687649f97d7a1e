#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { ERROR_CODES, formatError, toWardenError, WardenError } from '../errors.js';
import { VERSION } from '../version.js';
import { runScan } from './scan.js';
import { runServe } from './serve.js';

const io = {
  stdout: (s: string) => process.stdout.write(s),
  stderr: (s: string) => process.stderr.write(s),
};

function fail(e: unknown): never {
  const err = toWardenError(e);
  io.stderr(`${formatError(err)}\n`);
  if (err.code === 'INTERNAL' && process.env.MCP_WARDEN_DEBUG)
    io.stderr(`${String((err.cause as Error)?.stack ?? err.cause)}\n`);
  process.exit(ERROR_CODES[err.code].exit);
}

export function buildProgram(): Command {
  const program = new Command('mcp-warden')
    .description('Serve an HTTP API to AI agents as MCP tools, behind a security guard pipeline.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });

  program
    .command('scan')
    .description(
      'Load an OpenAPI 3.0/3.1 or Swagger 2.0 spec and report its tools, risks, data classes and default exposure.',
    )
    .argument('<spec>', 'spec file path or http(s) URL (JSON or YAML)')
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
    .option('--max-spec-mb <n>', 'largest spec accepted, in MiB', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0)
        throw new WardenError('USAGE', `--max-spec-mb must be a positive number, not ${v}`);
      return n;
    })
    .action(async (spec: string, opts) => {
      await runScan(spec, opts, io);
    });

  const int = (name: string, min: number) => (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new WardenError('USAGE', `${name} must be an integer >= ${min}, not ${v}`);
    return n;
  };
  program
    .command('serve')
    .description("Serve the spec's operations as MCP tools, every call through the guard pipeline.")
    .requiredOption('--spec <file|url>', 'OpenAPI 3.0/3.1 or Swagger 2.0 spec (JSON or YAML)')
    .option('--base-url <url>', "upstream API base URL (overrides the spec's servers; fixed at start-up)")
    .option('--audit-file <path>', 'JSON Lines audit file', 'mcp-warden-audit.jsonl')
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
    .action(async (opts) => {
      await runServe(opts, io);
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      process.exit(e.exitCode === 0 ? 0 : ERROR_CODES.USAGE.exit);
    }
    fail(e);
  }
}

process.on('unhandledRejection', fail);
await main(process.argv);
