#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { ERROR_CODES, formatError, toWardenError, WardenError } from '../errors.js';
import { VERSION } from '../version.js';
import { runScan } from './scan.js';

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
