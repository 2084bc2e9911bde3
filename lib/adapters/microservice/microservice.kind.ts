import type { ConnectionDefinitionBase } from '../../core/connection-definition.js';
import { messages } from '../../core/messages.js';
import { optionNames, type OptionChecker } from '../../core/option-checker.js';
import type { ConnectionKindSpec, ProviderToken } from '../connection-kind.js';
import { handedIn } from '../handed-in.js';
import { classChain, isClientProxy, type ClientProxyLike } from './client-proxy-like.js';
import { MicroserviceAdapter } from './microservice.adapter.js';
import { PROXY_TRANSPORTS, type ProxyTransport } from './proxy-transports.js';

/**
 * An app's Nest microservice client (a ClientProxy of @nestjs/microservices, RMQ, Redis, MQTT or NATS transport),
 * proven by the kind of its transport on the connection the proxy holds: no second connection of the package's.
 */
export interface MicroserviceConnectionDefinition extends ConnectionDefinitionBase {
  kind: 'microservice';
  /**
   * The app's ClientProxy, or the token of its provider: the `name` given to `ClientsModule.register()`
   * (`'ORDERS'`), or a class. The package calls its connect() while it holds no connection (never after the app's
   * close()), and never its close().
   */
  client: ClientProxyLike | ProviderToken;
}

export const MICROSERVICE_OPTIONS = optionNames<Omit<MicroserviceConnectionDefinition, keyof ConnectionDefinitionBase | 'kind'>>({ client: true });

/**
 * Nest's microservice clients. A decorated property or getter holds the app's ClientProxy (`@Inject('ORDERS')`);
 * a method is called once at bootstrap and returns it. Either way the proxy is connected, never closed.
 */
export const microserviceKind: ConnectionKindSpec<MicroserviceConnectionDefinition, Omit<MicroserviceConnectionDefinition, 'client'>> = {
  kind: 'microservice',
  options: MICROSERVICE_OPTIONS,
  defaults: {},
  create(definition, options, context) {
    const proxy = resolveProxy(context.check, definition.client, context.provider);
    return new MicroserviceAdapter(definition.name, proxy, transportOf(context.check, proxy), options, context);
  },
  fromMember: (options, { value, method }) => ({ definition: { ...options, client: (method ? method() : value) as ClientProxyLike }, keepsClient: false }),
};

/** The app's ClientProxy itself, or the one its provider holds. */
function resolveProxy(check: OptionChecker, given: unknown, provider?: (token: ProviderToken) => unknown): ClientProxyLike {
  check.that(
    given !== undefined,
    'client',
    given,
    "Give the app's ClientProxy, or the name it has in ClientsModule.register([{ name: 'ORDERS', transport, options }]).",
  );
  const proxy = handedIn(check, 'client', given, isClientProxy, provider, 'No provider with that token holds a ClientProxy. Register the client with ClientsModule.register([{ name, transport, options }]) in a module the app imports, or pass the ClientProxy itself.');
  // Never the object itself in the message: a proxy's options hold its password.
  check.that(
    isClientProxy(proxy),
    'client',
    '(not a ClientProxy)',
    "Pass a ClientProxy of @nestjs/microservices (what @Inject('ORDERS') gives for a client of ClientsModule.register()), or its token.",
  );
  return proxy as ClientProxyLike;
}

/** The transport of a proxy, by its class chain (a subclass of ClientRMQ is RMQ); other transports refused. */
function transportOf(check: OptionChecker, proxy: ClientProxyLike): ProxyTransport {
  const chain = classChain(proxy);
  const transport = PROXY_TRANSPORTS.find(({ proxyClass }) => chain.includes(proxyClass));
  check.that(
    transport !== undefined,
    'client',
    `(a ${chain[0] ?? 'ClientProxy'})`,
    messages.microserviceUnsupported(
      chain[0] ?? 'ClientProxy',
      PROXY_TRANSPORTS.map(({ transport: name, proxyClass }) => `${name} (${proxyClass})`),
    ),
  );
  return transport as ProxyTransport;
}
