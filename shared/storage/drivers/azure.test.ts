import {
  AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, StorageSharedKeyCredential, generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import { describeObjectStore } from '../conformance.ts';
import { AZURITE } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore, loadStorageDrivers } from './index.ts';

// The cloud drivers load on demand (drivers/index.ts); this file uses them directly.
await loadStorageDrivers();

const azure = (storagePath: string) => createObjectStore('AzureStorage', {
  azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, endpoint_url: AZURITE.endpoint,
  storage_path: storagePath, list_page_size: 10,
}, { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: AZURITE.accountKey });
describeObjectStore('AzureStorage on Azurite', { create: () => azure('/registry'), createPeer: () => azure('/peer') });

/** An account SAS for the blob service, as an operator might configure instead of the key. */
function accountSas(): string {
  const credential = new StorageSharedKeyCredential(AZURITE.accountName, AZURITE.accountKey);
  return generateAccountSASQueryParameters({
    services: AccountSASServices.parse('b').toString(),
    resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
    permissions: AccountSASPermissions.parse('rwdlac'),
    expiresOn: new Date(Date.now() + 3_600_000),
  }, credential).toString();
}

// With only a SAS token: no signed URLs (the configured token is never handed out), and batch
// deletes fall back to single deletes if the server refuses them for this credential.
describeObjectStore('AzureStorage with a SAS token on Azurite', {
  create: () => createObjectStore('AzureStorage', {
    azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, endpoint_url: AZURITE.endpoint,
    sas_token: `?${accountSas()}`, storage_path: 'registry-sas', list_page_size: 10,
  }, {}),
  // Copy Blob from URL is authorised here by the shared key only: with a SAS token copyFrom declines.
  createPeer: () => azure('/peer-sas'),
  copiesFromPeer: false,
});
