/**
 * What the package uses of a node-imap client (`imap` 0.8, the Connection of @types/imap). The package's own
 * type, so that its published declarations compile without `imap` and @types/imap installed.
 */
export interface NodeImapLike {
  /** 'disconnected', 'connected' or 'authenticated'. */
  readonly state: string;
  connect(): void;
  end(): void;
  openBox(mailboxName: string, openReadOnly: boolean, callback: (error?: Error) => void): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'close', listener: (hadError: boolean) => void): unknown;
  removeListener(event: 'ready', listener: () => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'close', listener: (hadError: boolean) => void): unknown;
}
