#!/usr/bin/env bash
# Out-of-tree plugin build against the *installed* SDK package.
#
#   tests/sdk_example_test.sh <tailgate build dir> [<tailgate source dir>]
#
# 1. installs the SDK component of <build> into a fresh prefix,
# 2. copies sdk/examples/hello-strategy out of the tree and builds it with
#    find_package(TailgateSDK) against that prefix only,
# 3. checks the .so exports exactly the six tg_plugin_* entry points plus the optional admit,
#    release_request and adopt_state (the SDK macro defines all nine),
# 4. dlopens it from a small C++ program compiled against the installed
#    headers and runs the handshake, create (good and bad args) and route,
# 5. leaves the plugin at <build>/lib/tailgate/example-plugins/prefer-provider.so
#    for the e2e suite,
# 6. does the same for sdk/examples/sticky-user and budget-aware, running each
#    one's own tests (ctest in its out-of-tree build) on the way.
set -euo pipefail

build=$(cd "${1:?usage: $0 <build dir> [<source dir>]}" && pwd)
src=$(cd "${2:-$(dirname "$0")/..}" && pwd)
work="$build/sdk-example"
prefix="$work/prefix"
cxx="${CXX:-c++}"

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"

step "install the SDK component into $prefix"
cmake --install "$build" --prefix "$prefix" --component sdk
for h in plugin_abi.h plugin.hpp testing.hpp; do
  [[ -f "$prefix/include/tailgate/$h" ]] || fail "missing $prefix/include/tailgate/$h"
done
config=$(find "$prefix" -name TailgateSDKConfig.cmake -print -quit)
[[ -n "$config" ]] || fail "no TailgateSDKConfig.cmake under $prefix"
pkgdir=$(dirname "$config")
for f in TailgateSDKConfigVersion.cmake TailgateSDKTargets.cmake TailgatePlugin.cmake; do
  [[ -f "$pkgdir/$f" ]] || fail "missing $pkgdir/$f"
done

step "configure + build the example out of tree"
cp -r "$src/sdk/examples/hello-strategy" "$work/src"
cmake -S "$work/src" -B "$work/build" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
found_dir=$(sed -n 's/^TailgateSDK_DIR:PATH=//p' "$work/build/CMakeCache.txt")
[[ "$(cd "$found_dir" && pwd)" == "$(cd "$pkgdir" && pwd)" ]] \
  || fail "TailgateSDK found at '$found_dir', expected the fresh install '$pkgdir'"
cmake --build "$work/build" -j2
so="$work/build/prefer-provider.so"
[[ -f "$so" ]] || fail "expected $so"

step "exports"
nm -D --defined-only "$so" | grep -qw tg_plugin_abi_version || fail "$so does not export tg_plugin_abi_version"
exports=$(nm -D --defined-only "$so" | awk '{print $3}' | sort | tr '\n' ' ')
want="tg_plugin_abi_version tg_plugin_admit tg_plugin_adopt_state tg_plugin_create tg_plugin_destroy tg_plugin_name tg_plugin_observe tg_plugin_observe_remote tg_plugin_release_request tg_plugin_route tg_plugin_state_json "
[[ "$exports" == "$want" ]] || fail "exports are '$exports', expected '$want'"

step "load and run it"
cat > "$work/check.cpp" <<'EOF'
#include <tailgate/plugin_abi.h>
#include <tailgate/testing.hpp>

#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            std::fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
            return 1;                                                      \
        }                                                                  \
    } while (0)

template <class Fn>
Fn sym(void* lib, const char* name) {
    return reinterpret_cast<Fn>(dlsym(lib, name));
}

int main(int argc, char** argv) {
    CHECK(argc == 2);
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    auto version = sym<tg_plugin_abi_version_fn>(lib, TG_SYM_ABI_VERSION);
    auto name = sym<tg_plugin_name_fn>(lib, TG_SYM_NAME);
    auto create = sym<tg_plugin_create_fn>(lib, TG_SYM_CREATE);
    auto destroy = sym<tg_plugin_destroy_fn>(lib, TG_SYM_DESTROY);
    auto route = sym<tg_plugin_route_fn>(lib, TG_SYM_ROUTE);
    auto observe = sym<tg_plugin_observe_fn>(lib, TG_SYM_OBSERVE);
    CHECK(version && name && create && destroy && route && observe);
    CHECK(version() == TG_ABI_VERSION);
    CHECK(std::strcmp(name(), "prefer-provider") == 0);

    tailgate::sdk::testing::FakeHost host;
    char err[256] = "";
    tg_args none{sizeof(tg_args), nullptr, 0};
    CHECK(create(host.api(), &none, err, sizeof err) == nullptr);
    CHECK(std::string(err).find("provider") != std::string::npos);

    tg_kv kv[] = {{"provider", "groq"}};
    tg_args args{sizeof(tg_args), kv, 1};
    void* self = create(host.api(), &args, err, sizeof err);
    CHECK(self != nullptr);

    tailgate::sdk::testing::Deployments d;
    d.add("gpt", "openai");
    d.add("llama", "groq");
    d.add("azure-gpt", "azure");
    d.add("mixtral", "groq");
    tailgate::sdk::testing::Request req;
    CHECK(route(self, &req.raw, &d.route(&host)) == TG_OK);
    CHECK((d.order() == std::vector<std::string>{"llama", "mixtral", "gpt", "azure-gpt"}));
    CHECK(host.notes().size() == 1 && host.notes()[0] == "prefer-provider: groq");

    tg_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = TG_EVENT_SUCCESS;
    ev.deployment = &d.deployment(1);
    observe(self, &ev);
    destroy(self);
    dlclose(lib);
    std::puts("prefer-provider: handshake, create, route, observe, destroy OK");
    return 0;
}
EOF
"$cxx" -std=c++17 -Wall -Wextra -I"$prefix/include" "$work/check.cpp" -o "$work/check" -ldl
"$work/check" "$so"

step "publish for the e2e suite"
mkdir -p "$build/lib/tailgate/example-plugins"
cp "$so" "$build/lib/tailgate/example-plugins/prefer-provider.so"

# The other examples carry their own tests (through the SDK's loader harness):
# build each out of tree against the same fresh install, run its ctest, publish.
for ex in sticky-user budget-aware; do
  step "example $ex: build out of tree, run its own tests"
  cp -r "$src/sdk/examples/$ex" "$work/$ex-src"
  cmake -S "$work/$ex-src" -B "$work/$ex-build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF >/dev/null
  cmake --build "$work/$ex-build" -j2
  ctest --test-dir "$work/$ex-build" --output-on-failure
  [[ -f "$work/$ex-build/$ex.so" ]] || fail "expected $work/$ex-build/$ex.so"
  cp "$work/$ex-build/$ex.so" "$build/lib/tailgate/example-plugins/$ex.so"
done
echo "OK: $build/lib/tailgate/example-plugins/{prefer-provider,sticky-user,budget-aware}.so"
