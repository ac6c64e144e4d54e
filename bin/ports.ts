/**
 * The listening ports of a process, checked before anything starts: a second `npm start` (or a
 * worker next to it) on a busy port says which port, which variable moves it, and exits 2,
 * instead of dying with an EADDRINUSE stack after it has started half of itself.
 */
import net from 'node:net';

/** A port this process listens on and the environment variable that chooses it. */
export interface ListenPort {
  readonly port: number;
  readonly variable: string;
  /** Bind address, as the real server binds it (undefined: every address, as node:http does). */
  readonly host?: string;
}

/** A port another process holds. */
export class PortInUseError extends Error {
  constructor(readonly listen: ListenPort, options?: ErrorOptions) {
    super(`port ${listen.port} is already in use (another quayfleet, or another server, listens there); `
      + `set ${listen.variable} to a free port, e.g. ${listen.variable}=${listen.port + 1}`, options);
    this.name = 'PortInUseError';
  }
}

/** Rejects with PortInUseError when `listen.port` cannot be bound now; port 0 always can. */
export async function assertPortFree(listen: ListenPort): Promise<void> {
  if (listen.port === 0) return;
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUseError(listen, { cause: error }) : error));
    server.listen({ port: listen.port, host: listen.host, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** Turns an EADDRINUSE from a real `listen` (a port taken between the check and the bind) into PortInUseError. */
export function portInUse(listen: ListenPort): (error: unknown) => never {
  return (error: unknown) => {
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE') throw new PortInUseError(listen, { cause: error });
    throw error;
  };
}
