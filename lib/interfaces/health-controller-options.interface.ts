/** How much a health answer tells. Whatever the level, no answer holds credentials. */
export type HealthDetailLevel =
  /** Per connection: kind, target, state, since, reason, last beat, RTT, attempts, last error. */
  | 'full'
  /** Per connection: its status only. */
  | 'status'
  /** The overall status only; the HTTP code says the rest. */
  | 'none';

export interface HealthControllerOptions {
  /** Route prefix: `/<path>`, `/<path>/live`, `/<path>/ready`, `/<path>/startup`. Default 'health'. */
  path?: string;
  /**
   * Default 'status': safe on a port that more people reach than the app's data. 'full' adds each
   * connection's kind, target (host, port, database), state, reasons and last error: scrubbed of every
   * secret, but it still tells a caller the app's topology and its dependencies' errors.
   */
  details?: HealthDetailLevel;
  /**
   * Class decorators applied to the built-in controller, as if written above it: how the probe routes
   * escape an app's global guards, interceptors and throttling, which apply to every route. E.g.
   * `[SkipThrottle(), Public()]`, with the marker your own global guard reads. Default none.
   * Not with `port`: the management port serves outside Nest's pipeline, where nothing applies.
   */
  decorators?: ClassDecorator[];
  /**
   * Serve a live status page at `/<path>/ui` (HTML, updated through Server-Sent Events at `/<path>/ui/events`):
   * per connection its state, since when, required or optional, an RTT sparkline of the last 60 heartbeats,
   * reconnect attempts, the next attempt and the last hour's transitions. It shows what `details` allows:
   * reasons, targets and errors only at 'full', the overall status only at 'none'. `decorators` apply to its
   * routes too. With `port`, the page is served on the management port, outside the app's guards. When on,
   * each connection's recent history is kept from bootstrap (60 numbers and at most 100 transitions). Default false.
   */
  ui?: boolean;
  /**
   * Serve the probe routes on this port, from a small HTTP server of the package's own, instead of the
   * app's routes (a management port, as Spring Boot and lightship have): no global prefix, version,
   * guard, interceptor or throttler of the app applies there, and it also works in an app with no HTTP
   * server (NestFactory.createApplicationContext). Listens at bootstrap, closes after the drain on
   * shutdown. An integer from 0 to 65535; 0 takes any free port. `ConnectionHealthTesting` puts it on 0 in
   * tests, so that test files running in parallel do not collide. Default: none, the probes are routes of the app.
   */
  port?: number;
  /** The address the management port listens on; only with `port`. Default: every interface, as `app.listen(port)`. */
  host?: string;
  /**
   * Only with `port`. Default true: readiness answers 503 on the management port until the app's own HTTP
   * server listens, so that no traffic is sent to a port that still refuses it while the app's start-up hooks
   * run. False for an app whose Nest HTTP server never listens: one that serves through servers of its own
   * (`http.createServer(expressApp).listen()`), or a hybrid app that only calls `init()` and
   * `startAllMicroservices()`. An app with no HTTP server (`createApplicationContext`, `createMicroservice`)
   * is never held. Startup and liveness never wait for it.
   */
  awaitAppListen?: boolean;
}
