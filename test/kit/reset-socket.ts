import type net from 'node:net';

/**
 * Aborts a connection with an RST where the socket still allows one, else closes it.
 *
 * Once end() was called the FIN is queued, and libuv refuses to reset a socket whose shutdown is pending
 * (EINVAL: it will not mix a shutdown with SO_LINGER 0). Node 20's resetAndDestroy() then marks the handle
 * as closing without closing it: the socket never emits 'close', and at exit the process waits for that
 * handle forever, spinning in its clean-up loop (Environment::CleanupHandles) at full CPU. Such a socket
 * has said goodbye already, so destroy() closes it; any unread input still makes the kernel send an RST.
 */
export function resetSocket(socket: net.Socket): void {
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
