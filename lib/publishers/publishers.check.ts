import { OptionChecker } from '../core/option-checker.js';
import type { ConnectionHealthPublisher } from './connection-health-publisher.interface.js';
import { CHECK_PUBLISHER, type PublisherInternals } from './publisher-internals.js';

/** Checks the `publishers` option: an array of objects with publish(); a built-in publisher checks its own options. */
export function checkPublishers(check: OptionChecker, publishers: unknown): void {
  if (publishers === undefined) return;
  check.that(
    Array.isArray(publishers),
    'publishers',
    publishers,
    "Pass an array of publishers, e.g. [new WebhookPublisher({ url: process.env.ALERT_WEBHOOK_URL! }), new LogPublisher()].",
  );
  (publishers as unknown[]).forEach((publisher, index) => {
    const option = `publishers[${index}]`;
    check.that(
      typeof publisher === 'object' && publisher !== null && typeof (publisher as ConnectionHealthPublisher).publish === 'function',
      option,
      publisher,
      'Pass an object with a publish(change, { signal }) method: new WebhookPublisher({ url }), new LogPublisher(), or a class of your own ' +
        'that implements ConnectionHealthPublisher (a plain options object needs its `new WebhookPublisher(...)`).',
    );
    const { name, flush } = publisher as ConnectionHealthPublisher;
    check.that(name === undefined || (typeof name === 'string' && name.trim() !== ''), `${option}.name`, name, 'Use a non-empty string, or leave it out.');
    check.fn(`${option}.flush`, flush, false, '(context) that delivers what the publisher holds back');
    (publisher as PublisherInternals)[CHECK_PUBLISHER]?.(new OptionChecker(check.connection, check.place, `${option}.`));
  });
}
