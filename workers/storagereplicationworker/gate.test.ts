import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/index.ts';
import { replicationWorkerGate } from './index.ts';

const object = ['RadosGWStorage', { hostname: 'rgw', bucket_name: 'b' }];
const local = ['LocalStorage', { storage_path: '/datastorage' }];

function gate(raw: Record<string, unknown>) {
  return replicationWorkerGate(parseConfig({ DISTRIBUTED_STORAGE_PREFERENCE: ['us'], ...raw }));
}

describe('storagereplicationworker gate', () => {
  it('is off with FEATURE_STORAGE_REPLICATION false, and says so', () => {
    expect(gate({ DISTRIBUTED_STORAGE_CONFIG: { us: object, eu: object } })).toEqual({ enabled: false, reason: expect.stringContaining('FEATURE_STORAGE_REPLICATION is false') });
  });

  it('refuses a LocalStorage location, naming it and why', () => {
    const decision = gate({ FEATURE_STORAGE_REPLICATION: true, DISTRIBUTED_STORAGE_CONFIG: { us: object, eu: local } });
    expect(decision.enabled).toBe(false);
    expect(decision.reason).toContain('LocalStorage location(s) eu');
    expect(decision.reason).toContain("a pod's local disk is not shared");
    expect(decision.reason).toContain('STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE');
  });

  it('runs with object storage only, or with LocalStorage when the operator opts in', () => {
    expect(gate({ FEATURE_STORAGE_REPLICATION: true, DISTRIBUTED_STORAGE_CONFIG: { us: object, eu: object } }).enabled).toBe(true);
    expect(gate({ FEATURE_STORAGE_REPLICATION: true, STORAGE_REPLICATION_ALLOW_LOCAL_STORAGE: true, DISTRIBUTED_STORAGE_CONFIG: { us: local, eu: local } }).enabled).toBe(true);
  });
});
