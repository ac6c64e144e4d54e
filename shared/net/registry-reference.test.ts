import { describe, expect, it } from 'vitest';
import { ExternalReferenceError, LOCATION_NOT_ALLOWED, parseExternalReference, validateExternalReference } from './registry-reference.ts';

const check = (reference: string, allowedHosts: string[] = [], resolve = false) => validateExternalReference(reference, { allowedHosts, resolve });

describe('external registry references', () => {
  it('parses host[:port]/path', () => {
    expect(parseExternalReference('quay.io/redhat/quay')).toMatchObject({ host: 'quay.io', port: undefined, repository: 'redhat/quay' });
    expect(parseExternalReference('127.0.0.1:5000/a/b')).toMatchObject({ host: '127.0.0.1', port: 5000, authority: '127.0.0.1:5000' });
    expect(parseExternalReference('[::1]:5000/a')).toMatchObject({ host: '::1', port: 5000 });
  });

  it.each(['example.com', 'example.com/', 'https://quay.io/a', 'quay.io/UPPER', 'quay.io/a:latest', 'bad host/a', 'h:99999/a', '/a'])('refuses %s', (reference) => {
    expect(() => parseExternalReference(reference)).toThrow(ExternalReferenceError);
  });

  it.each(['169.254.169.254/latest/meta-data', '10.0.0.1/a', '127.0.0.1:5000/a', 'localhost/a', '[::1]/a', '[::ffff:10.0.0.1]/a', '192.168.1.1/a'])('blocks %s', async (reference) => {
    await expect(check(reference)).rejects.toThrow(LOCATION_NOT_ALLOWED);
  });

  it('allows private targets only as SSRF_ALLOWED_HOSTS lists them (host, host:port, CIDR)', async () => {
    await expect(check('10.0.0.1/a', ['10.0.0.1'])).resolves.toBeDefined();
    await expect(check('127.0.0.1:5000/a', ['127.0.0.1:5000'])).resolves.toBeDefined();
    await expect(check('127.0.0.1:5001/a', ['127.0.0.1:5000'])).rejects.toThrow(LOCATION_NOT_ALLOWED);
    await expect(check('10.1.2.3/a', ['10.0.0.0/8'])).resolves.toBeDefined();
    await expect(check('8.8.8.8/a')).resolves.toBeDefined();
  });

  it('resolves names before connecting: a name pointing at loopback is blocked', async () => {
    await expect(check('localhost:5000/a', [], true)).rejects.toThrow(LOCATION_NOT_ALLOWED);
    await expect(check('no-such-host.invalid/a', [], true)).rejects.toThrow(/Cannot resolve/);
  });
});
