import Imap from 'imap';
import { ImapFlow } from 'imapflow';
import { setTimeout as sleep } from 'node:timers/promises';
import { DovecotServer } from '../../test/kit/dovecot.server.js';
import { now } from '../kit/stats.js';
import type { DetectionKind, FaultServer, Noticed, RawLibrary, RawWatch } from './detection-kind.interface.js';

const login = { user: DovecotServer.user, pass: DovecotServer.password };

/** dovecot from the test kit; a crash is killServer() (master and every child, so clients get a FIN). */
async function startDovecot(): Promise<FaultServer> {
  const server = await DovecotServer.start();
  return {
    host: server.host,
    port: server.port,
    kill: () => server.killServer(),
    startAgain: () => server.startAgain(),
    stop: () => server.stop(),
  };
}

function noticer(): { noticed: Promise<Noticed>; report: (how: string) => void } {
  let report!: (how: string) => void;
  const noticed = new Promise<Noticed>((resolve) => (report = (how) => resolve({ at: now(), how })));
  return { noticed, report };
}

/** imapflow with its defaults, INBOX selected, waiting in its own auto-IDLE as an app that waits for mail does. */
async function watchImapFlow(host: string, port: number): Promise<RawWatch> {
  const client = new ImapFlow({ host, port, secure: false, auth: login, logger: false });
  const { noticed, report } = noticer();
  client.on('error', (error: Error) => report(`'error' event: ${error.message}`));
  client.on('close', () => report(`'close' event`));
  await client.connect();
  await client.mailboxOpen('INBOX');
  return {
    noticed,
    close: async () => {
      // logout() waits for an answer a blackholed server never sends; close() just drops the socket.
      await Promise.race([client.logout().catch(() => undefined), sleep(1_000)]);
      client.close();
    },
  };
}

/** node-imap with its defaults, INBOX open (it IDLEs by itself when the server supports it). */
async function watchNodeImap(host: string, port: number): Promise<RawWatch> {
  const client = new Imap({ host, port, user: login.user, password: login.pass });
  const { noticed, report } = noticer();
  client.on('error', (error: Error) => report(`'error' event: ${error.message}`));
  client.on('end', () => report(`'end' event`));
  client.on('close', () => report(`'close' event`));
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => client.openBox('INBOX', true, (error) => (error ? reject(error) : resolve())));
    client.once('error', reject);
    client.connect();
  });
  return {
    noticed,
    close: async () => {
      // end() sends LOGOUT; destroy() during IDLE can throw inside node-imap (see notes/libraries.md).
      try {
        client.end();
      } catch {
        // Already gone.
      }
      await sleep(200);
      const socket = (client as unknown as { _sock?: { destroy(): void } })._sock;
      socket?.destroy();
    },
  };
}

const imapflowRaw: RawLibrary = { name: 'imapflow', usage: 'INBOX selected, waiting in its auto-IDLE', watch: watchImapFlow };
const nodeImapRaw: RawLibrary = { name: 'node-imap (imap)', usage: 'INBOX open, IDLE', watch: watchNodeImap };

/** dovecot 2.3 monitored through kind 'imap' with imapflow. */
export const dovecotImapFlowKind: DetectionKind = {
  label: 'dovecot 2.3 · imapflow',
  server: 'dovecot 2.3',
  startServer: startDovecot,
  connection: (host, port) => ({ definition: { name: 'mail', kind: 'imap', client: 'imapflow', host, port, auth: login } }),
  raw: [imapflowRaw],
};

/** dovecot 2.3 monitored through kind 'imap' with node-imap. */
export const dovecotNodeImapKind: DetectionKind = {
  label: 'dovecot 2.3 · node-imap',
  server: 'dovecot 2.3',
  startServer: startDovecot,
  connection: (host, port) => ({ definition: { name: 'mail', kind: 'imap', client: 'node-imap', host, port, auth: login } }),
  raw: [nodeImapRaw],
};
