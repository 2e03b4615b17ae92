#!/bin/sh
# Refresh files/ from monitoring/ (kustomize reads only files below this directory).
# test/monitoring fails when a copy differs from its source.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../../monitoring"
mkdir -p "$here/files/dashboards"
cp "$src/prometheus/prometheus.k8s.yml" "$here/files/prometheus.yml"
cp "$src/prometheus/rules/actionedx.rules.yml" "$here/files/actionedx.rules.yml"
cp "$src/grafana/provisioning/datasources/prometheus.yml" "$here/files/grafana-datasources.yml"
cp "$src/grafana/provisioning/dashboards/dashboards.yml" "$here/files/grafana-dashboards.yml"
rm -f "$here"/files/dashboards/*.json
cp "$src"/grafana/dashboards/*.json "$here/files/dashboards/"
echo "synced; list any new dashboard in kustomization.yaml (grafana-dashboards)"
