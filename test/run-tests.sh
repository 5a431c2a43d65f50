#!/usr/bin/env bash
# Runs every compiled *.spec.js (unit, kernel and end-to-end tests) with node:test.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist -name '*.spec.js' | sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "no tests found under dist/" >&2
  exit 1
fi
exec node --test --test-concurrency=1 "$@" "${files[@]}"
