import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { installedFixture, installTarball, packPackage, root } from './kit/packed-package.js';

const fixtures = path.join(root, 'test/fixtures');
const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
const OPTIONAL_PEERS = Object.keys(manifest.peerDependencies).filter((name) => manifest.peerDependenciesMeta[name]?.optional);
const REQUIRED_PEERS = Object.keys(manifest.peerDependencies).filter((name) => !OPTIONAL_PEERS.includes(name));
/**
 * Where the types of an optional peer may come from: the package itself, or DefinitelyTyped (@types/imap,
 * @types/stomp__stompjs); and amqp-connection-manager, whose manager the package takes without being its peer.
 */
const OPTIONAL_TYPES = [...OPTIONAL_PEERS, 'amqp-connection-manager'].flatMap((name) => [name, `@types/${name.replace(/^@(.*)\//, '$1__')}`]);

/** Runs tsc and returns its exit code and what it printed (the diagnostics go to stdout). */
function compile(project: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [tsc, '-p', project], { timeout: 180_000, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}`.trim() }),
    ),
  );
}

/** Every .d.ts file under `dir`. */
function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.d.ts'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

/** The packages a declaration file refers to: imports, exports, import() types and triple-slash references. */
function referencedPackages(source: string): string[] {
  const specifiers = [
    ...source.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
    ...source.matchAll(/\/\/\/\s*<reference\s+types\s*=\s*['"]([^'"]+)['"]/g),
  ].map((match) => match[1] as string);
  return specifiers.filter((specifier) => !specifier.startsWith('.')).map((specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/'));
}

describe('the published types need no optional peer', () => {
  let app: string;
  let installed: string;

  before(
    async () => {
      assert.ok(existsSync(path.join(root, 'dist/esm/index.d.ts')), 'build the package first: npm run build');
      const peers = await installedFixture('types-consumer');
      app = mkdtempSync(path.join(os.tmpdir(), 'connection-health-consumer-'));
      cpSync(peers, app, { recursive: true });
      await installTarball(app, await packPackage(app));
      cpSync(path.join(fixtures, 'types-consumer/tsconfig.json'), path.join(app, 'tsconfig.json'));
      cpSync(path.join(fixtures, 'types-consumer/src'), path.join(app, 'src'), { recursive: true });
      installed = path.join(app, 'node_modules', manifest.name);
    },
    { timeout: 600_000 },
  );

  after(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('the consumer app has the required peers, and no optional peer nor its types anywhere it could find them', () => {
    const lookup = createRequire(path.join(app, 'src/app.ts')).resolve.paths('x') ?? [];
    const found = OPTIONAL_TYPES.flatMap((name) => lookup.filter((dir) => existsSync(path.join(dir, name))).map((dir) => path.join(dir, name)));
    assert.deepEqual(found, []);
    assert.deepEqual(REQUIRED_PEERS.filter((name) => !existsSync(path.join(app, 'node_modules', name, 'package.json'))), []);
    assert.ok(existsSync(path.join(installed, 'dist/esm/index.d.ts')), 'the packed package is installed with its declarations');
  });

  it('no declaration file of the packed package refers to an optional peer or to its @types', () => {
    const files = declarationFiles(installed);
    assert.ok(files.length > 40, `the tarball holds the declarations (${files.length} found)`);
    const references = files.flatMap((file) =>
      referencedPackages(readFileSync(file, 'utf8'))
        .filter((name) => OPTIONAL_TYPES.includes(name))
        .map((name) => `${path.relative(installed, file)}: ${name}`),
    );
    assert.deepEqual(references, []);
  });

  it('an app with only the required peers compiles against the packed package: strict, skipLibCheck false, module nodenext', { timeout: 300_000 }, async () => {
    const { code, output } = await compile(app);
    assert.equal(output, '');
    assert.equal(code, 0);
  });

  it('an app with every peer hands the package their own types: a DataSource, ImapFlow and node-imap factories, IMessage handlers, an ioredis client, a prom-client Registry', { timeout: 300_000 }, async () => {
    // Inside the repository: its node_modules has every optional peer, and the package resolves to ./dist by its own name.
    const { code, output } = await compile(path.join(fixtures, 'types-consumer-with-peers'));
    assert.equal(output, '');
    assert.equal(code, 0);
  });

  it('an app with amqplib and amqp-connection-manager hands in a ChannelModel, a recovering model and a manager, with AmqpMessage consumers: strict, skipLibCheck false', { timeout: 300_000 }, async () => {
    const { code, output } = await compile(path.join(fixtures, 'types-consumer-amqp'));
    assert.equal(output, '');
    assert.equal(code, 0);
  });

  it("an app with mqtt hands in MQTT.js's MqttClient and IClientOptions as they are, with MqttMessage subscriptions: strict, skipLibCheck false", { timeout: 300_000 }, async () => {
    const { code, output } = await compile(path.join(fixtures, 'types-consumer-mqtt'));
    assert.equal(output, '');
    assert.equal(code, 0);
  });

  it("an app with nats hands in nats.js's NatsConnection and ConnectionOptions as they are, with NatsMessage and Msg subscriptions: strict, skipLibCheck false", { timeout: 300_000 }, async () => {
    const { code, output } = await compile(path.join(fixtures, 'types-consumer-nats'));
    assert.equal(output, '');
    assert.equal(code, 0);
  });
});
