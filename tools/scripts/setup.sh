#!/usr/bin/env bash
# Installs what is missing (Debian packages, a Python venv for the tests) and
# builds everything into build/. Safe to run again: it only does what is needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

DEBS=(build-essential cmake pkg-config
      libboost-dev libboost-filesystem-dev libboost-system-dev
      libpoco-dev libyaml-cpp-dev libspdlog-dev rapidjson-dev libssl-dev libsqlite3-dev
      libgtest-dev libgmock-dev python3-venv python3-pip)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${TAILGATE_SKIP_VENV:-0}" != "1" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating Python venv in .venv"
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import openai, anthropic, pytest, pytest_asyncio, httpx" 2>/dev/null; then
    echo "==> installing Python test packages into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  fi
fi

BUILD_TYPE="${TAILGATE_BUILD_TYPE:-RelWithDebInfo}"
echo "==> building ($BUILD_TYPE) into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${TAILGATE_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
