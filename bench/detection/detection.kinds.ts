import { rabbitMqAmqpKind, rabbitMqConnectionManagerKind, rabbitMqRecoveringModelKind } from './amqp.kind.js';
import type { DetectionKind } from './detection-kind.interface.js';
import { dovecotImapFlowKind, dovecotNodeImapKind } from './imap.kind.js';
import { mosquittoMicroserviceKind, natsMicroserviceKind, rabbitMqMicroserviceKind, redisMicroserviceKind } from './microservice.kind.js';
import { mosquittoMqttKind, mosquittoWatchedMqttKind } from './mqtt.kind.js';
import { natsKind, natsWatchedKind } from './nats.kind.js';
import { postgresTypeOrmKind } from './postgres.kind.js';
import { redisIoredisBlpopKind, redisIoredisKind, redisIoredisSubscriberKind } from './redis.kind.js';
import { activeMqStompKind } from './stomp.kind.js';

/**
 * The rows of the detection benchmark: one entry per server and client library. A new kind needs only a
 * DetectionKind (see postgres.kind.ts): its server (kill, startAgain, stop), the connection the package
 * monitors, and the raw client libraries to compare with.
 */
export const DETECTION_KINDS: DetectionKind[] = [postgresTypeOrmKind, dovecotImapFlowKind, dovecotNodeImapKind, activeMqStompKind, redisIoredisKind, redisIoredisSubscriberKind, redisIoredisBlpopKind, rabbitMqAmqpKind, rabbitMqConnectionManagerKind, rabbitMqRecoveringModelKind, natsKind, natsWatchedKind, mosquittoMqttKind, mosquittoWatchedMqttKind, rabbitMqMicroserviceKind, redisMicroserviceKind, mosquittoMicroserviceKind, natsMicroserviceKind];
