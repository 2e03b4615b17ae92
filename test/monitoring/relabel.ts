/**
 * Prometheus's target relabelling (replace, keep, drop, labelmap, labeldrop, labelkeep), enough to
 * run the Kubernetes scrape config against sample pods without a cluster.
 */

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: 'replace' | 'keep' | 'drop' | 'labelmap' | 'labeldrop' | 'labelkeep';
}

const anchored = (regex: string) => new RegExp(`^(?:${regex})$`);

/** Apply relabel configs to a target's labels; undefined when the target is dropped. */
export function relabel(input: Record<string, string>, configs: RelabelConfig[]): Record<string, string> | undefined {
  const labels = { ...input };
  for (const c of configs) {
    const action = c.action ?? 'replace';
    const re = anchored(c.regex ?? '(.*)');
    const value = (c.source_labels ?? []).map((l) => labels[l] ?? '').join(c.separator ?? ';');
    switch (action) {
      case 'keep':
        if (!re.test(value)) return undefined;
        break;
      case 'drop':
        if (re.test(value)) return undefined;
        break;
      case 'replace': {
        const m = re.exec(value);
        if (!m) break;
        const out = (c.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, i: string) => m[Number(i)] ?? '');
        if (!c.target_label) throw new Error('replace without target_label');
        if (out === '') delete labels[c.target_label];
        else labels[c.target_label] = out;
        break;
      }
      case 'labelmap':
        for (const [k, v] of Object.entries(labels)) {
          const m = re.exec(k);
          if (m) labels[(c.replacement ?? '$1').replace(/\$\{?(\d+)\}?/g, (_, i: string) => m[Number(i)] ?? '')] = v;
        }
        break;
      case 'labeldrop':
        for (const k of Object.keys(labels)) if (re.test(k)) delete labels[k];
        break;
      case 'labelkeep':
        for (const k of Object.keys(labels)) if (!re.test(k)) delete labels[k];
        break;
    }
  }
  return labels;
}

/**
 * The labels a scraped target ends up with: relabelling, then `instance` from the address, then every
 * label starting with `__` removed (what Prometheus does). Also returns where it is scraped.
 */
export function targetFromDiscovery(
  jobName: string,
  discovered: Record<string, string>,
  configs: RelabelConfig[],
): { labels: Record<string, string>; url: string } | undefined {
  const start = { job: jobName, __scheme__: 'http', __metrics_path__: '/metrics', ...discovered };
  const out = relabel(start, configs);
  if (!out) return undefined;
  const url = `${out.__scheme__}://${out.__address__}${out.__metrics_path__}`;
  if (!out.instance) out.instance = out.__address__!;
  const labels = Object.fromEntries(Object.entries(out).filter(([k]) => !k.startsWith('__')));
  return { labels, url };
}
