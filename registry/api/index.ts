/** The Quay API subset under /api/v1. Implemented by the api module. */
import type { FastifyInstance } from 'fastify';

export async function registerApiRoutes(_app: FastifyInstance): Promise<void> {}
