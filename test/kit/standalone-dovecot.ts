/**
 * `npm run dovecot`: a local dovecot for the sample app and for trying faults by hand, on 127.0.0.1:11143
 * (IMAP_PORT overrides), user test, password test. Runs until Ctrl-C or SIGTERM, then removes everything.
 */
import { DovecotServer } from './dovecot.server.js';

const server = await DovecotServer.start({ port: Number(process.env.IMAP_PORT ?? 11143) });
console.log(`dovecot listening on ${server.host}:${server.port} (user ${DovecotServer.user}, password ${DovecotServer.password})`);
console.log(`sessions: doveadm -c ${server.configFile} who; kick them: doveadm -c ${server.configFile} kick ${DovecotServer.user}`);
console.log('Ctrl-C stops it.');
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0));
  });
}
setInterval(() => undefined, 1 << 30); // stay in the foreground until a signal
