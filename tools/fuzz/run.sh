#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and runs each
# for a set time, one at a time (one process, no -jobs). New crashers are copied to
# tests/fuzz/regressions/<target>/ (ctest replays them); new coverage-increasing inputs go
# to build-fuzz/corpus/<target>/ (the checked-in seed corpus is read, never written).
#   tools/fuzz/run.sh [target|all] [seconds per target]     (defaults: all, 600)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGETS_ALL=(request_body sse config upstream_response request_head responses_input responses_stream anthropic_events anthropic_request bedrock_event_stream multipart)
WHICH="${1:-all}"
SECONDS_PER="${2:-600}"
if [ "$WHICH" = all ]; then TARGETS=("${TARGETS_ALL[@]}"); else TARGETS=("$WHICH"); fi

CXX_BIN="${TAILGATE_FUZZ_CXX:-clang++-14}"
C_BIN="${TAILGATE_FUZZ_CC:-clang-14}"
if ! command -v "$CXX_BIN" >/dev/null 2>&1 || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "==> installing clang-14 and libclang-rt-14-dev (Debian packages)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
fi

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAILGATE_FUZZ=ON \
      -DCMAKE_C_COMPILER="$C_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" >/dev/null
cmake --build build-fuzz -j"${TAILGATE_JOBS:-2}" --target "${TARGETS[@]/%/_fuzz}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in "${TARGETS[@]}"; do
  work="build-fuzz/corpus/$t"; crashes="build-fuzz/crashes/$t"
  mkdir -p "$work" "$crashes" "tests/fuzz/regressions/$t"
  echo "==> fuzzing $t for ${SECONDS_PER}s"
  set +e
  "build-fuzz/bin/${t}_fuzz" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 -artifact_prefix="$crashes/" \
      "$work" "tests/fuzz/corpus/$t" 2>&1 | tee "build-fuzz/$t.log" | grep -E '^#[0-9]+ +(DONE|pulse)|ERROR|SUMMARY|stat::' || true
  rc=${PIPESTATUS[0]}
  set -e
  for f in "$crashes"/*; do
    [ -f "$f" ] || continue
    name="$(basename "$f")"
    mv "$f" "tests/fuzz/regressions/$t/$name"
    echo "    new crasher kept: tests/fuzz/regressions/$t/$name"
    status=1
  done
  if [ "$rc" -ne 0 ]; then status=1; echo "    $t exited with $rc (see build-fuzz/$t.log)"; fi
done
exit $status
