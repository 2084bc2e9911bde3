import { Observable, type Observer, type Operator, type Subscriber, type Subscription, type TeardownLogic } from 'rxjs';
import { describeError } from '../core/redact.js';
import { callUser, type CallbackReport } from '../core/user-callback.js';
import { messages } from '../core/messages.js';

/** Who is subscribing, for the log line: the connection and the stream (`events$`, `clientChanges$()`). */
export interface GuardedSource {
  readonly connection: string;
  readonly stream: string;
  readonly report: CallbackReport;
}

/**
 * An Observable whose subscribers cannot crash the process. RxJS 7 rethrows an error thrown by a
 * subscriber's `next` on a timer (reportUnhandledError), which ends a Node process, and a subscriber that
 * returns a rejected promise (an async `next`) is an unhandled rejection, which ends it too. Here each
 * callback a subscriber gives runs through callUser: a throw or a rejection is logged with the connection
 * and the stream, and every other subscriber, and the monitor that emits, go on.
 *
 * `lift` keeps the class, so `events$.pipe(filter(...)).subscribe(fn)` is guarded as well: operators
 * subscribe to their source with an internal Subscriber, which passes through untouched, and only the
 * functions of the final subscriber are wrapped. rxjs' global `config.onUnhandledError` is left alone:
 * it belongs to the app.
 */
export class GuardedObservable<T> extends Observable<T> {
  private constructor(
    private readonly guard: GuardedSource,
    subscribe?: (subscriber: Subscriber<T>) => TeardownLogic,
  ) {
    super(subscribe);
  }

  static of<T>(source: Observable<T>, guard: GuardedSource): GuardedObservable<T> {
    return new GuardedObservable<T>(guard, (subscriber) => source.subscribe(subscriber));
  }

  override lift<R>(operator?: Operator<T, R>): Observable<R> {
    const observable = new GuardedObservable<R>(this.guard);
    observable.source = this;
    observable.operator = operator;
    return observable;
  }

  override subscribe(observerOrNext?: Partial<Observer<T>> | ((value: T) => void) | null): Subscription;
  /** @deprecated Pass an observer object instead (as rxjs itself says). */
  override subscribe(next?: ((value: T) => void) | null, error?: ((error: unknown) => void) | null, complete?: (() => void) | null): Subscription;
  override subscribe(
    observerOrNext?: Partial<Observer<T>> | ((value: T) => void) | null,
    error?: ((error: unknown) => void) | null,
    complete?: (() => void) | null,
  ): Subscription {
    // An operator's own Subscriber (or a Subject's) is package or rxjs code, and must stay itself so that
    // unsubscribing downstream tears down upstream.
    if (isSubscriber(observerOrNext)) return super.subscribe(observerOrNext);
    const observer: Partial<Observer<T>> =
      typeof observerOrNext === 'function' ? { next: observerOrNext, error: error ?? undefined, complete: complete ?? undefined } : (observerOrNext ?? {});
    const guarded: Partial<Observer<T>> = {};
    if (observer.next) guarded.next = (value) => this.call(() => observer.next?.(value), 'a subscriber of');
    // A throw in a user's operator (map, tap) arrives as an error: with no error callback of the user's,
    // rxjs would rethrow it on a timer and end the process, so it is reported instead.
    guarded.error = observer.error
      ? (failure: unknown) => this.call(() => observer.error?.(failure), 'the error callback of a subscriber of')
      : (failure: unknown) =>
          this.call(() => {
            throw failure;
          }, 'an operator or subscriber of');
    if (observer.complete) guarded.complete = () => this.call(() => observer.complete?.(), 'the complete callback of a subscriber of');
    return super.subscribe(guarded);
  }

  private call(fn: () => unknown, who: string): void {
    const { connection, stream, report } = this.guard;
    callUser(fn, (error, how) => report(error, messages.callbackFailed(connection, `${who} ${stream}`, how, describeError(error))));
  }
}

/** rxjs' own test (Subscriber.ts isSubscriber), by shape, so a Subscriber of another rxjs copy passes too. */
function isSubscriber(value: unknown): value is Subscriber<unknown> {
  const candidate = value as Partial<Record<'next' | 'error' | 'complete' | 'add' | 'remove' | 'unsubscribe', unknown>> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.next === 'function' &&
    typeof candidate.error === 'function' &&
    typeof candidate.complete === 'function' &&
    typeof candidate.add === 'function' &&
    typeof candidate.remove === 'function' &&
    typeof candidate.unsubscribe === 'function'
  );
}
