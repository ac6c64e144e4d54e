/**
 * AzureStorage's parameters, apart from the driver so that validating a configuration never loads
 * the Azure SDK (drivers/index.ts loads a driver only when a location uses it).
 */
import { z } from 'zod';

/** Quay's AzureStorage parameters; the key may instead come from `REGISTRY_STORAGE_AZURE_ACCOUNTKEY`. */
export const azureParamsSchema = z.object({
  azure_container: z.string().min(1),
  azure_account_name: z.string().min(1),
  azure_account_key: z.string().min(1).optional(),
  /** A SAS token (with or without the leading `?`) instead of the account key; no signed URLs then. */
  sas_token: z.string().min(1).optional(),
  /** Blob service URL, default `https://<account>.blob.core.windows.net`. */
  endpoint_url: z.url().optional(),
  storage_path: z.string().optional(),
  /** Create the container when it does not exist (OpenShift's `managementState: Managed`). */
  create_container: z.boolean().optional(),
  /** Blobs per listing request (Azure's maximum by default). */
  list_page_size: z.number().int().min(1).max(5000).optional(),
});
export type AzureParams = z.infer<typeof azureParamsSchema>;
