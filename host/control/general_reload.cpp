#include "control/general_reload.hpp"

namespace tailgate::control {

namespace {

using config::GeneralSettings;

bool same_limits(const GeneralSettings::Limits& a, const GeneralSettings::Limits& b) {
    return a.max_concurrent_requests == b.max_concurrent_requests && a.max_open_streams == b.max_open_streams;
}

bool same(const std::vector<std::pair<std::string, GeneralSettings::Limits>>& a,
          const std::vector<std::pair<std::string, GeneralSettings::Limits>>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].first != b[i].first || !same_limits(a[i].second, b[i].second)) return false;
    return true;
}

bool same(const config::Secret& a, const config::Secret& b) { return a.reveal() == b.reveal(); }

template <class T>
bool same(const T& a, const T& b) {
    return a == b;
}

class Reconcile {
public:
    Reconcile(const GeneralSettings& running, GeneralSettings& next) : running_(running), next_(next) {}

    // A key the new generation applies.
    template <class T>
    void live(const char* key, T GeneralSettings::*field) {
        if (!same(running_.*field, next_.*field)) out.live.push_back(std::string("general_settings.") + key);
    }
    // A key bound at start: a change is reported and the running value kept.
    template <class T>
    void restart(const char* key, T GeneralSettings::*field) {
        if (same(running_.*field, next_.*field)) return;
        next_.*field = running_.*field;
        out.requires_restart.push_back(std::string("general_settings.") + key);
    }
    void limits() {
        const auto &a = running_.limits, &b = next_.limits;
        if (a.max_concurrent_requests != b.max_concurrent_requests)
            out.live.push_back("general_settings.max_concurrent_requests");
        if (a.max_open_streams != b.max_open_streams) out.live.push_back("general_settings.max_open_streams");
    }
    // The master key rotates live; turning authentication on or off needs a
    // restart (the listener's exposure warning and every client's setup depend on it).
    void master_key() {
        const bool had = !running_.master_key.empty(), has = !next_.master_key.empty();
        if (running_.master_key.reveal() == next_.master_key.reveal()) return;
        if (had && has) {
            out.live.push_back("general_settings.master_key");
            return;
        }
        next_.master_key = running_.master_key;
        out.requires_restart.push_back("general_settings.master_key");
    }

    GeneralChanges out;

private:
    const GeneralSettings& running_;
    GeneralSettings& next_;
};

}  // namespace

// Every key must be classified below, or a reload would ignore its change
// silently. Adding a member to GeneralSettings trips this: add it to the live
// or the restart list, then update the size.
static_assert(sizeof(GeneralSettings) == 352,
              "general_settings gained a key: classify it in reconcile_general (live or restart), then update this size");

GeneralChanges reconcile_general(const GeneralSettings& running, GeneralSettings& next) {
    Reconcile r(running, next);
    r.master_key();
    r.live("metrics_auth", &GeneralSettings::metrics_auth);
    r.live("log_level", &GeneralSettings::log_level);
    r.limits();
    r.live("model_group_limits", &GeneralSettings::group_limits);
    r.live("overload_retry_after", &GeneralSettings::overload_retry_after_s);
    r.live("drain_timeout", &GeneralSettings::drain_timeout);
    r.live("allow_client_side_credentials", &GeneralSettings::allow_client_side_credentials);
    r.live("forward_client_headers", &GeneralSettings::forward_client_headers);
    r.restart("host", &GeneralSettings::host);
    r.restart("port", &GeneralSettings::port);
    r.restart("max_threads", &GeneralSettings::max_threads);
    r.restart("io_threads", &GeneralSettings::io_threads);
    r.restart("upstream_pool_size", &GeneralSettings::upstream_pool_size);
    r.restart("metrics", &GeneralSettings::metrics);
    r.restart("log_format", &GeneralSettings::log_format);
    r.restart("keep_alive_timeout", &GeneralSettings::keep_alive_timeout);
    r.restart("client_header_timeout", &GeneralSettings::client_header_timeout);
    r.restart("client_body_timeout", &GeneralSettings::client_body_timeout);
    r.restart("max_header_bytes", &GeneralSettings::max_header_bytes);
    r.restart("max_request_body_bytes", &GeneralSettings::max_body_bytes);
    r.restart("response_retention", &GeneralSettings::response_retention);
    // The key service and its store are opened once, at start (host/keys, host/store).
    r.restart("database_url", &GeneralSettings::database_url);
    r.restart("database_connection_pool_limit", &GeneralSettings::database_pool_size);
    r.restart("proxy_batch_write_at", &GeneralSettings::spend_write_interval);
    r.restart("key_refresh_interval", &GeneralSettings::key_refresh_interval);
    r.restart("disable_spend_logs", &GeneralSettings::disable_spend_logs);
    r.restart("metrics_key_alias", &GeneralSettings::metrics_key_alias);
    return std::move(r.out);
}

}  // namespace tailgate::control
