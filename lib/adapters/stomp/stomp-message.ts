/**
 * A MESSAGE frame as an onMessage handler receives it: @stomp/stompjs's IMessage, member for member, so that
 * a handler typed with either compiles with both. The package's own type, so that its published declarations
 * compile where @stomp/stompjs is not installed.
 */
export interface StompMessage {
  command: string;
  /** The frame's headers: destination, message-id, subscription, ack, content-type and the sender's own. */
  headers: Record<string, string>;
  isBinaryBody: boolean;
  /** The body as text. */
  readonly body: string;
  /** The body as bytes. */
  readonly binaryBody: Uint8Array;
  /** Acknowledges the message, when the subscription's `ack` header is 'client' or 'client-individual'. */
  ack: (headers?: Record<string, string>) => void;
  /** Refuses the message (STOMP 1.1 and later): the broker redelivers or dead-letters it. */
  nack: (headers?: Record<string, string>) => void;
}
