/**
 * The package as a fresh clone installs it: the Node version package.json's `engines` names (and
 * the README states) satisfies every locked package's own `engines` (npm's EBADENGINE warnings),
 * this Node is that version or later, and every package with an install script is decided on in
 * `allowScripts` (run or not), never left to npm's default.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string }; allowScripts: Record<string, boolean>;
};
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[]; hasInstallScript?: boolean; optional?: boolean; os?: string[]; cpu?: string[] }>;
};

type Version = [number, number, number];

/** `20.19` -> [20, 19, 0] and how many parts were given. */
function parseVersion(text: string): { version: Version; parts: number } {
  const parts = text.replace(/^v/, '').split('.').filter((p) => p !== '' && p !== 'x' && p !== '*').map(Number);
  if (parts.some((p) => !Number.isInteger(p))) throw new Error(`not a version: ${text}`);
  return { version: [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0], parts: parts.length };
}

const compare = (a: Version, b: Version): number => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

/** Whether `version` satisfies one comparator of a node-semver range (the forms engines use). */
function satisfiesComparator(version: Version, comparator: string): boolean {
  if (comparator === '*' || comparator === 'x' || comparator === '') return true;
  const match = /^(>=|<=|>|<|=|\^|~)?(.+)$/.exec(comparator)!;
  const op = match[1] ?? '';
  const { version: bound, parts } = parseVersion(match[2]!);
  const c = compare(version, bound);
  switch (op) {
    case '>=': return c >= 0;
    case '>': return c > 0;
    case '<=': return c <= 0;
    case '<': return c < 0;
    case '^': return c >= 0 && (bound[0] > 0 ? version[0] === bound[0] : version[1] === bound[1]);
    case '~': return c >= 0 && version[0] === bound[0] && (parts < 2 || version[1] === bound[1]);
    default: // a bare (possibly partial) version: "20" is 20.x.x
      return c >= 0 && version[0] === bound[0] && (parts < 2 || version[1] === bound[1]) && (parts < 3 || version[2] === bound[2]);
  }
}

/** node-semver's `satisfies` for the ranges found in `engines.node`: `||` of space-separated comparators. */
function satisfies(version: Version, range: string): boolean {
  return range.split('||').some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/);
    return comparators.every((comparator) => satisfiesComparator(version, comparator));
  });
}

/** The lowest Node a `>=X` engines range admits. */
const minimumNode = parseVersion(/^>=\s*(\S+)$/.exec(pkg.engines.node)?.[1] ?? '999').version;

describe('package', () => {
  it('satisfies its own range check on the forms engines use', () => {
    expect(satisfies([20, 19, 0], '^20.19.0 || ^22.13.0 || >=24')).toBe(true);
    expect(satisfies([20, 11, 0], '^20.19.0 || ^22.13.0 || >=24')).toBe(false);
    expect(satisfies([20, 19, 0], '18 || 20 || >=22')).toBe(true);
    expect(satisfies([20, 19, 0], '>=22')).toBe(false);
    expect(satisfies([20, 19, 0], '>= 0.6')).toBe(true);
    expect(satisfies([20, 19, 0], '^18.0.0 || ^20.0.0 || >=22.0.0')).toBe(true);
  });

  it("names a minimum Node that every locked package accepts, and this Node is at least that", () => {
    expect(pkg.engines.node).toMatch(/^>=\s*\d+\.\d+/);
    const refusing = Object.entries(lock.packages)
      .filter(([name, entry]) => name !== '' && entry.engines && !Array.isArray(entry.engines) && entry.engines.node)
      .filter(([, entry]) => !satisfies(minimumNode, (entry.engines as { node: string }).node))
      .map(([name, entry]) => `${name}@${entry.version} wants node ${(entry.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
    expect(satisfies(parseVersion(process.versions.node).version, pkg.engines.node)).toBe(true);
  });

  it('decides on every install script in allowScripts', () => {
    const undecided = Object.entries(lock.packages)
      .filter(([, entry]) => entry.hasInstallScript)
      .map(([name]) => name.slice(name.lastIndexOf('node_modules/') + 'node_modules/'.length))
      .filter((name) => !Object.hasOwn(pkg.allowScripts, name));
    expect(undecided).toEqual([]);
  });
});
