#!/usr/bin/env bash
# The whole test suite from a fresh checkout: system packages, npm packages, build, mocha.
# Extra arguments go to mocha instead of the whole suite (e.g. `npm test -- 'test/core/*.test.ts'`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh test
pnpm=(pnpm)
command -v pnpm >/dev/null 2>&1 || pnpm=(npx --yes pnpm@10)
"${pnpm[@]}" install --frozen-lockfile --reporter=append-only
"${pnpm[@]}" run build
# No arguments: the whole suite. Otherwise only the files or folders given.
[ $# -eq 0 ] && set -- 'test/**/*.test.ts'
exec "${pnpm[@]}" exec mocha "$@"
