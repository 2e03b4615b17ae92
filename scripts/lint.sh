#!/usr/bin/env bash
# `npm run lint`: the type check and build (tsc -b), ESLint (eslint.config.js), and the circular-import
# check (dpdm, type-only imports included). Runs every step and fails if any failed.
#   scripts/lint.sh [types|eslint|cycles]...    one or more steps only (.ci/run runs them one by one)
set -uo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(types eslint cycles)
bin=node_modules/.bin
failed=()
for step in "${steps[@]}"; do
  case "$step" in
    types)
      echo "[lint] tsc -b"
      "$bin/tsc" -b || failed+=(types)
      ;;
    eslint)
      echo "[lint] eslint"
      "$bin/eslint" --max-warnings 0 . || failed+=(eslint)
      ;;
    cycles)
      # Every TypeScript and script file, workspace packages resolved to their source (tsconfig.lint.json
      # paths), so a cycle across packages is found too; node_modules are not followed.
      echo "[lint] circular imports (dpdm)"
      "$bin/dpdm" --no-tree --no-warning --no-progress --exit-code circular:1 --tsconfig tsconfig.lint.json \
        'shared/src/**/*.ts' 'services/*/src/**/*.ts' 'testkit/src/**/*.ts' 'bench/src/**/*.ts' 'test/**/*.ts' 'scripts/**/*.{ts,mjs}' \
        || failed+=(cycles)
      ;;
    *)
      echo "[lint] unknown step \"$step\": the steps are types, eslint, cycles" >&2
      exit 2
      ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "[lint] failed: ${failed[*]}" >&2
  exit 1
fi
