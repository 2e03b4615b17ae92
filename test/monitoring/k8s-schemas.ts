/**
 * Offline validation of Kubernetes objects against the JSON schemas bundled in `kubernetes-models` (the core
 * API), `@kubernetes-models/keda` and `@kubernetes-models/prometheus-operator`: nothing is downloaded.
 */

/** Where the model class of an apiVersion lives. */
function modulePath(apiVersion: string, kind: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`;
  if (group === '') return `kubernetes-models/${version}/${kind}`;
  if (group!.endsWith('.k8s.io') || ['apps', 'autoscaling', 'batch', 'policy'].includes(group!)) return `kubernetes-models/${group}/${version}/${kind}`;
  return undefined;
}

/** 'valid', or the schema's complaint (an unknown kind is a complaint too). */
export async function validateK8sObject(obj: { apiVersion: string; kind: string }): Promise<string> {
  const path = modulePath(obj.apiVersion, obj.kind);
  if (!path) return `no schema for ${obj.apiVersion} ${obj.kind}`;
  let Model: new (data: unknown) => { validate(): void };
  try {
    const mod = (await import(path)) as Record<string, unknown>;
    Model = (mod[obj.kind] ?? mod.default) as typeof Model;
  } catch {
    return `no schema for ${obj.apiVersion} ${obj.kind}`;
  }
  try {
    new Model(obj).validate();
    return 'valid';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
