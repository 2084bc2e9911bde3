/** Bad configuration found at bootstrap: names the connection, the option and the bad value. */
export class ConnectionHealthConfigError extends Error {
  override readonly name = 'ConnectionHealthConfigError';

  constructor(
    message: string,
    readonly connection: string,
    readonly option: string,
    /**
     * The bad value as the message shows it: a number, boolean, null or undefined as it is, anything else
     * described ("an object", a string with its credentials removed), since Node prints an error's fields.
     */
    readonly value: unknown,
  ) {
    super(message);
  }
}
