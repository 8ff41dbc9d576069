// The router configuration, in LiteLLM's config.yaml shape plus Tailgate's
// `router_settings.strategies`. Parsed once at start; immutable afterwards.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate::providers {
class Codec;
class Credentials;
struct Target;
}  // namespace tailgate::providers

namespace tailgate::config {

using Millis = std::chrono::milliseconds;

// Thrown by load(); what() is "file:line: key.path: message", one line per
// error when the file has several (all are reported at once).
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A secret value (api keys, master key): never printed; redacted() gives "***".
class Secret {
public:
    Secret() = default;
    explicit Secret(std::string v) : value_(std::move(v)) {}
    bool empty() const { return value_.empty(); }
    const std::string& reveal() const { return value_; }
    static const char* redacted() { return "***"; }

private:
    std::string value_;
};

// Kept for display and existing callers; the request path uses Upstream::codec.
enum class ProviderKind { OpenAICompatible, Azure };

// Where and how to reach one deployment; resolved from litellm_params.
struct Upstream {
    ProviderKind kind = ProviderKind::OpenAICompatible;
    std::string provider;        // "openai", "groq", "azure", ... (providers/registry.cpp)
    const providers::Codec* codec = nullptr;  // the provider's; set at load, never null after
    std::string model;           // upstream model name (after "provider/")
    bool tls = true;
    std::string host;            // e.g. "api.openai.com" / "127.0.0.1" (IPv6 literal without [])
    std::string port;            // "443" / "8001"
    std::string base_path;       // path prefix without trailing '/', e.g. "/v1"
    std::string api_version;     // azure api-version
    Secret api_key;
    bool ssl_verify = true;
    // The codec's own credentials (AWS keys, a token source), null for most.
    std::shared_ptr<const providers::Credentials> credentials;

    // A view for the codec (providers/codec.hpp); valid while this Upstream lives.
    providers::Target target() const;
};

struct Deployment {
    std::string id;              // model_info.id, or a stable generated one
    std::string model_name;      // the model group
    Upstream upstream;
    std::string api_base;        // as configured/defaulted, without credentials (for display)
    double weight = 0;
    int64_t rpm = 0;
    int64_t tpm = 0;
    std::optional<Millis> timeout;         // total
    std::optional<Millis> stream_timeout;  // first byte of a stream
    std::optional<int> num_retries;
    // litellm_params.additional_drop_params: top-level request fields removed
    // before this deployment is called (LiteLLM's per-deployment drop list).
    std::vector<std::string> additional_drop_params;
    std::optional<bool> drop_params;  // litellm_params.drop_params: this deployment's, over litellm_settings
    // Derived at load, so no request computes it: additional_drop_params, plus,
    // with drop_params (this deployment's, else litellm_settings'), the OpenAI
    // parameters its provider documents as refused (LiteLLM's drop_params).
    std::vector<std::string> dropped_fields;
    double input_cost_per_token = -1;      // < 0: unknown
    double output_cost_per_token = -1;
    int line = 0;                          // where it was declared
};

// One entry of router_settings.strategies or router_settings.request_strategies.
struct StrategySpec {
    std::string name;
    std::vector<std::pair<std::string, std::string>> args;  // flattened (see tg_args)
    int line = 0;
};

// Limits on a request's `strategies` list (extra_body). Any longer list or
// name cannot match the configured strategies anyway.
inline constexpr size_t kMaxRequestStrategies = 8;
inline constexpr size_t kMaxStrategyNameBytes = 128;

// router_settings.model_group_alias: a name clients may use for a real group.
struct GroupAlias {
    std::string group;    // the real (non-wildcard) model group serving it
    bool hidden = false;  // not listed by /v1/models
};

struct RouterSettings {
    std::string routing_strategy = "simple-shuffle";
    std::vector<std::pair<std::string, std::string>> routing_strategy_args;  // flattened
    std::vector<StrategySpec> strategies;  // explicit chain, or derived from routing_strategy
    bool strategies_explicit = false;
    std::vector<std::string> plugin_paths;
    int num_retries = 0;
    Millis timeout{600000};
    std::optional<Millis> stream_timeout;
    Millis connect_timeout{5000};
    // A request's own timeout / stream_timeout (extra_body) is clamped to this.
    Millis max_request_timeout{3600000};
    // Every Retry-After sent to a client is at most this: the OpenAI SDK sleeps
    // what it is told, and a doubling upstream or cooldown value would park it.
    Millis max_client_retry_after{5000};
    // When every deployment of a group (and of its fallbacks) is cooling, send
    // the request to the one whose cooldown ends first instead of refusing it.
    bool panic_routing = true;
    int allowed_fails = 3;
    Millis cooldown_time{5000};
    bool disable_cooldowns = false;
    // LiteLLM's allowed_fails_policy, e.g. {"TimeoutErrorAllowedFails": "5"} (flattened).
    std::vector<std::pair<std::string, std::string>> allowed_fails_policy;
    Millis retry_after{0};
    // fallbacks: [{"gpt-3.5-turbo": ["gpt-4"]}]
    std::vector<std::pair<std::string, std::vector<std::string>>> fallbacks;
    std::vector<std::pair<std::string, std::vector<std::string>>> context_window_fallbacks;
    bool allow_request_strategy_override = false;
    // Strategies a request's `strategies` list may name besides the chain's own
    // (same shape as `strategies`). Instances are made once at start, even with
    // the override off (a typo fails at start); a request never loads or
    // creates a plugin. Names are unique; a name already in the chain is
    // ignored here (the chain's instance and args are used).
    std::vector<StrategySpec> request_strategies;
    // alias -> group; resolved after exact groups and before wildcard patterns.
    std::map<std::string, GroupAlias> model_group_alias;
    // litellm_settings.drop_params: drop request fields the upstream does not support.
    bool drop_params = false;
    // Fraction of hedged/raced requests whose lost primary runs to completion
    // off the client's path, to measure the true counterfactual (0 = never).
    double shadow_sample_rate = 0;
    // Request headers (lower-case names) handed to strategies in tg_request.headers.
    std::vector<std::string> strategy_request_headers;
};

struct GeneralSettings {
    Secret master_key;
    std::string host = "127.0.0.1";
    int port = 4000;
    int max_threads = 256;         // Poco HTTPServer pool
    int io_threads = 1;            // Asio threads for upstream I/O
    size_t max_body_bytes = 10u * 1024 * 1024;
    Millis keep_alive_timeout{60000};
    int upstream_pool_size = 64;   // idle keep-alive connections kept per origin
    std::string log_level = "info";
    std::string log_format = "text"; // text | json
    bool metrics = true;             // GET /metrics (Prometheus); false: no collection at all
    bool metrics_auth = false;       // /metrics requires the master key
    // Client faults: a request's head and body must arrive within these, and
    // the head (request line + headers) must fit in max_header_bytes.
    Millis client_header_timeout{10000};
    Millis client_body_timeout{60000};
    size_t max_header_bytes = 64u * 1024;

    // Overload, shutdown and client-side credentials.
    struct Limits {
        int max_concurrent_requests = 0;  // API requests being handled; 0 = no cap
        int max_open_streams = 0;         // of which streams; 0 = no cap
    };
    Limits limits;                                              // the whole gateway
    std::vector<std::pair<std::string, Limits>> group_limits;   // per model group
    int overload_retry_after_s = 1;        // Retry-After on a cap or drain rejection
    Millis drain_timeout{25000};           // SIGTERM/SIGINT: time in-flight work gets to finish
    bool allow_client_side_credentials = false;  // api_key, api_base, ... in a request body
    // Client request headers passed on to the upstream (lower-case names; empty:
    // none). Hop-by-hop and credential headers are refused at load.
    std::vector<std::string> forward_client_headers;

    // Virtual keys and spend (host/keys, host/store).
    Secret database_url;                 // sqlite:///path or postgresql://...; "": DATABASE_URL, else the state dir
    int database_pool_size = 4;          // database_connection_pool_limit: connections (PostgreSQL)
    Millis spend_write_interval{1000};   // proxy_batch_write_at: spend is written this often (a crash loses less)
    Millis key_refresh_interval{5000};   // other replicas' key changes are read this often
    bool disable_spend_logs = false;     // keep totals, not one row per request
    bool metrics_key_alias = false;      // key_alias as a label of the per-key metrics (else the key's hash)
    // Responses API: how long stored responses (store: true, the default) are
    // kept for previous_response_id and GET /v1/responses/{id}; 0 keeps none.
    Millis response_retention{30LL * 24 * 3600 * 1000};
};

// Shared state across replicas through Redis (issue 18): LiteLLM's
// router_settings.redis_host / redis_port / redis_password / redis_url give
// the endpoint, Tailgate's top-level `shared_state:` section its knobs.
// Without an endpoint nothing is shared and nothing connects.
struct SharedStateSettings {
    bool enabled = false;        // an endpoint is configured
    std::string host;            // name or address
    int port = 6379;
    std::string username;        // ACL user from redis_url ("" = the default user)
    Secret password;             // never logged
    int db = 0;                  // SELECT db (redis_url path)
    // TLS (rediss://): Asio's ssl::stream over OpenSSL; hiredis only parses.
    bool tls = false;              // rediss:// turns it on
    std::string tls_ca_file;       // PEM CA bundle; "" = the system's default verify paths
    std::string tls_server_name;   // SNI and the name (or IP) the certificate must match; "" = host
    bool tls_verify = true;        // false only with a loud warning at load
    std::string key_prefix = "tailgate:";
    Millis sync_interval{100};   // how often events, leases and revisions are synchronised
    Millis connect_timeout{1000};
    Millis command_timeout{1000};  // replies later than this: Redis is taken as down
    Millis probe_lease{10000};     // how long one replica holds a half-open deployment's probe
    std::string replica_id;        // "" = hostname:pid
    std::string where;             // "file:line" of the endpoint, for messages
    // A readable endpoint for logs: host:port/db, never the password.
    std::string endpoint() const { return host + ":" + std::to_string(port) + (db ? "/" + std::to_string(db) : ""); }
};

struct Config {
    std::string file;
    std::vector<Deployment> deployments;
    RouterSettings router;
    GeneralSettings general;
    SharedStateSettings shared;
    // Non-fatal findings ("file:line: key.path: message"): unknown keys that were
    // ignored, deprecated strategies that were mapped, ignored sections.
    std::vector<std::string> warnings;

    // Model groups in first-appearance order.
    std::vector<std::string> model_groups() const;
    bool has_group(const std::string& g) const;
};

// Parses and validates a config file. Throws ConfigError.
// `env` resolves os.environ/VAR (defaults to getenv; tests inject one).
using EnvLookup = std::optional<std::string> (*)(const std::string&);
Config load_file(const std::string& path, EnvLookup env = nullptr);
Config load_string(const std::string& yaml_text, const std::string& display_name,
                   EnvLookup env = nullptr);

// LiteLLM's wildcard model groups: a model_name with one '*' ("*", "openai/*",
// "claude-3-*") serves every requested name it matches; exact names win.
bool is_wildcard(std::string_view model_name);
// What the '*' of `pattern` stands for in `name` (never empty), or nullopt.
std::optional<std::string> match_wildcard(std::string_view pattern, std::string_view name);
// The model name sent upstream: the deployment's, a '*' in it replaced by
// `capture` (litellm_params.model: openai/* sends what the client asked for).
std::string upstream_model(const Deployment& d, std::string_view capture);

// Default chain for a LiteLLM routing_strategy name, e.g.
// "simple-shuffle" -> [health, simple-shuffle], "latency-based-routing" -> [health, latency].
std::vector<std::string> default_chain(const std::string& routing_strategy);

// Parses "500ms", "2s", "1.5m", "1h", or a bare number of seconds ("60", "0.5").
// Negative, non-finite or malformed text gives nullopt.
std::optional<Millis> parse_duration(const std::string& text);

// Parses a byte size: a bare integer ("1048576"), or a number with a unit:
// B, KB/MB/GB (powers of 1000), KiB/MiB/GiB and K/M/G (powers of 1024);
// units are case-insensitive ("10MiB", "1MB", "512k"). nullopt if malformed.
std::optional<uint64_t> parse_size(const std::string& text);

// The deployment's codec; for an Upstream built by hand (tests), the one its kind names.
const providers::Codec& codec_of(const Upstream& u);

// Provider prefixes accepted in litellm_params.model, e.g. "openai", "azure".
const std::vector<std::string>& supported_providers();

// routing_strategy values accepted in router_settings.
const std::vector<std::string>& supported_routing_strategies();

}  // namespace tailgate::config
