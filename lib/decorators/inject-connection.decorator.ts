import { Inject } from '@nestjs/common';

const CONNECTION_TOKEN_PREFIX = 'CONNECTION_HEALTH:CONNECTION:';
const requestedNames = new Set<string>();

/** The injection token of a connection's handle. */
export function getConnectionToken(name: string): string {
  return `${CONNECTION_TOKEN_PREFIX}${name}`;
}

/**
 * Injects the ConnectionHandle of the connection `name`, declared in forRoot or by a decorator. The handle
 * can be held from the constructor on and used from onApplicationBootstrap on. A name that no connection
 * takes is logged as a warning at bootstrap, and the handle throws UnknownConnectionError when used.
 */
export function InjectConnection(name: string): PropertyDecorator & ParameterDecorator {
  requestedNames.add(name);
  return Inject(getConnectionToken(name));
}

/** @internal Names asked for by @InjectConnection so far: the module provides a handle for each. */
export function requestedConnectionNames(): string[] {
  return [...requestedNames];
}
