import type { Client, StompSubscription } from '@stomp/stompjs';
import type { Observable } from 'rxjs';
import { throttleReport, type CallbackReport } from '../../core/user-callback.js';
import { stompDelivery } from './stomp-delivery.js';
import type { StompMessage } from './stomp-message.js';

/** What the helper needs of a connection handle: `registry.get(name)` is one. */
export interface StompClientSource {
  readonly name: string;
  clientChanges$<T>(): Observable<T | undefined>;
  /** Where a handler that throws or rejects is logged: a handle logs it at error level. */
  readonly reportCallbackFailure: CallbackReport;
}

export interface KeptStompSubscription {
  /** Unsubscribes from the live session, if any, and stops subscribing on new ones. */
  unsubscribe(): void;
}

/**
 * Subscribes to `destination` on the live session of a STOMP connection, and again on every session
 * after a reconnect, until unsubscribe(): for subscriptions an app makes at run time (the connection's
 * `subscriptions` option covers those known at bootstrap). Messages sent while no session was up are
 * kept by a queue and redelivered when unacknowledged; a topic does not keep them. `onMessage` may be
 * async; one that fails is treated as in `subscriptions` (logged; NACKed under client acknowledgement).
 */
export function keepStompSubscription(
  connection: StompClientSource,
  destination: string,
  onMessage: (message: StompMessage) => void | Promise<unknown>,
  headers: Record<string, string> = {},
): KeptStompSubscription {
  let current: { client: Client; subscription: StompSubscription } | undefined;
  const place = `the onMessage handler of ${destination} (keepStompSubscription)`;
  // Across sessions: a poison message redelivered in a loop is logged once a minute.
  const report = throttleReport(connection.reportCallbackFailure);
  // Replays the live client at once, then every new one; undefined while none is up.
  const watch = connection.clientChanges$<Client>().subscribe((client) => {
    current = undefined;
    if (!client) return;
    const handler = stompDelivery(onMessage, { connection: connection.name, place, headers, client, report });
    current = { client, subscription: client.subscribe(destination, handler, { ...headers }) };
  });
  return {
    unsubscribe() {
      watch.unsubscribe();
      if (current?.client.connected) current.subscription.unsubscribe();
      current = undefined;
    },
  };
}
