#!/usr/bin/env bash
# The whole test suite: build (so spawned processes run current code), then every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-/bin/false}"
npm run build --silent
npx vitest run "$@"
