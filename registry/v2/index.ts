/** The OCI distribution API under /v2. Implemented by the v2 module. */
import type { FastifyInstance } from 'fastify';

export async function registerV2Routes(_app: FastifyInstance): Promise<void> {}
