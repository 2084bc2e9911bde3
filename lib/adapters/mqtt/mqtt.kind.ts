import { randomBytes } from 'node:crypto';
import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { messages } from '../../core/messages.js';
import type { MonitorOptions } from '../../core/monitor-options.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import { handedIn } from '../handed-in.js';
import { optionSecrets, urlSecrets } from '../known-secrets.js';
import { isLoopbackHost } from '../loopback-host.js';
import { parseUrlOption } from '../url-option.js';
import { KeptMqttSubscriptions, type MqttSubscriptionDefinition } from './kept-mqtt-subscriptions.js';
import { isMqttClient, type MqttClientLike } from './mqtt-like.js';
import { filterProblem, topicNameProblem } from './mqtt-topic.js';
import { MqttAdapter, type MqttSource } from './mqtt.adapter.js';

/** An MQTT broker (3.1.1 or 5) through MQTT.js: the app's client, watched, or one the package creates. */
export interface MqttConnectionDefinition extends ConnectionDefinitionBase {
  kind: 'mqtt';
  /**
   * The app's MQTT.js client (`mqtt.connect(...)`), or the token of its provider. It is watched, never
   * ended nor reconnected by the package: its own reconnectPeriod reconnects it. Give either client, or
   * url and/or mqttOptions.
   */
  client?: MqttClientLike | ProviderToken;
  /**
   * URL of a client the package creates: `mqtt://`, `mqtts://` (TLS), `ws://` or `wss://`, e.g.
   * `mqtts://user:secret@broker:8883`. Its password is never shown.
   */
  url?: string;
  /**
   * MQTT.js options of the client the package creates (clientId, username, password, clean, protocolVersion,
   * keepalive, will, TLS ca/cert/key, ...), on top of the url's. Not reconnectPeriod or manualConnect: the
   * package connects the client, and reconnects it with its backoff. keepalive defaults to
   * max(10, (intervalMs + timeoutMs) / 1 000) s. Typed `object` so that an MQTT.js `IClientOptions` (an
   * interface, without an index signature) is taken as it is.
   */
  mqttOptions?: object;
  /**
   * Subscriptions the package makes on the client, kept through reconnects; their messages go to their
   * onMessage. One the broker refused reads degraded.
   */
  subscriptions?: MqttSubscriptionDefinition[];
  /**
   * What a beat sends, besides MQTT's keepalive: 'publish', a QoS 1 PUBLISH to beatTopic answered by its
   * PUBACK (the broker's publish path works); 'ping', a PINGREQ answered by its PINGRESP. Default 'publish'
   * on a client the package creates, 'ping' on the app's: a broker that closes the connection on a publish
   * it forbids (AWS IoT Core, Azure IoT Hub) would otherwise drop the app's connection at every beat.
   */
  probe?: 'publish' | 'ping';
  /**
   * Where each beat publishes its QoS 1 message (probe 'publish'). Nothing subscribes to it. Default
   * `$connection-health/<clientId>`: a `$` topic reaches no wildcard subscription (`#`). A broker with an ACL
   * must let the client publish there (mosquitto: `pattern write $connection-health/%c`).
   */
  beatTopic?: string;
  /**
   * A password sent without TLS to a host that is not loopback is logged as a warning at bootstrap (for a
   * client the package creates). `true` silences it (a trusted network); `false` warns for a loopback host too.
   */
  allowInsecureAuth?: boolean;
}

export const MQTT_OPTIONS = optionNames<Omit<MqttConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({
  client: true,
  url: true,
  mqttOptions: true,
  subscriptions: true,
  probe: true,
  beatTopic: true,
  allowInsecureAuth: true,
});
export const MQTT_SUBSCRIPTION_OPTIONS = optionNames<MqttSubscriptionDefinition>({ topic: true, qos: true, onMessage: true });
const SUBSCRIPTION_SHAPE = '{ topic, qos?, onMessage }';

/** Options of the package's own client that the package sets itself. */
const OWNED_BY_PACKAGE = ['reconnectPeriod', 'manualConnect'] as const;

/**
 * Shorter, and an event loop stalled for a few seconds would have the broker drop the connection (after 1.5
 * keepalive periods without a packet) and publish the client's will. The beat reads a dead flow down within
 * its bound anyway.
 */
const MQTT_MIN_KEEPALIVE_SECONDS = 10;

/**
 * An MQTT broker. A decorated property or getter holds the app's MQTT.js client; a method is called once at
 * bootstrap and returns it. Either way the client is watched, never ended.
 */
export const mqttKind: ConnectionKindSpec<MqttConnectionDefinition, Omit<MqttConnectionDefinition, 'client' | 'url' | 'mqttOptions'>> = {
  kind: 'mqtt',
  options: MQTT_OPTIONS,
  defaults: {},
  create(definition, options, { check, provider, report }) {
    checkSubscriptions(check, definition.subscriptions);
    const { source, target, secrets, clientId } = mqttSource(definition, options, check, provider);
    if ('watched' in source && definition.subscriptions?.length) {
      check.that(
        source.watched.options.resubscribe !== false,
        'client',
        '(resubscribe: false)',
        'With subscriptions, the client must make them again after a reconnect: leave its resubscribe option at true.',
      );
    }
    const beatTopic = definition.beatTopic ?? `$connection-health/${clientId.replace(/[+#\u0000]/g, '_') || definition.name}`;
    check.that(topicNameProblem(beatTopic) === undefined, 'beatTopic', beatTopic, `Use a topic name to publish to: ${topicNameProblem(beatTopic)}.`);
    const subscriptions = new KeptMqttSubscriptions(definition.subscriptions ?? [], definition.name, report);
    check.oneOf('probe', definition.probe, ['publish', 'ping']);
    const probe = definition.probe ?? ('watched' in source ? 'ping' : 'publish');
    if ('watched' in source) {
      const shared = definition.subscriptions?.find(({ topic }) => typeof topic === 'string' && topic.startsWith('$share/'));
      check.that(
        shared === undefined || source.watched.options.protocolVersion === 5,
        'subscriptions',
        shared?.topic,
        "A shared subscription on the app's client needs MQTT 5 (protocolVersion: 5): with 3.1.1 a message does not say which " +
          "subscription it came through, so the app's own subscriptions on the client would feed the handler more than its share.",
      );
      check.that(typeof source.watched.sendPing === 'function', 'client', '(an MQTT.js client without sendPing)', 'Use MQTT.js 5.6 or later (npm install mqtt@5): the package sends PINGREQs with sendPing().');
    }
    return new MqttAdapter(source, { target, probe, beatTopic, subscriptions, secrets });
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, client: (method ? method() : value) as MqttClientLike }, keepsClient: false }),
};

interface ResolvedSource {
  readonly source: MqttSource;
  readonly target: string;
  readonly secrets: readonly string[];
  readonly clientId: string;
}

function mqttSource(definition: MqttConnectionDefinition, options: MonitorOptions, check: OptionChecker, provider?: (token: ProviderToken) => unknown): ResolvedSource {
  const { client, url, allowInsecureAuth } = definition;
  const mqttOptions = definition.mqttOptions as { readonly [option: string]: unknown } | undefined;
  check.oneOf('allowInsecureAuth', allowInsecureAuth, [true, false]);
  if (client !== undefined) {
    check.that(
      url === undefined && mqttOptions === undefined,
      url === undefined ? 'mqttOptions' : 'url',
      '(given beside client)',
      "Give either client (the app's MQTT.js client, watched) or url / mqttOptions (the package creates its own client), not both.",
    );
    const watched = resolveClient(check, client, provider);
    const { hostname, host, port, clientId } = watched.options;
    return { source: { watched }, target: `${hostname ?? host ?? 'localhost'}:${port ?? 1883}`, secrets: optionSecrets(watched.options), clientId: clientId ?? '' };
  }
  check.that(
    url !== undefined || mqttOptions !== undefined,
    'client',
    undefined,
    "Give client: the app's MQTT.js client or its provider's token, or url / mqttOptions for a client the package creates.",
  );
  const address = url === undefined ? undefined : checkUrl(check, url);
  check.that(
    mqttOptions === undefined || (typeof mqttOptions === 'object' && mqttOptions !== null && !Array.isArray(mqttOptions)),
    'mqttOptions',
    mqttOptions,
    'Use an object of MQTT.js options (clientId, username, password, clean, protocolVersion, ...), or leave it out.',
  );
  for (const option of OWNED_BY_PACKAGE) {
    check.that(
      mqttOptions?.[option] === undefined,
      `mqttOptions.${option}`,
      mqttOptions?.[option],
      'Leave it out: the package connects the client, and reconnects it with the reconnect options.',
    );
  }
  if (definition.subscriptions?.length) {
    check.that(
      mqttOptions?.resubscribe !== false,
      'mqttOptions.resubscribe',
      false,
      'With subscriptions, the client must make them again after a reconnect: leave resubscribe out (true).',
    );
  }
  check.needsPeer('mqtt', 'MQTT connections');
  // MQTT.js would make up a client id when the client is created; made up here, the beat topic can name it.
  const own: Record<string, unknown> = { keepalive: mqttKeepaliveSeconds(options), clientId: `mqttjs_${randomBytes(4).toString('hex')}`, ...mqttOptions };
  const host = String(own.hostname ?? own.host ?? address?.hostname ?? 'localhost');
  const protocol = String(own.protocol ?? address?.protocol.replace(/:$/, '') ?? 'mqtt');
  warnOfCleartextPassword(check, { password: own.password !== undefined || (address !== undefined && address.password !== ''), host, protocol }, allowInsecureAuth);
  const secure = /^(mqtts|ssl|tls|wss|wxs|alis)$/.test(protocol);
  return {
    source: { url, mqttOptions: own },
    target: `${host}:${String(own.port ?? address?.port ?? '') || (secure ? 8883 : 1883)}`,
    secrets: [...urlSecrets(url), ...optionSecrets(mqttOptions)],
    clientId: typeof own.clientId === 'string' ? own.clientId : '',
  };
}

/** The keepalive the package's own client asks for, in seconds: MQTT.js drops a flow silent for 1.5 periods. */
export function mqttKeepaliveSeconds({ heartbeat }: MonitorOptions): number {
  return Math.max(MQTT_MIN_KEEPALIVE_SECONDS, Math.ceil((heartbeat.intervalMs + heartbeat.timeoutMs) / 1_000));
}

/** The app's client itself, or the one its provider holds. */
function resolveClient(check: OptionChecker, given: unknown, provider?: (token: ProviderToken) => unknown): MqttClientLike {
  const client = handedIn(check, 'client', given, isMqttClient, provider, 'No provider with that token holds a client. Register the MQTT.js client as a provider, import its module, or pass the client itself.');
  // Never the object itself in the message: a client's options hold its password.
  check.that(isMqttClient(client), 'client', '(not an MQTT.js client)', 'Pass an MQTT.js client (mqtt.connect(...), version 5), or the token of its provider.');
  return client as MqttClientLike;
}

function checkSubscriptions(check: OptionChecker, subscriptions: unknown): void {
  check.that(subscriptions === undefined || Array.isArray(subscriptions), 'subscriptions', subscriptions, `Pass an array of ${SUBSCRIPTION_SHAPE}.`);
  (subscriptions as unknown[] | undefined)?.forEach((subscription, index) => {
    const at = `subscriptions[${index}]`;
    check.that(typeof subscription === 'object' && subscription !== null && !Array.isArray(subscription), at, subscription, `Pass ${SUBSCRIPTION_SHAPE}.`);
    const { topic, qos, onMessage } = subscription as MqttSubscriptionDefinition;
    check.knownKeys(at, subscription as object, MQTT_SUBSCRIPTION_OPTIONS);
    check.text(`${at}.topic`, topic);
    const problem = filterProblem(topic);
    check.that(problem === undefined, `${at}.topic`, topic, `Use a topic filter such as 'sensors/+/temperature' or 'orders/#': ${problem}.`);
    check.oneOf(`${at}.qos`, qos, [0, 1, 2]);
    check.fn(`${at}.onMessage`, onMessage, true, '(message: MqttMessage) => unknown');
  });
}

/** Where a url points, checked; its password is never shown. */
function checkUrl(check: OptionChecker, url: string): URL {
  const { parsed, shown } = parseUrlOption(check, 'url', url);
  check.that(
    parsed !== undefined && /^(mqtts?|wss?|tcp|ssl|tls):$/.test(parsed.protocol) && parsed.hostname !== '',
    'url',
    shown,
    "Use an mqtt://, mqtts:// (TLS), ws:// or wss:// URL, e.g. 'mqtts://user:password@broker:8883'.",
  );
  return parsed as URL;
}

/** CONNECT carries the password in clear without TLS: not refused (a broker on a private network often runs without TLS), but said once. */
function warnOfCleartextPassword(
  check: OptionChecker,
  { password, host, protocol }: { password: boolean; host: string; protocol: string },
  allowInsecureAuth: boolean | undefined,
): void {
  if (allowInsecureAuth === true || !password || /^(mqtts|ssl|tls|wss)$/.test(protocol)) return;
  if (allowInsecureAuth === undefined && isLoopbackHost(host)) return;
  check.warn(messages.mqttCleartextPassword(host));
}
