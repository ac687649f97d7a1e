import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors/index.js';
import {
  AUDIT_FILE_NAME,
  defaultAuditFile,
  findDefaultAudits,
  specDirName,
  stateRoots,
} from '../../src/lib/state-dir.js';
import { tempTree } from '../support/paths.js';

const HASH = /^[0-9a-f]{8}$/;

describe('stateRoots: where per-spec folders may go, in order', () => {
  it('$XDG_STATE_HOME/mcp-warden first, then ~/.local/state/mcp-warden', () => {
    expect(stateRoots({ env: { XDG_STATE_HOME: '/x/state', HOME: '/home/u' }, platform: 'linux' })).toEqual([
      '/x/state/mcp-warden',
      '/home/u/.local/state/mcp-warden',
    ]);
    expect(stateRoots({ env: { HOME: '/home/u' }, platform: 'darwin' })).toEqual([
      '/home/u/.local/state/mcp-warden',
    ]);
  });

  it('ignores a relative XDG_STATE_HOME, as the XDG spec says', () => {
    expect(stateRoots({ env: { XDG_STATE_HOME: 'state', HOME: '/home/u' }, platform: 'linux' })).toEqual([
      '/home/u/.local/state/mcp-warden',
    ]);
  });

  it('--state-dir replaces them all; a relative one is resolved against the working directory', () => {
    const env = { XDG_STATE_HOME: '/x/state', HOME: '/home/u' };
    expect(stateRoots({ stateDir: '/srv/warden', env })).toEqual(['/srv/warden']);
    expect(stateRoots({ stateDir: 'rel/dir', env })).toEqual([resolve('rel/dir')]);
  });

  it('on Windows: %LOCALAPPDATA%\\mcp-warden\\state, else the profile’s AppData\\Local', () => {
    expect(stateRoots({ env: { LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, platform: 'win32' })).toEqual([
      'C:\\Users\\u\\AppData\\Local\\mcp-warden\\state',
    ]);
    expect(stateRoots({ env: { USERPROFILE: 'C:\\Users\\u' }, platform: 'win32' })).toEqual([
      'C:\\Users\\u\\AppData\\Local\\mcp-warden\\state',
    ]);
  });
});

describe('specDirName: a readable slug and a short hash of the absolute location', () => {
  it('a file: its name without extension, then 8 hex digits', () => {
    const name = specDirName('/projects/shop/openapi.yaml');
    const [slug, hash] = [name.slice(0, -9), name.slice(-8)];
    expect(slug).toBe('openapi');
    expect(hash).toMatch(HASH);
  });

  it('two openapi.yaml in different folders get different folders; one file always the same', () => {
    expect(specDirName('/a/openapi.yaml')).not.toBe(specDirName('/b/openapi.yaml'));
    expect(specDirName('/a/openapi.yaml')).toBe(specDirName('/a/openapi.yaml'));
    // A relative path, an absolute one and a file: URL of the same file are the same spec.
    const abs = resolve('specs/api.json');
    expect(specDirName('specs/api.json')).toBe(specDirName(abs));
    expect(specDirName(pathToFileURL(abs).href)).toBe(specDirName(abs));
  });

  it('a URL: host and last path segment; the query (which may hold a token) does not count', () => {
    const name = specDirName('https://petstore3.swagger.io/api/v3/openapi.json?token=abc');
    expect(name).toMatch(/^petstore3\.swagger\.io-openapi-[0-9a-f]{8}$/);
    expect(specDirName('https://petstore3.swagger.io/api/v3/openapi.json?token=def')).toBe(name);
    expect(specDirName('https://example.com/')).toMatch(/^example\.com-[0-9a-f]{8}$/);
  });

  it('anything else in the name becomes a dash; nothing left becomes "spec"', () => {
    expect(specDirName('/x/My API (v2)!.yaml')).toMatch(/^my-api-v2-[0-9a-f]{8}$/);
    expect(specDirName('/x/(((.json')).toMatch(/^spec-[0-9a-f]{8}$/);
    expect(specDirName(`/x/${'long'.repeat(30)}.json`).length).toBe(48 + 9);
  });
});

describe('defaultAuditFile: the first root where the folder can be made and written', () => {
  it('creates <root>/<spec folder>/ with mode 0700 and returns audit.jsonl in it', () => {
    const state = join(tempTree({}), 'state');
    const file = defaultAuditFile('/p/openapi.yaml', {
      env: { XDG_STATE_HOME: state, HOME: '/nonexistent' },
    });
    expect(file).toBe(join(state, 'mcp-warden', specDirName('/p/openapi.yaml'), AUDIT_FILE_NAME));
    for (const dir of [state, join(state, 'mcp-warden'), join(file, '..')])
      expect(statSync(dir).mode & 0o777).toBe(0o700);
    // The probe is gone; the audit itself is the sink's to create.
    expect(readdirSync(join(file, '..'))).toEqual([]);
    // Again: the same file, nothing else created.
    expect(defaultAuditFile('/p/openapi.yaml', { env: { XDG_STATE_HOME: state } })).toBe(file);
  });

  it('falls back to ~/.local/state when $XDG_STATE_HOME cannot take it', () => {
    const dir = tempTree({ blocked: 'a file where a folder should be' });
    const home = join(dir, 'home');
    const file = defaultAuditFile('/p/api.json', {
      env: { XDG_STATE_HOME: join(dir, 'blocked'), HOME: home },
    });
    expect(file.startsWith(join(home, '.local', 'state', 'mcp-warden'))).toBe(true);
  });

  it('none writable: CONFIG_INVALID naming each place tried, --audit-file and --state-dir', () => {
    const dir = tempTree({ blocked: 'x' });
    const blocked = join(dir, 'blocked');
    const e = (() => {
      try {
        defaultAuditFile('/p/api.json', { env: { XDG_STATE_HOME: blocked, HOME: join(blocked, 'home') } });
      } catch (x) {
        return x;
      }
    })() as WardenError;
    expect(e).toBeInstanceOf(WardenError);
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain(`tried ${join(blocked, 'mcp-warden', specDirName('/p/api.json'))} (ENOTDIR)`);
    expect(e.message).toContain(join(blocked, 'home', '.local', 'state', 'mcp-warden'));
    expect(e.message).toMatch(/--audit-file <path>.*--state-dir <dir>/);
  });

  it('with --state-dir, only there: no silent fallback elsewhere', () => {
    const dir = tempTree({ blocked: 'x' });
    expect(() =>
      defaultAuditFile('/p/api.json', { stateDir: join(dir, 'blocked'), env: { HOME: join(dir, 'home') } }),
    ).toThrow(/no writable state directory for the audit: tried .*blocked.*--state-dir/);
  });
});

describe('findDefaultAudits: the audits already in the state directory', () => {
  it('lists <root>/*/audit.jsonl that exist, sorted, and nothing for a missing root', () => {
    const root = tempTree({
      'b-1/audit.jsonl': '',
      'a-2/audit.jsonl': '',
      'c-3/pins.json': '{}',
      'stray.jsonl': '',
    });
    expect(findDefaultAudits({ stateDir: root })).toEqual([
      join(root, 'a-2', 'audit.jsonl'),
      join(root, 'b-1', 'audit.jsonl'),
    ]);
    expect(findDefaultAudits({ stateDir: join(root, 'missing') })).toEqual([]);
  });

  it('looks in every root: $XDG_STATE_HOME and ~/.local/state', () => {
    const dir = tempTree({
      'xdg/mcp-warden/one-1/audit.jsonl': '',
      'home/.local/state/mcp-warden/two-2/audit.jsonl': '',
    });
    mkdirSync(join(dir, 'home', '.local', 'state', 'mcp-warden', 'empty-3'));
    writeFileSync(join(dir, 'home', '.local', 'state', 'mcp-warden', 'empty-3', 'pins.json'), '{}');
    expect(findDefaultAudits({ env: { XDG_STATE_HOME: join(dir, 'xdg'), HOME: join(dir, 'home') } })).toEqual(
      [
        join(dir, 'home/.local/state/mcp-warden/two-2/audit.jsonl'),
        join(dir, 'xdg/mcp-warden/one-1/audit.jsonl'),
      ],
    );
  });
});
