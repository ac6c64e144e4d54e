/**
 * Starts the storage servers the conformance suite needs (RadosGW, Azurite, the GCS emulator) when
 * they are not already running, and stops the ones it started. Filled in by the storage layer.
 */
export async function startStorageServers(): Promise<() => Promise<void>> {
  return async () => undefined;
}
