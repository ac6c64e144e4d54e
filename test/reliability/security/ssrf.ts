/**
 * SSRF guards on every outbound URL a user can set, at both places they must hold:
 * - configuration (the API answers 400): webhook and Slack notification URLs (repository,
 *   organization and user notifications), log export callbacks, mirror external_reference and
 *   mirror proxies, with loopback, link-local (cloud metadata), private, unique-local, CGNAT,
 *   multicast and unspecified addresses in every spelling (IPv4-mapped, decimal, hex, short), DNS
 *   names resolving to loopback (/etc/hosts), other schemes, and embedded credentials;
 * - delivery (the worker's connection): a DNS name that resolves to loopback, a redirect to a
 *   refused address, and a proxy on a refused address never reach the listener behind them.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseExternalReference } from '../../../shared/net/registry-reference.ts';
import type { SsrfPolicy } from '../../../shared/net/ssrf.ts';
import { postCallback } from '../../../workers/exportactionlogsworker/report.ts';
import { postJson } from '../../../workers/notificationworker/post-json.ts';
import { Transport } from '../../../workers/repomirrorworker/transport.ts';
import { UpstreamRepository } from '../../../workers/repomirrorworker/upstream.ts';
import type { SecurityFixture } from './fixture.ts';

/** Host parts a user might aim at the inside (every one must be refused). */
const BAD_HOSTS = [
  '127.0.0.1', 'localhost', '[::1]', '169.254.169.254', '[fe80::1]', '10.1.2.3', '172.16.0.1', '192.168.0.1', '0.0.0.0',
  '[::ffff:127.0.0.1]', '[::ffff:169.254.169.254]', '2130706433', '0x7f000001', '127.1', '100.64.0.1', '[fd00::1]', '224.0.0.1',
  '[::]', 'sub.localhost',
];
/** Names that resolve to loopback here (/etc/hosts), found at configuration time by resolving. */
const LOOPBACK_NAMES = ['vm', 'runsc'];

function badUrls(): string[] {
  return [
    ...BAD_HOSTS.map((h) => `http://${h}/hook`), ...BAD_HOSTS.slice(0, 4).map((h) => `https://${h}:8443/x`),
    ...LOOPBACK_NAMES.map((h) => `http://${h}:9000/hook`),
    'file:///etc/passwd', 'gopher://127.0.0.1:6379/_INFO', 'ftp://hooks.example/x', 'http://user:pw@hooks.example/x', 'javascript:alert(1)', 'not a url',
  ];
}

/** What the SSRF checks found. */
export interface SsrfResult {
  short: boolean;
  turn: number;
  /** (sink, URL) pairs tried at configuration time. */
  configChecked: number;
  /** Delivery-time attempts (worker connections). */
  deliveryChecked: number;
  failures: string[];
}

async function expect400(fx: SecurityFixture, result: SsrfResult, sink: string, method: 'POST' | 'PUT', url: string, body: unknown): Promise<void> {
  // The short form sends every third (sink, URL) pair, rotating, so each URL and each sink is tried.
  if (result.short && ++result.turn % 3 !== 0) return;
  const response = await fx.t.app.inject({
    method, url: `/api/v1${url}`, headers: { authorization: fx.apiAuth('orgAdmin')!, 'content-type': 'application/json' }, payload: JSON.stringify(body),
  });
  result.configChecked++;
  if (response.statusCode !== 400) result.failures.push(`${sink}: ${JSON.stringify(body).slice(0, 160)} answered ${response.statusCode}, not 400: ${response.body.slice(0, 160)}`);
}

/** Every configuration sink, every bad URL. */
async function checkConfiguration(fx: SecurityFixture, result: SsrfResult): Promise<void> {
  const mirrorBase = {
    sync_interval: 3600, sync_start_date: '2026-01-01T00:00:00Z', robot_username: 'acme+bot', root_rule: { rule_kind: 'tag_glob_csv', rule_value: ['*'] },
  };
  await fx.t.createRepository('acme/ssrfmirror');
  for (const url of badUrls()) {
    const hook = (event: string, method = 'webhook') => ({ event, method, config: { url }, eventConfig: {}, title: 'ssrf' });
    await expect400(fx, result, 'repository webhook', 'POST', '/repository/acme/app/notification/', hook('repo_push'));
    await expect400(fx, result, 'repository slack', 'POST', '/repository/acme/app/notification/', hook('repo_push', 'slack'));
    await expect400(fx, result, 'organization webhook', 'POST', '/organization/acme/notifications', hook('quota_warning'));
    await expect400(fx, result, 'user webhook', 'POST', '/user/namespacenotifications', hook('quota_warning'));
    await expect400(fx, result, 'repository log export', 'POST', '/repository/acme/app/exportlogs', { callback_url: url });
    await expect400(fx, result, 'organization log export', 'POST', '/organization/acme/exportlogs', { callback_url: url });
    await expect400(fx, result, 'user log export', 'POST', '/user/exportlogs', { callback_url: url });
  }
  for (const host of BAD_HOSTS.filter((h) => !h.startsWith('sub.'))) {
    for (const reference of [`${host}/library/x`, `${host}:5000/library/x`]) {
      await expect400(fx, result, 'mirror external_reference (create)', 'POST', '/repository/acme/ssrfmirror/mirror', { ...mirrorBase, external_reference: reference });
      await expect400(fx, result, 'mirror external_reference (change)', 'PUT', '/repository/acme/mirrored/mirror', { external_reference: reference });
    }
    for (const key of ['http_proxy', 'https_proxy']) {
      for (const proxy of [`http://${host}:3128`, `http://user:secret@${host}:3128`, `${host}:3128`]) {
        const config = { proxy: { [key]: proxy } };
        await expect400(fx, result, `mirror ${key} (change)`, 'PUT', '/repository/acme/mirrored/mirror', { external_registry_config: config });
        await expect400(fx, result, `mirror ${key} (create)`, 'POST', '/repository/acme/ssrfmirror/mirror', { ...mirrorBase, external_reference: 'upstream.example/library/x', external_registry_config: config });
      }
    }
  }
}

/** A listener counting the requests (and CONNECTs) it gets; `handler` answers them. */
async function listener(host: string, handler: (request: http.IncomingMessage, response: http.ServerResponse) => void = (_q, r) => r.end('ok')) {
  let hits = 0;
  const server = http.createServer((request, response) => {
    hits++;
    handler(request, response);
  });
  server.on('connect', (_request, socket) => {
    hits++;
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get hits() { return hits; },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      // A leaked request or tunnel may hold its socket open; close would wait for it forever.
      for (const socket of sockets) socket.destroy();
    }),
  };
}

async function refused(result: SsrfResult, what: string, attempt: () => Promise<unknown>, hitsBefore: () => number): Promise<void> {
  result.deliveryChecked++;
  // A connection the guard let through may hang (the inside does not speak the protocol): bounded.
  const bounded = Promise.race([attempt(), sleep(5000).then(() => { throw new Error('no answer in 5 s'); })]);
  const outcome = await bounded.then((response) => {
    (response as { resume?: () => void } | undefined)?.resume?.();
    return 'delivered';
  }, (error: unknown) => `refused: ${String(error).slice(0, 120)}`);
  if (hitsBefore() > 0) result.failures.push(`${what}: the refused listener was reached (${outcome})`);
}

/** Worker connections: names resolving to loopback, redirects and proxies to refused addresses. */
async function checkDelivery(result: SsrfResult): Promise<void> {
  const strict: SsrfPolicy = { allowedHosts: [], blockedHostnames: [] };
  // The inside: a listener on 127.0.0.1 (where `vm` and `runsc` resolve) that no policy here admits.
  const inside = await listener('127.0.0.1');
  // An allowed front (127.0.0.2 is allow-listed) that redirects to the inside.
  const front = await listener('127.0.0.2', (_q, r) => { r.writeHead(302, { location: `http://127.0.0.1:${inside.port}/stolen` }); r.end(); });
  const frontOnly: SsrfPolicy = { allowedHosts: ['127.0.0.2'], blockedHostnames: [] };
  const insideHits = () => inside.hits;
  try {
    for (const name of LOOPBACK_NAMES) {
      const url = `http://${name}:${inside.port}/hook`;
      await refused(result, `notification webhook to ${name}`, () => postJson(url, { x: 1 }, { policy: strict, timeoutMs: 2000 }), insideHits);
      await refused(result, `log export callback to ${name}`, () => postCallback(url, {} as never, strict, 2000), insideHits);
      const transport = new Transport({ verifyTls: false, idleTimeoutMs: 2000, ssrf: strict });
      await refused(result, `mirror upstream ${name}`, () => transport.send(new URL(`http://${name}:${inside.port}/v2/`), { method: 'GET', headers: {} }), insideHits);
      transport.close();
    }

    const redirecting = `http://127.0.0.2:${front.port}/hook`;
    await refused(result, 'notification webhook redirected inside', () => postJson(redirecting, { x: 1 }, { policy: frontOnly, timeoutMs: 2000 }), insideHits);
    await refused(result, 'log export callback redirected inside', () => postCallback(redirecting, {} as never, frontOnly, 2000), insideHits);
    const upstream = new UpstreamRepository({
      reference: parseExternalReference(`127.0.0.2:${front.port}/library/app`), verifyTls: false, idleTimeoutMs: 2000, ssrf: frontOnly, maxRetries: 0,
    });
    await refused(result, 'mirror blob redirected inside', () => upstream.openBlob(`sha256:${'0'.repeat(64)}`), insideHits);
    upstream.close();

    // A proxy on a refused address: the worker must not connect to it, for http and https targets.
    for (const [key, target] of [['http_proxy', 'http://upstream.example/v2/'], ['https_proxy', 'https://upstream.example/v2/']] as const) {
      const transport = new Transport({ verifyTls: false, idleTimeoutMs: 2000, ssrf: { allowedHosts: ['upstream.example'], blockedHostnames: [] }, proxy: { [key]: `http://127.0.0.1:${inside.port}` } });
      await refused(result, `mirror ${key} on a loopback address`, () => transport.send(new URL(target), { method: 'GET', headers: {} }), insideHits);
      transport.close();
      const byName = new Transport({ verifyTls: false, idleTimeoutMs: 2000, ssrf: { allowedHosts: ['upstream.example'], blockedHostnames: [] }, proxy: { [key]: `http://vm:${inside.port}` } });
      await refused(result, `mirror ${key} named to loopback`, () => byName.send(new URL(target), { method: 'GET', headers: {} }), insideHits);
      byName.close();
    }
  } finally {
    await Promise.all([inside.close(), front.close()]);
  }
}

/** Runs the SSRF checks against the fixture's front end and the workers' outbound code. */
export async function checkSsrf(fx: SecurityFixture, options: { short: boolean }): Promise<SsrfResult> {
  const result: SsrfResult = { short: options.short, turn: 0, configChecked: 0, deliveryChecked: 0, failures: [] };
  await checkConfiguration(fx, result);
  await checkDelivery(result);
  return result;
}
