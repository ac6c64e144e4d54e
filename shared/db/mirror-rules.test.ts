import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRule, InvalidMirrorRuleError, RepoMirrorRuleType, tagsToMirror } from './mirror-rules.ts';

const SEED_TAGS = ['v32', 'v3.1', 'v3.2', 'v3.2-4beta', 'v3.3'];
const glob = (patterns: string[], tags = SEED_TAGS): string[] => tagsToMirror(compileRule(RepoMirrorRuleType.TAG_GLOB_CSV, patterns), tags);

describe('tag glob rules (TAGPAT)', () => {
  it.each([
    ['TAGPAT-5', 'v3*', ['v3.1', 'v3.2', 'v3.2-4beta', 'v3.3', 'v32']],
    // The seed's table omits v3.3 (GAP-5); fnmatch matches it, and so does quayfleet.
    ['TAGPAT-6', 'v3.*', ['v3.1', 'v3.2', 'v3.2-4beta', 'v3.3']],
    ['TAGPAT-7', 'v3.?', ['v3.1', 'v3.2', 'v3.3']],
    ['TAGPAT-8', 'v3.[12]', ['v3.1', 'v3.2']],
    ['TAGPAT-9', 'v3.[12]*', ['v3.1', 'v3.2', 'v3.2-4beta']],
    ['TAGPAT-10', 'v3.[!1]*', ['v3.2', 'v3.2-4beta', 'v3.3']],
  ])('%s: %s', (_id, pattern, expected) => {
    expect(glob([pattern])).toEqual(expected);
  });

  it('TAGPAT-11: the dot is literal and a list is a union, sorted and deduplicated', () => {
    expect(glob(['v3.*'])).not.toContain('v32');
    expect(glob(['v3.1', 'v3.[12]', 'v32'])).toEqual(['v3.1', 'v3.2', 'v32']);
    expect(glob(['*'], ['latest', '_x', 'B', 'a'])).toEqual(['B', '_x', 'a', 'latest']);
    expect(glob(['LATEST'], ['latest'])).toEqual([]);
  });

  it('refuses what Quay refuses: no list, an empty list, empty entries', () => {
    expect(() => compileRule(1, "['a','b']")).toThrow(InvalidMirrorRuleError);
    expect(() => compileRule(1, [])).toThrow(InvalidMirrorRuleError);
    expect(() => compileRule(1, null)).toThrow(InvalidMirrorRuleError);
    expect(() => compileRule(1, [''])).toThrow(InvalidMirrorRuleError);
    expect(() => compileRule(7, ['a'])).toThrow(/Unknown rule type/);
  });

  it('matches exactly as Python fnmatch.fnmatch does, on random patterns and tags', () => {
    const char = fc.constantFrom('a', 'b', '1', '.', '-', '_', 'A');
    const token = fc.oneof(char, fc.constantFrom('*', '?', '[ab]', '[!a]', '[a-c]', '[^a]', '[]a]', '[!]a]', '[', ']', '\\', '!', '{a,b}', '+(a)', '**', '[[:alpha:]]', '[[a]', '[a-]'));
    const pattern = fc.array(token, { minLength: 1, maxLength: 6 }).map((t) => t.join(''));
    // Tags as Quay allows them: a word character first (so never '.' or '..').
    const tag = fc.tuple(fc.constantFrom('a', 'b', '1', 'A', '_'), fc.array(char, { maxLength: 5 })).map(([first, rest]) => first + rest.join(''));
    const cases = fc.sample(fc.tuple(pattern, fc.array(tag, { minLength: 1, maxLength: 8 })), { numRuns: 400, seed: 13 });
    const python = `import fnmatch, json, sys
cases = json.load(sys.stdin)
print(json.dumps([sorted(set(t for t in tags if fnmatch.fnmatchcase(t, p))) for p, tags in cases]))`;
    const expected = JSON.parse(execFileSync('python3', ['-c', python], { input: JSON.stringify(cases) }).toString()) as string[][];
    cases.forEach(([p, tags], i) => expect({ p, tags, got: glob([p], tags) }).toEqual({ p, tags, got: expected[i] }));
  });
});

describe('regex rules (quayfleet extension)', () => {
  it('matches whole tags, as a union', () => {
    expect(tagsToMirror(compileRule(RepoMirrorRuleType.REGEX, ['v3\\.[0-9]+', 'latest']), [...SEED_TAGS, 'latest', 'latest2']))
      .toEqual(['latest', 'v3.1', 'v3.2', 'v3.3']);
  });

  it('refuses an invalid expression with a clear message', () => {
    expect(() => compileRule(RepoMirrorRuleType.REGEX, ['v3.(['])).toThrow(/Invalid regular expression "v3.\(\["/);
  });
});
