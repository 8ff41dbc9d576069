// tailgate — OpenAI-compatible LLM gateway with pluggable routing strategies.
#include "config/config.hpp"
#include "metrics/json_log.hpp"
#include "plugin/loader.hpp"
#include "plugin/search_path.hpp"
#include "router/router.hpp"
#include "server/gateway.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

namespace {

const char* kUsage =
    "Usage: tailgate --config FILE [--host 127.0.0.1] [--port 4000] [--state-dir DIR] [--check]\n"
    "\n"
    "  --config FILE   LiteLLM-style config.yaml (model_list, router_settings, general_settings)\n"
    "  --host ADDR     listen address (default: general_settings.host, else 127.0.0.1)\n"
    "  --port N        listen port (default: general_settings.port, else 4000; 0 = any free port)\n"
    "  --state-dir DIR where admin API changes are kept (SQLite revision log; default: $TAILGATE_STATE_DIR,\n"
    "                  else in memory only: changes are lost at exit)\n"
    "  --check         validate the config and load the strategy plugins, print what would run, exit 0/1\n"
    "  --version       print the version\n"
    "  --help          this text\n"
    "\n"
    "Environment: TAILGATE_PLUGIN_PATH=dir1:dir2 adds plugin directories (absolute paths only).\n"
    "Signals: SIGHUP re-reads the config file (kept when invalid); SIGTERM/SIGINT drain and stop.\n";

void setup_logging(const tailgate::config::Config* cfg) {
    auto logger = spdlog::stderr_color_mt("tailgate");
    spdlog::set_default_logger(logger);
    std::string level = cfg ? cfg->general.log_level : "info";
    spdlog::set_level(spdlog::level::from_str(level));
    // JSON: one valid object per line (messages escaped by a custom flag).
    spdlog::set_formatter(tailgate::logfmt::make_formatter(cfg && cfg->general.log_format == "json"));
}

// The file a plugin instance was loaded from, symlinks resolved: with several
// search directories, this is what says which copy runs.
std::string resolved_path(const tailgate::plugin::Instance& p) {
    std::error_code ec;
    auto real = std::filesystem::canonical(p.path(), ec);
    return ec ? p.path() : real.string();
}

// Args may hold credentials (a plugin's own API key): --check never prints
// the value of a key named like one ("api_key", "x.secret", "auth_token", ...).
bool looks_like_credential(std::string_view key) {
    const std::string_view last = key.substr(key.rfind('.') == std::string_view::npos ? 0 : key.rfind('.') + 1);
    auto ends = [&](std::string_view suffix) {
        return last.size() >= suffix.size() && last.substr(last.size() - suffix.size()) == suffix;
    };
    return ends("api_key") || ends("apikey") || ends("secret") || ends("password") || ends("token") ||
           ends("credentials");
}

void print_plan(const tailgate::config::Config& cfg, const std::vector<std::string>& dirs,
                const tailgate::router::Router& router) {
    std::cout << "config: " << cfg.file << "\n";
    std::cout << "strategy chain:";
    for (const auto& s : cfg.router.strategies) std::cout << " " << s.name;
    // routing_strategy is kept as written in the file; the chain is what runs.
    std::cout << (cfg.router.strategies_explicit ? "  (from router_settings.strategies)"
                                                 : "  (from routing_strategy: " + cfg.router.routing_strategy + ")")
              << "\n";
    if (cfg.router.allow_request_strategy_override) {
        std::cout << "per-request strategies: " << router.allowed_request_strategies() << "\n";
    }
    std::cout << "plugin search path:";
    for (const auto& d : dirs) std::cout << " " << d;
    std::cout << "\nplugins:";
    for (size_t i = 0; i < router.instances().size(); ++i) {
        const auto* p = router.instances()[i];
        std::cout << "\n  " << p->name() << ": " << resolved_path(*p) << "\n    args:";
        size_t shown = 0;
        for (const auto& [k, v] : router.instance_args(i)) {
            if (k.rfind("router.", 0) == 0) continue;  // the router settings: the same for every instance
            const bool secret = looks_like_credential(k);
            std::cout << (shown++ ? ", " : " ") << k << "=" << (secret ? "***" : v);
        }
        std::cout << (shown ? "" : " (none)") << " (+ router.* settings)";
    }
    std::cout << "\nmaster_key: " << (cfg.general.master_key.empty() ? "(none: no auth)" : "***") << "\n";
    const auto& g = cfg.general;
    auto cap = [](int n) { return n > 0 ? std::to_string(n) : std::string("none"); };
    std::cout << "caps: max_concurrent_requests=" << cap(g.limits.max_concurrent_requests)
              << " max_open_streams=" << cap(g.limits.max_open_streams);
    for (const auto& [group, l] : g.group_limits)
        std::cout << " " << group << "=" << cap(l.max_concurrent_requests) << "/" << cap(l.max_open_streams);
    std::cout << "  drain_timeout=" << g.drain_timeout.count() << "ms\n";
    std::cout << "model groups:\n";
    for (const auto& g : cfg.model_groups()) {
        std::cout << "  " << g << "\n";
        for (const auto& d : cfg.deployments) {
            if (d.model_name != g) continue;
            std::cout << "    - id=" << d.id << " " << d.upstream.provider << "/" << d.upstream.model
                      << " api_base=" << d.api_base << " api_key=" << (d.upstream.api_key.empty() ? "(none)" : "***");
            if (d.weight > 0) std::cout << " weight=" << d.weight;
            if (d.rpm > 0) std::cout << " rpm=" << d.rpm;
            if (d.tpm > 0) std::cout << " tpm=" << d.tpm;
            std::cout << "\n";
        }
    }
    if (!cfg.router.model_group_alias.empty()) {
        std::cout << "model group aliases:\n";
        for (const auto& [alias, a] : cfg.router.model_group_alias)
            std::cout << "  " << alias << " -> " << a.group << (a.hidden ? "  (hidden)" : "") << "\n";
    }
}

// SIGTERM/SIGINT: new API requests are refused and readiness says "draining"
// while in-flight requests and streams get up to `timeout` to finish; the rest
// are then ended with an error (an SSE error event for a stream). A second
// signal skips the wait.
void drain(tailgate::server::Gateway& gw, std::chrono::milliseconds timeout, const sigset_t& signals, int sig) {
    using Clock = std::chrono::steady_clock;
    gw.begin_drain();
    spdlog::info("signal {} received: draining {} in-flight request(s), up to {} ms", sig, gw.in_flight(),
                 timeout.count());
    const auto deadline = Clock::now() + timeout;
    // Polled in short slices: this thread must also notice a second signal.
    const timespec slice{0, 20'000'000};
    while (gw.in_flight() > 0 && Clock::now() < deadline) {
        if (sigtimedwait(&signals, nullptr, &slice) > 0) {
            spdlog::warn("second stop signal: ending in-flight requests now");
            break;
        }
    }
    if (gw.in_flight() == 0) return;
    size_t cut = gw.abort_in_flight();
    spdlog::warn("drain period over: ended {} request(s) with an error", cut);
    // Give their handlers a moment to write the error to their clients.
    const auto grace = Clock::now() + std::chrono::seconds(2);
    while (gw.in_flight() > 0 && Clock::now() < grace) sigtimedwait(&signals, nullptr, &slice);
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path, host, state_dir;
    if (const char* d = std::getenv("TAILGATE_STATE_DIR")) state_dir = d;
    int port = -1;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "tailgate: " << name << " needs a value\n" << kUsage;
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            std::cout << kUsage;
            return 0;
        } else if (a == "--version") {
            std::cout << "tailgate " TAILGATE_VERSION " (plugin ABI " << TG_ABI_VERSION << ")\n";
            return 0;
        } else if (a == "--config" || a == "-c") {
            config_path = value("--config");
        } else if (a == "--host") {
            host = value("--host");
        } else if (a == "--port") {
            std::string v = value("--port");
            char* end = nullptr;
            long p = std::strtol(v.c_str(), &end, 10);
            if (*end != '\0' || p < 0 || p > 65535) {
                std::cerr << "tailgate: --port: not a port number: " << v << "\n";
                return 2;
            }
            port = static_cast<int>(p);
        } else if (a == "--state-dir") {
            state_dir = value("--state-dir");
        } else if (a == "--check") {
            check = true;
        } else {
            std::cerr << "tailgate: unknown argument '" << a << "'\n" << kUsage;
            return 2;
        }
    }
    if (config_path.empty()) {
        std::cerr << "tailgate: --config FILE is required\n" << kUsage;
        return 2;
    }

    std::shared_ptr<const tailgate::config::Config> cfg;
    try {
        cfg = std::make_shared<const tailgate::config::Config>(tailgate::config::load_file(config_path));
    } catch (const std::exception& e) {
        // The loader reports every error it found, one "file:line: key: message" a line.
        const std::string msg = e.what();
        const auto n = std::count(msg.begin(), msg.end(), '\n') + 1;
        if (n > 1)
            std::cerr << "tailgate: invalid config (" << n << " errors):\n" << msg << "\n";
        else
            std::cerr << "tailgate: invalid config: " << msg << "\n";
        return 1;
    }
    setup_logging(cfg.get());
    for (const auto& w : cfg->warnings) spdlog::warn("config: {}", w);
    auto dirs = tailgate::plugin::search_path(cfg->router.plugin_paths, std::getenv("TAILGATE_PLUGIN_PATH"));

    if (check) {
        try {
            tailgate::plugin::Registry registry(dirs);
            tailgate::router::Router router(cfg, registry);
            print_plan(*cfg, dirs, router);
            std::cout << "OK\n";
            return 0;
        } catch (const std::exception& e) {
            std::cerr << "tailgate: " << e.what() << "\n";
            return 1;
        }
    }

    // Block the signals before any thread starts; this thread waits for them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigset_t waited = stop_signals;
    sigaddset(&waited, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &waited, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::unique_ptr<tailgate::server::Gateway> gw;
    int bound = 0;
    try {
        auto store = state_dir.empty() ? tailgate::control::memory_store() : tailgate::control::open_sqlite_store(state_dir);
        spdlog::info("admin changes are kept in {}", store->where());
        auto responses = tailgate::control::open_response_store(state_dir, cfg->general.response_retention);
        spdlog::info("stored responses (Responses API) are kept in {}", responses->where());
        gw = std::make_unique<tailgate::server::Gateway>(cfg, std::move(store), std::move(responses));
        bound = gw->start(host.empty() ? cfg->general.host : host, port >= 0 ? port : cfg->general.port);
    } catch (const std::exception& e) {
        spdlog::error("cannot start: {}", e.what());
        return 1;
    }
    const auto gen = gw->generation();
    for (const auto* p : gen->router->instances())
        spdlog::info("strategy '{}' loaded from {}", p->name(), resolved_path(*p));
    std::string shown_host = host.empty() ? cfg->general.host : host;
    spdlog::info("tailgate {} listening on http://{}:{} — chain: {}", TAILGATE_VERSION, shown_host, bound,
                 [&] {
                     std::string s;
                     for (const auto& n : gen->router->chain_names()) s += (s.empty() ? "" : " → ") + n;
                     return s;
                 }());
    std::cout << "listening on " << shown_host << ":" << bound << std::endl;

    int sig = 0;
    // SIGHUP: reload on this thread (never an Asio one), then keep waiting.
    while (sigwait(&waited, &sig) == 0 && sig == SIGHUP) gw->reload("SIGHUP");
    drain(*gw, cfg->general.drain_timeout, stop_signals, sig);
    gw->stop();
    return 0;
}
