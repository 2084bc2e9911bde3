import { abortable } from '../../core/abortable.js';
import { messages } from '../../core/messages.js';
import { describeError } from '../../core/redact.js';
import { callUser, throttleReport, type CallbackReport } from '../../core/user-callback.js';
import type { NatsConnectionLike, NatsMessage, NatsSubscriptionLike } from './nats-like.js';

/** A subscription the package makes on every new connection. */
export interface NatsSubscriptionDefinition {
  /** The subject: `orders.created`, `orders.*`, `orders.>`. */
  subject: string;
  /** A queue group: each message goes to one member of the group. Default none. */
  queue?: string;
  /**
   * Called for each message; it may be async, and may answer a request with `message.respond(...)`. One
   * that throws or rejects is logged (at most once a minute) and never crashes the process; core NATS
   * delivers at most once, so the message is not delivered again.
   */
  onMessage(message: NatsMessage): unknown;
}

/**
 * The app's subscriptions, made on every connection that holds no open one of them: the package's own
 * connections, each new, and the app's once (nats.js makes its subscriptions again itself on its reconnects).
 * One the server refused (a permissions violation) is closed by nats.js and reads degraded with the reason;
 * the next beats make it again.
 */
export class KeptNatsSubscriptions {
  private connection?: NatsConnectionLike;
  private made = new Map<NatsSubscriptionDefinition, NatsSubscriptionLike>();
  /** Subject to why the server refused it, for the last attempt of each. */
  private readonly refused = new Map<string, string>();
  private readonly reports: CallbackReport[];

  constructor(
    private readonly definitions: readonly NatsSubscriptionDefinition[],
    private readonly connectionName: string,
    report: CallbackReport,
  ) {
    this.reports = definitions.map(() => throttleReport(report));
  }

  /** Why a subscription is not open on the current connection (the first of them); undefined while all are. */
  impairment(): string | undefined {
    const [first] = this.refused;
    return first && messages.natsSubscriptionRefused(first[0], first[1], this.refused.size);
  }

  /**
   * Subscribes those that have no open subscription on `connection`. The server's verdict comes later (a
   * permissions violation, before the PONG of the next beat).
   */
  make(connection: NatsConnectionLike): void {
    if (connection !== this.connection) {
      this.close();
      this.connection = connection;
    }
    this.definitions.forEach((definition, i) => {
      if (this.made.get(definition)?.isClosed() === false) return;
      const { subject, queue, onMessage } = definition;
      const place = `the onMessage handler of subject '${subject}'`;
      const report = this.reports[i] as CallbackReport;
      this.refused.delete(subject);
      const subscription = connection.subscribe(subject, {
        queue,
        callback: (error, message) => {
          if (error) {
            if (this.made.get(definition) === subscription) this.refused.set(subject, describeError(error));
            return;
          }
          callUser(
            () => onMessage(message),
            (failure, how) => report(failure, messages.callbackFailed(this.connectionName, place, how, describeError(failure), messages.natsMessageNotRedelivered())),
          );
        },
      });
      this.made.set(definition, subscription);
    });
  }

  /** Unsubscribes those of the connection before a new one. */
  close(): void {
    for (const subscription of this.made.values()) if (!subscription.isClosed()) subscription.unsubscribe();
    this.made = new Map();
  }

  /**
   * At shutdown, on the app's connection (which lives on): each drained, so the messages the server already
   * sent to it (in a queue group, no other member gets them) are handled; at `signal` those left are
   * unsubscribed, and no handler runs after.
   */
  async drain(signal: AbortSignal): Promise<void> {
    const open = [...this.made.values()].filter((subscription) => !subscription.isClosed());
    await abortable(Promise.allSettled(open.map((subscription) => subscription.drain())), signal).catch(() => undefined);
    this.close();
  }
}
