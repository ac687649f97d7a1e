#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { runBundle } from '../lib/code-cache.js';
import { VERSION } from '../version.js';

/**
 * The `mcp-warden` command as built (scripts/bundle-cli.mjs writes it as dist/cli/main.js): runs the
 * CLI's bundle, ./main.ts and all it loads in one CommonJS script, through V8's code cache
 * (src/lib/code-cache.ts). `--version` alone loads nothing.
 */

/** The build's hash of the bundle (scripts/bundle-cli.mjs defines it). */
declare const WARDEN_CLI_BUNDLE_ID: string;

if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
} else {
  runBundle({
    file: fileURLToPath(new URL('./cli.bundle.cjs', import.meta.url)),
    id: WARDEN_CLI_BUNDLE_ID,
    // A server compiles other code than a one-shot command: each keeps its own cache.
    role: process.argv[2] === 'serve' ? 'serve' : 'cli',
  });
}
