/**
 * Keeps DESIGN.md's layers: imports only point down. The engine (lib/core) imports nothing of the package
 * but itself, Node's builtins and rxjs (its event stream); the kinds (lib/adapters) import the engine,
 * each other and their client libraries, never the Nest layer, so that a kind is one folder that knows
 * nothing of Nest. Reads the sources (unit specs aside): no build of the package needed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lib = path.join(root, 'lib');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> };
/** The client libraries of the kinds: every peer but Nest's own packages. */
const CLIENT_LIBRARIES = Object.keys(manifest.peerDependencies).filter((name) => !name.startsWith('@nestjs/'));

/** Every specifier a file imports: static imports and re-exports, `import()` and `typeof import()`. */
function importsOf(source: string): string[] {
  const found = [
    ...source.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ];
  return found.map((match) => match[1]!);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    // Unit specs sit beside the code but never ship ("files" in package.json leaves them out); engine units
    // use the FakeClock of lib/testing.
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [full] : [];
  });
}

/** The package name of a bare specifier: `@stomp/stompjs` of `@stomp/stompjs/esm6`, `rxjs` of `rxjs/operators`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Imports of the files under `layer` that leave it for a folder of lib/ not in `mayReach`, or for a package
 * not in `packages`; as `file: specifier` lines, so a failure says what to move.
 */
function strayImports(layer: string, mayReach: readonly string[], packages: readonly string[]): string[] {
  const allowed = mayReach.map((folder) => path.join(lib, folder) + path.sep);
  return sourceFiles(path.join(lib, layer)).flatMap((file) =>
    importsOf(readFileSync(file, 'utf8'))
      .filter((specifier) => {
        if (specifier.startsWith('node:')) return false;
        if (specifier.startsWith('.')) return !allowed.some((folder) => path.resolve(path.dirname(file), specifier).startsWith(folder));
        return !packages.includes(packageOf(specifier));
      })
      .map((specifier) => `${path.relative(root, file)}: ${specifier}`),
  );
}

describe('layers: imports only point down', () => {
  it('finds the imports of a file in every form it writes them', () => {
    const source = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      'import {',
      '  c,',
      "} from '@nestjs/common';",
      "export { d } from './d.js';",
      "export type { E } from 'e';",
      "import 'reflect-metadata';",
      "type F = typeof import('f');",
      "const g = await import('g');",
      "// from 'not-an-import' in prose, after a word",
    ].join('\n');
    assert.deepEqual(importsOf(source), ['./a.js', '../b.js', '@nestjs/common', './d.js', 'e', 'reflect-metadata', 'f', 'g']);
  });

  it('lib/core imports only lib/core, node: builtins and rxjs', () => {
    assert.deepEqual(strayImports('core', ['core'], ['rxjs']), []);
  });

  it('lib/adapters imports only lib/adapters, lib/core, node: builtins, rxjs and the client libraries of the kinds', () => {
    assert.ok(CLIENT_LIBRARIES.includes('typeorm') && !CLIENT_LIBRARIES.some((name) => name.startsWith('@nestjs/')));
    assert.deepEqual(strayImports('adapters', ['adapters', 'core'], CLIENT_LIBRARIES), []);
  });
});
