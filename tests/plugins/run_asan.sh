#!/usr/bin/env bash
# The plugin-boundary tests under AddressSanitizer + UBSan: every hostile and
# broken plugin of tests/plugins/ driven through the real loader and router; then
# a plugin swap and state handovers under load against the sanitizer gateway.
#
#   tests/plugins/run_asan.sh [<asan build dir>]     (default: build-asan)
#
# Configures the sanitizer build if needed (TAILGATE_SANITIZE=ON), builds only
# the unit tests and the test plugins, and runs the plugin-related suites.
# Fails on any test failure or sanitizer report. Also registered in ctest as
# `plugins_asan` (label "asan") when the tree is configured with
# -DTAILGATE_ASAN_PLUGIN_TESTS=ON. After the soak (tools/scripts/test.sh runs it
# there) only the unit tests compile; from nothing, ≈ 15 min on 2 cores.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-asan}
# The same flags as the soak's build (tools/soak/run.sh), so after a soak in
# the same directory only the tests are left to compile.
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DTAILGATE_SANITIZE=ON >/dev/null
fi
cmake -S "$src" -B "$build" -DTAILGATE_BUILD_TESTS=ON >/dev/null
# Every test plugin target the build defines (tests/plugins/*), as CMake lists them.
plugins=$(cmake --build "$build" --target help | grep -o 'test-plugin-[A-Za-z0-9_-]*' | sort -u)
cmake --build "$build" -j"${JOBS:-2}" --target tailgate_unit_tests $plugins simple-shuffle
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$build/bin/tailgate_unit_tests" \
  --gtest_filter='*HostilePlugin*:RouteGuard*:AbiGrowth*:PluginLoader*:RouterFixture.*:SdkHarness*:*Reload*:DeploymentTable*'
echo "OK: plugin tests clean under ASan/UBSan"

# Reloads under load against the sanitizer build of the gateway (issue 16): a rebuilt
# plugin swapped in on disk while requests and streams run (old instances unloaded after
# their last request), and plugin state shared between generations (health, latency,
# staggered-hedge). The e2e tests themselves; any sanitizer report fails the run. ≈ 30 s.
cmake --build "$build" -j"${JOBS:-2}" --target tailgate tailgate-mock health latency staggered-hedge usage
out="$build/reload-asan"
rm -rf "$out"
mkdir -p "$out"
ASAN_OPTIONS="detect_leaks=1:halt_on_error=0:log_path=$out/san" \
UBSAN_OPTIONS="halt_on_error=0:print_stacktrace=1:log_path=$out/san:suppressions=$src/tools/soak/ubsan.supp" \
LSAN_OPTIONS="suppressions=$src/tools/soak/lsan.supp" \
TAILGATE_BUILD_DIR="$build" TAILGATE_START_TIMEOUT=60 \
  "$src/.venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$src/tests/e2e" \
  "$src/tests/e2e/test_reload_under_load.py::test_plugin_swap_under_load" \
  "$src/tests/e2e/test_control_plane_state.py::test_reload_keeps_latency_windows_hedge_delay_and_cooldowns_by_identity" \
  "$src/tests/e2e/test_control_plane_state.py::test_previews_and_routing_state_reads_change_nothing"
if compgen -G "$out/san.*" >/dev/null; then
  cat "$out"/san.*
  echo "FAIL: sanitizer reports during reloads (above)"
  exit 1
fi
echo "OK: plugin swap and state handover under load clean under ASan/UBSan"
