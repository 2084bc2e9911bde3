import { Client, type IFrame } from '@stomp/stompjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { StompTcpSocket } from '../../lib/adapters/stomp/stomp-tcp.socket.js';
import { ActiveMqServer } from '../../test/kit/activemq.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, Noticed, RawWatch } from './detection-kind.interface.js';

/**
 * @stomp/stompjs with its defaults (heart-beats 10 000 / 10 000, tolerance x2, reconnectDelay 5 000,
 * discardWebsocketOnCommFailure false), subscribed to a topic and waiting for messages. Node has no
 * WebSocket and stompjs no TCP transport, so it runs over the package's plain TCP wrapper; its kernel
 * keepalive (30 s idle) cannot see a proxy's faults, since the proxy still ACKs.
 */
async function watchStompJs(host: string, port: number): Promise<RawWatch> {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  const client = new Client({
    webSocketFactory: () => new StompTcpSocket({ host, port, keepAlive: {} }),
    onStompError: (frame: IFrame) => report(`onStompError: ${frame.headers.message ?? ''}`),
    onWebSocketError: () => report('onWebSocketError'),
    onWebSocketClose: () => report('onWebSocketClose'),
    onDisconnect: () => report('onDisconnect'),
    debug: () => undefined,
  });
  client.onHeartbeatLost = () => report('onHeartbeatLost');
  await new Promise<void>((resolve, reject) => {
    client.onConnect = () => resolve();
    client.onWebSocketError = () => reject(new Error(`cannot reach ${host}:${port}`));
    client.activate();
  });
  client.onWebSocketError = () => report('onWebSocketError');
  client.subscribe(`/topic/bench.raw.${process.pid}`, () => undefined);
  return {
    noticed,
    close: async () => {
      // deactivate() waits for a close a silent broker never sends; force it after a second.
      await Promise.race([client.deactivate(), sleep(1_000)]);
      await client.deactivate({ force: true });
    },
  };
}

/** ActiveMQ 5.17 from the test kit, monitored through kind 'stomp' over TCP (a message round trip per beat). */
export const activeMqStompKind: DetectionKind = {
  label: 'ActiveMQ 5.17 · @stomp/stompjs',
  server: 'ActiveMQ 5.17',
  startServer: () => ActiveMqServer.start(),
  connection: (host, port) => ({ definition: { name: 'broker', kind: 'stomp', host, port } }),
  raw: [{ name: '@stomp/stompjs', usage: 'subscribed to a topic, default heart-beats 10 000 / 10 000', watch: watchStompJs }],
};
