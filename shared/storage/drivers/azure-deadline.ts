/**
 * The Azure SDK has no client-side deadline of its own (its `tryTimeoutInMs` is only the server's
 * `timeout=` parameter), so a silent endpoint would hold a request for ever. This policy, placed
 * after the retry policy so each try gets its own, aborts a try once `idleMs` pass without upload
 * progress or an answer, and gives a streamed answer's body the longer stream deadline.
 */
import type { IncomingMessage } from 'node:http';
import { idleDeadline, type StorageTimeouts } from '../timeouts.ts';

/** The parts of core-rest-pipeline's request, response and policy this uses. */
interface CoreRequest {
  abortSignal?: AbortSignal;
  onUploadProgress?: (progress: { loadedBytes: number }) => void;
}
interface CoreResponse {
  readableStreamBody?: NodeJS.ReadableStream;
}
interface CorePipeline {
  addPolicy(policy: { name: string; sendRequest(request: CoreRequest, next: (request: CoreRequest) => Promise<CoreResponse>): Promise<CoreResponse> }, options: { afterPhase: 'Retry' }): void;
}

/**
 * Adds the idle deadline to the core pipeline of `client`: a BlobServiceClient (every container and
 * blob client made from it shares its pipeline) or a storage-blob `Pipeline` some client was built
 * with (the batch client's). Neither is a public field of the SDK: a change of shape fails here,
 * at construction, not silently.
 */
export function addIdleDeadline(client: object, timeouts: StorageTimeouts): void {
  const holder = client as { storageClientContext?: { pipeline?: CorePipeline }; _corePipeline?: CorePipeline };
  const pipeline = holder.storageClientContext?.pipeline ?? holder._corePipeline;
  if (typeof pipeline?.addPolicy !== 'function') throw new Error('the Azure SDK changed: no pipeline to add the storage deadline to');
  pipeline.addPolicy({
    name: 'quayfleetIdleDeadline',
    async sendRequest(request, next) {
      const deadline = idleDeadline(timeouts.idleMs, request.abortSignal);
      const progress = request.onUploadProgress;
      request.abortSignal = deadline.signal;
      request.onUploadProgress = (event) => {
        deadline.touch();
        progress?.(event);
      };
      try {
        const response = await next(request);
        const body = response.readableStreamBody as IncomingMessage | undefined;
        if (typeof body?.setTimeout === 'function') {
          body.setTimeout(timeouts.streamIdleMs, () => body.destroy(new Error(`storage stopped sending for ${timeouts.streamIdleMs / 1000} s`)));
        }
        return response;
      } finally {
        deadline.done();
      }
    },
  }, { afterPhase: 'Retry' });
}
