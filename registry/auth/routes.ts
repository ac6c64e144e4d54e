/** Token auth routes (/v2/auth). Implemented by the auth module. */
import type { FastifyInstance } from 'fastify';

export async function registerAuthRoutes(_app: FastifyInstance): Promise<void> {}
