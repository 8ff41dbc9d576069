// Loading strategy plugins (.so files implementing <tailgate/plugin_abi.h>).
//
//   Registry reg({"/etc/tailgate/plugins", "/usr/lib/tailgate/plugins"});
//   InstancePtr s = reg.create("simple-shuffle", &host_api, {{"seed", "42"}});
//   s->route(request, route);
//
// A Registry maps a strategy name to `<dir>/<name>.so` (first search directory
// wins), loads the library once (cached by canonical path), checks the handshake
// (the six required tg_plugin_* symbols, ABI version, exported name) and builds
// instances. Every failure is a PluginError whose message names the file and
// the exact reason; nothing is half-created.
//
// Loading runs the library's code, so before dlopen the file is refused when
// someone else could have put it there: a world-writable file or directory
// (the one it was found in, and the one it really lives in), or a file owned
// by neither root nor a trusted user (by default the process's euid).
//
// Lifetime: an Instance holds a shared reference to its library, and the
// Registry holds one for every library it loaded, so code of a plugin stays
// mapped while the Registry or any Instance created from it exists.
#pragma once

#include "plugin/route_guard.hpp"

#include <tailgate/plugin_abi.h>

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace tailgate::plugin {

// Any refusal to load or instantiate a strategy; what() is user-facing.
class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Entry points of a loaded plugin, resolved and checked at load time.
struct PluginSymbols {
    tg_plugin_abi_version_fn abi_version = nullptr;
    tg_plugin_name_fn name = nullptr;
    tg_plugin_create_fn create = nullptr;
    tg_plugin_destroy_fn destroy = nullptr;
    tg_plugin_route_fn route = nullptr;
    tg_plugin_observe_fn observe = nullptr;
    tg_plugin_admit_fn admit = nullptr;  // optional
    tg_plugin_release_request_fn release_request = nullptr;  // optional (1.1)
    tg_plugin_adopt_state_fn adopt_state = nullptr;          // optional (1.1)
    tg_plugin_state_json_fn state_json = nullptr;            // optional (1.2)
    tg_plugin_observe_remote_fn observe_remote = nullptr;    // optional (1.2)
};

// One strategy object created by a plugin for one chain entry. Thread-safe to
// the extent the plugin is: route() and observe() may be called concurrently
// (the ABI requires plugins to support that). Not copyable, not movable.
class Instance {
public:
    Instance(std::shared_ptr<boost::dll::shared_library> lib, const PluginSymbols& fns, void* handle,
             std::string name, std::string path, std::unique_ptr<tg_host_api> host);
    ~Instance();  // calls tg_plugin_destroy, then releases the library
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    const std::string& name() const { return name_; }  // strategy name (tg_plugin_name)
    const std::string& path() const { return path_; }  // file it was loaded from

    // Runs the plugin's route() and checks what it left (RouteGuard, the
    // rules on tg_route). Returns TG_OK, TG_ERR_NO_CANDIDATE, or TG_ERR_INTERNAL
    // for every kind of failure: an exception, an error status, a value outside
    // tg_status, a broken rule. On TG_ERR_INTERNAL the route is exactly as it
    // was before the call (the plugin's request_ctx aside), `error` says why
    // (the plugin's own text when it gave one), the failure is counted and
    // logged (at most once a second per instance, with the number suppressed).
    // `guard` is scratch space the caller may reuse across calls.
    int32_t route(const tg_request& request, tg_route& route, RouteGuard& guard, std::string& error) noexcept;
    int32_t route(const tg_request& request, tg_route& route) noexcept;

    // route() calls of this instance that failed.
    uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
    // Also counts them into `total` (tailgate_plugin_failures_total, kept by
    // strategy name across reloads). Set before the instance serves.
    void count_failures_into(std::shared_ptr<std::atomic<uint64_t>> total) { total_failures_ = std::move(total); }

    // Delivers an attempt outcome. Must not block (the plugin's promise).
    void observe(const tg_event& event) noexcept;
    // Another replica's outcome; a no-op for plugins without the hook (1.2).
    void observe_remote(const tg_event& event) noexcept;
    bool has_observe_remote() const { return fns_.observe_remote != nullptr; }
    // The optional admit() hook; true when the plugin does not export it.
    bool admit(const tg_event& event) noexcept;
    bool has_admit() const { return fns_.admit != nullptr; }
    // The optional release_request() hook: frees a request_ctx this instance
    // left in a tg_route. A no-op for null contexts or plugins without it.
    void release_request(void* request_ctx) noexcept;
    bool has_release_request() const { return fns_.release_request != nullptr; }
    // State handover on reload (tg_plugin_adopt_state): this new instance takes
    // over what it can of `previous`, which must be an instance of the same
    // strategy name. Returns "" on success, else why not (also when either
    // side lacks the hook or the names differ); the caller logs it and goes on
    // with a fresh instance. Neither instance may be in use by other threads.
    std::string adopt_state_from(Instance& previous) noexcept;
    // The optional tg_plugin_state_json: the instance's live state as the text
    // it wrote (unchecked: the caller parses it), "" when it shows none, has no
    // such export, or wrote more than kMaxStateJson bytes.
    static constexpr size_t kMaxStateJson = 64 * 1024;
    std::string state_json() const noexcept;

private:
    std::shared_ptr<boost::dll::shared_library> lib_;  // declared first: released last
    PluginSymbols fns_;
    void* handle_;
    std::string name_;
    std::string path_;
    // The host table handed to create(), kept alive here so that even a plugin
    // that (against the ABI rules) keeps the pointer never reads freed memory.
    std::unique_ptr<tg_host_api> host_;
    std::atomic<uint64_t> failures_{0};
    std::shared_ptr<std::atomic<uint64_t>> total_failures_;
    std::atomic<int64_t> last_failure_log_ms_{-1};  // steady clock; -1: never logged
    std::atomic<uint64_t> failures_unlogged_{0};    // failures since the last log line

    void report_failure(const tg_request& request, const std::string& error) noexcept;
};

using InstancePtr = std::unique_ptr<Instance>;

class Registry {
public:
    // Directories are searched in order; missing/unreadable ones are skipped.
    // A plugin file must be owned by root or one of `trusted_owners`.
    explicit Registry(std::vector<std::string> search_dirs, std::vector<uid_t> trusted_owners = {::geteuid()});
    ~Registry();

    // Strategy names: stems of the `*.so` files in the search directories,
    // sorted, duplicates removed (the first directory wins). Files are not
    // loaded here, so a broken .so is listed too. Rescans on every call.
    std::vector<std::string> available() const;

    // Path of the file `name` resolves to, if any.
    std::optional<std::string> find(const std::string& name) const;

    const std::vector<std::string>& search_dirs() const { return dirs_; }

    // Loads (or reuses) the library for `name` and creates one instance with
    // `args`. `name` is either a strategy name looked up in the search
    // directories, or a path containing '/' to a .so file (its stem must then
    // equal the plugin's name). `host` may be null (an empty table is given).
    // Throws PluginError with a precise message on any failure.
    InstancePtr create(const std::string& name, const tg_host_api* host,
                       const std::vector<std::pair<std::string, std::string>>& args) const;

private:
    struct Loaded;
    std::shared_ptr<const Loaded> load(const std::string& path) const;

    std::vector<std::string> dirs_;
    std::vector<uid_t> trusted_owners_;
    mutable std::mutex mu_;
    mutable std::map<std::string, std::shared_ptr<const Loaded>> cache_;  // key: canonical path
};

}  // namespace tailgate::plugin
