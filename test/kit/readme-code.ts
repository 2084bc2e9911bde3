import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from './packed-package.js';

/** A TypeScript code block of the README, as a file of an app in the compatibility matrix. */
export interface ReadmeFile {
  /** Where it goes in the app: what its `<!-- matrix: path -->` marker says, else readme/block-<n>.ts. */
  readonly path: string;
  readonly text: string;
  /** Its line in README.md, for failure messages. */
  readonly line: number;
}

const MARKER = /^<!--\s*matrix:\s*(\S+)\s*-->$/;

/**
 * Every ```ts block of README.md as a file the matrix compiles (and, for a block marked with its path in the
 * app, runs: a provider the app registers, a test its runner finds). Each block must be a whole module, as a
 * user pastes it. For an ES module app, relative imports get the `.js` the README tells ESM users to write.
 */
export function readmeFiles(format: 'commonjs' | 'module'): ReadmeFile[] {
  const lines = readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
  const files: ReadmeFile[] = [];
  for (let start = 0; start < lines.length; start++) {
    if (lines[start] !== '```ts') continue;
    const end = lines.indexOf('```', start + 1);
    const marker = MARKER.exec(lines[start - 1] ?? '')?.[1];
    const text = `${lines.slice(start + 1, end).join('\n')}\n`;
    files.push({ path: marker ?? `readme/block-${files.length + 1}.ts`, text: format === 'module' ? withEsmSpecifiers(text) : text, line: start + 1 });
    start = end;
  }
  return files;
}

/** `from './x'` becomes `from './x.js'`: what Node's ES module resolution, and TypeScript's nodenext for it, need. */
export function withEsmSpecifiers(source: string): string {
  return source.replace(/(\bfrom\s+|\bimport\s*\(\s*)(['"])(\.{1,2}\/[^'"]*?)(?<!\.js)\2/g, '$1$2$3.js$2');
}
