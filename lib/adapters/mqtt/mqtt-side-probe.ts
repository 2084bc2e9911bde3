import { randomBytes } from 'node:crypto';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import type { MqttClientLike } from './mqtt-like.js';

type MqttLibrary = typeof import('mqtt');

/**
 * Options of a client that belong to its identity, its session or its state, none of which a side
 * connection may share: the same clientId would take the client's session over, and so would the same
 * username or certificate on a broker that makes the clientId of them (mosquitto's use_username_as_clientid,
 * use_identity_as_username); a will would be published when the side connection ends; a shared store or id
 * provider would be cleared by its CONNACK. A broker's answer to a connection without credentials (a CONNACK
 * refusing it) proves that it answers all the same.
 */
const NOT_SHARED = [
  'clientId',
  'auth',
  'query',
  'username',
  'password',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'authPacket',
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
 * Whether the broker answers a new connection along the client's path, with the client's address and TLS
 * settings but no credentials and an identity of its own (a random clientId, a clean session, no will): a
 * CONNACK, accepting or refusing, then (when accepted) a PINGRESP. While a client's own flow stays silent, an answer here says
 * that flow died; no answer says nothing (a stalled broker, a path down for everyone, a broker that closes an
 * unknown clientId without a CONNACK). Resolves false when `signal` aborts first.
 */
export async function brokerAnswersAnew(client: MqttClientLike, signal: AbortSignal): Promise<boolean> {
  const options: Record<string, unknown> = { ...client.options };
  // A client made on a stream of the app's (a tunnel, a proxy) has no address of its own to dial.
  if (typeof options.protocol !== 'string' || (options.hostname ?? options.host) === undefined) return false;
  for (const option of NOT_SHARED) delete options[option];
  // A WebSocket path's query may carry a token too.
  if (typeof options.path === 'string') options.path = options.path.replace(/\?.*$/s, '');
  const { connect } = await loadPeer<MqttLibrary>('mqtt', 'MQTT connections');
  let side: MqttClientLike | undefined;
  try {
    side = connect({
      ...options,
      clientId: `connection-health-probe-${randomBytes(6).toString('hex')}`,
      clean: true,
      reconnectPeriod: 0,
      keepalive: 0,
    }) as unknown as MqttClientLike;
    side.on('error', () => undefined);
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
    side?.end(true);
  }
}
