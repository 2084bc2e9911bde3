import { randomBytes } from 'node:crypto';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import type { MqttClientLike } from './mqtt-like.js';

type MqttLibrary = typeof import('mqtt');

/**
 * Options of a client that belong to its identity, its session or its state, none of which a side
 * connection may share: the same clientId would take the client's session over, a will would be published
 * when the side connection ends, and a shared store or id provider would be cleared by its CONNACK.
 */
const NOT_SHARED = [
  'clientId',
  'clean',
  'will',
  'properties',
  'reconnectPeriod',
  'resubscribe',
  'manualConnect',
  'incomingStore',
  'outgoingStore',
  'messageIdProvider',
  'customHandleAcks',
  'keepalive',
  'queueQoSZero',
] as const;

/**
 * Whether the broker answers a new connection along the client's path, with the client's address and
 * credentials but an identity of its own (a random clientId, a clean session, no will): a CONNACK, accepting
 * or refusing, then (when accepted) a PINGRESP. While a client's own flow stays silent, an answer here says
 * that flow died; no answer says nothing (a stalled broker, a path down for everyone, a broker that closes an
 * unknown clientId without a CONNACK). Resolves false when `signal` aborts first.
 */
export async function brokerAnswersAnew(client: MqttClientLike, signal: AbortSignal): Promise<boolean> {
  const { connect } = await loadPeer<MqttLibrary>('mqtt', 'MQTT connections');
  const options: Record<string, unknown> = { ...client.options };
  for (const option of NOT_SHARED) delete options[option];
  const side = connect({
    ...options,
    clientId: `connection-health-probe-${randomBytes(6).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    keepalive: 0,
  }) as unknown as MqttClientLike;
  side.on('error', () => undefined);
  try {
    const { event, args } = await firstEvent(side, ['connect', 'error', 'close'], signal);
    // A CONNACK that refuses (bad credentials for a new identity, a clientId the broker's policy forbids) is an answer too.
    if (event === 'error') return typeof (args[0] as { code?: unknown } | undefined)?.code === 'number';
    if (event === 'close') return false;
    const pong = firstEvent(side, ['packetreceive'], signal);
    side.sendPing?.();
    await pong;
    return true;
  } catch {
    return false;
  } finally {
    side.end(true);
  }
}
