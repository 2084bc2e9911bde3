import { createServer, type Server, type Socket } from 'node:net';
import { resetSocket } from './reset-socket.js';

/** A TCP listener that can go away (resetting what it accepted) and come back on the same port: a dependency for the tcp kind. */
export class TcpListener {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  async listen(): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    // A client's FIN makes Node end() its side at once: resetSocket() closes such a socket instead.
    for (const socket of this.sockets) resetSocket(socket);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}
