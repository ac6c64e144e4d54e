/**
 * Every route the front end serves, read from the Fastify app itself (its printed route tree), so
 * a route added tomorrow shows up in the authorization matrix and the fuzz without anyone listing it.
 */
import type { FastifyInstance } from 'fastify';

/** One method of one route pattern, as Fastify knows it (`/api/v1/repository/:namespace/:repository`). */
export interface RouteEntry {
  readonly method: string;
  readonly url: string;
}

// A line of printRoutes: tree drawing, then a path segment, then the methods in parentheses.
const LINE = /^([│├└─\s]*)(\S.*?) \(([A-Z, ]+)\)$/;

/** The app's routes (HEAD is left out where GET exists: Fastify adds it), sorted. */
export function listRoutes(app: FastifyInstance): RouteEntry[] {
  const tree = app.printRoutes({ commonPrefix: false, includeMeta: false });
  const stack: string[] = [];
  const routes: RouteEntry[] = [];
  for (const line of tree.split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const depth = [...match[1]!].length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const url = stack.join('');
    const methods = match[3]!.split(',').map((m) => m.trim());
    for (const method of methods) {
      if (method === 'HEAD' && methods.includes('GET')) continue;
      routes.push({ method, url });
    }
  }
  return routes.sort((a, b) => `${a.url} ${a.method}`.localeCompare(`${b.url} ${b.method}`));
}

/** `METHOD url` of a route, the matrix's key. */
export function routeKey(route: RouteEntry): string {
  return `${route.method} ${route.url}`;
}

/** The route pattern with its parameters filled from `values` (a missing one stays as `:name`). */
export function fillRoute(url: string, values: Record<string, string>): string {
  return url.replace(/:([A-Za-z_]+)/g, (whole, name: string) => (values[name] === undefined ? whole : encodeURIComponent(values[name]!)));
}
