#!/usr/bin/env bash
# Lints ./Dockerfile with dockerfile-utils (a devDependency). It checks against
# Docker's own parser rules: unknown instructions and flags, bad durations,
# ports and exec-form JSON. Its errors exit 1; its warnings (e.g. deprecated
# instructions) exit 0, so any output at all counts as a failure here too.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
out="$(npx --no-install dockerfile-utils lint Dockerfile)" || status=$?
if [[ -n "$out" ]]; then
  printf '%s\n' "$out"
  [[ $status -ne 0 ]] || status=1
fi
if [[ $status -eq 0 ]]; then
  echo "Dockerfile: no lint findings"
fi
exit "$status"
