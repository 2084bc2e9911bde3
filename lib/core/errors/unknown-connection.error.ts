import { messages } from '../messages.js';

/** A connection was looked up by a name that nothing registered. */
export class UnknownConnectionError extends Error {
  override readonly name = 'UnknownConnectionError';

  constructor(
    readonly connection: string,
    readonly known: readonly string[],
  ) {
    super(messages.unknownConnection(connection, known));
  }
}
