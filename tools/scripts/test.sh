#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test
# (GoogleTest through ctest, then the end-to-end suite with the OpenAI SDK).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
bash tools/scripts/setup.sh

echo "==> unit tests (ctest)"
ctest --test-dir build --output-on-failure -j2 --timeout 300

echo "==> end-to-end tests (pytest + openai SDK)"
TAILGATE_BUILD_DIR="$ROOT/build" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider "$@"
