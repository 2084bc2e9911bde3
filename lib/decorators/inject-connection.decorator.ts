import { Inject } from '@nestjs/common';

const CONNECTION_TOKEN_PREFIX = 'CONNECTION_HEALTH:CONNECTION:';
/**
 * One set per process, not per copy of this file: an app that loads both the ES module and the CommonJS build
 * (one import, one require) may decorate with one build's @InjectConnection and register the other's module.
 */
const REQUESTED_NAMES = Symbol.for('nestjs-connection-health:requested-connection-names');
const requestedNames = ((globalThis as { [REQUESTED_NAMES]?: Set<string> })[REQUESTED_NAMES] ??= new Set<string>());

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
