/**
 * A small PromQL scanner: enough to list the metric names and label names an expression uses,
 * so dashboards and rules can be checked against the metrics the services export. Syntax is
 * checked by promtool; this only classifies identifiers.
 */

export interface PromqlRefs {
  /** Metric names selected (`foo`, `foo{...}`, `foo[5m]`, `{__name__="foo"}`). */
  metrics: string[];
  /** Label names in matchers (`{label="..."}`). */
  matcherLabels: string[];
  /** Label names in by / without / on / ignoring / group_left / group_right lists. */
  groupingLabels: string[];
  /** Functions and aggregation operators called. */
  functions: string[];
}

type Token =
  | { kind: 'ident'; value: string }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: string }
  | { kind: 'variable'; value: string }
  | { kind: 'punct'; value: string };

const GROUPING_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const OTHER_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'atan2']);

/** Split an expression into tokens; Grafana variables ($x, ${x}, [[x]]) become `variable` tokens. */
export function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      let value = '';
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === '\\' && c !== '`') j++;
        value += expr[j] ?? '';
        j++;
      }
      if (j >= expr.length) throw new Error(`unterminated string at ${i} in: ${expr}`);
      tokens.push({ kind: 'string', value });
      i = j + 1;
    } else if (c === '$') {
      const m = /^\$(\{[^}]*\}|\w+)/.exec(expr.slice(i));
      if (!m) throw new Error(`bad variable at ${i} in: ${expr}`);
      tokens.push({ kind: 'variable', value: m[0] });
      i += m[0].length;
    } else if (expr.startsWith('[[', i)) {
      const end = expr.indexOf(']]', i);
      if (end < 0) throw new Error(`unterminated [[variable]] in: ${expr}`);
      tokens.push({ kind: 'variable', value: expr.slice(i, end + 2) });
      i = end + 2;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(expr[i + 1] ?? ''))) {
      // number, hex, or duration (5m, 1h30m)
      const m = /^(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?(?:(?:ms|[smhdwy])(?:[0-9]+(?:ms|[smhdwy]))*)?)/.exec(
        expr.slice(i),
      );
      tokens.push({ kind: 'number', value: m![0] });
      i += m![0].length;
    } else if (/[a-zA-Z_:]/.test(c)) {
      const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))!;
      tokens.push({ kind: 'ident', value: m[0] });
      i += m[0].length;
    } else {
      const two = expr.slice(i, i + 2);
      if (['==', '!=', '=~', '!~', '<=', '>='].includes(two)) {
        tokens.push({ kind: 'punct', value: two });
        i += 2;
      } else if ('(){}[],=<>+-*/%^@'.includes(c)) {
        tokens.push({ kind: 'punct', value: c });
        i++;
      } else {
        throw new Error(`unexpected character ${JSON.stringify(c)} at ${i} in: ${expr}`);
      }
    }
  }
  return tokens;
}

/** The metric names, label names and functions an expression refers to (each list deduplicated). */
export function extractRefs(expr: string): PromqlRefs {
  const tokens = tokenize(expr);
  const metrics = new Set<string>();
  const matcherLabels = new Set<string>();
  const groupingLabels = new Set<string>();
  const functions = new Set<string>();
  const next = (k: number) => tokens[k + 1];

  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === 'punct' && t.value === '[') {
      // range or subquery duration: skip to the matching ]
      while (k < tokens.length && !(tokens[k]!.kind === 'punct' && tokens[k]!.value === ']')) k++;
      continue;
    }
    if (t.kind === 'punct' && t.value === '{') {
      // label matchers: name op "value" [, ...]
      for (k++; k < tokens.length; k++) {
        const m = tokens[k]!;
        if (m.kind === 'punct' && m.value === '}') break;
        if (m.kind === 'ident') {
          const op = next(k);
          const val = tokens[k + 2];
          if (m.value === '__name__' && op?.kind === 'punct' && op.value === '=' && val?.kind === 'string') {
            metrics.add(val.value);
          } else {
            matcherLabels.add(m.value);
          }
          k += 2; // skip operator and value
        }
      }
      continue;
    }
    if (t.kind !== 'ident') continue;
    const lower = t.value.toLowerCase();
    if (GROUPING_KEYWORDS.has(lower)) {
      const open = next(k);
      if (open?.kind === 'punct' && open.value === '(') {
        for (k += 2; k < tokens.length; k++) {
          const l = tokens[k]!;
          if (l.kind === 'punct' && l.value === ')') break;
          if (l.kind === 'ident') groupingLabels.add(l.value);
        }
      }
      continue;
    }
    if (OTHER_KEYWORDS.has(lower)) continue; // binary operators, modifiers, Inf/NaN
    const after = next(k);
    const called = after?.kind === 'punct' && after.value === '(';
    // `sum by (x) (...)`: an aggregation with its grouping before the arguments
    const aggregates = after?.kind === 'ident' && ['by', 'without'].includes(after.value.toLowerCase());
    if (called || aggregates) functions.add(t.value);
    else metrics.add(t.value);
  }
  return {
    metrics: [...metrics],
    matcherLabels: [...matcherLabels],
    groupingLabels: [...groupingLabels],
    functions: [...functions],
  };
}

/** Grafana's own query functions for template variables, e.g. `label_values(metric{...}, label)`. */
export function parseGrafanaVariableQuery(query: string): { selector: string; label?: string } | undefined {
  const m = /^\s*(label_values|metrics|query_result|label_names)\s*\(\s*(.*)\)\s*$/s.exec(query);
  if (!m) return undefined;
  const [, fn, args] = m;
  if (fn === 'label_values') {
    // split on the last top-level comma: label_values(selector, label) or label_values(label)
    let depth = 0;
    let split = -1;
    for (let i = 0; i < args!.length; i++) {
      const c = args![i];
      if (c === '{' || c === '(') depth++;
      else if (c === '}' || c === ')') depth--;
      else if (c === ',' && depth === 0) split = i;
    }
    if (split < 0) return { selector: '', label: args!.trim() };
    return { selector: args!.slice(0, split).trim(), label: args!.slice(split + 1).trim() };
  }
  if (fn === 'query_result') return { selector: args! };
  return { selector: '' };
}

/**
 * Substitute Grafana's variables so promtool can parse a dashboard expression:
 * interval variables become durations, any other variable a regex that matches anything.
 */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)(_ms|_s)?\b|\$\{__(rate_interval|interval|range)\}/g, '5m')
    .replace(/\$\{[^}]*\}|\$\w+|\[\[\w+\]\]/g, '.*');
}
