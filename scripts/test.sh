#!/usr/bin/env bash
# The whole test suite from a fresh checkout: system packages, npm packages, build, mocha.
# Extra arguments go to mocha (e.g. `npm test -- test/core`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh test
pnpm=(pnpm)
command -v pnpm >/dev/null 2>&1 || pnpm=(npx --yes pnpm@10)
"${pnpm[@]}" install --frozen-lockfile --reporter=append-only
"${pnpm[@]}" run build
exec "${pnpm[@]}" exec mocha "$@"
