/** What one STOMP session agreed with the broker, from its CONNECTED frame. */
export interface StompSessionInfo {
  /** The broker's `server` header, e.g. "ActiveMQ/5.17.2" or "RabbitMQ/3.10.8". */
  readonly server?: string;
  /** The STOMP version spoken, e.g. "1.2". */
  readonly version?: string;
  /** The broker's session id. */
  readonly session?: string;
  /** What we asked for on CONNECT: "cx,cy" (we send every cx ms, want one every cy ms). */
  readonly requestedHeartBeat: string;
  /** The broker's answer: "sx,sy", or undefined when it does not heart-beat. */
  readonly brokerHeartBeat?: string;
  /**
   * The heart-beats in force (STOMP 1.1 section "Heart-beating"): we send one every `outgoingMs`
   * and expect one every `incomingMs`; 0 means none in that direction.
   */
  readonly heartbeat: { readonly outgoingMs: number; readonly incomingMs: number };
  /** When CONNECTED arrived (epoch ms). */
  readonly connectedAt: number;
}

const sessions = new WeakMap<object, StompSessionInfo>();

/** Remembers what the CONNECTED frame of a client's session said. */
export function recordStompSession(client: object, frame: { readonly headers: Record<string, string> }, outgoingMs: number, incomingMs: number, at: number): StompSessionInfo {
  // STOMP 1.0 has no heart-beating, whatever the headers say.
  const answer = frame.headers.version === '1.0' ? undefined : frame.headers['heart-beat'];
  const [brokerSends = 0, brokerWants = 0] = (answer ?? '0,0').split(',').map((part) => Number.parseInt(part, 10) || 0);
  const info: StompSessionInfo = Object.freeze({
    server: frame.headers.server,
    version: frame.headers.version,
    session: frame.headers.session,
    requestedHeartBeat: `${outgoingMs},${incomingMs}`,
    brokerHeartBeat: answer,
    // The larger of the two offers wins in each direction; a zero on either side switches it off.
    heartbeat: Object.freeze({
      outgoingMs: outgoingMs && brokerWants ? Math.max(outgoingMs, brokerWants) : 0,
      incomingMs: incomingMs && brokerSends ? Math.max(incomingMs, brokerSends) : 0,
    }),
    connectedAt: at,
  });
  sessions.set(client, info);
  return info;
}

/**
 * What the session of a STOMP client from a connection handle agreed with its broker (version, server,
 * negotiated heart-beats), or undefined for any other value:
 * `stompSession(registry.get('broker').client<Client>())`.
 */
export function stompSession(client: unknown): StompSessionInfo | undefined {
  return typeof client === 'object' && client !== null ? sessions.get(client) : undefined;
}
