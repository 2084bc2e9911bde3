import { randomInt } from 'node:crypto';
import { abortable } from '../../core/abortable.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { callUser, throttleReport, type CallbackReport } from '../../core/user-callback.js';
import type { MqttClientLike, MqttPacketLike } from './mqtt-like.js';
import { topicMatches } from './mqtt-topic.js';

/** A subscription the package makes on the client and keeps through reconnects. */
export interface MqttSubscriptionDefinition {
  /** The topic filter: `sensors/+/temperature`, `orders/#`, or a shared subscription `$share/<group>/<filter>`. */
  topic: string;
  /** The subscription's QoS: 0, 1 or 2. Default 1. */
  qos?: 0 | 1 | 2;
  /**
   * Called for each message whose topic the filter matches; it may be async. One that throws or rejects
   * is logged (at most once a minute) and never crashes the process. MQTT has no NACK and MQTT.js
   * acknowledges a message as it hands it over, so a failed message is not delivered again.
   */
  onMessage(message: MqttMessage): unknown;
}

/** A message as a subscription's onMessage receives it. */
export interface MqttMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** MQTT.js's PUBLISH packet: qos, retain, dup, and MQTT 5 properties. */
  readonly packet: MqttPacketLike;
}

/** Where the package's MQTT 5 subscription identifiers start, and how far the start is drawn at random. */
const SUBSCRIPTION_ID_BASE = 200_000_000;
const SUBSCRIPTION_ID_SPREAD = 60_000_000;

/** The subscription default QoS: at least once. */
export const MQTT_DEFAULT_QOS = 1;

/** Failure codes of a SUBACK (MQTT 3.1.1 knows 128 alone), named as MQTT 5 names them. */
const REFUSALS: Readonly<Record<number, string>> = {
  128: 'unspecified error',
  131: 'implementation specific error',
  135: 'not authorized',
  143: 'topic filter invalid',
  145: 'packet identifier in use',
  151: 'quota exceeded',
  158: 'shared subscriptions not supported',
  161: 'subscription identifiers not supported',
  162: 'wildcard subscriptions not supported',
};

/**
 * The app's subscriptions, kept on every connection of a client. MQTT.js makes its subscriptions again by
 * itself on a connection whose broker holds no session for it (its `resubscribe`), but not always (measured:
 * not after a blackhole, nor on a client whose own reconnect is off). So the package reads every SUBSCRIBE the
 * client sends and the broker's answer to it, whoever sent it, and on each connection makes those that no
 * session holds and that were not sent again. One the broker refused reads degraded with the reason, and the
 * next beats ask for it again. Messages go to the onMessage of every subscription they came through.
 */
export class KeptMqttSubscriptions {
  /** Topic filter to why the broker refused it, for the last SUBSCRIBE of each. */
  private readonly refused = new Map<string, string>();
  /** Filters the broker granted in this process: those a session it kept holds (a session of an earlier process may hold others). */
  private readonly granted = new Set<string>();
  /** SUBSCRIBE packets awaiting their SUBACK: message id to the topic filters, in order. */
  private readonly asked = new Map<number, string[]>();
  private readonly reports: CallbackReport[];
  private readonly topics: Set<string>;
  /** MQTT 5 subscription identifiers, one per definition: a message names those it came through. */
  private readonly identifiers: number[];
  /**
   * Whether the package's SUBSCRIBEs carry identifiers and messages go by them: MQTT 5, on a broker that has
   * them (its CONNACK says so; one without would close the connection on a SUBSCRIBE carrying one). Else by filter.
   */
  private byIdentifier = false;
  /** Filters the app's client holds a subscription of its own to: the package's would replace its options. */
  private readonly clashes = new Set<string>();
  /** Filters the package has sent a SUBSCRIBE for, on any connection. */
  private readonly sent = new Set<string>();
  private detach?: () => void;
  /**
   * Filters sent on the current connection, or held by its session. Undefined until the package has seen a
   * CONNACK: the connection of a client that was connected already holds nothing the package knows of.
   */
  private held?: Set<string>;
  /** The SUBSCRIBE in flight, so that beats never pile one behind another. */
  private asking?: Promise<void>;

  constructor(
    private readonly definitions: readonly MqttSubscriptionDefinition[],
    private readonly connectionName: string,
    report: CallbackReport,
  ) {
    this.reports = definitions.map(() => throttleReport(report));
    this.topics = new Set(definitions.map(({ topic }) => topic));
    // Far above the small numbers an app picks for its own, below MQTT 5's ceiling of 268 435 455.
    const base = SUBSCRIPTION_ID_BASE + randomInt(SUBSCRIPTION_ID_SPREAD);
    this.identifiers = definitions.map((_, i) => base + i);
  }

  /** Why a subscription is not held on the current connection (the first of them); undefined while all are. */
  impairment(): string | undefined {
    const [refused] = this.refused;
    if (refused) return messages.mqttSubscriptionRefused(refused[0], refused[1], this.refused.size);
    const [clash] = this.clashes;
    return clash && messages.mqttSubscriptionHeldByApp(clash);
  }

  /** Starts delivering the client's messages to the handlers and reading the broker's answers, once per client. */
  attach(client: MqttClientLike): void {
    if (this.detach || this.definitions.length === 0) return;
    // A client connected before the package came: its CONNACK was read by MQTT.js alone, which keeps its properties.
    const connack = (client as { _serverProperties?: { subscriptionIdentifiersAvailable?: boolean } })._serverProperties;
    this.byIdentifier = client.options.protocolVersion === 5 && connack?.subscriptionIdentifiersAvailable !== false;
    const onMessage = (topic: string, payload: Buffer, packet: MqttPacketLike) => this.deliver(topic, payload, packet);
    const onSend = (packet: MqttPacketLike) => {
      if (packet.cmd !== 'subscribe' || packet.messageId === undefined) return;
      const filters = (packet.subscriptions as ReadonlyArray<{ topic: string }> | undefined)?.map(({ topic }) => topic) ?? [];
      if (!filters.some((topic) => this.topics.has(topic))) return;
      this.asked.set(packet.messageId, filters);
      for (const topic of filters) this.held?.add(topic);
    };
    const onReceive = (packet: MqttPacketLike) => {
      // A session the broker kept holds the subscriptions it granted in this process; a new one holds none.
      if (packet.cmd === 'connack') {
        this.held = new Set(packet.sessionPresent === true ? this.granted : []);
        this.byIdentifier = client.options.protocolVersion === 5 && (packet.properties as { subscriptionIdentifiersAvailable?: boolean } | undefined)?.subscriptionIdentifiersAvailable !== false;
      }
      if (packet.cmd !== 'suback' || packet.messageId === undefined) return;
      const filters = this.asked.get(packet.messageId);
      if (!filters) return;
      this.asked.delete(packet.messageId);
      const codes = (packet.granted as readonly number[] | undefined) ?? [];
      filters.forEach((topic, i) => {
        if (!this.topics.has(topic)) return;
        const code = codes[i] ?? 128;
        if (code >= 128) {
          this.refused.set(topic, `${REFUSALS[code] ?? 'refused'}, code ${code}`);
          this.granted.delete(topic);
        } else {
          this.refused.delete(topic);
          this.granted.add(topic);
        }
      });
    };
    // A connection lost with SUBSCRIBEs in flight: MQTT.js sends them again (new ids) or gives them up.
    const onClose = () => this.asked.clear();
    client.on('message', onMessage);
    client.on('packetsend', onSend);
    client.on('packetreceive', onReceive);
    client.on('close', onClose);
    this.detach = () => {
      client.removeListener('message', onMessage);
      client.removeListener('packetsend', onSend);
      client.removeListener('packetreceive', onReceive);
      client.removeListener('close', onClose);
    };
  }

  /**
   * Subscribes what the current connection does not hold: everything on a connection the package saw no
   * CONNACK of, else what its session does not hold and was not sent again, and what the broker refused.
   * Resolves once the broker answered (attach's listener reads its verdict); rejects when `signal` aborts first.
   */
  async make(client: MqttClientLike, signal: AbortSignal): Promise<void> {
    const held = this.held;
    // MQTT.js's record of the client's subscriptions, to be made again after a reconnect (it has no public view).
    const appHolds = (client as { _resubscribeTopics?: Record<string, unknown> })._resubscribeTopics ?? {};
    for (const { topic } of this.definitions) if (!this.sent.has(topic) && Object.hasOwn(appHolds, topic)) this.clashes.add(topic);
    const wanted = this.definitions.filter(({ topic }) => !this.clashes.has(topic) && (!held?.has(topic) || this.refused.has(topic)));
    if (!this.asking && wanted.length > 0) {
      for (const { topic } of wanted) this.sent.add(topic);
      // One SUBSCRIBE each, so that each carries its own identifier. `resubscribe` makes MQTT.js send a filter
      // it already holds, which it would otherwise leave out. The callback's error is the broker's refusal,
      // which attach reads, or a lost connection.
      this.asking = Promise.all(
        wanted.map(
          ({ topic, qos }) =>
            new Promise<void>((resolve) =>
              client.subscribe(Object.assign({ [topic]: { qos: qos ?? MQTT_DEFAULT_QOS } }, { resubscribe: true }), this.subscribeOptions(topic), () => resolve()),
            ),
        ),
      ).then(() => undefined);
      void this.asking.finally(() => (this.asking = undefined));
      this.held ??= new Set(wanted.map(({ topic }) => topic));
    }
    if (this.asking) await abortable(this.asking, signal);
  }

  /** Stops delivering messages. The subscriptions stay with the broker: a persistent session keeps them for the next process. */
  close(): void {
    this.detach?.();
  }

  /** MQTT 5: the identifier messages of this subscription will name. */
  private subscribeOptions(topic: string): { properties?: { subscriptionIdentifier: number } } {
    const index = this.definitions.findIndex((definition) => definition.topic === topic);
    return this.byIdentifier ? { properties: { subscriptionIdentifier: this.identifiers[index] as number } } : {};
  }

  /**
   * To every subscription the message came through: by identifier on MQTT 5, so that one of the app's own
   * subscriptions on the same client never feeds a handler (a shared subscription's handler gets its share
   * alone); by filter on 3.1.1.
   */
  private deliver(topic: string, payload: Buffer, packet: MqttPacketLike): void {
    const named = (packet.properties as { subscriptionIdentifier?: number | number[] } | undefined)?.subscriptionIdentifier;
    const through = new Set(Array.isArray(named) ? named : named === undefined ? [] : [named]);
    this.definitions.forEach(({ topic: filter, onMessage }, i) => {
      if (this.byIdentifier ? !through.has(this.identifiers[i] as number) : !topicMatches(filter, topic)) return;
      const place = `the onMessage handler of topic filter '${filter}'`;
      callUser(
        () => onMessage({ topic, payload, packet }),
        (error, how) => this.reports[i]?.(error, messages.callbackFailed(this.connectionName, place, how, describeError(error), messages.mqttMessageNotRedelivered())),
      );
    });
  }
}
