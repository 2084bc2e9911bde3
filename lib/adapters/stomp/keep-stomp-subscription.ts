import type { Client, IMessage, StompSubscription } from '@stomp/stompjs';
import type { Observable } from 'rxjs';

/** What the helper needs of a connection handle: `registry.get(name)` is one. */
export interface StompClientSource {
  clientChanges$<T>(): Observable<T | undefined>;
}

export interface KeptStompSubscription {
  /** Unsubscribes from the live session, if any, and stops subscribing on new ones. */
  unsubscribe(): void;
}

/**
 * Subscribes to `destination` on the live session of a STOMP connection, and again on every session
 * after a reconnect, until unsubscribe(): for subscriptions an app makes at run time (the connection's
 * `subscriptions` option covers those known at bootstrap). Messages sent while no session was up are
 * kept by a queue and redelivered when unacknowledged; a topic does not keep them.
 */
export function keepStompSubscription(
  connection: StompClientSource,
  destination: string,
  onMessage: (message: IMessage) => void,
  headers: Record<string, string> = {},
): KeptStompSubscription {
  let current: { client: Client; subscription: StompSubscription } | undefined;
  // Replays the live client at once, then every new one; undefined while none is up.
  const watch = connection.clientChanges$<Client>().subscribe((client) => {
    current = client ? { client, subscription: client.subscribe(destination, onMessage, { ...headers }) } : undefined;
  });
  return {
    unsubscribe() {
      watch.unsubscribe();
      if (current?.client.connected) current.subscription.unsubscribe();
      current = undefined;
    },
  };
}
