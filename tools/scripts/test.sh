#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test
# (GoogleTest through ctest, then the end-to-end suite with the OpenAI SDK).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
bash tools/scripts/setup.sh

echo "==> unit tests (ctest)"
ctest --test-dir build --output-on-failure -j2 --timeout 300

# promtool (Debian's `prometheus` package) validates /metrics in the e2e suite;
# it is large, so it is installed here on the test path, not by setup.sh.
if ! command -v promtool >/dev/null 2>&1; then
  echo "==> installing promtool (Debian package prometheus)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
    || echo "    (could not install prometheus: the promtool checks will be skipped)"
fi

# The dashboard test (tests/e2e/test_dashboard.py) drives Debian's headless Chromium through
# playwright-core from the npm registry (no browser download); it skips if either is missing.
if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing chromium (Debian package) for the /ui dashboard test"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "    (could not install chromium: the dashboard browser test will be skipped)"
fi
if [ ! -d tests/e2e/ui/node_modules ]; then
  echo "==> npm ci in tests/e2e/ui (playwright-core)"
  { command -v npm >/dev/null 2>&1 && (cd tests/e2e/ui && npm ci --no-audit --no-fund); } \
    || echo "    (could not install tests/e2e/ui/node_modules: the dashboard browser test will be skipped)"
fi

# The Node SDK check (tests/e2e/node: the official `openai` npm package) skips if this fails.
if [ ! -d tests/e2e/node/node_modules ]; then
  echo "==> npm ci in tests/e2e/node (openai)"
  { command -v npm >/dev/null 2>&1 && (cd tests/e2e/node && npm ci --no-audit --no-fund); } \
    || echo "    (could not install tests/e2e/node/node_modules: the Node SDK test will be skipped)"
fi

echo "==> end-to-end tests (pytest + openai SDK)"
TAILGATE_BUILD_DIR="$ROOT/build" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider "$@"

# Soak, CI length: 60 s of mixed traffic with injected faults against an ASan+UBSan build
# of the gateway, mock and plugins (build-asan/, no unit tests); fails on any sanitizer
# report, unexpected client error or RSS/fd growth. The full run is `tools/soak/run.sh` (600 s).
echo "==> soak (60 s, ASan+UBSan)"
tools/soak/run.sh 60 --sample-s 2 --phase-s 8

# The plugin boundary under ASan+UBSan: every hostile/broken plugin of tests/plugins/
# through the real loader and router (issue 17), in the soak's build directory, so
# only the unit tests are left to compile.
echo "==> plugin-boundary tests (ASan+UBSan)"
JOBS="$(nproc)" tests/plugins/run_asan.sh "$ROOT/build-asan"
