import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { run } from './process.util.js';

/** Where makeSelfSignedCertificate() wrote the PEM files. */
export interface CertificateFiles {
  /** The certificate, which is also its own CA: give its contents to clients as `ca`. */
  cert: string;
  /** The unencrypted private key. */
  key: string;
}

/**
 * Makes a throwaway self-signed certificate (RSA 2048, valid 7 days) for `hosts` (IP addresses and names,
 * all in subjectAltName) with openssl, into DIR/tls. Node's crypto makes keys but no X.509 certificate;
 * scripts/install-servers.sh installs openssl.
 */
export async function makeSelfSignedCertificate(dir: string, hosts: readonly string[]): Promise<CertificateFiles> {
  const folder = path.join(dir, 'tls');
  await mkdir(folder, { recursive: true });
  const files = { cert: path.join(folder, 'cert.pem'), key: path.join(folder, 'key.pem') };
  const names = [...new Set(hosts)].map((host) => (net.isIP(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '7',
    '-subj', `/CN=${hosts[0] ?? 'localhost'}`, '-addext', `subjectAltName=${names}`,
    '-keyout', files.key, '-out', files.cert,
  ]);
  return files;
}
