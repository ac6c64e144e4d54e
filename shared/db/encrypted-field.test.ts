import { describe, expect, it } from 'vitest';
import { convertSecretKey, DecryptionFailureError, FieldEncrypter } from './encrypted-field.ts';

// Produced by Quay's own convert_secret_key and _encrypt_ccm (Python `cryptography` AESCCM) with
// the nonce 00 01 .. 0c and the plaintext "mirror-user:pässword".
const VECTORS = [
  ['6b8f1b47-7e2c-4c3e-9a2f-1d2c3b4a5f60', '6b8f1b477e2c4c3e9a2f1d2c3b4a5f606b8f1b477e2c4c3e9a2f1d2c3b4a5f60', 'v0$$AAECAwQFBgcICQoLDG4fttvFW8Z053/3Q0xTAkty61ve+xpSDhQK6i1vJjceMcxOtOU='],
  ['1234567890', '499602d2499602d2499602d2499602d2499602d2499602d2499602d2499602d2', 'v0$$AAECAwQFBgcICQoLDBcydBCyrAvGgHHcsM381OcrhaBbytMrATeqfZMArlKUWjBtNPk='],
  ['a-plain-secret', '612d706c61696e2d736563726574612d706c61696e2d736563726574612d706c', 'v0$$AAECAwQFBgcICQoLDOFdGrrCyOORfThWlqIrjkZKIEl6vN8YMyXuhYSK6s4b86g15jE='],
  // 256 is 0x100: odd-length hex, which Quay's fromhex refuses, so the characters are the key.
  ['256', '3235363235363235363235363235363235363235363235363235363235363235', 'v0$$AAECAwQFBgcICQoLDDfJFI/sQUn+BSFD68cmy8WnWtnFDpEod1UXRNt4Ut6U45mZK0A='],
] as const;
const NONCE = Buffer.from([...Array(13).keys()]);

describe('Quay encrypted fields', () => {
  it.each(VECTORS)('derives the key of %s as Quay does and matches its ciphertext', (secret, keyHex, stored) => {
    expect(convertSecretKey(secret).toString('hex')).toBe(keyHex);
    const encrypter = new FieldEncrypter(secret);
    expect(encrypter.encrypt('mirror-user:pässword', NONCE)).toBe(stored);
    expect(encrypter.decrypt(stored)).toBe('mirror-user:pässword');
  });

  it('round-trips long credentials with a random nonce (1024 characters, as Quay tests)', () => {
    const encrypter = new FieldEncrypter('secret');
    const long = 'x'.repeat(1024);
    const a = encrypter.encrypt(long);
    expect(a).not.toBe(encrypter.encrypt(long));
    expect(encrypter.decrypt(a)).toBe(long);
  });

  it('refuses another key, an unknown version and damaged values', () => {
    const stored = new FieldEncrypter('one').encrypt('value');
    expect(() => new FieldEncrypter('two').decrypt(stored)).toThrow(DecryptionFailureError);
    expect(() => new FieldEncrypter('one').decrypt(`v1$$${stored.slice(4)}`)).toThrow(DecryptionFailureError);
    expect(() => new FieldEncrypter('one').decrypt('v0$$AAAA')).toThrow(DecryptionFailureError);
    expect(() => new FieldEncrypter('one').decrypt(stored.slice(0, -4) + 'AAAA')).toThrow(DecryptionFailureError);
  });
});
