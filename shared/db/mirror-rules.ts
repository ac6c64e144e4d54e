/**
 * Mirror tag rules (`repomirrorrule`): which upstream tags a mirror copies.
 * - `TAG_GLOB_CSV` (1, Quay's only kind, API `tag_glob_csv`): a list of shell globs matched as
 *   Python's `fnmatch.fnmatch` does on POSIX: `*`, `?`, `[seq]`, `[!seq]`, case-sensitive, no
 *   escapes, no braces, no extglobs; `.` is literal. Picomatch does the matching, configured to
 *   those semantics (its extras are switched off, and the two spellings where it still differs
 *   from fnmatch are rewritten first; a property test compares it with Python's fnmatch).
 * - `REGEX` (2, quayfleet's extension, API `regex`): a list of regular expressions, each matching
 *   the whole tag (JavaScript syntax with the `u` flag). An invalid expression is refused.
 * A tag is mirrored when any entry of the list matches; the result is deduplicated and sorted by
 * code point, as Quay's `tags_to_mirror` returns it.
 */
import picomatch from 'picomatch';

/** Rule types as stored in `repomirrorrule.rule_type`. */
export const RepoMirrorRuleType = { TAG_GLOB_CSV: 1, REGEX: 2 } as const;
export type RepoMirrorRuleTypeValue = (typeof RepoMirrorRuleType)[keyof typeof RepoMirrorRuleType];

/** The API's `rule_kind` of each stored rule type. */
export const RULE_KINDS: Readonly<Record<RepoMirrorRuleTypeValue, string>> = { 1: 'tag_glob_csv', 2: 'regex' };

/** A rule that cannot be stored: the message is the API's 400 detail. */
export class InvalidMirrorRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidMirrorRuleError';
  }
}

/** Longest single pattern accepted (a regular expression is compiled for every sync). */
export const MAX_PATTERN_LENGTH = 1024;

const GLOB_OPTIONS: picomatch.PicomatchOptions = {
  // `posix` is what makes picomatch read `[!seq]` as a negated set; POSIX classes are then
  // neutralised by the rewrite below, as fnmatch has none.
  dot: true, nobrace: true, noextglob: true, nonegate: true, noglobstar: true, posix: true, nocase: false,
};

// fnmatch has no escapes (a backslash is literal), and a set starting with `^` or `[` holds that
// character literally (no negation, no POSIX class): rewrite these into what picomatch reads so.
function fnmatchToPicomatch(pattern: string): string {
  return pattern.replace(/\\/g, '[\\\\]').replace(/\[([\^[])/g, '[\\$1');
}

/** A compiled rule: `matches(tag)`. */
export interface CompiledRule {
  matches(tag: string): boolean;
}

/** The rule type of an API `rule_kind`, or undefined for an unknown kind. */
export function ruleTypeOfKind(kind: string): RepoMirrorRuleTypeValue | undefined {
  if (kind === 'tag_glob_csv') return RepoMirrorRuleType.TAG_GLOB_CSV;
  if (kind === 'regex') return RepoMirrorRuleType.REGEX;
  return undefined;
}

/** Checks a rule value as Quay's validation does (a non-empty list of non-empty strings); throws InvalidMirrorRuleError. */
export function compileRule(ruleType: number, value: unknown): CompiledRule {
  if (!Array.isArray(value) || value.length === 0) throw new InvalidMirrorRuleError('The rule value must be a non-empty list');
  if (!value.every((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_PATTERN_LENGTH)) {
    throw new InvalidMirrorRuleError(`Every rule entry must be a non-empty string of at most ${MAX_PATTERN_LENGTH} characters`);
  }
  if (ruleType === RepoMirrorRuleType.TAG_GLOB_CSV) {
    const matchers = value.map((pattern) => picomatch(fnmatchToPicomatch(pattern.trim()), GLOB_OPTIONS));
    return { matches: (tag) => matchers.some((m) => m(tag)) };
  }
  if (ruleType === RepoMirrorRuleType.REGEX) {
    const expressions = value.map((source) => {
      try {
        return new RegExp(`^(?:${source})$`, 'u');
      } catch (error) {
        throw new InvalidMirrorRuleError(`Invalid regular expression ${JSON.stringify(source)}: ${(error as Error).message}`);
      }
    });
    return { matches: (tag) => expressions.some((e) => e.test(tag)) };
  }
  throw new InvalidMirrorRuleError(`Unknown rule type ${String(ruleType)}`);
}

/** The tags of `upstream` the rule selects: deduplicated, sorted by code point (Quay's order). */
export function tagsToMirror(rule: CompiledRule, upstream: Iterable<string>): string[] {
  const selected = new Set<string>();
  for (const tag of upstream) if (rule.matches(tag)) selected.add(tag);
  return [...selected].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
