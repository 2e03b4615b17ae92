import { describe, expect, it } from 'vitest';
import { exportedSeries } from './exported-metrics.js';
import { expositionProblems, parseExposition } from './exposition.js';
import { extractRefs, parseGrafanaVariableQuery, substituteGrafanaVariables, tokenize } from './promql.js';
import { checkExpr } from './support.js';

const sorted = (xs: string[]) => [...xs].sort();

describe('PromQL reference extractor', () => {
  it('finds metric names before {, [ and alone, not functions or aggregations', () => {
    const r = extractRefs('sum by (model) (rate(ai_requests_total{status="error"}[5m])) / sum(ai_requests_in_flight)');
    expect(sorted(r.metrics)).toEqual(['ai_requests_in_flight', 'ai_requests_total']);
    expect(sorted(r.functions)).toEqual(['rate', 'sum']);
    expect(r.groupingLabels).toEqual(['model']);
    expect(r.matcherLabels).toEqual(['status']);
  });

  it('reads histogram quantiles: _bucket series and the le label', () => {
    const r = extractRefs(
      'histogram_quantile(0.95, sum by (le, model, cached) (rate(ai_request_latency_seconds_bucket{cached!="true"}[$__rate_interval])))',
    );
    expect(r.metrics).toEqual(['ai_request_latency_seconds_bucket']);
    expect(sorted(r.groupingLabels)).toEqual(['cached', 'le', 'model']);
    expect(r.matcherLabels).toEqual(['cached']);
  });

  it('takes grouping after the arguments too, and on/ignoring/group_left lists', () => {
    const r = extractRefs('sum(rate(a_total[5m])) without (instance) / on (job) group_left (service) b_seconds');
    expect(sorted(r.metrics)).toEqual(['a_total', 'b_seconds']);
    expect(sorted(r.groupingLabels)).toEqual(['instance', 'job', 'service']);
  });

  it('ignores strings, numbers, durations, offsets, bool and set operators', () => {
    const r = extractRefs(
      'label_replace(up{job=~"gateway|orchestrator"} offset 1h, "dst", "$1", "src", "(.*)") > bool 0 and on() vector(1) or x_total unless y_total',
    );
    expect(sorted(r.metrics)).toEqual(['up', 'x_total', 'y_total']);
    expect(r.functions).toContain('label_replace');
    expect(r.functions).toContain('vector');
    expect(r.matcherLabels).toEqual(['job']);
  });

  it('reads recording-rule names with colons and {__name__="..."} selectors', () => {
    expect(extractRefs('avg_over_time(:cache_hit_ratio:rate5m[6h]) > 0.2').metrics).toEqual([':cache_hit_ratio:rate5m']);
    expect(extractRefs('{__name__="cache_size_bytes", service="orchestrator"}').metrics).toEqual(['cache_size_bytes']);
  });

  it('does not take subquery or range durations for names', () => {
    const r = extractRefs('max_over_time(rate(x_total[5m])[1h:1m]) * 1e3 + 0x1f');
    expect(r.metrics).toEqual(['x_total']);
  });

  it('tokenizes Grafana variables and rejects unterminated strings', () => {
    expect(tokenize('x{model=~"$model"}[$__rate_interval]').map((t) => t.kind)).toEqual([
      'ident', 'punct', 'ident', 'punct', 'string', 'punct', 'punct', 'variable', 'punct',
    ]);
    expect(() => tokenize('x{a="b}')).toThrow(/unterminated/);
  });

  it('substitutes Grafana variables so promtool can parse the expression', () => {
    expect(substituteGrafanaVariables('rate(x{m=~"$model"}[$__rate_interval]) + increase(y[$__range])')).toBe(
      'rate(x{m=~".*"}[5m]) + increase(y[5m])',
    );
  });

  it('parses Grafana label_values() variable queries', () => {
    expect(parseGrafanaVariableQuery('label_values(ai_requests_total{service="orchestrator"}, model)')).toEqual({
      selector: 'ai_requests_total{service="orchestrator"}',
      label: 'model',
    });
    expect(parseGrafanaVariableQuery('label_values(model)')).toEqual({ selector: '', label: 'model' });
    expect(parseGrafanaVariableQuery('sum(x)')).toBeUndefined();
  });
});

describe('checking expressions against the exported metrics', () => {
  it('accepts exported names, histogram series and Prometheus\'s own up', () => {
    expect(checkExpr('sum by (le) (rate(cache_lookup_latency_seconds_bucket[5m]))').problems).toEqual([]);
    expect(checkExpr('rate(cache_lookup_latency_seconds_sum[5m]) / rate(cache_lookup_latency_seconds_count[5m])').problems).toEqual([]);
    expect(checkExpr('sum(up{job="orchestrator"})').problems).toEqual([]);
  });

  it('rejects unknown names, a histogram\'s bare name, and labels the metric does not have', () => {
    expect(checkExpr('rate(ai_request_total[5m])').problems[0]).toMatch(/unknown metric "ai_request_total"/);
    expect(checkExpr('rate(ai_request_latency_seconds[5m])').problems[0]).toMatch(/unknown metric/);
    expect(checkExpr('sum by (kind) (rate(websocket_errors_total[5m]))').problems[0]).toMatch(/label "kind"/);
    expect(checkExpr('sum by (le) (rate(ai_requests_total[5m]))').problems[0]).toMatch(/label "le"/);
  });

  it('accepts recorded series it is told about', () => {
    expect(checkExpr(':cache_hit_ratio:rate5m < 0.1').problems[0]).toMatch(/unknown metric/);
    expect(checkExpr(':cache_hit_ratio:rate5m < 0.1', new Set([':cache_hit_ratio:rate5m'])).problems).toEqual([]);
  });

  it('derives every series name, with histogram suffixes, from EXPORTED_METRICS', () => {
    const series = exportedSeries();
    expect(series.get('ai_request_latency_seconds_bucket')?.labels.has('le')).toBe(true);
    expect(series.get('ai_request_latency_seconds_count')?.labels.has('le')).toBe(false);
    expect(series.has('ai_request_latency_seconds')).toBe(false);
    expect(series.get('process_cpu_seconds_total')?.services).toEqual(['gateway', 'orchestrator', 'job-worker', 'mock-llm']);
  });
});

describe('checking a /metrics text against EXPORTED_METRICS', () => {
  const mockLlm = [
    '# HELP mock_llm_completions_total x',
    '# TYPE mock_llm_completions_total counter',
    'mock_llm_completions_total{model="m",stream="true",outcome="ok",service="mock-llm"} 1',
    '# TYPE mock_llm_client_disconnects_total counter',
    'mock_llm_client_disconnects_total{service="mock-llm"} 0',
    '# TYPE mock_llm_in_flight gauge',
    'mock_llm_in_flight{service="mock-llm"} 0',
    '# TYPE process_cpu_seconds_total counter',
    'process_cpu_seconds_total{service="mock-llm"} 0.5',
    '# TYPE process_resident_memory_bytes gauge',
    'process_resident_memory_bytes{service="mock-llm"} 1e8',
    '# TYPE process_start_time_seconds gauge',
    'process_start_time_seconds{service="mock-llm"} 1700000000',
    '# TYPE nodejs_heap_size_used_bytes gauge',
    'nodejs_heap_size_used_bytes{service="mock-llm"} 1e7',
    '# TYPE nodejs_eventloop_lag_p99_seconds gauge',
    'nodejs_eventloop_lag_p99_seconds{service="mock-llm"} 0.01',
  ].join('\n');

  it('passes a complete exposition', () => {
    expect(expositionProblems('mock-llm', mockLlm)).toEqual([]);
  });

  it('reports a missing metric, a wrong type and a missing label; a metric without samples is only typed', () => {
    const text = mockLlm
      .replace('# TYPE mock_llm_in_flight gauge', '# TYPE mock_llm_in_flight counter')
      .replace(/.*process_cpu_seconds_total.*\n/g, '')
      .replace('nodejs_heap_size_used_bytes{service="mock-llm"}', 'nodejs_heap_size_used_bytes');
    expect(expositionProblems('mock-llm', text)).toEqual([
      'process_cpu_seconds_total: not exported',
      'nodejs_heap_size_used_bytes: no label "service"',
      'mock_llm_in_flight: type counter, expected gauge',
    ]);
    const histogram = '# TYPE cache_lookup_latency_seconds histogram\ncache_lookup_latency_seconds_bucket{le="0.1",result="hit",service="orchestrator"} 1';
    expect(expositionProblems('orchestrator', histogram).filter((p) => p.startsWith('cache_lookup'))).toEqual([]);
    expect(parseExposition('# TYPE ai_requests_total counter\n').samples.size).toBe(0);
  });
});
