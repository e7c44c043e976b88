#!/usr/bin/env bash
# Type-checks everything (`npm run typecheck`) and builds dist/ (`npm run build`, which the CLI, demo
# and package tests run) side by side: two compilations that share no output.
set -euo pipefail
npm run typecheck &
typecheck=$!
npm run build &
build=$!
failed=0
wait "$typecheck" || failed=1
wait "$build" || failed=1
exit "$failed"
