/**
 * What the package uses of an MQTT.js (5.x) client. The package's own types rather than MQTT.js's, so
 * that its published declarations compile where MQTT.js is not installed.
 */

// `any[]` as Node's EventEmitter types have it: a listener of these events takes what each event passes.
type Listener = (...args: any[]) => void;

/** An MQTT packet as MQTT.js parses and writes it: `cmd` says which. */
export interface MqttPacketLike {
  readonly cmd: string;
  readonly messageId?: number;
  readonly [field: string]: unknown;
}

/** The transport under a client: a net or TLS socket, or a WebSocket stream. */
export interface MqttStreamLike {
  readonly destroyed?: boolean;
  destroy(error?: Error): unknown;
  /** A socket's own error, when it ended on one (ECONNRESET). */
  readonly errored?: Error | null;
}

/** An MQTT.js client, as the package drives or watches it. */
export interface MqttClientLike {
  readonly connected: boolean;
  /** Set by end(): the client is closing, or closed, for good. */
  readonly disconnecting: boolean;
  readonly disconnected?: boolean;
  readonly reconnecting: boolean;
  // No index signature: MQTT.js's IClientOptions, an interface, has none, and its client must fit as it is.
  readonly options: {
    readonly clientId?: string;
    readonly clean?: boolean;
    readonly protocolVersion?: number;
    readonly reconnectPeriod?: number;
    readonly resubscribe?: boolean;
    readonly protocol?: string;
    readonly hostname?: string;
    readonly host?: string;
    readonly port?: number;
  };
  readonly stream?: MqttStreamLike;
  /** QoS 1 and 2 packets awaiting their acknowledgement, by message id, with the callback they answer. */
  readonly outgoing: Record<number, { readonly cb?: unknown }>;
  on(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  publish(topic: string, message: string | Buffer, options: { qos: 0 | 1 | 2 }, callback: (error?: Error) => void): unknown;
  subscribe(
    // MQTT.js's ISubscriptionMap: a filter's options by filter, and the resubscribe flag beside them.
    topics: { readonly [topic: string]: { qos: 0 | 1 | 2 } } & { readonly resubscribe?: boolean },
    options: { readonly properties?: object },
    callback: (error: Error | null, granted?: ReadonlyArray<{ readonly topic: string; readonly qos: number }>) => void,
  ): unknown;
  removeOutgoingMessage(messageId: number): unknown;
  /** Sends a PINGREQ (MQTT.js 5.x); its PINGRESP shows as a 'packetreceive'. */
  sendPing?(): void;
  connect(): unknown;
  end(force?: boolean, options?: Record<string, unknown>, callback?: (error?: Error) => void): unknown;
}

/** Whether `value` is an MQTT.js client, told by what the package calls on it. */
export function isMqttClient(value: unknown): value is MqttClientLike {
  const client = value as Partial<Record<keyof MqttClientLike, unknown>> | null;
  return (
    typeof client === 'object' &&
    client !== null &&
    ['publish', 'subscribe', 'removeOutgoingMessage', 'end', 'on', 'removeListener'].every((method) => typeof client[method as keyof MqttClientLike] === 'function') &&
    typeof client.connected === 'boolean' &&
    typeof client.options === 'object' &&
    typeof client.outgoing === 'object'
  );
}
