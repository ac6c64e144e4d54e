import { describe, expect, it } from 'vitest';
import { InvalidKeyError } from './errors.ts';
import { INVALID_KEYS } from './conformance/objects.ts';
import { KeyPrefix, blobKey, keyProblem, normalizeStoragePath, prefixProblem, uploadKey } from './keys.ts';

const HEX = '9c3181d2c4a5e3b6f7a8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4f7a';

describe('keys', () => {
  it('lays blobs and uploads out as Quay does', () => {
    expect(blobKey(`sha256:${HEX}`)).toBe(`sha256/9c/${HEX}`);
    expect(uploadKey('0b2f1a6e-8c1d-4e2f-9a3b-5c6d7e8f9a0b')).toBe('uploads/0b2f1a6e-8c1d-4e2f-9a3b-5c6d7e8f9a0b');
    for (const bad of ['sha256:ABC', `sha512:${HEX}`, `sha256:${HEX.toUpperCase()}`, `sha256:${HEX}0`, HEX]) {
      expect(() => blobKey(bad)).toThrow(InvalidKeyError);
    }
    expect(() => uploadKey('../../etc/passwd')).toThrow(InvalidKeyError);
  });

  it('states why a key or prefix is refused', () => {
    for (const [key, why] of INVALID_KEYS) expect(keyProblem(key), why).toBeDefined();
    expect(keyProblem(`sha256/9c/${HEX}`)).toBeUndefined();
    expect(keyProblem('a/.hidden/b..c')).toBeUndefined();
    expect(keyProblem('é'.repeat(512))).toBeUndefined();
    expect(keyProblem('é'.repeat(513))).toBe('longer than 1024 bytes');
    expect(prefixProblem('')).toBeUndefined();
    expect(prefixProblem('sha256/')).toBeUndefined();
    expect(prefixProblem('a/.')).toBeUndefined();
    expect(prefixProblem('a/../b')).toBe('contains a . or .. segment');
    expect(prefixProblem('.quayfleet/')).toBe('.quayfleet/ is reserved for the drivers');
  });

  it('maps keys under a storage path and hides the reserved area', () => {
    expect(normalizeStoragePath('/datastorage/registry/')).toBe('datastorage/registry');
    const keys = new KeyPrefix('/registry');
    expect(keys.toBackend(`sha256/9c/${HEX}`)).toBe(`registry/sha256/9c/${HEX}`);
    expect(keys.fromBackend(`registry/sha256/9c/${HEX}`)).toBe(`sha256/9c/${HEX}`);
    expect(keys.fromBackend('registry-other/x')).toBeUndefined();
    expect(keys.fromBackend('registry/.quayfleet/multipart/x')).toBeUndefined();
    expect(keys.reserved('multipart/1')).toBe('registry/.quayfleet/multipart/1');
    expect(new KeyPrefix(undefined).toBackend('a')).toBe('a');
    expect(new KeyPrefix('/').root).toBe('');
  });
});
