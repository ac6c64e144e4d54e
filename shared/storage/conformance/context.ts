/** What the conformance case groups share. */
import type { ObjectStore } from '../types.ts';

/** A driver under test: how to build it and what its test server can and cannot do. */
export interface ConformanceTarget {
  /** Builds a new store instance; the resume test builds a second one, as another process would. */
  create(): ObjectStore | Promise<ObjectStore>;
  /**
   * Whether the server rejects a signed URL whose signature was tampered with. False only for test
   * servers that do not check signatures (the GCS emulator); the suite then asserts the gap is
   * still there, so the flag is revisited when the server learns to verify.
   */
  readonly verifiesSignatures?: boolean;
  /**
   * Builds a store of another location of the same provider and account (another storage_path),
   * the source of the `copyFrom` cases. Required when the driver implements `copyFrom`.
   */
  createPeer?(): ObjectStore | Promise<ObjectStore>;
  /**
   * Whether `copyFrom` that peer copies inside the backend (default true). False where the
   * credentials cannot authorise it (an Azure SAS token): the suite then asserts it declines.
   */
  readonly copiesFromPeer?: boolean;
  /**
   * Whether the server refuses a write whose body does not hash to `contentMd5` before storing it
   * (default true). False only for test servers that store it anyway (the GCS emulator ignores
   * md5Hash): the driver must still reject the put, and the suite asserts the gap is still there.
   */
  readonly checksMd5BeforeStoring?: boolean;
}

/** Handles the case groups use; `store()` and `prefix()` are only valid inside a test. */
export interface SuiteContext {
  readonly target: ConformanceTarget;
  store(): ObjectStore;
  /** This test's random prefix (ends with `/`); every key a test writes starts with it. */
  prefix(): string;
}
