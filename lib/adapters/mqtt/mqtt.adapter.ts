import { randomBytes } from 'node:crypto';
import { BehaviorSubject, type Observable } from 'rxjs';
import { onAbort } from '../../core/abortable.js';
import type { BeatReport, ConnectionAdapter } from '../../core/connection-adapter.interface.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { firstEvent } from '../first-event.js';
import { loadPeer } from '../load-peer.js';
import type { KeptMqttSubscriptions } from './kept-mqtt-subscriptions.js';
import { brokerAnswersAnew } from './mqtt-side-probe.js';
import type { MqttClientLike, MqttPacketLike, MqttStreamLike } from './mqtt-like.js';

type MqttLibrary = typeof import('mqtt');

/** The app's client, watched; or how to create the package's own. */
export type MqttSource = { readonly watched: MqttClientLike } | { readonly url?: string; readonly mqttOptions: Record<string, unknown> };

export interface MqttAdapterSettings {
  /** host:port, without credentials. */
  readonly target: string;
  /** What a beat sends: a PINGREQ, or a QoS 1 PUBLISH to beatTopic. */
  readonly probe: 'ping' | 'publish';
  /** Where beats are published, with probe 'publish'. */
  readonly beatTopic: string;
  readonly subscriptions: KeptMqttSubscriptions;
  readonly secrets: readonly string[];
}

/** A beat that missed its deadline: what tells a dead flow from a slow one at the next attempt. */
interface LateBeat {
  readonly stream: MqttStreamLike | undefined;
  /** Packets other than PINGRESP received through the client when the beat went out. */
  readonly deliveredIn: number;
}

/**
 * MQTT.js keeps the subscriptions to make again, and the QoS 1 and 2 messages to send again, only for a
 * client that reconnects by itself. The package's own client gets the longest period a timer takes, so
 * that the engine's connect, which clears that timer, always comes first.
 */
const RECONNECT_NEVER_FIRST_MS = 2_147_483_647;

/**
 * An MQTT broker through one MQTT.js client, the same object for the connection's whole life (the app may
 * keep it and subscribe on it). A beat is one round trip within the deadline: a PINGREQ answered by its
 * PINGRESP (probe 'ping'), or a QoS 1 PUBLISH to a topic of the package's own answered by its PUBACK (probe
 * 'publish'). Nothing subscribes to that topic: a message that came back would reach every 'message'
 * listener of the client, and one of the app's that throws on it (JSON.parse) crashes the process. A `$`
 * topic is matched by no wildcard subscription (`#`), so no other client receives it either.
 *
 * A late beat reads the connection down. Its transport is dropped only on evidence that its flow died (a NAT
 * that forgot it, a blackhole) or lost bytes: nothing but PINGRESPs came in on it since the beat, and a
 * PINGREQ sent at the next attempt went unanswered, while the broker answered a new connection, without
 * credentials, along the same path (see judgeLateFlow). A slow or busy flow, and a stalled broker, which
 * answers nobody, keep the connection, its session and its messages in flight, and publish no will.
 *
 * Reconnection: the package's own client is connected again by every open(), with the engine's backoff.
 * The app's client is never connected, ended nor reconnected by the package: its own reconnectPeriod
 * reconnects it, and open() waits for its 'connect'.
 */
export class MqttAdapter implements ConnectionAdapter {
  readonly kind = 'mqtt';
  readonly target: string;
  readonly clientChanges$: Observable<unknown>;
  private readonly clients = new BehaviorSubject<MqttClientLike | undefined>(undefined);
  private client?: MqttClientLike;
  private readonly owned: boolean;
  private late?: LateBeat;
  /**
   * Packets other than PINGRESP received through the client, any connection: one since a late beat says its
   * flow delivers (the app's messages, the beat's late PUBACK), even while PINGRESPs wait behind the app's work.
   */
  private deliveredIn = 0;
  /** Why the last connection ended or failed: the broker's DISCONNECT or CONNACK reason, a socket error. */
  private lastReason?: string;
  private onLoss?: (error: Error) => void;
  private stopWatching?: () => void;
  /** Callbacks of the beats' PUBLISHes still unanswered, to take back from MQTT.js's store when their transport closes. */
  private readonly unanswered = new Set<(error?: Error) => void>();
  /** PINGREQs sent and PINGRESPs received on the current transport: the n-th PINGRESP answers the n-th PINGREQ. */
  private pingsOut = 0;
  private pongsIn = 0;
  private readonly tokenPrefix = `connection-health-${randomBytes(4).toString('hex')}-`;
  private sequence = 0;

  constructor(
    private readonly source: MqttSource,
    private readonly settings: MqttAdapterSettings,
  ) {
    this.owned = !('watched' in source);
    if ('watched' in source) this.client = source.watched;
    this.target = settings.target;
    this.clientChanges$ = this.clients.asObservable();
  }

  knownSecrets(): readonly string[] {
    return this.settings.secrets;
  }

  currentClient(): unknown {
    return this.clients.value;
  }

  async open(signal: AbortSignal): Promise<void> {
    const client = this.client ?? (await this.createClient());
    signal.throwIfAborted();
    this.watch(client);
    // Listening before the client connects: a broker holding a persistent session sends the messages it queued
    // right after its CONNACK, before 'connect' is handled here, and MQTT.js acknowledges each one as it emits it.
    this.settings.subscriptions.attach(client);
    this.clients.next(undefined);
    await this.judgeLateFlow(client, signal);
    if (this.owned) await this.connectOwned(client, signal);
    else await this.awaitWatched(client, signal);
    await this.settings.subscriptions.make(client, signal);
    const report = await this.beat(client, signal);
    this.clients.next(client);
    if (report.impairment) this.remakeSubscriptions(client, signal);
  }

  async ping(signal: AbortSignal): Promise<BeatReport> {
    const client = this.clients.value;
    if (!client?.connected) throw new Error(messages.mqttNotConnected(this.lastReason));
    const report = await this.beat(client, signal);
    if (report.impairment) this.remakeSubscriptions(client, signal);
    return report;
  }

  /** The package's client: DISCONNECT, then its transport is destroyed when `signal` aborts. The app's: left as it is. */
  async close(signal: AbortSignal): Promise<void> {
    const client = this.client;
    this.clients.next(undefined);
    this.clients.complete();
    this.settings.subscriptions.close();
    this.stopWatching?.();
    if (!this.owned || !client || client.disconnecting) return;
    const closed = client.stream && !client.stream.destroyed ? firstEvent(client, ['close'], signal).catch(() => undefined) : undefined;
    const stopForcing = onAbort(signal, () => client.stream?.destroy());
    try {
      // end() waits for the app's QoS 1 and 2 messages in flight to be acknowledged: the deadline bounds it.
      client.end(false, {}, () => undefined);
      await closed;
    } finally {
      stopForcing();
    }
  }

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss = onLoss;
    return () => (this.onLoss = undefined);
  }

  private async createClient(): Promise<MqttClientLike> {
    const source = this.source as Exclude<MqttSource, { watched: MqttClientLike }>;
    const { connect } = await loadPeer<MqttLibrary>('mqtt', 'MQTT connections');
    // MQTT.js never connects behind the engine's back: open() does, with the engine's backoff.
    const options = { ...source.mqttOptions, manualConnect: true, reconnectPeriod: RECONNECT_NEVER_FIRST_MS };
    const client = (source.url === undefined ? connect(options) : connect(source.url, options)) as unknown as MqttClientLike;
    if (typeof client.sendPing !== 'function') throw new Error(messages.mqttTooOld());
    // Ours to listen to: an 'error' without a listener would crash the process. It also says why a connect
    // failed (ECONNREFUSED, a CONNACK refusing the credentials) where 'close' says nothing.
    client.on('error', (error: Error) => (this.lastReason = describeError(error)));
    this.client = client;
    return client;
  }

  /** Listens for the ends of connections, and counts the packets that come in, once for the adapter's life. */
  private watch(client: MqttClientLike): void {
    if (this.stopWatching) return;
    const onReceive = (packet: MqttPacketLike) => {
      if (packet.cmd === 'pingresp') this.pongsIn += 1;
      else this.deliveredIn += 1;
      if (packet.cmd === 'disconnect') this.lastReason = messages.mqttServerDisconnect(packet.reasonCode, (packet.properties as { reasonString?: string } | undefined)?.reasonString);
    };
    const onSend = (packet: MqttPacketLike) => {
      if (packet.cmd === 'pingreq') this.pingsOut += 1;
    };
    const onClose = () => {
      this.pingsOut = this.pongsIn = 0;
      this.takeBackBeats(client);
      const socketError = client.stream?.errored;
      if (socketError) this.lastReason = describeError(socketError);
      if (this.clients.value !== client) return;
      this.clients.next(undefined);
      this.onLoss?.(new Error(messages.mqttClosed(this.lastReason)));
    };
    client.on('packetreceive', onReceive);
    client.on('packetsend', onSend);
    client.on('close', onClose);
    this.stopWatching = () => {
      client.removeListener('packetreceive', onReceive);
      client.removeListener('packetsend', onSend);
      client.removeListener('close', onClose);
    };
  }

  /** The package's client: connected again, after its last transport is gone. */
  private async connectOwned(client: MqttClientLike, signal: AbortSignal): Promise<void> {
    if (client.connected) return;
    // A transport still connecting (an attempt that was given up, a handshake lost in a blackhole) goes first.
    if (client.stream && !client.stream.destroyed) await dropTransport(client, signal);
    this.lastReason = undefined;
    const outcome = firstEvent(client, ['connect', 'close'], signal);
    const stopForcing = onAbort(signal, () => client.stream?.destroy());
    try {
      client.connect();
      const { event } = await outcome;
      if (event === 'close') throw new Error(messages.mqttClosed(this.lastReason));
    } finally {
      stopForcing();
    }
  }

  /** The app's client: its own reconnectPeriod reconnects it; this waits until it is connected. */
  private async awaitWatched(client: MqttClientLike, signal: AbortSignal): Promise<void> {
    if (client.connected) return;
    if (client.disconnecting) throw new Error(messages.mqttClientEnded());
    const connecting = client.stream !== undefined && !client.stream.destroyed;
    if (!connecting && !client.reconnecting && !((client.options.reconnectPeriod ?? 1_000) > 0)) throw new Error(messages.mqttClientNeverReconnects());
    // A connection attempt of the client's that failed ends this attempt, with its reason: the engine counts
    // it and waits its backoff, as for a connection it makes itself. One that hangs is left to the client's
    // own connectTimeout: dropping it at this deadline would never let a slow handshake finish.
    const { event } = await firstEvent(client, ['connect', 'close'], signal).catch((error: unknown) => {
      throw new Error(messages.mqttNotConnectedInTime(), { cause: error });
    });
    if (event === 'close') throw new Error(messages.mqttClosed(this.lastReason ?? (client.stream?.errored ? describeError(client.stream.errored) : undefined)));
  }

  /**
   * One round trip within the deadline, given up when the connection closes meanwhile. A broker that refuses
   * the beat's PUBLISH (MQTT 5: not authorized) answered all the same: the connection works, and reads
   * degraded with the reason.
   */
  private async beat(client: MqttClientLike, signal: AbortSignal): Promise<BeatReport> {
    const late: LateBeat = { stream: client.stream, deliveredIn: this.deliveredIn };
    const during = new AbortController();
    const stopFollowing = onAbort(signal, () => during.abort(signal.reason));
    let refusal: Error | undefined;
    try {
      const closed = firstEvent(client, ['close'], during.signal).then(() => {
        throw new Error(this.settings.probe === 'publish' ? messages.mqttClosedAtBeat(this.settings.beatTopic, this.lastReason) : messages.mqttClosed(this.lastReason));
      });
      refusal = await Promise.race([this.settings.probe === 'publish' ? this.publishRoundTrip(client) : this.pingRoundTrip(client, during.signal), closed]);
    } catch (error) {
      if (signal.aborted) this.late = late;
      throw error;
    } finally {
      stopFollowing();
      during.abort();
    }
    this.late = undefined;
    const code = (refusal as { code?: unknown } | undefined)?.code;
    if (typeof code === 'number' && code >= 128) return { impairment: messages.mqttBeatRefused(this.settings.beatTopic, describeError(refusal)) };
    if (refusal) throw refusal;
    return { impairment: this.settings.subscriptions.impairment() };
  }

  /** A QoS 1 PUBLISH, answered by its PUBACK: resolves with the error the client gave (a refusal), if any. */
  private publishRoundTrip(client: MqttClientLike): Promise<Error | undefined> {
    return new Promise((resolve) => {
      const answered = (error?: Error) => {
        // Taken back (see takeBackBeats): no answer; the beat ends on the close.
        if (!this.unanswered.delete(answered)) return;
        resolve(error);
      };
      this.unanswered.add(answered);
      client.publish(this.settings.beatTopic, `${this.tokenPrefix}${++this.sequence}`, { qos: 1 }, answered);
    });
  }

  /**
   * Once their transport closed, the beats' PUBLISHes still unanswered leave MQTT.js's store, which would
   * send them again on the next connection, long after their time (and a broker that closes connections on
   * a forbidden publish would close each new one). Not before: a message id freed while its transport lives
   * could be taken by the app's next packet, which the late PUBACK would then seem to answer.
   */
  private takeBackBeats(client: MqttClientLike): void {
    const takenBack = new Set(this.unanswered);
    this.unanswered.clear();
    for (const [id, { cb }] of Object.entries(client.outgoing)) {
      if (takenBack.has(cb as (error?: Error) => void)) client.removeOutgoingMessage(Number(id));
    }
  }

  /**
   * A PINGREQ, answered by its own PINGRESP: PINGRESPs carry no id, but the broker answers in the order it
   * reads, so the n-th answers the n-th. A PINGREQ lost on the way (a proxy that dropped bytes) is never
   * answered, and neither is any after it: the flow is broken, and judgeLateFlow replaces it.
   */
  private async pingRoundTrip(client: MqttClientLike, signal: AbortSignal): Promise<undefined> {
    // Above pongsIn too: PINGRESPs to PINGREQs sent before the package listened are counted, their PINGREQs not.
    const answeredBy = Math.max(this.pingsOut, this.pongsIn) + 1;
    const sent = firstEvent(client, ['packetsend'], signal);
    (client.sendPing as () => void)();
    await sent;
    while (this.pongsIn < answeredBy) await firstEvent(client, ['packetreceive'], signal);
    return undefined;
  }

  /**
   * After a late beat, judges the flow it went out on at the next attempt. It lives, however slow, and is kept,
   * when a packet other than a PINGRESP came in on it since (the app's messages, the beat's late PUBACK; the
   * PINGREQ count then starts afresh, since PINGRESPs may wait behind the app's work or have been lost), or
   * when a PINGREQ sent now is answered, with every one before it. It is dead (a NAT forgot it) or lost bytes
   * when, meanwhile, the broker answers a new connection along the same path and nothing of the app's waits
   * unsent on the flow: its transport is destroyed, and this attempt fails (the app's client dials again by
   * itself; the next attempt connects the package's). When nothing is known by the deadline (a stalled
   * broker answers nobody), the next attempt judges again.
   */
  private async judgeLateFlow(client: MqttClientLike, signal: AbortSignal): Promise<void> {
    const late = this.late;
    this.late = undefined;
    if (!late || !client.connected || client.stream !== late.stream) return;
    const judging = new AbortController();
    const stopFollowing = onAbort(signal, () => judging.abort(signal.reason));
    let lives = false;
    const delivers = () => this.deliveredIn !== late.deliveredIn;
    try {
      const answered = this.pingRoundTrip(client, judging.signal);
      const delivered = this.untilDelivered(client, delivers, judging.signal);
      const alive = Promise.race([answered, delivered]).then(() => (lives = true));
      await Promise.race([alive, brokerAnswersAnew(client, judging.signal).then((answers) => answers || alive)]);
      const unsent = ((client.stream as { writableLength?: number } | undefined)?.writableLength ?? 0) > 0;
      if (!lives && unsent) await alive;
      if (!lives && client.stream === late.stream) {
        client.stream?.destroy();
        throw new Error(messages.mqttDeadFlow());
      }
      if (delivers()) this.pingsOut = this.pongsIn;
    } catch (error) {
      if (signal.aborted) this.late = late;
      throw error;
    } finally {
      stopFollowing();
      judging.abort();
    }
  }

  /** Resolves once `delivers()` holds, checked at every packet the client receives. */
  private async untilDelivered(client: MqttClientLike, delivers: () => boolean, signal: AbortSignal): Promise<void> {
    while (!delivers()) await firstEvent(client, ['packetreceive'], signal);
  }

  /** Asks again, in the background, for the subscriptions the broker refused. */
  private remakeSubscriptions(client: MqttClientLike, signal: AbortSignal): void {
    void this.settings.subscriptions.make(client, signal).catch(() => undefined);
  }
}

/** Destroys the client's transport and waits for its 'close': MQTT.js handles it as a lost connection. */
async function dropTransport(client: MqttClientLike, signal: AbortSignal): Promise<void> {
  if (!client.stream || (client.stream as { closed?: boolean }).closed === true) return;
  const closed = firstEvent(client, ['close'], signal);
  client.stream?.destroy();
  await closed;
}
