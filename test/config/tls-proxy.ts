/**
 * A TLS endpoint with a self-signed certificate (openssl) in front of a plain-HTTP server on this
 * machine: the bytes pass unchanged, so a signed request's Host header stays the signed one. For
 * the tests of trustedCA and extra_ca_certs.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

/** A listening proxy and its certificate. */
export interface TlsProxy {
  readonly certFile: string;
  readonly certPem: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` with a new certificate for 127.0.0.1 and localhost (in `dir`), forwarding to 127.0.0.1:`upstreamPort`. */
export async function startTlsProxy(dir: string, port: number, upstreamPort: number): Promise<TlsProxy> {
  fs.mkdirSync(dir, { recursive: true });
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=storage.quayfleet.test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  const server = tls.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }, (client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const close = () => { client.destroy(); upstream.destroy(); };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  // A client refusing the certificate resets the handshake; that is the expected outcome, not a failure here.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    certFile,
    certPem: fs.readFileSync(certFile, 'utf8'),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
    }),
  };
}
