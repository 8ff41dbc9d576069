#!/usr/bin/env bash
# Soak: mixed traffic (stream, non-stream, tools, client disconnects, race, hedge) with
# injected faults against an ASan+UBSan build of the gateway and mock, for [seconds]
# (default 600). Fails on any sanitizer report, any unexpected client error, or RSS/fd
# growth after warm-up. Writes build-asan/soak/{resources.csv,summary.json,*.log}.
#   tools/soak/run.sh [seconds] [driver options, e.g. --concurrency 8]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_RUN="${1:-600}"
shift || true

# The sanitizer build: gateway, mock and plugins only (no unit tests).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
# -O1 -g1: about half the compile time of -O2 -g, still fast enough and with line numbers in reports.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DTAILGATE_SANITIZE=ON -DTAILGATE_BUILD_TESTS=OFF >/dev/null
cmake --build build-asan -j"${TAILGATE_JOBS:-$(nproc)}"

OUT="$ROOT/build-asan/soak"
rm -rf "$OUT"; mkdir -p "$OUT"
# Reports go to $OUT/san.<pid> (the driver fails on any). The quarantine is kept small so
# RSS reaches its plateau during warm-up instead of growing by ASan's 256 MiB default.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=0:log_path=$OUT/san:quarantine_size_mb=16:malloc_context_size=10"
export UBSAN_OPTIONS="halt_on_error=0:print_stacktrace=1:log_path=$OUT/san:suppressions=$ROOT/tools/soak/ubsan.supp"
export LSAN_OPTIONS="suppressions=$ROOT/tools/soak/lsan.supp"
.venv/bin/python tools/soak/driver.py --seconds "$SECONDS_RUN" --build-dir "$ROOT/build-asan" --out "$OUT" "$@"
