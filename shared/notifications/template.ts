/**
 * Quay's webhook body template (util/jsontemplate.py): a JSON document whose strings may hold
 * `${path}` expressions over the event data (`${repository}`, `${updated_tags[0]}`,
 * `${vulnerability.priority}`). A string that is exactly one expression takes the value as it is
 * (a list stays a list); inside longer strings, values are inserted as text (non-strings as JSON).
 * A path that finds nothing gives Quay's "(none)".
 */

/** A template that is not JSON, or holds an empty or malformed expression. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const EXPRESSION = /\$\{([^}]*)\}/g;
const MISSING = '(none)';
const STEP = /^(?:\.?([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[["']([^"']*)["']\])/;

function lookup(data: unknown, path: string): { found: boolean; value?: unknown } {
  let rest = path.trim().replace(/^\$\.?/, '');
  if (rest === '') throw new TemplateError('Empty expression in template');
  let value: unknown = data;
  while (rest !== '') {
    const step = STEP.exec(rest);
    if (!step) throw new TemplateError(`Invalid expression in template: ${path}`);
    rest = rest.slice(step[0].length);
    const key = step[1] ?? step[3];
    if (key !== undefined) value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
    else value = Array.isArray(value) ? value[Number(step[2])] : undefined;
    if (value === undefined) return { found: false };
  }
  return { found: true, value };
}

function applyString(s: string, data: unknown): unknown {
  const whole = /^\$\{([^}]*)\}$/.exec(s);
  if (whole) {
    const { found, value } = lookup(data, whole[1]!);
    return found ? value : MISSING;
  }
  return s.replace(EXPRESSION, (_m, path: string) => {
    const { found, value } = lookup(data, path);
    if (!found) return MISSING;
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

function apply(template: unknown, data: unknown): unknown {
  if (typeof template === 'string') return applyString(template, data);
  if (Array.isArray(template)) return template.map((item) => apply(item, data));
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, apply(v, data)]));
  }
  return template;
}

/** Parses `template` (JSON text) and checks its expressions; throws TemplateError. */
export function parseTemplate(template: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(template);
  } catch {
    throw new TemplateError('Template must be valid JSON');
  }
  apply(parsed, {});
  return parsed;
}

/** The webhook body for `eventData` under `template` (JSON text). */
export function renderTemplate(template: string, eventData: Record<string, unknown>): unknown {
  return apply(parseTemplate(template), eventData);
}
