/**
 * Keeps the README's option tables honest (it is also the npm page): every key the package's checkers
 * accept has a row with its default and allowed values, in the table of its place (the common options, or
 * its kind's), and no row names an option the checkers would refuse. The built-in defaults of the engine's
 * groups are compared with the table too.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AMQP_CONSUMER_OPTIONS, AMQP_OPTIONS } from '../lib/adapters/amqp/amqp.kind.js';
import { CUSTOM_OPTIONS } from '../lib/adapters/custom/custom.kind.js';
import { MICROSERVICE_OPTIONS } from '../lib/adapters/microservice/microservice.kind.js';
import { MQTT_OPTIONS, MQTT_SUBSCRIPTION_OPTIONS } from '../lib/adapters/mqtt/mqtt.kind.js';
import { NATS_OPTIONS, NATS_SUBSCRIPTION_OPTIONS } from '../lib/adapters/nats/nats.kind.js';
import { KIND_OPTIONS } from '../lib/adapters/create-adapter.js';
import { IMAP_LOGIN_OPTIONS, IMAP_OPTIONS } from '../lib/adapters/imap/imap-adapter.factory.js';
import { REDIS_OPTIONS } from '../lib/adapters/redis/redis.kind.js';
import { STOMP_HEARTBEAT_OPTIONS, STOMP_OPTIONS, STOMP_PROBE_OPTIONS, STOMP_SUBSCRIPTION_OPTIONS } from '../lib/adapters/stomp/stomp-options.js';
import { KEEPALIVE_OPTIONS } from '../lib/adapters/tcp-keepalive.js';
import { TCP_OPTIONS } from '../lib/adapters/tcp/tcp.kind.js';
import { POSTGRES_KEEPALIVE_OPTIONS, TYPEORM_OPTIONS } from '../lib/adapters/typeorm/typeorm.kind.js';
import {
  DEAD_MAN_OPTIONS,
  EXTRAS,
  HEALTH_CONTROLLER_OPTIONS,
  METRICS_OPTIONS,
  MODULE_OPTIONS,
  OPENTELEMETRY_OPTIONS,
  SHUTDOWN_OPTIONS,
} from '../lib/connection-health.options-check.js';
import { CONNECTION_OPTIONS } from '../lib/core/connection-definition.js';
import { THROTTLE_OPTIONS, WEBHOOK_OPTIONS } from '../lib/publishers/webhook-publisher.options.js';
import { DEFAULT_FAILURE, DEFAULT_HEARTBEAT, DEFAULT_RECONNECT, DEFAULT_SUSPICION } from '../lib/core/monitor-options.js';
import { MONITOR_GROUP_OPTIONS, MONITOR_OPTION_GROUPS } from '../lib/core/resolve-monitor-options.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TABLE_HEADER = '| option | default | allowed | meaning |';

/** One row of an options table: the option's name (its first cell, one code span) and the other cells. */
interface OptionRow {
  readonly line: number;
  readonly cells: readonly string[];
}

/** The option tables of the README, by the heading they sit under: heading -> option -> row. */
function optionTables(): Map<string, Map<string, OptionRow>> {
  const lines = readFileSync(path.join(root, 'README.md'), 'utf8').split('\n');
  const tables = new Map<string, Map<string, OptionRow>>();
  let heading = '';
  let inTable = false;
  lines.forEach((text, index) => {
    const title = /^#{2,4} (.+)$/.exec(text);
    if (title) heading = title[1]!.replaceAll('`', '');
    if (!text.startsWith('|')) {
      inTable = false;
      return;
    }
    if (text.trim() === TABLE_HEADER) {
      inTable = true;
      if (!tables.has(heading)) tables.set(heading, new Map());
      return;
    }
    if (!inTable || /^\|[-| ]+\|$/.test(text.trim())) return;
    const cells = splitRow(text);
    const name = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    assert.ok(name, `README.md:${index + 1}: the first cell of an options row is one option in backticks: ${text}`);
    const rows = tables.get(heading)!;
    assert.ok(!rows.has(name), `README.md:${index + 1}: ${name} has two rows under "${heading}"`);
    rows.set(name, { line: index + 1, cells });
  });
  return tables;
}

/** The cells of a table row; `\|` inside a cell is a literal bar. */
function splitRow(text: string): string[] {
  return text
    .trim()
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim());
}

/** Options that hold a list: a row per key of its entries, e.g. `subscriptions[].destination`. */
const LISTS = new Set(['subscriptions', 'consumers']);

/** Keys of a level, each group replaced by its own keys under `group.` (a row for the group itself is allowed). */
function expand(keys: readonly string[], groups: Record<string, readonly string[]> = {}): { required: string[]; groups: string[] } {
  const prefix = (key: string) => (LISTS.has(key) ? `${key}[]` : key);
  const required = keys.flatMap((key) => (groups[key] ? groups[key].map((inner) => `${prefix(key)}.${inner}`) : [key]));
  return { required, groups: Object.keys(groups).map(prefix) };
}

const engineGroups = Object.fromEntries(MONITOR_OPTION_GROUPS.map((group) => [group, MONITOR_GROUP_OPTIONS[group]]));
const connection = expand(CONNECTION_OPTIONS, engineGroups);
const moduleLevel = expand([...MODULE_OPTIONS, ...EXTRAS], {
  shutdown: SHUTDOWN_OPTIONS,
  deadMan: DEAD_MAN_OPTIONS,
  metrics: METRICS_OPTIONS,
  openTelemetry: OPENTELEMETRY_OPTIONS,
  healthController: HEALTH_CONTROLLER_OPTIONS,
});

/** Where each set of options is documented: heading -> what its tables must hold. */
const PLACES: Record<string, { required: string[]; groups: string[] }> = {
  Options: { required: [...connection.required, ...moduleLevel.required], groups: [...connection.groups, ...moduleLevel.groups, 'defaults'] },
  'typeorm options': expand(TYPEORM_OPTIONS, { postgresKeepAlive: POSTGRES_KEEPALIVE_OPTIONS }),
  'tcp options': expand(TCP_OPTIONS, { keepAlive: KEEPALIVE_OPTIONS }),
  'custom options': expand(CUSTOM_OPTIONS),
  'imap options': expand(IMAP_OPTIONS, { auth: IMAP_LOGIN_OPTIONS }),
  'stomp options': expand(STOMP_OPTIONS, {
    keepAlive: KEEPALIVE_OPTIONS,
    stompHeartbeat: STOMP_HEARTBEAT_OPTIONS,
    probe: STOMP_PROBE_OPTIONS,
    subscriptions: STOMP_SUBSCRIPTION_OPTIONS,
  }),
  'redis options': expand(REDIS_OPTIONS, { keepAlive: KEEPALIVE_OPTIONS }),
  'amqp options': expand(AMQP_OPTIONS, { consumers: AMQP_CONSUMER_OPTIONS }),
  'mqtt options': expand(MQTT_OPTIONS, { subscriptions: MQTT_SUBSCRIPTION_OPTIONS }),
  'nats options': expand(NATS_OPTIONS, { subscriptions: NATS_SUBSCRIPTION_OPTIONS }),
  'microservice options': expand(MICROSERVICE_OPTIONS),
  'WebhookPublisher options': expand(WEBHOOK_OPTIONS, { throttle: THROTTLE_OPTIONS }),
};

describe('README option tables', () => {
  const tables = optionTables();

  it('have a place for every kind the checkers know', () => {
    for (const kind of Object.keys(KIND_OPTIONS)) assert.ok(PLACES[`${kind} options`], `no README place for kind ${kind}`);
  });

  for (const [place, expected] of Object.entries(PLACES)) {
    it(`list every option under "${place}" with its default and allowed values, and no other`, () => {
      const rows = tables.get(place);
      assert.ok(rows, `README.md has no "${TABLE_HEADER}" table under a heading "${place}"`);
      const missing = expected.required.filter((key) => !rows.has(key));
      assert.deepEqual(missing, [], `README.md "${place}" has no row for ${missing.join(', ')}`);
      for (const [name, row] of rows) {
        assert.ok(
          expected.required.includes(name) || expected.groups.includes(name),
          `README.md:${row.line}: "${name}" is no option the checkers take under "${place}"`,
        );
        assert.equal(row.cells.length, 4, `README.md:${row.line}: an options row has 4 cells`);
        assert.ok(row.cells.every((cell) => cell !== ''), `README.md:${row.line}: every cell of ${name} is filled in`);
      }
    });
  }

  it("give the engine's built-in defaults", () => {
    const rows = tables.get('Options') ?? new Map<string, OptionRow>();
    const builtIn = { heartbeat: DEFAULT_HEARTBEAT, suspicion: DEFAULT_SUSPICION, reconnect: DEFAULT_RECONNECT, failure: DEFAULT_FAILURE };
    for (const [group, defaults] of Object.entries(builtIn)) {
      for (const [key, value] of Object.entries(defaults)) {
        const row = rows.get(`${group}.${key}`);
        assert.ok(row, `no row for ${group}.${key}`);
        // Numbers are written with thin groups (30 000), strings quoted: the cell starts with the value.
        const cell = row.cells[1]!.replace(/(\d) (?=\d{3}\b)/g, '$1');
        const written = typeof value === 'string' ? `\`'${value}'\`` : String(value);
        assert.ok(cell.startsWith(written), `README.md:${row.line}: the default of ${group}.${key} is ${written}, the table says ${row.cells[1]}`);
      }
    }
  });
});
