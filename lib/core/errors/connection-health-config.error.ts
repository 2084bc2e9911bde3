/** Bad configuration found at bootstrap: names the connection, the option and the bad value. */
export class ConnectionHealthConfigError extends Error {
  override readonly name = 'ConnectionHealthConfigError';

  constructor(
    message: string,
    readonly connection: string,
    readonly option: string,
    readonly value: unknown,
  ) {
    super(message);
  }
}
