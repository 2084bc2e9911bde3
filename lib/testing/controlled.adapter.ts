import type { BeatReport, ConnectionAdapter } from '../core/connection-adapter.interface.js';

/** What the far end of a controlled connection does: answer, refuse, or answer as an impaired server does. */
export type FarEnd = { readonly kind: 'reachable' } | { readonly kind: 'unreachable' | 'impaired'; readonly reason: string };

/**
 * @internal Stands in for a connection's real adapter in an app's tests: it opens, beats and closes at once,
 * as the test's ConnectionControl says, so the package's real monitor decides every state from what it sees.
 * It shows the kind and target of the real adapter, which it never calls: no I/O reaches the real server.
 */
export class ControlledAdapter implements ConnectionAdapter {
  readonly kind: string;
  readonly target?: string;
  private readonly onLoss = new Set<(error: Error) => void>();

  constructor(
    private readonly real: ConnectionAdapter,
    private readonly farEnd: () => FarEnd,
  ) {
    this.kind = real.kind;
    this.target = real.target;
  }

  async open(): Promise<void> {
    const farEnd = this.farEnd();
    if (farEnd.kind === 'unreachable') throw new Error(farEnd.reason);
  }

  async ping(): Promise<void | BeatReport> {
    const farEnd = this.farEnd();
    if (farEnd.kind === 'unreachable') throw new Error(farEnd.reason);
    if (farEnd.kind === 'impaired') return { impairment: farEnd.reason };
  }

  async close(): Promise<void> {}

  observeLoss(onLoss: (error: Error) => void): () => void {
    this.onLoss.add(onLoss);
    return () => this.onLoss.delete(onLoss);
  }

  /** The client notices the loss by itself, as when the server closes the socket. */
  reportLoss(reason: string): void {
    for (const onLoss of this.onLoss) onLoss(new Error(reason));
  }

  /** The real adapter's credentials, so that the package scrubs them in tests as it does in production. */
  knownSecrets(): Iterable<string | undefined> {
    return this.real.knownSecrets?.() ?? [];
  }
}
