/**
 * The Prometheus rules of sample/deploy/prometheus, run through the real promtool (Debian's prometheus
 * package, installed by scripts/install-servers.sh): they load, their unit tests pass, and the unit tests
 * would notice a rule that pages on a blip or a look-alike (each weakened copy of the rules fails them).
 * The dashboard's queries are parsed by the same promtool, as the expressions of recording rules.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rulesDir = path.join(root, 'sample/deploy/prometheus');
const RULES = 'connection-health.rules.yaml';
const RULE_TESTS = 'connection-health.rules.test.yaml';
const DASHBOARD = path.join(root, 'sample/deploy/grafana/connection-health.dashboard.json');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function promtool(args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { cwd, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`promtool did not run (${error.message}); install it with: bash scripts/install-servers.sh`));
        return;
      }
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

/** Weakened copies of the rules: each must make a unit test fail, at the alert and time named. */
const WEAKENED: ReadonlyArray<{ what: string; from: string; to: string; failsAt: string }> = [
  { what: 'down without its for: pages on a 3-minute blip', from: 'for: 5m', to: 'for: 0m', failsAt: 'alertname: ConnectionHealthConnectionDown, time: 9m' },
  {
    what: 'down counting a connection closed on purpose',
    from: '          unless ignoring (state) connection_health_state{state=~"closing|closed"} == 1\n',
    to: '',
    failsAt: 'alertname: ConnectionHealthConnectionDown, time: 11m',
  },
  { what: 'flapping at 2 changes: one blip is flapping', from: 'changes(connection_health_up[15m]) >= 6', to: 'changes(connection_health_up[15m]) >= 2', failsAt: 'alertname: ConnectionHealthConnectionFlapping, time: 13m' },
  { what: 'slow heartbeats with a for: shorter than the window: one slow minute fires', from: 'for: 15m', to: 'for: 5m', failsAt: 'alertname: ConnectionHealthHeartbeatSlow, time: 2h10m' },
  {
    what: 'dead-man exit on any restart, outage or not',
    from: '          and max without (state) (max_over_time(connection_health_state{state=~"down|reconnecting|failed"}[15m])) == 1\n',
    to: '',
    failsAt: 'alertname: ConnectionHealthDeadManExit, time: 17m',
  },
  {
    what: 'dead-man exit on any outage, restart or not',
    from: '          resets(connection_health_reconnect_attempts_total[15m]) > 0\n          and max without',
    to: '          max without',
    failsAt: 'alertname: ConnectionHealthDeadManExit, time: 17m',
  },
];

describe('fleet assets: the Prometheus rules under promtool', () => {
  let work: string;

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'ch-fleet-rules-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('promtool check rules: the file loads, 1 recording rule and 4 alerts', async () => {
    const run = await promtool(['check', 'rules', RULES], rulesDir);
    assert.deepEqual(run, { code: 0, stdout: `Checking ${RULES}\n  SUCCESS: 5 rules found\n\n`, stderr: '' });
    const names = [...readFileSync(path.join(rulesDir, RULES), 'utf8').matchAll(/^ {6}- (record|alert): (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(names, [
      'record connection_health:heartbeat_rtt_seconds:p99_10m',
      'alert ConnectionHealthConnectionDown',
      'alert ConnectionHealthConnectionFlapping',
      'alert ConnectionHealthHeartbeatSlow',
      'alert ConnectionHealthDeadManExit',
    ]);
  });

  it('promtool test rules: every alert fires on its case and not on its blip', async () => {
    const run = await promtool(['test', 'rules', RULE_TESTS], rulesDir);
    assert.deepEqual(run, { code: 0, stdout: `Unit Testing:  ${RULE_TESTS}\n  SUCCESS\n\n`, stderr: '' });
  });

  for (const weakened of WEAKENED) {
    it(`the unit tests catch a weakened rule: ${weakened.what}`, async () => {
      const rules = readFileSync(path.join(rulesDir, RULES), 'utf8');
      assert.equal(rules.split(weakened.from).length, 2, `"${weakened.from}" appears once in the rules`);
      writeFileSync(path.join(work, RULES), rules.replace(weakened.from, weakened.to));
      copyFileSync(path.join(rulesDir, RULE_TESTS), path.join(work, RULE_TESTS));
      const run = await promtool(['test', 'rules', RULE_TESTS], work);
      // promtool writes the heading to stdout and the failures to stderr.
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, new RegExp(`^Unit Testing:  ${RULE_TESTS.replaceAll('.', '\\.')}\n+$`));
      assert.ok(run.stderr.startsWith('  FAILED:\n'), run.stderr);
      assert.ok(run.stderr.includes(weakened.failsAt), `expected a failure at "${weakened.failsAt}":\n${run.stderr}`);
    });
  }

  it("promtool parses every query of the dashboard (Grafana's variables replaced by values)", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
    assert.equal(exprs.length, 10);
    const concrete = exprs.map((expr) => expr.replaceAll('$__rate_interval', '1m').replace(/\$(job|instance|connection)\b/g, '.*'));
    assert.deepEqual(concrete.filter((expr) => expr.includes('$')), []);
    const rules = ['groups:', '  - name: dashboard-queries', '    rules:', ...concrete.flatMap((expr, i) => [`      - record: dashboard_query_${i}`, `        expr: ${JSON.stringify(expr)}`])];
    writeFileSync(path.join(work, 'dashboard-queries.yaml'), `${rules.join('\n')}\n`);
    const run = await promtool(['check', 'rules', 'dashboard-queries.yaml'], work);
    assert.deepEqual(run, { code: 0, stdout: 'Checking dashboard-queries.yaml\n  SUCCESS: 10 rules found\n\n', stderr: '' });
  });
});
