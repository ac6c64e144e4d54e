/** Conformance cases for signed read URLs, fetched with plain `fetch` as a client would. */
import { expect, it } from 'vitest';
import { UnsupportedError } from '../errors.ts';
import type { SuiteContext } from './context.ts';

// The query parameter holding the signature, per backend family.
const SIGNATURE_PARAMS = ['X-Amz-Signature', 'X-Goog-Signature', 'sig', 'temp_url_sig'];

/** `url` with the last character of its signature changed. */
function tamper(url: string): string {
  const parsed = new URL(url);
  const param = SIGNATURE_PARAMS.find((p) => parsed.searchParams.has(p));
  if (!param) throw new Error(`no signature parameter in the signed URL (${SIGNATURE_PARAMS.join(', ')})`);
  const signature = parsed.searchParams.get(param) as string;
  const last = signature.at(-1) === 'A' ? 'B' : 'A';
  parsed.searchParams.set(param, `${signature.slice(0, -1)}${last}`);
  return parsed.toString();
}

export function signedUrlCases(ctx: SuiteContext): void {
  const key = (name: string): string => `${ctx.prefix()}${name}`;

  it('serves signed read URLs to a plain HTTP client, including ranges', async () => {
    const store = ctx.store();
    if (!store.capabilities.signedUrls) {
      await expect(store.signedReadUrl(key('x'), 60)).rejects.toBeInstanceOf(UnsupportedError);
      return;
    }
    const body = Buffer.from('signed content, fetched without credentials');
    await store.put(key('signed/obj ü+'), body);
    const url = await store.signedReadUrl(key('signed/obj ü+'), 300);
    const full = await fetch(url);
    expect(full.status).toBe(200);
    expect(Buffer.from(await full.arrayBuffer())).toEqual(body);
    const ranged = await fetch(url, { headers: { Range: 'bytes=7-13' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).toString()).toBe('content');
    await store.delete(key('signed/obj ü+'));
  });

  const verifies = ctx.target.verifiesSignatures !== false;
  it(verifies
    ? 'refuses a signed URL whose signature was tampered with'
    : 'documented gap: this test server serves a tampered signed URL (it does not verify signatures)', async () => {
    const store = ctx.store();
    if (!store.capabilities.signedUrls) {
      await expect(store.signedReadUrl(key('signed/tampered'), 60)).rejects.toBeInstanceOf(UnsupportedError);
      return;
    }
    await store.put(key('signed/tampered'), Buffer.from('secret'));
    const response = await fetch(tamper(await store.signedReadUrl(key('signed/tampered'), 300)));
    await response.arrayBuffer();
    // Swift's tempurl middleware answers 401, the others 403: both refuse.
    if (verifies) expect([401, 403]).toContain(response.status);
    else expect(response.status).toBe(200);
    await store.delete(key('signed/tampered'));
  });
}
