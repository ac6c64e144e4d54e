/**
 * The registry benchmark's clients, the same for both servers: skopeo for image push and pull (from
 * and to an OCI layout), and a keep-alive HTTP client for many small manifest GETs at a fixed
 * concurrency, recording each request's latency.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { promisify } from 'node:util';
import type { BenchServer } from './servers.ts';

const run = promisify(execFile);

/** Runs skopeo copy between `from` and `to` against `server`; returns the seconds it took. */
export async function skopeoCopy(server: BenchServer, from: string, to: string): Promise<number> {
  const creds = server.credentials ? `${server.credentials.username}:${server.credentials.password}` : undefined;
  const args = ['--insecure-policy', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false'];
  if (creds && from.startsWith('docker://')) args.push('--src-creds', creds);
  if (creds && to.startsWith('docker://')) args.push('--dest-creds', creds);
  const started = process.hrtime.bigint();
  await run('skopeo', [...args, from, to], { maxBuffer: 16 * 1024 * 1024 }).catch((error: { stderr?: string }) => {
    throw new Error(`skopeo copy ${from} ${to} failed: ${error.stderr ?? String(error)}`);
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** A pull token for `repository` when the server needs one (Docker token auth). */
export async function pullToken(server: BenchServer, repository: string): Promise<string | undefined> {
  if (!server.credentials) return undefined;
  const { username, password } = server.credentials;
  const response = await fetch(`${server.base}/v2/auth?service=${new URL(server.base).host}&scope=repository:${repository}:pull`, {
    headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
  });
  return ((await response.json()) as { token: string }).token;
}

/** A load run: each request's latency in ms, and the wall time of the run in seconds. */
export interface LoadRun {
  readonly latenciesMs: number[];
  readonly seconds: number;
}

/** GETs `path` `total` times over `concurrency` keep-alive connections; every answer must be 200. */
export async function getMany(base: string, path: string, headers: Record<string, string>, total: number, concurrency: number): Promise<LoadRun> {
  const url = new URL(path, base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      issued++;
      const started = process.hrtime.bigint();
      await getOnce(url, headers, agent);
      latenciesMs.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return { latenciesMs, seconds };
}

function getOnce(url: URL, headers: Record<string, string>, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent, headers }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`GET ${url} answered ${response.statusCode}`))));
    });
    request.on('error', reject);
  });
}
