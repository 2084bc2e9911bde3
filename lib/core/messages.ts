import type { CallbackFailure } from './user-callback.js';
import { redactSecrets } from './redact.js';

/** Stands for a string value a message must not show: the value of a misspelled key may be a password. */
export const UNSHOWN_STRING: unique symbol = Symbol('a string, not shown');
/** Stands for a number a message must not show: a password from YAML or an environment file may be one. */
export const UNSHOWN_NUMBER: unique symbol = Symbol('a number, not shown');

/** Every message the package shows a user, in one place so their tone and hints stay consistent. */
export const messages = {
  invalidOption: (place: string, option: string, value: unknown, fix: string) =>
    `${place}: option "${option}" is ${describe(value)}. ${fix}`,
  duplicateConnection: (connection: string, declaredBy: string) =>
    `Connection "${connection}" is registered twice (again by ${declaredBy}). Give every monitored connection a unique name.`,
  unknownConnection: (connection: string, known: readonly string[]) =>
    `No connection named "${connection}" is monitored. Known connections: ${
      known.length ? known.map((name) => `"${name}"`).join(', ') : 'none'
    }.`,
  missingDependency: (packageName: string, feature: string, place?: string, orElse?: string) =>
    orElse
      ? `${place ? `${place}: the` : 'The'} "${packageName}" or the "${orElse}" package is required for ${feature} but neither is installed. ` +
        `Run "npm install ${packageName}" or "npm install ${orElse}" and try again.`
      : `${place ? `${place}: the` : 'The'} "${packageName}" package is required for ${feature} but is not installed. ` +
        `Run "npm install ${packageName}" and try again.`,
  heartbeatTimeout: (connection: string, timeoutMs: number) =>
    `Connection "${connection}": no heartbeat answer within ${timeoutMs} ms.`,
  operationTimeout: (connection: string, operation: string, timeoutMs: number) =>
    `Connection "${connection}": ${operation} did not finish within ${timeoutMs} ms.`,
  closedOnPurpose: (connection: string) => `Connection "${connection}" was closed on purpose.`,
  statusPageShuttingDown: 'The app is shutting down; the status page stream is closed.',
  statusPageFull: (open: number) => `Too many status page streams are open (${open}); try again later.`,
  closedByForce: (connection: string, why: string) =>
    `Connection "${connection}" was closed on purpose, by force: ${why}`,
  nonStaticProvider: (declaredBy: string, what: string) =>
    `Cannot monitor ${what} declared by ${declaredBy} because it is defined in a non static provider. ` +
    'Connection health needs a singleton provider: remove the request scope, or declare the connection elsewhere.',
  stompMemberIsMethod: (declaredBy: string) =>
    `@MonitorConnection({ kind: 'stomp' }) on the method ${declaredBy}: the package creates STOMP clients itself. ` +
    'Put it on a property instead, which then always holds the live client.',
  heartbeatShape: (declaredBy: string, parameters: number) =>
    `@ConnectionHeartbeat() on ${declaredBy} takes ${parameters} parameters. A heartbeat takes one, ` +
    '(signal: AbortSignal), and returns a promise that resolves when the far end answered.',
  handlerForUnknown: (declaredBy: string, decorator: string, connection: string, known: readonly string[]) =>
    `${decorator}('${connection}') on ${declaredBy} names no monitored connection. Known connections: ${
      known.length ? known.map((name) => `"${name}"`).join(', ') : 'none'
    }.`,
  injectedUnknown: (connection: string, known: readonly string[]) =>
    `@InjectConnection('${connection}') names no monitored connection. Known connections: ${
      known.length ? known.map((name) => `"${name}"`).join(', ') : 'none'
    }.`,
  testingNotControlled: (connection: string, controlled: readonly string[]) =>
    `Connection "${connection}" is not controlled by this ConnectionHealthTesting: it runs as configured. ` +
    `Add it to the connections option (now ${controlled.map((name) => `"${name}"`).join(', ')}), or leave that option out to control every connection.`,
  testingNotOverridden:
    'ConnectionHealthTesting: testing.clock is used before testing.override(Test.createTestingModule(...)): no app runs on this clock, ' +
    'so advancing it would test nothing. Call override() on the builder before compile().',
  testingUnknownConnection: (connection: string, known: readonly string[]) =>
    `No connection named "${connection}" is monitored by the app under test. Known connections: ${known.map((name) => `"${name}"`).join(', ')}.`,
  testingNeverFails: (connection: string) =>
    `Connection "${connection}" never fails: its reconnect.maxAttempts is Infinity. Give it a finite maxAttempts, or test the outage with down().`,
  testingWouldExit: (connection: string) =>
    `Connection "${connection}" has the failure policy 'exit': failing it would end the test process. ` +
    "Use the policy 'retry' or 'stop' in tests, or test the exit in a child process.",
  testingStuck: (connection: string, goal: string, state: string) =>
    `Connection "${connection}" cannot become ${goal}: it is ${state} and no heartbeat or reconnect attempt is scheduled ` +
    "(the failure policy 'stop' gave up; only handle.forceReconnect() revives it).",
  testingClosed: (connection: string, goal: string) => `Connection "${connection}" cannot become ${goal}: it is closed (the app was closed).`,
  managementPortUnavailable: (place: string, address: string, why: string) =>
    `${place}: the management port (healthController.port) cannot listen on ${address}: ${why}. ` +
    'Choose a port that no other server (the app itself included) uses, or stop the process that holds it.',
  managementPortFailed: (address: string, why: string) => `The management port on ${address} failed: ${why}`,
  appNotListening: () =>
    "the app's own HTTP server does not listen yet; an app that serves through a server of its own or never calls listen() " +
    'sets healthController.awaitAppListen: false',
  imapNoSession: () => 'no IMAP session is open',
  /** `what`: "authentication", `SELECT "INBOX"`; worded so that the redactor's echoed-LOGIN rule leaves it whole. */
  imapRefused: (what: string, status: string | undefined, code: string | undefined, text: string | undefined) =>
    redactSecrets(`the server refused ${what} (${status ?? 'NO'}${code ? ` [${code}]` : ''})${text ? `: ${text}` : ''}`),
  imapUnusable: (library: string) => `the ${library} session is no longer usable`,
  imapClosedDuringLogin: () => 'the server closed the connection during login',
  imapStartTlsMissing: () =>
    'the server offers no STARTTLS, so the password was not sent: it would cross the network in clear. Connect with ' +
    'TLS (port 993 or secure: true), turn STARTTLS on at the server, or set allowInsecureAuth: true to allow a cleartext login',
  imapServerClosed: (bye: string | undefined, reset: boolean) =>
    bye ? `the server said BYE (${bye}) and closed the connection` : `the server ${reset ? 'reset' : 'closed'} the connection`,
  imapSessionRecycled: (lifetimeMs: number) =>
    `the IMAP session reached its maximum lifetime (${lifetimeMs} ms, maxSessionMs less jitter): logging in again`,
  stompNoSession: () => 'no STOMP session is open',
  stompCleartextCredentials: (credentials: readonly string[], target: string) => {
    const many = credentials.length > 1;
    const named = many ? `${credentials.slice(0, -1).join(', ')} and ${credentials.at(-1)}` : credentials[0];
    return (
      `the STOMP ${named} ${many ? 'go' : 'goes'} to ${target} in clear, without TLS: anyone on the path can read ` +
      `${many ? 'them' : 'it'}. Use stomp+ssl:// or wss:// (or tls: true), or set allowInsecureAuth: true if this network is trusted.`
    );
  },
  stompBrokerError: (message: string | undefined, body: string) => {
    const detail = body.replace(/\s+/g, ' ').trim().slice(0, 200);
    return `the broker sent an ERROR frame${message ? `: ${message}` : ''}${detail && detail !== message ? ` (${detail})` : ''}`;
  },
  stompHeartbeatLost: (silentMs: number) => `no STOMP heart-beat or other data from the broker for more than ${silentMs} ms`,
  stompClosed: (reason: string, code: number | undefined) =>
    `the connection to the broker closed${reason ? `: ${reason}` : code === undefined ? '' : ` (code ${code})`}`,
  stompReplaced: () => 'the STOMP session was replaced by a new one',
  stompClosedOnPurpose: () => 'the STOMP session was closed on purpose',
  redisNotReady: (status: string) => `the Redis connection is not ready (ioredis status: ${status})`,
  redisClosed: (reason: string | undefined) => `the Redis connection closed${reason ? `: ${reason}` : ''}`,
  redisClientEnded: () =>
    "the app's Redis client has ended (quit() or disconnect() was called, or its retryStrategy gave up); the package never reopens a client it was handed",
  redisNotConnectedByApp: () =>
    "the app's lazyConnect Redis client has not been connected yet: the package never connects an app's client; connect it at bootstrap (await client.connect()) or send it a command",
  redisMonitorClient: () =>
    'A client in MONITOR mode answers no PING: monitor the client it came from (redis.monitor() returns a new one).',
  redisDeadFlowLeft: () =>
    "the connection's flow is dead (its PING unanswered, not one byte in, while the server answers a new connection); " +
    "its socket is left while the Nest ClientRedis awaits a reply or holds a command whose rejection nothing handles (the end of one socket ends its pair); " +
    'it is ended once none is left, or by ioredis when it notices',
  redisNotReadyInTime: (status: string) => `the Redis client did not become ready in time (ioredis status: ${status})`,
  redisOutOfStep: () =>
    'the Redis connection answered PING with a reply not its own: replies are out of step with commands, so the connection is dropped',
  redisCleartextPassword: (host: string) =>
    `the Redis password goes to ${host} in clear, without TLS: anyone on the path can read it. Use rediss:// (or ` +
    'redisOptions.tls), or set allowInsecureAuth: true if this network is trusted.',
  amqpNotOpen: (reason: string | undefined) => `the AMQP connection is not open${reason ? ` (${reason})` : ''}`,
  amqpClosed: (reason: string | undefined) => `the AMQP connection closed${reason ? `: ${reason}` : ''}`,
  amqpBeatChannelClosed: (reason: string | undefined) => `the heartbeat channel closed${reason ? `: ${reason}` : ''}`,
  amqpBeatQueueCancelled: () => 'the broker cancelled the consumer of the heartbeat queue (was the queue deleted?)',
  amqpAppConnectionClosed: () =>
    "the app's amqplib connection has closed, and amqplib never reconnects a ChannelModel, nor does the package: hand in an " +
    'amqp-connection-manager or a recovering model (amqp.connect(url, { recovery: true })), or give url so that the package owns the connection',
  amqpManagerNotConnected: () => "the app's amqp-connection-manager is not connected (it reconnects on its own schedule, reconnectTimeInSeconds)",
  amqpRecoveringNotConnected: () => "the app's recovering amqplib model is not connected (it reconnects with its own backoff)",
  amqpForcedClose: () => 'closed by the connection-health package: the broker did not answer the close in time',
  amqpBlocked: (reason: string) => `the broker blocks publishing on this connection (${reason}): published messages wait until its alarm clears`,
  amqpConsumerCancelled: (queue: string) =>
    `the broker cancelled the consumer of queue '${queue}' (the queue was deleted, or the node holding it went down)`,
  amqpConsumerChannelClosed: (queue: string, reason: string | undefined) =>
    `the consumer of queue '${queue}' is gone: its channel closed${reason ? `: ${reason}` : ''}`,
  amqpConsumerNotMade: (queue: string, why: string) => `the consumer of queue '${queue}' could not be made: ${why}`,
  amqpMessageNacked: (delayMs: number) =>
    `the message is NACKed in ${delayMs} ms and requeued; should it fail here again, it goes to the queue's dead-letter exchange (requeueFailed 'once').`,
  amqpMessageDeadLettered: () =>
    "it had failed here before, so it is NACKed without requeue: the queue's dead-letter exchange receives it, or the broker drops it when the queue has none.",
  amqpMessageAnswered: (noAck: boolean) =>
    noAck
      ? 'with noAck the broker counted it as delivered when it sent it: the message is lost to the app.'
      : 'it had already acknowledged or NACKed the message, so nothing more is sent.',
  amqpCleartextPassword: (host: string) =>
    `the AMQP password goes to ${host} in clear, without TLS: anyone on the path can read it. Use amqps://, or set ` +
    'allowInsecureAuth: true if this network is trusted.',
  mqttNotConnected: (reason: string | undefined) => `the MQTT client is not connected${reason ? ` (${reason})` : ''}`,
  mqttClosed: (reason: string | undefined) => `the MQTT connection closed${reason ? `: ${reason}` : ''}`,
  mqttServerDisconnect: (code: unknown, reason: string | undefined) => `the broker sent DISCONNECT, code ${String(code ?? 0)}${reason ? ` (${reason})` : ''}`,
  mqttClientEnded: () => "the app's MQTT client was ended (client.end()): the package never reconnects a client it did not create",
  mqttClientNeverReconnects: () =>
    "the app's MQTT client is disconnected and its reconnectPeriod is 0, so it never reconnects, nor does the package: give it a " +
    'reconnectPeriod, or give url so that the package owns the client',
  mqttNotConnectedInTime: () => "the app's MQTT client did not connect in time (it reconnects on its own schedule, reconnectPeriod)",
  mqttClosedAtBeat: (topic: string, reason: string | undefined) =>
    `the MQTT connection closed during the heartbeat's PUBLISH to '${topic}'${reason ? ` (${reason})` : ''}. A broker that closes the connection ` +
    "on a publish it forbids (AWS IoT Core, Azure IoT Hub) does so at every beat: set beatTopic to a topic the client may publish to, or probe: 'ping'",
  mqttTooOld: () => 'the installed mqtt package is older than 5.6 (it has no sendPing): npm install mqtt@5',
  mqttDeadFlow: () =>
    "the connection's flow is dead: nothing came in on it since the late heartbeat, while the broker answered a new connection; its transport was dropped",
  mqttBeatRefused: (topic: string, why: string) =>
    `the broker answers, but refuses the heartbeat's PUBLISH to '${topic}' (${why}): allow the client to publish there, or set beatTopic`,
  mqttSubscriptionRefused: (topic: string, why: string, count: number) =>
    `the broker refused the subscription to '${topic}' (${why})${count > 1 ? ` and ${count - 1} more` : ''}; it is asked for again at each heartbeat`,
  mqttSubscriptionHeldByApp: (topic: string) =>
    `the app's client subscribes to '${topic}' itself, so the package does not: its SUBSCRIBE would replace the app's (QoS, subscription identifier). ` +
    'Declare the filter in one place: in subscriptions, or in the app',
  mqttMessageNotRedelivered: () => 'MQTT has no NACK and the client acknowledged the message when it handed it over: it is not delivered again.',
  mqttCleartextPassword: (host: string) =>
    `the MQTT password goes to ${host} in clear, without TLS: anyone on the path can read it. Use mqtts:// (or wss://), or set ` +
    'allowInsecureAuth: true if this network is trusted.',
  natsNotConnected: (reason: string | undefined) => `the NATS connection is not connected${reason ? ` (${reason})` : ''}`,
  natsClosed: (reason: string | undefined) => `the NATS connection was lost${reason ? `: ${reason}` : ''}`,
  natsClosedForGood: (reason: string | undefined) =>
    reason
      ? `the app's NATS connection is closed for good (${reason}): nats.js gave up reconnecting (after maxReconnectAttempts, or at a second ` +
        'authorization error unless ignoreAuthErrorAbort is set) and never opens a closed connection again, nor does the package. Give it ' +
        'maxReconnectAttempts: -1, or give servers so that the package makes its own connections'
      : "the app's NATS connection was closed (close() or drain()); the package never reopens a connection it did not make",
  natsNotReconnectedInTime: (reason: string | undefined) =>
    `the app's NATS connection did not reconnect in time${reason ? ` (${reason})` : ''} (nats.js reconnects on its own schedule, reconnectTimeWait)`,
  natsStale: () => 'the server answered no PING (stale connection)',
  natsSubscriptionRefused: (subject: string, why: string, count: number) =>
    `the server refused the subscription to '${subject}' (${why})${count > 1 ? ` and ${count - 1} more` : ''}; it is asked for again at each heartbeat`,
  natsMessageNotRedelivered: () => 'core NATS delivers a message at most once: it is not delivered again.',
  natsCleartextAuth: (host: string) =>
    `the NATS password or token goes to ${host} in clear, without TLS: anyone on the path can read it. Use tls:// (or natsOptions.tls), ` +
    'or set allowInsecureAuth: true if this network is trusted.',
  microserviceConnectFailed: (transport: string, why: string) => `the ${transport} ClientProxy's connect() failed: ${why}`,
  microserviceNotOpen: () => "the ClientProxy's connection is not open",
  microserviceClosedByApp: () => 'the app closed its ClientProxy (client.close()); the package never reopens it',
  microserviceUnsupported: (proxyClass: string, supported: readonly string[]) =>
    `a ${proxyClass} cannot be proven by the package: its transport holds no connection the package knows how to beat. ` +
    `Supported: ${supported.join(', ')}; for another transport, declare a custom connection with a ping of its own.`,
  typeormNotInitialized: () =>
    'the data source is not initialized (its owner destroyed it?); the package initializes a data source only once, and never one it did not open',
  typeormProbeNotOpen: () => 'the probe connection is not open',
  typeormPoolSaturated: () => "the database answers, but the app's connection pool is saturated: queries wait for a free connection",
  /**
   * A user's function threw or rejected. `place` names it ("the onMessage handler of /queue/orders"),
   * `why` is the redacted error, `next` what happens now.
   */
  callbackFailed: (connection: string, place: string, how: CallbackFailure, why: string, next = 'the monitor goes on.') =>
    `Connection "${connection}": ${place} ${how} (${why}); ${next}`,
  publisherFailed: (publisher: string, connection: string, how: CallbackFailure, why: string) =>
    `Publisher "${publisher}" ${how} on a change of connection "${connection}" (${why}); the monitor and the other publishers go on.`,
  publisherFlushFailed: (publisher: string, how: CallbackFailure, why: string) =>
    `Publisher "${publisher}" ${how} while flushing at shutdown (${why}); the shutdown goes on.`,
  publishersCutAtShutdown: (count: number, boundMs: number) =>
    `${count} publishing task(s) had not finished ${boundMs} ms into shutdown and were aborted; their changes may not have been delivered.`,
  webhookGaveUp: (publisher: string, origin: string, what: string, attempts: number, why: string) =>
    `Publisher "${publisher}" (${origin}) gave up on "${what}" after ${attempts} attempt(s): ${why}. ` +
    'Check that the receiver is up and answers 2xx; later changes are sent as they come.',
  webhookGaveUpAtShutdown: (publisher: string, origin: string, what: string, attempts: number, why: string, left: number) =>
    `Publisher "${publisher}" (${origin}) gave up on "${what}" after ${attempts} attempt(s): ${why}. ` +
    `At shutdown a receiver that refuses or does not answer is not retried: ${left} more message(s) not sent.`,
  publisherNeverSettled: (publisher: string, connection: string, deadlineMs: number) =>
    `Publisher "${publisher}" did not settle within ${deadlineMs} ms on a change of connection "${connection}"; its signal is aborted and it is no longer waited for.`,
  webhookDropped: (publisher: string, origin: string, dropped: number, maxQueue: number) =>
    `Publisher "${publisher}" (${origin}) dropped the ${dropped} oldest message(s): more than maxQueue (${maxQueue}) were waiting for a slow or failing receiver.`,
  webhookNoAnswer: (timeoutMs: number) => `no answer within ${timeoutMs} ms`,
  webhookStatus: (status: number) => `the receiver answered HTTP ${status}`,
  stompMessageNacked: (delayMs: number) =>
    `the message is NACKed in ${delayMs} ms, so the broker's redelivery and dead-letter rules apply.`,
  stompMessageCumulativeAck: () =>
    "with ack 'client' a NACK would also refuse every earlier unanswered message, so none is sent: the message stays unacknowledged until the session ends, then the broker delivers it again.",
  stompMessageAutoAcked: () => "with ack 'auto' the broker counted it as delivered when it sent it: the message is lost to the app.",
  stompMessageAnswered: () => 'it had already acknowledged or NACKed the message, so nothing more is sent.',
  stompMessageSessionOver: () => 'its session has ended, so no NACK can be sent; the broker delivers the message again to a new session.',
  stompMessageNoNack: () => 'STOMP 1.0 has no NACK: the message stays unacknowledged until the session ends, then the broker delivers it again.',
  openTelemetryNoMeterProvider: (spans: boolean) =>
    'openTelemetry is on, but no OpenTelemetry MeterProvider is registered: the connection metrics are not recorded' +
    `${spans ? ' (the span of each state change is)' : ', nor any span (no TracerProvider is registered either)'}. ` +
    "Start the OpenTelemetry SDK in main.ts before NestFactory.create() (the package takes its meter at the app's bootstrap), " +
    'or pass openTelemetry.meterProvider.',
  openTelemetryNoTracerProvider: () =>
    'openTelemetry: no TracerProvider is registered, so state changes make no span; the metrics are recorded.',
  keepAliveFallback: () =>
    'net-keepalive is not installed: TCP keepalive keeps its idle time but probes every 1 s, 10 times, and ' +
    'TCP_USER_TIMEOUT stays unset. Run "npm install net-keepalive" to apply intervalMs, count and userTimeoutMs.',
  keepAliveRefused: (option: string, value: number, reason: string) =>
    `The platform refused the TCP keepalive option "${option}" (${value}): ${reason}. Connections go on with the ` +
    "kernel's own value for it; use a value the platform accepts (Linux: count at most 127, intervals at most " +
    '32 767 000 ms), or leave the option out.',
} as const;

/**
 * A value as a message shows it: never a function's source, nor an object's contents, and a string with
 * any credentials removed (a connection string put where a definition belongs, say).
 */
export function describe(value: unknown): string {
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (value === UNSHOWN_STRING) return 'a string';
  if (value === UNSHOWN_NUMBER) return 'a number';
  if (typeof value === 'string') return redactSecrets(JSON.stringify(value));
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  return 'an object';
}
