export { ConnectionHealthModule } from './connection-health.module.js';
export type {
  ConnectionHealthModuleOptions,
  DeadManOptions,
  ShutdownOptions,
} from './interfaces/connection-health-options.interface.js';
export type { HealthControllerOptions, HealthDetailLevel } from './interfaces/health-controller-options.interface.js';
export type { MetricsOptions } from './interfaces/metrics-options.interface.js';
export type { PromRegistryLike } from './metrics/prom-registry-like.js';
export type { OpenTelemetryOptions } from './interfaces/opentelemetry-options.interface.js';
export type { MeterProviderLike, TracerProviderLike } from './opentelemetry/otel-provider-like.js';
export type { ConnectionHealthPublisher, PublishContext } from './publishers/connection-health-publisher.interface.js';
export type { ConnectionChange, ConnectionChangeSummary } from './publishers/connection-change.js';
export type { ThrottleOptions } from './publishers/change-throttle.js';
export type { WebhookPublisherOptions } from './publishers/webhook-publisher.options.js';
export { WebhookPublisher, SIGNATURE_HEADER, TIMESTAMP_HEADER, type WebhookBody } from './publishers/webhook.publisher.js';
export { LogPublisher, type LogPublisherOptions } from './publishers/log.publisher.js';
export type { TcpKeepAliveOptions } from './adapters/tcp-keepalive.js';
export type { DataSourceLike } from './adapters/typeorm/data-source-like.js';
export type { RedisLike } from './adapters/redis/redis-like.js';
export type { AmqpConnectionLike, AmqpMessage } from './adapters/amqp/amqp-like.js';
export type { AmqpConsumerDefinition } from './adapters/amqp/kept-amqp-consumer.js';
export type { MqttClientLike } from './adapters/mqtt/mqtt-like.js';
export type { MqttMessage, MqttSubscriptionDefinition } from './adapters/mqtt/kept-mqtt-subscriptions.js';
export type { NatsConnectionLike, NatsMessage } from './adapters/nats/nats-like.js';
export type { ClientProxyLike } from './adapters/microservice/client-proxy-like.js';
export type { NatsSubscriptionDefinition } from './adapters/nats/kept-nats-subscriptions.js';
export { ConnectionHealthProbes, type ProbeResult } from './health/connection-health.probes.js';
export type {
  AmqpConnectionDefinition,
  ConnectionDefinition,
  CustomConnectionDefinition,
  ImapConnectionDefinition,
  ImapFlowConnectionDefinition,
  MicroserviceConnectionDefinition,
  MqttConnectionDefinition,
  NatsConnectionDefinition,
  NodeImapConnectionDefinition,
  RedisConnectionDefinition,
  StompConnectionDefinition,
  TcpConnectionDefinition,
  TypeOrmConnectionDefinition,
} from './interfaces/connection-definition.interface.js';
export { ConnectionHealthRegistry } from './registry/connection-health.registry.js';
export { ConnectionHandle } from './registry/connection-handle.js';
export { ConnectionHealthIndicator, type IndicatorOptions } from './health/connection-health.health.js';

export type { ConnectionState } from './core/connection-state.js';
export type { ConnectionSnapshot, HealthStatus } from './core/connection-snapshot.js';
export type { ConnectionEvent, HeartbeatEvent, StateChangeEvent } from './core/connection-event.js';
export type {
  FailureOptions,
  FailurePolicy,
  HeartbeatOptions,
  MonitorOptionsInput,
  ReconnectOptions,
  SuspicionOptions,
} from './core/monitor-options.js';
export type { CustomConnection } from './adapters/custom/custom.adapter.js';
export type { ImapLogin } from './adapters/imap/imap-adapter.options.js';
export type { ImapFlowLike } from './adapters/imap/imapflow-like.js';
export type { NodeImapLike } from './adapters/imap/node-imap-like.js';
export type { StompHeartbeatOptions, StompProbeOptions, StompSubscriptionDefinition } from './adapters/stomp/stomp-options.js';
export type { StompMessage } from './adapters/stomp/stomp-message.js';
export { stompSession, type StompSessionInfo } from './adapters/stomp/stomp-session.js';
export { keepStompSubscription, type KeptStompSubscription } from './adapters/stomp/keep-stomp-subscription.js';
export { ConnectionHealthConfigError } from './core/errors/connection-health-config.error.js';
export { HeartbeatTimeoutError } from './core/errors/heartbeat-timeout.error.js';
export { MissingDependencyError } from './core/errors/missing-dependency.error.js';
export { UnknownConnectionError } from './core/errors/unknown-connection.error.js';

export { MonitorConnection, type MonitorConnectionOptions } from './decorators/monitor-connection.decorator.js';
export { ConnectionHeartbeat, type ConnectionHeartbeatOptions } from './decorators/connection-heartbeat.decorator.js';
export {
  OnConnected,
  OnConnectionFailed,
  OnConnectionLost,
  OnConnectionRecovered,
} from './decorators/connection-lifecycle.decorator.js';
export { getConnectionToken, InjectConnection } from './decorators/inject-connection.decorator.js';
export type { ConnectionLifecycle } from './core/connection-lifecycle.js';
