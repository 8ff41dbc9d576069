#include "plugin/loader.hpp"

#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS 1
#endif
#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <type_traits>

namespace tailgate::plugin {
namespace {

namespace fs = std::filesystem;

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& s : items) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

// name -> path of the first `<dir>/<name>.so` over the directories.
std::map<std::string, std::string> scan(const std::vector<std::string>& dirs) {
    std::map<std::string, std::string> found;
    for (const auto& dir : dirs) {
        std::error_code ec;
        fs::directory_iterator it(dir, ec), end;
        if (ec) continue;
        for (; it != end; it.increment(ec)) {
            if (ec) break;
            const fs::path& p = it->path();
            if (p.extension() != ".so") continue;
            std::error_code fec;
            if (!fs::is_regular_file(p, fec)) continue;  // follows symlinks
            found.emplace(p.stem().string(), p.string());  // keeps the first
        }
    }
    return found;
}

std::string canonical_key(const std::string& path) {
    std::error_code ec;
    fs::path c = fs::weakly_canonical(path, ec);
    return ec ? path : c.string();
}

template <class Fn>
Fn resolve(const boost::dll::shared_library& lib, const char* sym) {
    if (!lib.has(sym)) return nullptr;
    return &lib.get<std::remove_pointer_t<Fn>>(sym);
}

tg_host_api empty_host() {
    tg_host_api h{};
    h.struct_size = sizeof(tg_host_api);
    return h;
}

constexpr size_t kErrLen = 1024;

std::string mode_text(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// Why the file at `path` must not be loaded, or "" when it may be. A file that
// cannot be stat'ed is left to dlopen, whose error says why.
std::string distrust(const std::string& path, const std::vector<uid_t>& trusted) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    if (st.st_mode & S_IWOTH) return "the file is world-writable (mode " + mode_text(st.st_mode) + ")";
    if (st.st_uid != 0 && std::find(trusted.begin(), trusted.end(), st.st_uid) == trusted.end()) {
        std::string allowed = "root";
        for (uid_t u : trusted) allowed += " or uid " + std::to_string(u);
        return "the file is owned by uid " + std::to_string(st.st_uid) + " (plugins must be owned by " + allowed +
               ")";
    }
    // Whoever may write a directory may swap the file in it (or the symlink to it).
    std::vector<fs::path> dirs{fs::path(path).parent_path()};
    std::error_code ec;
    if (fs::path real = fs::canonical(path, ec); !ec) dirs.push_back(real.parent_path());
    for (const fs::path& d : dirs) {
        struct stat ds {};
        const std::string dir = d.empty() ? "." : d.string();
        if (::stat(dir.c_str(), &ds) == 0 && (ds.st_mode & S_IWOTH))
            return "directory " + dir + " is world-writable (mode " + mode_text(ds.st_mode) + ")";
    }
    return "";
}

}  // namespace

// ---------------------------------------------------------------- Registry

struct Registry::Loaded {
    std::shared_ptr<boost::dll::shared_library> lib;
    PluginSymbols fns;
    std::string name;  // what tg_plugin_name() returned
    std::string path;  // as found (for messages)
};

Registry::Registry(std::vector<std::string> search_dirs, std::vector<uid_t> trusted_owners)
    : dirs_(std::move(search_dirs)), trusted_owners_(std::move(trusted_owners)) {}
Registry::~Registry() = default;

std::vector<std::string> Registry::available() const {
    std::vector<std::string> names;
    for (auto& [name, path] : scan(dirs_)) names.push_back(name);
    return names;  // std::map order: sorted
}

std::optional<std::string> Registry::find(const std::string& name) const {
    auto found = scan(dirs_);
    auto it = found.find(name);
    if (it == found.end()) return std::nullopt;
    return it->second;
}

std::shared_ptr<const Registry::Loaded> Registry::load(const std::string& path) const {
    const std::string key = canonical_key(path);
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;

    // Loading runs the library's constructors: refuse a file others could have planted.
    if (std::string why = distrust(path, trusted_owners_); !why.empty())
        throw PluginError(path + ": refused: " + why);

    auto lib = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    dlerror();  // clear any stale message
    lib->load(boost::dll::fs::path(path),
              boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec || !lib->is_loaded()) {
        const char* why = dlerror();
        throw PluginError(path + ": cannot load: " + (why ? std::string(why) : ec.message()));
    }

    auto loaded = std::make_shared<Loaded>();
    loaded->lib = lib;
    loaded->path = path;
    PluginSymbols& f = loaded->fns;
    f.abi_version = resolve<tg_plugin_abi_version_fn>(*lib, TG_SYM_ABI_VERSION);
    f.name = resolve<tg_plugin_name_fn>(*lib, TG_SYM_NAME);
    f.create = resolve<tg_plugin_create_fn>(*lib, TG_SYM_CREATE);
    f.destroy = resolve<tg_plugin_destroy_fn>(*lib, TG_SYM_DESTROY);
    f.route = resolve<tg_plugin_route_fn>(*lib, TG_SYM_ROUTE);
    f.observe = resolve<tg_plugin_observe_fn>(*lib, TG_SYM_OBSERVE);
    f.admit = resolve<tg_plugin_admit_fn>(*lib, TG_SYM_ADMIT);  // optional: may stay null
    f.release_request = resolve<tg_plugin_release_request_fn>(*lib, TG_SYM_RELEASE_REQUEST);  // optional
    f.observe_remote = resolve<tg_plugin_observe_remote_fn>(*lib, TG_SYM_OBSERVE_REMOTE);     // optional
    f.adopt_state = resolve<tg_plugin_adopt_state_fn>(*lib, TG_SYM_ADOPT_STATE);              // optional
    f.state_json = resolve<tg_plugin_state_json_fn>(*lib, TG_SYM_STATE_JSON);                 // optional

    // A different ABI version explains everything else (symbols may have been
    // renamed), so it is reported first when the plugin tells us its version.
    if (f.abi_version) {
        const uint32_t v = f.abi_version();
        if (v != TG_ABI_VERSION)
            throw PluginError(path + ": ABI version mismatch: expected " + std::to_string(TG_ABI_VERSION) +
                              ", found " + std::to_string(v));
    }
    std::vector<std::string> missing;
    if (!f.abi_version) missing.push_back(TG_SYM_ABI_VERSION);
    if (!f.name) missing.push_back(TG_SYM_NAME);
    if (!f.create) missing.push_back(TG_SYM_CREATE);
    if (!f.destroy) missing.push_back(TG_SYM_DESTROY);
    if (!f.route) missing.push_back(TG_SYM_ROUTE);
    if (!f.observe) missing.push_back(TG_SYM_OBSERVE);
    if (!missing.empty())
        throw PluginError(path + (missing.size() == 1 ? ": missing symbol " : ": missing symbols ") +
                          join(missing, ", "));

    const char* name = f.name();
    if (name == nullptr || *name == '\0') throw PluginError(path + ": tg_plugin_name() returned an empty name");
    loaded->name = name;

    cache_.emplace(key, loaded);
    return loaded;
}

InstancePtr Registry::create(const std::string& name, const tg_host_api* host,
                             const std::vector<std::pair<std::string, std::string>>& args) const {
    std::string path;
    std::string expected;  // strategy name the file is named for
    if (name.find('/') != std::string::npos) {
        path = name;
        expected = fs::path(name).stem().string();
    } else {
        auto found = scan(dirs_);
        auto it = found.find(name);
        if (it == found.end()) {
            std::vector<std::string> names;
            for (auto& kv : found) names.push_back(kv.first);
            throw PluginError("unknown strategy '" + name + "'; available: " +
                              (names.empty() ? std::string("(none)") : join(names, ", ")) +
                              " (searched: " + (dirs_.empty() ? std::string("(no directories)") : join(dirs_, ", ")) +
                              ")");
        }
        path = it->second;
        expected = name;
    }

    std::shared_ptr<const Loaded> loaded = load(path);
    if (loaded->name != expected)
        throw PluginError(path + ": name mismatch: the file is named for strategy '" + expected +
                          "' but tg_plugin_name() returns '" + loaded->name + "'");

    // Args as a C array pointing into `args`, alive for the create() call.
    std::vector<tg_kv> kvs;
    kvs.reserve(args.size());
    for (const auto& [k, v] : args) kvs.push_back(tg_kv{k.c_str(), v.c_str()});
    tg_args cargs{};
    cargs.struct_size = sizeof(tg_args);
    cargs.items = kvs.empty() ? nullptr : kvs.data();
    cargs.count = static_cast<uint32_t>(kvs.size());

    tg_host_api table = empty_host();
    if (host != nullptr) {
        // Copy what the caller's table has; members it lacks stay null.
        const size_t n = std::min<size_t>(host->struct_size, sizeof(tg_host_api));
        std::memcpy(&table, host, n);
        table.struct_size = sizeof(tg_host_api);
    }
    auto kept_host = std::make_unique<tg_host_api>(table);

    char err[kErrLen];
    err[0] = '\0';
    void* handle = nullptr;
    try {
        handle = loaded->fns.create(kept_host.get(), &cargs, err, sizeof err);
    } catch (...) {
        throw PluginError(path + ": strategy '" + loaded->name +
                          "' threw an exception out of tg_plugin_create (plugins must not throw across the ABI)");
    }
    err[kErrLen - 1] = '\0';
    if (handle == nullptr)
        throw PluginError(path + ": strategy '" + loaded->name + "' refused its configuration: " +
                          (err[0] ? std::string(err) : std::string("(no message)")));

    // Aliasing pointer: shares ownership of the Loaded record, points at the library.
    std::shared_ptr<boost::dll::shared_library> lib(loaded, loaded->lib.get());
    try {
        return std::make_unique<Instance>(std::move(lib), loaded->fns, handle, loaded->name, path,
                                          std::move(kept_host));
    } catch (...) {
        loaded->fns.destroy(handle);
        throw;
    }
}

// ---------------------------------------------------------------- Instance

Instance::Instance(std::shared_ptr<boost::dll::shared_library> lib, const PluginSymbols& fns, void* handle,
                   std::string name, std::string path, std::unique_ptr<tg_host_api> host)
    : lib_(std::move(lib)),
      fns_(fns),
      handle_(handle),
      name_(std::move(name)),
      path_(std::move(path)),
      host_(std::move(host)) {}

Instance::~Instance() {
    if (handle_ != nullptr && fns_.destroy != nullptr) {
        try {
            fns_.destroy(handle_);
        } catch (...) {
            spdlog::debug("strategy '{}' ({}) threw out of tg_plugin_destroy", name_, path_);
        }
    }
}

namespace {

std::string status_text(int32_t rc) {
    switch (rc) {
        case TG_ERR_INVALID_ARGS: return "returned TG_ERR_INVALID_ARGS";
        case TG_ERR_INTERNAL: return "returned TG_ERR_INTERNAL";
        case TG_ERR_NO_CANDIDATE: return "returned TG_ERR_NO_CANDIDATE";
        default: return "returned " + std::to_string(rc) + ", which is not a tg_status";
    }
}

int64_t steady_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

constexpr int64_t kFailureLogIntervalMs = 1000;

}  // namespace

int32_t Instance::route(const tg_request& request, tg_route& route) noexcept {
    RouteGuard guard;
    std::string error;
    return this->route(request, route, guard, error);
}

int32_t Instance::route(const tg_request& request, tg_route& route, RouteGuard& guard,
                        std::string& error) noexcept {
    error.clear();
    char reason[256];
    reason[0] = '\0';
    int32_t rc = TG_ERR_INTERNAL;
    try {
        guard.save(route);
    } catch (...) {
        return TG_ERR_INTERNAL;  // out of memory before the plugin ran: nothing to undo
    }
    route.error = reason;
    route.error_size = sizeof reason;
    bool threw = false;
    try {
        rc = fns_.route(handle_, &request, &route);
    } catch (...) {
        threw = true;
    }
    route.error = nullptr;
    route.error_size = 0;
    reason[sizeof reason - 1] = '\0';
    try {
        if (threw) {
            error = "threw an exception out of tg_plugin_route";
        } else if (rc == TG_OK) {
            if (std::string why = guard.violation(route); !why.empty()) error = "broke the route contract: " + why;
        } else if (rc != TG_ERR_NO_CANDIDATE) {
            error = status_text(rc);
            if (reason[0] != '\0') error += ": " + std::string(reason);
        }
    } catch (...) {
        error = "failed";  // out of memory while describing the failure
    }
    if (error.empty()) return rc;
    guard.restore(route);
    report_failure(request, error);
    return TG_ERR_INTERNAL;
}

void Instance::report_failure(const tg_request& request, const std::string& error) noexcept {
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (total_failures_) total_failures_->fetch_add(1, std::memory_order_relaxed);
    // One line a second per instance: a plugin failing on every request must
    // not flood the log (or slow the requests down writing it).
    const int64_t now = steady_now_ms();
    int64_t last = last_failure_log_ms_.load(std::memory_order_relaxed);
    if (last >= 0 && now - last < kFailureLogIntervalMs) {
        failures_unlogged_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (!last_failure_log_ms_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
        failures_unlogged_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const uint64_t suppressed = failures_unlogged_.exchange(0, std::memory_order_relaxed);
    try {
        spdlog::error("strategy '{}' ({}) failed routing request {}: {}; its decision is ignored{}", name_, path_,
                      request.request_id ? request.request_id : "?", error,
                      suppressed ? " (" + std::to_string(suppressed) + " more failures in the last interval)"
                                 : std::string());
    } catch (...) {
    }
}

void Instance::release_request(void* request_ctx) noexcept {
    if (request_ctx == nullptr || fns_.release_request == nullptr) return;
    try {
        fns_.release_request(handle_, request_ctx);
    } catch (...) {
        spdlog::debug("strategy '{}' ({}) threw out of tg_plugin_release_request", name_, path_);
    }
}

std::string Instance::adopt_state_from(Instance& previous) noexcept {
    try {
        if (previous.name_ != name_)
            return "cannot hand state of strategy '" + previous.name_ + "' to '" + name_ + "'";
        // The same mapping, whichever registry loaded it: each generation has its
        // own Registry, and dlopen of an unchanged file returns the mapping
        // already there (a changed one is loaded from a private copy: another one).
        if (previous.fns_.create != fns_.create)
            return "strategy '" + name_ + "': the previous instance comes from another library (" + previous.path_ +
                   "): its state layout is unknown";
        if (fns_.adopt_state == nullptr) return "strategy '" + name_ + "' (" + path_ + ") has no tg_plugin_adopt_state";
        int32_t rc = TG_ERR_INTERNAL;
        try {
            rc = fns_.adopt_state(handle_, previous.handle_);
        } catch (...) {
            return "strategy '" + name_ + "' threw out of tg_plugin_adopt_state";
        }
        if (rc != TG_OK) return "strategy '" + name_ + "' declined the previous state (" + status_text(rc) + ")";
        return {};
    } catch (...) {
        return "out of memory";
    }
}

std::string Instance::state_json() const noexcept {
    if (fns_.state_json == nullptr) return {};
    try {
        std::string buf(1024, '\0');
        for (int round = 0; round < 2; ++round) {
            const int32_t n = fns_.state_json(handle_, buf.data(), static_cast<uint32_t>(buf.size()));
            if (n < 0) return {};
            if (static_cast<size_t>(n) < buf.size()) {
                buf.resize(std::strlen(buf.c_str()));  // never past what the plugin terminated
                return buf;
            }
            if (static_cast<size_t>(n) >= kMaxStateJson) break;
            buf.assign(static_cast<size_t>(n) + 1, '\0');
        }
        spdlog::debug("strategy '{}' ({}): tg_plugin_state_json text too long or growing; not shown", name_, path_);
    } catch (...) {
        spdlog::debug("strategy '{}' ({}) threw out of tg_plugin_state_json", name_, path_);
    }
    return {};
}

bool Instance::admit(const tg_event& event) noexcept {
    if (!fns_.admit) return true;
    try {
        return fns_.admit(handle_, &event) != 0;
    } catch (...) {
        return true;
    }
}

void Instance::observe(const tg_event& event) noexcept {
    try {
        fns_.observe(handle_, &event);
    } catch (...) {
        spdlog::debug("strategy '{}' ({}) threw out of tg_plugin_observe", name_, path_);
    }
}

void Instance::observe_remote(const tg_event& event) noexcept {
    if (fns_.observe_remote == nullptr) return;
    try {
        fns_.observe_remote(handle_, &event);
    } catch (...) {
        spdlog::debug("strategy '{}' ({}) threw out of tg_plugin_observe_remote", name_, path_);
    }
}

}  // namespace tailgate::plugin
