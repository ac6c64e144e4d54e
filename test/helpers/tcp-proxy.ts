/**
 * A TCP proxy in front of a real test server, so a test can take a storage location down and
 * bring it back (`stop`/`start` on the same port), or slow its uploads (`throttle`) to hold a copy
 * in flight. The server behind it is real; only the network path is controlled.
 */
import net from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Bytes clients sent through so far. */
  readonly bytesUp: number;
  /** Refuses new connections and cuts the open ones. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Caps client-to-server bytes per second (undefined: no cap). */
  throttle(bytesPerSecond: number | undefined): void;
}

/** Starts a proxy to `target` on a free loopback port. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let bytesUp = 0;
  let rate: number | undefined;
  const server = (): net.Server => net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const forget = (): void => { sockets.delete(client); sockets.delete(upstream); client.destroy(); upstream.destroy(); };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      if (!upstream.write(chunk)) client.pause();
      if (rate !== undefined) {
        client.pause();
        setTimeout(() => client.resume(), Math.ceil((chunk.length / rate) * 1000));
      }
    });
    upstream.on('drain', () => client.resume());
  });
  let listening = server();
  let port = 0;
  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    listening.once('error', reject);
    listening.listen(port, '127.0.0.1', () => {
      port = (listening.address() as net.AddressInfo).port;
      resolve();
    });
  });
  await listen();
  return {
    get port() { return port; },
    get bytesUp() { return bytesUp; },
    async stop() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => listening.close(() => resolve()));
    },
    async start() {
      listening = server();
      await listen();
    },
    throttle(bytesPerSecond) { rate = bytesPerSecond; },
  };
}
