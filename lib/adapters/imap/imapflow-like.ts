/**
 * What the package uses of an imapflow client; any ImapFlow is one. The package's own
 * type rather than imapflow's, so that its published declarations compile where imapflow is not installed.
 */
export interface ImapFlowLike {
  /** False once the connection is closed or broken; imapflow's noop() resolves even then. */
  readonly usable: boolean;
  /** The text of the server's BYE, once one came (newer imapflow versions). */
  readonly byeReason?: string;
  /** What the server announced (imapflow's Map): whether it offers STARTTLS, say. */
  readonly capabilities: { has(capability: string): boolean };
  connect(): Promise<void>;
  mailboxOpen(path: string): Promise<unknown>;
  noop(): Promise<void>;
  logout(): Promise<void>;
  close(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}
