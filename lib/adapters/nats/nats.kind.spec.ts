import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../core/clock.js';
import { OptionChecker } from '../../core/option-checker.js';
import { resolveMonitorOptions } from '../../core/resolve-monitor-options.js';
import { reportToConsole } from '../../core/user-callback.js';
import { natsKind, type NatsConnectionDefinition } from './nats.kind.js';

const options = resolveMonitorOptions('events');

/** What bootstrap logs for a connection the package makes. */
function warnings(definition: Omit<NatsConnectionDefinition, 'name' | 'kind'>): string[] {
  const check = new OptionChecker('events');
  natsKind.create({ name: 'events', kind: 'nats', ...definition }, options, { clock: systemClock, check, report: reportToConsole });
  return check.warnings;
}

describe('NATS kind options', () => {
  it('warns of a password or token sent in clear to a host that is not loopback, and trusts only what makes nats.js use TLS', () => {
    assert.deepEqual(warnings({ servers: 'nats://ops:s3cret@broker.internal:4222' }), [
      'Connection "events": the NATS password or token goes to broker.internal in clear, without TLS: anyone on the path can read it. ' +
        'Use tls:// (or natsOptions.tls), or set allowInsecureAuth: true if this network is trusted.',
    ]);
    assert.match(warnings({ servers: 'broker.internal:4222', natsOptions: { token: 't0ken' } })[0] ?? '', /goes to broker\.internal in clear/);
    assert.match(warnings({ servers: 'nats://u:p@broker.internal', natsOptions: { tls: null } })[0] ?? '', /in clear/, 'tls: null turns TLS off in nats.js');
    assert.match(warnings({ servers: 'nats://u:p@127.0.0.1', allowInsecureAuth: false })[0] ?? '', /allowInsecureAuth: true/, 'false warns on loopback too');
    for (const quiet of [
      { servers: 'nats://u:p@127.0.0.1:4222' },
      { servers: 'nats://u:p@localhost' },
      { servers: 'tls://u:p@broker.internal:4222' },
      { servers: ['tls://t0ken@a.internal', 'tls://t0ken@b.internal'] },
      { servers: 'nats://u:p@broker.internal', natsOptions: { tls: { ca: 'PEM' } } },
      { servers: 'broker.internal:4222' },
      { servers: 'nats://u:p@broker.internal', allowInsecureAuth: true },
    ] satisfies Array<Omit<NatsConnectionDefinition, 'name' | 'kind'>>) {
      assert.deepEqual(warnings(quiet), [], JSON.stringify(quiet));
    }
  });
});
