import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { callUser, type CallbackReport } from '../../core/user-callback.js';
import type { StompMessage } from './stomp-message.js';
import { stompSession } from './stomp-session.js';

/** An app's handler of one subscription's messages; it may be async. */
export type StompMessageHandler = (message: StompMessage) => unknown;

export interface StompDelivery {
  readonly connection: string;
  /** What the log calls the handler: "the onMessage handler of /queue/orders". */
  readonly place: string;
  /** The SUBSCRIBE headers: their `ack` mode decides what a failed message becomes. */
  readonly headers?: Record<string, string>;
  /** The @stomp/stompjs Client of the session the subscription belongs to. */
  readonly client: { readonly connected: boolean };
  readonly report: CallbackReport;
}

/**
 * A failed message is NACKed this much later: RabbitMQ requeues a NACKed message at once, so a message
 * that fails every time would otherwise run the handler (and its side effects) thousands of times a second.
 */
export const NACK_DELAY_MS = 1_000;

/**
 * Wraps an app's message handler for stompjs, which calls it from inside its frame parser. A handler
 * that throws, or returns a rejected promise, must neither crash the process (a throw there would
 * surface on the socket's 'data' event) nor acknowledge a message it did not process: it is logged, and
 * the message is NACKed (a second later) under 'client-individual', so the broker's redelivery and
 * dead-letter rules decide what becomes of it. A handler that already acked or nacked keeps its word: nothing more is sent.
 * A handler that never settles leaves its message unacknowledged until the session ends.
 */
export function stompDelivery(onMessage: StompMessageHandler, delivery: StompDelivery): (message: StompMessage) => void {
  const { connection, place, client, report } = delivery;
  const ackMode = delivery.headers?.ack ?? 'auto';
  return (message) => {
    let answered = false;
    const { ack, nack } = message;
    // One answer per message: an ACK after the package's NACK (or the other way round) would name a delivery
    // the broker has already settled, and RabbitMQ ends the session for it.
    message.ack = (headers) => {
      if (answered) return;
      answered = true;
      ack(headers);
    };
    message.nack = (headers) => {
      if (answered) return;
      answered = true;
      nack(headers);
    };
    /** What becomes of a message whose handler failed, as the log says it. */
    const refuse = (): string => {
      if (answered) return messages.stompMessageAnswered();
      if (ackMode === 'auto') return messages.stompMessageAutoAcked();
      // Under 'client' a NACK (like an ACK) is cumulative: it would refuse every earlier message not yet answered.
      if (ackMode !== 'client-individual') return messages.stompMessageCumulativeAck();
      if (!client.connected) return messages.stompMessageSessionOver();
      if (stompSession(client)?.version === '1.0') return messages.stompMessageNoNack();
      setTimeout(() => {
        if (!answered && client.connected) message.nack();
      }, NACK_DELAY_MS).unref();
      return messages.stompMessageNacked(NACK_DELAY_MS);
    };
    callUser(
      () => onMessage(message),
      (error, how) => report(error, messages.callbackFailed(connection, place, how, describeError(error), refuse())),
    );
  };
}
