import { describeObjectStore } from '../conformance.ts';
import { AZURITE } from '../../../test/servers/storage-endpoints.ts';
import { createObjectStore } from './index.ts';

describeObjectStore('AzureStorage on Azurite', {
  create: () => createObjectStore('AzureStorage', {
    azure_container: AZURITE.container, azure_account_name: AZURITE.accountName, endpoint_url: AZURITE.endpoint,
    storage_path: '/registry', list_page_size: 10,
  }, { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: AZURITE.accountKey }),
});
