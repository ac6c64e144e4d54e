import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ALL_QUEUE_NAMES, contractFor, defineQueue, garbagecollection, InvalidPayloadError, jobOptions, KEEP_COMPLETED,
  notification, QUEUES, repositorygc, RESERVED_QUEUE_NAMES, secscanv4,
} from './index.ts';

describe('queue table', () => {
  it("spells Quay's queue names, each keyed by its own name", () => {
    for (const [key, contract] of Object.entries(QUEUES)) expect(contract.name).toBe(key);
    for (const quayName of ['exportactionlogs', 'namespacegc', 'notification', 'repositorygc', 'secscanv4',
      'dockerfilebuild', 'imagestoragereplication', 'chunk_cleanup']) {
      expect(ALL_QUEUE_NAMES).toContain(quayName);
    }
    expect(RESERVED_QUEUE_NAMES).toEqual(['dockerfilebuild']);
    expect(contractFor('dockerfilebuild')).toBeUndefined();
    expect(contractFor('toString')).toBeUndefined();
    expect(contractFor('repositorygc')).toBe(repositorygc);
  });

  it("uses Quay's attempts and retry_after as the exponential backoff base", () => {
    expect(QUEUES.exportactionlogs.jobOptions.attempts).toBe(3);
    expect(QUEUES.notification.jobOptions.backoff.delay).toBe(30_000);
    for (const contract of Object.values(QUEUES)) {
      expect(contract.jobOptions.backoff.type).toBe('exponential');
      expect(contract.jobOptions.removeOnFail).toMatchObject({ age: expect.any(Number), count: expect.any(Number) });
      if (contract.name !== 'exportactionlogs') expect(contract.jobOptions.attempts).toBe(5);
      if (contract.name !== 'notification') expect(contract.jobOptions.backoff.delay).toBe(300_000);
    }
  });
});

describe('payloads and dedupe ids', () => {
  it('computes the documented dedupe ids', () => {
    expect(repositorygc.dedupeId(repositorygc.parse({ v: 1, repositoryId: 42, markerId: 7, originalName: 'app', namespace: 'acme' })))
      .toBe('repositorygc/42');
    expect(secscanv4.dedupeId({ v: 1, notificationId: '6f1c1b9e-3b7a-4d8e-9c2a-1f2e3d4c5b6a' }))
      .toBe('secscanv4/with_id/6f1c1b9e-3b7a-4d8e-9c2a-1f2e3d4c5b6a');
    expect(QUEUES.imagestoragereplication.dedupeId({ v: 1, storageId: 3, namespaceId: 9, digest: `sha256:${'a'.repeat(64)}` }))
      .toBe('imagestoragereplication/3');
    expect(QUEUES.quotaregistrysize.dedupeId({ v: 1 })).toBe('quotaregistrysize');
  });

  it('gives garbage collection jobs due at different seconds different ids', () => {
    const soon = garbagecollection.parse({ v: 1, reason: 'tag_expired', repositoryId: 5, dueAtS: 1_000 });
    const later = garbagecollection.parse({ v: 1, reason: 'tag_expired', repositoryId: 5, dueAtS: 2_000 });
    expect(garbagecollection.dedupeId(soon)).not.toBe(garbagecollection.dedupeId(later));
    expect(garbagecollection.dedupeId(garbagecollection.parse({ v: 1, reason: 'sweep', dueAtS: 0 }))).toBe('garbagecollection/all/0');
    expect(() => garbagecollection.parse({ v: 1, reason: 'manual', dueAtS: 0 })).toThrow(/only the sweep/);
  });

  it('rejects a wrong version, a missing field and a wrong type, naming the queue', () => {
    const good = { v: 1, repositoryId: 42, markerId: 7, originalName: 'app', namespace: 'acme' };
    expect(() => repositorygc.parse({ ...good, v: 2 })).toThrow(InvalidPayloadError);
    expect(() => repositorygc.parse({ ...good, markerId: undefined })).toThrow(/repositorygc.*markerId/);
    expect(() => repositorygc.parse({ ...good, repositoryId: '42' })).toThrow(/repositoryId/);
    expect(() => notification.parse({ v: 1 })).toThrow(InvalidPayloadError);
  });

  it('refuses dedupe ids BullMQ would refuse', () => {
    const loose = defineQueue({
      name: 'loose', version: 1, payload: z.object({ v: z.literal(1), id: z.string() }),
      jobOptions: jobOptions({ removeOnComplete: KEEP_COMPLETED }), dedupeId: (p) => p.id,
    });
    expect(() => loose.dedupeId({ v: 1, id: 'a:b' })).toThrow(/not a valid job id/);
    expect(() => loose.dedupeId({ v: 1, id: '123' })).toThrow(/not a valid job id/);
    expect(loose.dedupeId({ v: 1, id: 'loose/123' })).toBe('loose/123');
  });
});
