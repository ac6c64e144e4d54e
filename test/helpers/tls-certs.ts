/**
 * A throw-away certificate authority for TLS tests, made with the openssl binary: a self-signed
 * CA and a server certificate it signs for 127.0.0.1 and localhost (EC P-256, valid 2 days).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  /** Paths of the PEM files. */
  readonly caCertificate: string;
  readonly certificate: string;
  readonly key: string;
  /** The CA certificate's PEM text. */
  readonly caPem: string;
}

/** Writes a CA and a server certificate for `127.0.0.1`/`localhost` into `dir`. */
export async function makeTestCertificates(dir: string, commonName = 'quayfleet test CA'): Promise<TestCertificates> {
  await fs.mkdir(dir, { recursive: true });
  const file = (name: string): string => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1']);
  await fs.writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext')]);
  return { caCertificate: file('ca.crt'), certificate: file('server.crt'), key: file('server.key'), caPem: await fs.readFile(file('ca.crt'), 'utf8') };
}
