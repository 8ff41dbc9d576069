#!/usr/bin/env bash
# Runs a benchmark scenario (or all of them) side by side against direct / Tailgate / nginx / LiteLLM.
#   tools/bench/run.sh [overhead|stream|concurrency|tail|outage|all] [run.py options]
# Builds what is missing (tools/scripts/setup.sh, no test venv), the plotting venv .venv-bench,
# then hands over to run.py. Results: tools/bench/results/, plots: docs/bench/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
BUILD="${TAILGATE_BUILD_DIR:-$ROOT/build}"

if [ "${TAILGATE_BENCH_SKIP_BUILD:-0}" != "1" ]; then
  if [ -d "$BUILD" ]; then
    cmake -S . -B "$BUILD" >/dev/null
    # The binaries the bench runs and every strategy plugin (one target per plugins/<name>/).
    plugins=$(for d in plugins/*/; do [ -f "$d/CMakeLists.txt" ] && basename "$d"; done)
    # shellcheck disable=SC2086
    cmake --build "$BUILD" -j2 --target tailgate tailgate-mock tailgate-loadgen $plugins >/dev/null
  else
    TAILGATE_SKIP_VENV=1 tools/scripts/setup.sh
  fi
fi

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "==> installing nginx-light"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
fi

if ! .venv-bench/bin/python -c "import matplotlib, httpx" 2>/dev/null; then
  echo "==> creating .venv-bench (matplotlib)"
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check -r tools/bench/requirements.txt
fi

# The bench may hold thousands of sockets open.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv-bench/bin/python tools/bench/run.py "$@"
