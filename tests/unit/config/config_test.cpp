// Config loader tests: the shipped configs, provider resolution, env lookup,
// ids, durations/sizes, args flattening, derived chains, and exact error text.
#include "config/config.hpp"
#include "providers/codec.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

using namespace tailgate::config;
using namespace std::chrono_literals;

namespace {

// Injected environment (EnvLookup is a plain function pointer).
std::map<std::string, std::string>& fake_env_vars() {
    static std::map<std::string, std::string> vars;
    return vars;
}

std::optional<std::string> fake_env(const std::string& name) {
    auto& vars = fake_env_vars();
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
}

// The providers the error lists, in table order (the list grows with the registry).
std::string provider_list() {
    std::string out;
    for (const auto& name : tailgate::config::supported_providers()) out += (out.empty() ? "" : ", ") + name;
    return out;
}

std::string data_path(const std::string& name) {
    return std::string(TAILGATE_TEST_DATA_DIR) + "/configs/" + name;
}

std::string shipped_path(const std::string& name) {
    return std::string(TAILGATE_TEST_DATA_DIR) + "/../../../configs/" + name;
}

// The error text of loading `path`; every bad file carries literal keys
// containing "SECRET", which must never show up in a message.
std::string file_error(const std::string& path) {
    try {
        load_file(path, fake_env);
    } catch (const ConfigError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find("SECRET"), std::string::npos) << "secret leaked: " << msg;
        return msg;
    }
    ADD_FAILURE() << path << " loaded without error";
    return {};
}

std::string string_error(const std::string& yaml) {
    try {
        load_string(yaml, "inline.yaml", fake_env);
    } catch (const ConfigError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find("SECRET"), std::string::npos) << "secret leaked: " << msg;
        return msg;
    }
    ADD_FAILURE() << "loaded without error:\n" << yaml;
    return {};
}

Config load(const std::string& yaml) { return load_string(yaml, "inline.yaml", fake_env); }

// One deployment with `params` as extra litellm_params lines.
std::string one(const std::string& model, const std::string& params = "") {
    return "model_list:\n"
           "  - model_name: g\n"
           "    litellm_params:\n"
           "      model: " + model + "\n" + params;
}

std::string arg(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& k) {
    for (const auto& [key, value] : kv) {
        if (key == k) return value;
    }
    return "<absent>";
}

std::vector<std::string> names(const std::vector<StrategySpec>& chain) {
    std::vector<std::string> out;
    for (const auto& s : chain) out.push_back(s.name);
    return out;
}

bool has_warning(const Config& c, const std::string& needle) {
    for (const auto& w : c.warnings) {
        if (w.find(needle) != std::string::npos) return true;
    }
    return false;
}

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override { fake_env_vars().clear(); }
    void TearDown() override { fake_env_vars().clear(); }
};

using ConfigShipped = ConfigTest;
using ConfigProviders = ConfigTest;
using ConfigEnv = ConfigTest;
using ConfigIds = ConfigTest;
using ConfigArgs = ConfigTest;
using ConfigRouter = ConfigTest;
using ConfigGeneral = ConfigTest;
using ConfigWarnings = ConfigTest;
using ConfigErrors = ConfigTest;
using ConfigLitellm = ConfigTest;
using ConfigInclude = ConfigTest;

// A fresh directory for the files one test writes (include tests).
std::string temp_dir(const std::string& name) {
    namespace fs = std::filesystem;
    const fs::path d = fs::path(::testing::TempDir()) / ("tailgate_config_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
}

void write_file(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

// ---------------------------------------------------------------------------
// Shipped configs
// ---------------------------------------------------------------------------

TEST_F(ConfigShipped, DemoLoads) {
    const Config c = load_file(shipped_path("demo.yaml"), fake_env);
    EXPECT_EQ(c.model_groups(),
              (std::vector<std::string>{"gpt-3.5-turbo", "groq-llama", "text-embedding-3-small"}));
    ASSERT_EQ(c.deployments.size(), 4u);
    const auto& a = c.deployments[0];
    EXPECT_EQ(a.upstream.provider, "openai");
    EXPECT_EQ(a.upstream.model, "gpt-3.5-turbo");
    EXPECT_FALSE(a.upstream.tls);
    EXPECT_EQ(a.upstream.host, "127.0.0.1");
    EXPECT_EQ(a.upstream.port, "18001");
    EXPECT_EQ(a.upstream.base_path, "/v1");
    EXPECT_EQ(a.upstream.api_key.reveal(), "sk-mock");
    EXPECT_EQ(a.api_base, "http://127.0.0.1:18001/v1");
    EXPECT_DOUBLE_EQ(a.weight, 2);
    EXPECT_DOUBLE_EQ(c.deployments[1].weight, 1);
    EXPECT_EQ(c.deployments[1].upstream.port, "18002");
    EXPECT_EQ(c.deployments[2].upstream.provider, "groq");
    EXPECT_EQ(c.deployments[2].upstream.model, "llama-3.1-8b-instant");
    EXPECT_EQ(c.deployments[2].upstream.port, "18003");
    EXPECT_EQ(c.deployments[3].upstream.port, "18001");
    EXPECT_EQ(c.router.routing_strategy, "simple-shuffle");
    EXPECT_EQ(names(c.router.strategies), (std::vector<std::string>{"health", "simple-shuffle"}));
    EXPECT_FALSE(c.router.strategies_explicit);
    EXPECT_EQ(c.general.port, 4000);
    EXPECT_TRUE(c.general.master_key.empty());
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
}

TEST_F(ConfigShipped, SeedLoads) {
    const Config c = load_file(shipped_path("seed.yaml"), fake_env);
    EXPECT_EQ(c.model_groups(), (std::vector<std::string>{"gpt-3.5-turbo", "groq-llama"}));
    ASSERT_EQ(c.deployments.size(), 3u);
    EXPECT_EQ(c.deployments[0].upstream.api_key.reveal(), "sk-xxx");
    EXPECT_EQ(c.deployments[1].upstream.provider, "groq");
    EXPECT_EQ(c.deployments[1].model_name, "gpt-3.5-turbo");
    EXPECT_EQ(c.deployments[1].upstream.api_key.reveal(), "gsk-xxx");
    EXPECT_EQ(c.deployments[2].upstream.port, "18003");
    EXPECT_EQ(c.router.routing_strategy, "latency-based-routing");
    EXPECT_EQ(c.router.allowed_fails, 3);
    EXPECT_EQ(c.router.cooldown_time, 60s);
    EXPECT_EQ(names(c.router.strategies), (std::vector<std::string>{"health", "latency"}));
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
}

TEST_F(ConfigShipped, ReferenceLoadsAndCoversEveryKey) {
    const std::string path = shipped_path("reference.yaml");
    const Config c = load_file(path, fake_env);
    ASSERT_EQ(c.deployments.size(), 6u);
    const auto& d = c.deployments[0];
    EXPECT_EQ(d.id, "gpt-4o-openai");
    EXPECT_EQ(d.rpm, 500);
    EXPECT_EQ(d.tpm, 200000);
    EXPECT_DOUBLE_EQ(d.weight, 2);
    EXPECT_EQ(d.timeout, Millis(600000));
    EXPECT_EQ(d.stream_timeout, Millis(30000));
    EXPECT_EQ(d.num_retries, 2);
    EXPECT_DOUBLE_EQ(d.input_cost_per_token, 0.0000025);
    EXPECT_DOUBLE_EQ(d.output_cost_per_token, 0.00001);
    EXPECT_TRUE(d.upstream.ssl_verify);
    const auto& az = c.deployments[1];
    EXPECT_EQ(az.upstream.kind, ProviderKind::Azure);
    EXPECT_EQ(az.upstream.api_version, "2024-02-01");
    EXPECT_EQ(az.num_retries, 1);
    const auto& claude = c.deployments[2];
    EXPECT_EQ(codec_of(claude.upstream).name(), "anthropic");
    EXPECT_EQ(claude.upstream.base_path, "/v1") << "the origin gets Messages' /v1";
    EXPECT_EQ(claude.upstream.api_version, "2023-06-01");
    EXPECT_EQ(c.deployments[3].upstream.model, "meta-llama/Llama-3.1-8B-Instruct");
    EXPECT_FALSE(c.deployments[3].upstream.ssl_verify);
    const auto& br = c.deployments[5];
    EXPECT_EQ(br.upstream.provider, "bedrock");
    EXPECT_EQ(br.api_base, "https://bedrock-runtime.us-east-1.amazonaws.com");
    EXPECT_NE(br.upstream.credentials, nullptr);

    const auto& r = c.router;
    EXPECT_EQ(r.routing_strategy, "latency-based-routing");
    EXPECT_TRUE(r.strategies_explicit);
    EXPECT_EQ(names(r.strategies), (std::vector<std::string>{"health", "latency"}));
    EXPECT_EQ(arg(r.strategies[1].args, "ttl"), "3600");
    EXPECT_EQ(arg(r.routing_strategy_args, "ttl"), "3600");
    ASSERT_EQ(r.plugin_paths.size(), 1u);
    EXPECT_NE(r.plugin_paths[0].find("build/lib/tailgate/plugins"), std::string::npos);
    EXPECT_EQ(r.plugin_paths[0].find(".."), std::string::npos) << r.plugin_paths[0];
    EXPECT_EQ(r.num_retries, 2);
    EXPECT_EQ(r.timeout, 600s);
    EXPECT_EQ(r.stream_timeout, Millis(60000));
    EXPECT_EQ(r.connect_timeout, 5s);
    EXPECT_EQ(r.allowed_fails, 3);
    EXPECT_EQ(r.cooldown_time, 60s);
    EXPECT_FALSE(r.disable_cooldowns);
    EXPECT_EQ(r.retry_after, 0s);
    ASSERT_EQ(r.fallbacks.size(), 1u);
    EXPECT_EQ(r.fallbacks[0].first, "gpt-4o");
    EXPECT_EQ(r.fallbacks[0].second, (std::vector<std::string>{"llama-local"}));
    ASSERT_EQ(r.context_window_fallbacks.size(), 1u);
    EXPECT_EQ(r.context_window_fallbacks[0].first, "llama-local");
    EXPECT_FALSE(r.allow_request_strategy_override);
    EXPECT_EQ(names(r.request_strategies), (std::vector<std::string>{"race", "staggered-hedge"}));
    EXPECT_EQ(arg(r.request_strategies[1].args, "delay"), "p95");

    const auto& g = c.general;
    EXPECT_EQ(g.master_key.reveal(), "sk-master-replace-me");
    EXPECT_EQ(g.host, "127.0.0.1");
    EXPECT_EQ(g.port, 4000);
    EXPECT_EQ(g.max_threads, 256);
    EXPECT_EQ(g.io_threads, 1);
    EXPECT_EQ(g.max_body_bytes, 10u * 1024 * 1024);
    EXPECT_EQ(g.keep_alive_timeout, 60s);
    EXPECT_EQ(g.upstream_pool_size, 64);
    EXPECT_EQ(g.log_level, "info");
    EXPECT_EQ(g.log_format, "text");

    EXPECT_EQ(d.additional_drop_params, (std::vector<std::string>{"logit_bias"}));
    EXPECT_TRUE(r.drop_params);
    ASSERT_EQ(r.model_group_alias.size(), 2u);
    EXPECT_EQ(r.model_group_alias.at("gpt-4").group, "gpt-4o");
    EXPECT_TRUE(r.model_group_alias.at("llama-internal").hidden);

    // Exactly the one documented warning: routing_strategy_args unused with an
    // explicit chain. Any other warning means reference.yaml shows a key the
    // loader does not read.
    std::string all;
    for (const auto& w : c.warnings) all += w + "\n";
    ASSERT_EQ(c.warnings.size(), 1u) << all;
    EXPECT_TRUE(has_warning(c, "router_settings.routing_strategy_args: not applied"));
}

// A LiteLLM config brought unchanged: honoured where it can be, one warning per
// unsupported key, nothing refused (environment_variables feed os.environ/).
TEST_F(ConfigShipped, LitellmMigrationLoads) {
    const Config c = load_file(shipped_path("litellm-migration.yaml"), fake_env);
    EXPECT_EQ(c.deployments[0].upstream.api_key.reveal(), "sk-mock-migration");
    EXPECT_EQ(c.deployments[0].additional_drop_params, (std::vector<std::string>{"logit_bias"}));
    EXPECT_EQ(c.router.num_retries, 2);
    EXPECT_EQ(c.router.timeout, 120s);
    EXPECT_TRUE(c.router.drop_params);
    ASSERT_EQ(c.router.fallbacks.size(), 1u);
    EXPECT_EQ(c.router.fallbacks[0].second, (std::vector<std::string>{"llama-fast"}));
    EXPECT_EQ(c.router.model_group_alias.at("gpt-4").group, "gpt-4o");
    std::set<std::string> keys;
    for (const auto& w : c.warnings) {
        EXPECT_EQ(w.find("success_callback"), std::string::npos) << w;
        const auto colon = w.find(": ", w.find(".yaml:") + 6);
        EXPECT_TRUE(keys.insert(w.substr(colon, w.find(": ", colon + 2) - colon)).second) << "twice: " << w;
    }
}

// ---------------------------------------------------------------------------
// Providers and api_base
// ---------------------------------------------------------------------------

TEST_F(ConfigProviders, DefaultApiBases) {
    struct Case {
        const char* model;
        bool tls;
        const char* host;
        const char* port;
        const char* path;
    };
    const Case cases[] = {
        {"openai/gpt-4o", true, "api.openai.com", "443", "/v1"},
        {"groq/llama-3.1-8b-instant", true, "api.groq.com", "443", "/openai/v1"},
        {"together_ai/meta-llama/Llama-3-8b-chat-hf", true, "api.together.xyz", "443", "/v1"},
        {"deepseek/deepseek-chat", true, "api.deepseek.com", "443", "/v1"},
        {"ollama/llama3", false, "localhost", "11434", "/v1"},
    };
    for (const auto& k : cases) {
        SCOPED_TRACE(k.model);
        const Config c = load(one(k.model));
        const Upstream& u = c.deployments[0].upstream;
        EXPECT_EQ(u.kind, ProviderKind::OpenAICompatible);
        EXPECT_EQ(u.tls, k.tls);
        EXPECT_EQ(u.host, k.host);
        EXPECT_EQ(u.port, k.port);
        EXPECT_EQ(u.base_path, k.path);
    }
    EXPECT_EQ(load(one("together_ai/meta-llama/Llama-3-8b-chat-hf")).deployments[0].upstream.model,
              "meta-llama/Llama-3-8b-chat-hf");
    EXPECT_EQ(load(one("groq/x")).deployments[0].api_base, "https://api.groq.com/openai/v1");
}

TEST_F(ConfigProviders, BareModelMeansOpenAI) {
    const Upstream u = load(one("gpt-4o")).deployments[0].upstream;
    EXPECT_EQ(u.provider, "openai");
    EXPECT_EQ(u.model, "gpt-4o");
    EXPECT_EQ(u.host, "api.openai.com");
}

TEST_F(ConfigProviders, ApiBaseParsing) {
    auto up = [](const std::string& base) {
        return load(one("openai/m", "      api_base: " + base + "\n")).deployments[0];
    };
    const Deployment a = up("https://example.com/");
    EXPECT_TRUE(a.upstream.tls);
    EXPECT_EQ(a.upstream.port, "443");
    EXPECT_EQ(a.upstream.base_path, "");
    EXPECT_EQ(a.api_base, "https://example.com");
    const Deployment b = up("http://example.com/openai/v1//");
    EXPECT_FALSE(b.upstream.tls);
    EXPECT_EQ(b.upstream.port, "80");
    EXPECT_EQ(b.upstream.base_path, "/openai/v1");
    const Deployment c = up("HTTP://10.0.0.5:8080/v1");
    EXPECT_EQ(c.upstream.host, "10.0.0.5");
    EXPECT_EQ(c.upstream.port, "8080");
    const Deployment d = up("http://[::1]:9000/v1");
    EXPECT_EQ(d.upstream.host, "::1");
    EXPECT_EQ(d.upstream.port, "9000");
    EXPECT_EQ(d.api_base, "http://[::1]:9000/v1");
}

TEST_F(ConfigProviders, ApiBaseCredentialsAreDroppedAndNeverShown) {
    const Config c = load(one("openai/m", "      api_base: https://bob:SECRET-pw@example.com/v1\n"));
    EXPECT_EQ(c.deployments[0].api_base, "https://example.com/v1");
    EXPECT_EQ(c.deployments[0].upstream.host, "example.com");
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_EQ(c.warnings[0],
              "inline.yaml:5: model_list[0].litellm_params.api_base: credentials in the URL are "
              "ignored; use api_key");
    EXPECT_EQ(string_error(one("openai/m", "      api_base: https://bob:SECRET-pw@example.com:0/v1\n")),
              "inline.yaml:5: model_list[0].litellm_params.api_base: invalid port '0' in "
              "'https://***@example.com:0/v1'");
}

TEST_F(ConfigProviders, BadApiBase) {
    EXPECT_EQ(string_error(one("openai/m", "      api_base: ftp://example.com\n")),
              "inline.yaml:5: model_list[0].litellm_params.api_base: unsupported scheme 'ftp' in "
              "'ftp://example.com' (expected http or https)");
    EXPECT_EQ(string_error(one("openai/m", "      api_base: localhost:8000/v1\n")),
              "inline.yaml:5: model_list[0].litellm_params.api_base: expected an http:// or "
              "https:// URL, got 'localhost:8000/v1'");
    EXPECT_EQ(string_error(one("openai/m", "      api_base: http://h/v1?x=1\n")),
              "inline.yaml:5: model_list[0].litellm_params.api_base: must not contain a query or "
              "fragment: 'http://h/v1?x=1'");
}

TEST_F(ConfigProviders, OllamaBareOriginGetsV1) {
    const Upstream u = load(one("ollama/llama3", "      api_base: http://gpu-box:11434\n")).deployments[0].upstream;
    EXPECT_EQ(u.host, "gpu-box");
    EXPECT_EQ(u.base_path, "/v1");
}

TEST_F(ConfigProviders, HostedVllmRequiresApiBase) {
    EXPECT_EQ(string_error(one("hosted_vllm/llama", "      api_key: SECRET-k\n")),
              "inline.yaml:4: model_list[0].litellm_params.api_base: missing (required for "
              "provider 'hosted_vllm')");
    const Upstream u =
        load(one("hosted_vllm/meta/llama", "      api_base: http://127.0.0.1:8000/v1\n")).deployments[0].upstream;
    EXPECT_EQ(u.provider, "hosted_vllm");
    EXPECT_EQ(u.model, "meta/llama");
    EXPECT_EQ(u.base_path, "/v1");
}

TEST_F(ConfigProviders, Azure) {
    const Config c = load(one("azure/gpt-35-turbo", "      api_base: https://myres.openai.azure.com/\n"
                                                  "      api_key: SECRET-az\n"));
    const Upstream& u = c.deployments[0].upstream;
    EXPECT_EQ(u.kind, ProviderKind::Azure);
    EXPECT_EQ(u.provider, "azure");
    EXPECT_EQ(u.model, "gpt-35-turbo");
    EXPECT_TRUE(u.tls);
    EXPECT_EQ(u.host, "myres.openai.azure.com");
    EXPECT_EQ(u.port, "443");
    EXPECT_EQ(u.base_path, "/openai/deployments/gpt-35-turbo");
    EXPECT_EQ(u.api_version, "2024-02-01");
    EXPECT_EQ(c.deployments[0].api_base, "https://myres.openai.azure.com");

    const Upstream v = load(one("azure/dep1", "      api_base: https://r.example.com/openai\n"
                                             "      api_version: 2024-10-21\n"))
                           .deployments[0]
                           .upstream;
    EXPECT_EQ(v.base_path, "/openai/deployments/dep1");
    EXPECT_EQ(v.api_version, "2024-10-21");

    EXPECT_EQ(string_error(one("azure/gpt-35-turbo")),
              "inline.yaml:4: model_list[0].litellm_params.api_base: missing (required for "
              "provider 'azure')");
}

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

TEST_F(ConfigEnv, ResolvesAnyString) {
    fake_env_vars() = {{"KEY", "SECRET-from-env"},
                       {"BASE", "http://10.1.2.3:7000/v1"},
                       {"MASTER", "sk-master-env"},
                       {"GROUP", "env-group"},
                       {"TTL", "90"}};
    const Config c = load(
        "model_list:\n"
        "  - model_name: os.environ/GROUP\n"
        "    litellm_params:\n"
        "      model: openai/m\n"
        "      api_key: os.environ/KEY\n"
        "      api_base: os.environ/BASE\n"
        "router_settings:\n"
        "  routing_strategy: latency-based-routing\n"
        "  routing_strategy_args: {ttl: os.environ/TTL}\n"
        "general_settings:\n"
        "  master_key: os.environ/MASTER\n");
    const Deployment& d = c.deployments[0];
    EXPECT_EQ(d.model_name, "env-group");
    EXPECT_EQ(d.upstream.api_key.reveal(), "SECRET-from-env");
    EXPECT_EQ(d.upstream.host, "10.1.2.3");
    EXPECT_EQ(d.upstream.port, "7000");
    EXPECT_EQ(c.general.master_key.reveal(), "sk-master-env");
    EXPECT_EQ(arg(c.router.strategies[1].args, "ttl"), "90");
}

TEST_F(ConfigEnv, MissingVariableNamesKeyAndLine) {
    // Both broken entries are reported at once (one line each).
    EXPECT_EQ(file_error(data_path("missing_env.yaml")),
              data_path("missing_env.yaml") +
                  ":5: model_list[0].litellm_params.api_base: environment variable "
                  "TG_TEST_API_BASE is not set\n" +
                  data_path("missing_env.yaml") +
                  ":10: model_list[1].litellm_params.api_key: environment variable OPENAI_API_KEY "
                  "is not set");
    fake_env_vars() = {{"TG_TEST_API_BASE", "http://127.0.0.1:18001/v1"},
                       {"TG_TEST_SECRET_KEY", "sk-SECRET-env-value"}};
    EXPECT_EQ(file_error(data_path("missing_env.yaml")),
              data_path("missing_env.yaml") +
                  ":10: model_list[1].litellm_params.api_key: environment variable OPENAI_API_KEY "
                  "is not set");
}

TEST_F(ConfigEnv, SecretsNeverInErrors) {
    // Values from the environment are never quoted in messages, secret or not.
    fake_env_vars() = {{"K", "sk-SECRET-1"}, {"R", "SECRET-not-a-number"}};
    EXPECT_EQ(string_error(one("openai/m", "      api_key: os.environ/K\n      rpm: os.environ/R\n")),
              "inline.yaml:6: model_list[0].litellm_params.rpm: expected an integer, got the value "
              "of os.environ/R");
    // A key of the wrong shape is not echoed either.
    EXPECT_EQ(string_error(one("openai/m", "      api_key: [SECRET-a, SECRET-b]\n")),
              "inline.yaml:5: model_list[0].litellm_params.api_key: expected a string, got a list");
    EXPECT_EQ(string_error("model_list:\n  - model_name: g\n    litellm_params: {model: openai/m}\n"
                           "general_settings:\n  master_key: {SECRET: x}\n"),
              "inline.yaml:5: general_settings.master_key: expected a string, got a map");
}

TEST_F(ConfigEnv, ProviderKeyVariableWhenApiKeyAbsent) {
    EXPECT_TRUE(load(one("openai/m")).deployments[0].upstream.api_key.empty());
    fake_env_vars() = {{"OPENAI_API_KEY", "sk-openai"}, {"GROQ_API_KEY", "gsk-groq"},
                       {"TOGETHER_API_KEY", "tg"}};
    EXPECT_EQ(load(one("openai/m")).deployments[0].upstream.api_key.reveal(), "sk-openai");
    EXPECT_EQ(load(one("groq/m")).deployments[0].upstream.api_key.reveal(), "gsk-groq");
    EXPECT_EQ(load(one("together_ai/m")).deployments[0].upstream.api_key.reveal(), "tg");
    EXPECT_TRUE(load(one("ollama/m")).deployments[0].upstream.api_key.empty());
    // An explicit api_key wins.
    EXPECT_EQ(load(one("openai/m", "      api_key: sk-explicit\n")).deployments[0].upstream.api_key.reveal(),
              "sk-explicit");
}

// ---------------------------------------------------------------------------
// Deployment ids
// ---------------------------------------------------------------------------

TEST_F(ConfigIds, GeneratedIdsAreStableAndDistinct) {
    const Config a = load_file(shipped_path("demo.yaml"), fake_env);
    const Config b = load_file(shipped_path("demo.yaml"), fake_env);
    ASSERT_EQ(a.deployments.size(), b.deployments.size());
    for (size_t i = 0; i < a.deployments.size(); ++i) {
        EXPECT_EQ(a.deployments[i].id, b.deployments[i].id);
        EXPECT_EQ(a.deployments[i].id.size(), 16u);
    }
    // Pinned: FNV-1a 64 of "model_name\nprovider/model\napi_base\nduplicate-index".
    // A change here changes every deployment id users have seen in headers/metrics.
    EXPECT_EQ(a.deployments[0].id, "352f5fe1130500a5");
    EXPECT_EQ(a.deployments[2].id, "b9435c6c3581ecaa");
}

TEST_F(ConfigIds, IdenticalDeploymentsGetDistinctIds) {
    const std::string entry =
        "  - model_name: g\n"
        "    litellm_params:\n"
        "      model: openai/gpt-3.5-turbo\n"
        "      api_base: http://127.0.0.1:18001/v1\n";
    const Config c = load("model_list:\n" + entry + entry);
    ASSERT_EQ(c.deployments.size(), 2u);
    EXPECT_NE(c.deployments[0].id, c.deployments[1].id);
    // Independent of the api_key (and of anything secret).
    const Config k = load("model_list:\n" + entry + "      api_key: sk-other\n");
    EXPECT_EQ(k.deployments[0].id, c.deployments[0].id);
}

TEST_F(ConfigIds, ExplicitIdKept) {
    const Config c = load(one("openai/m") + "    model_info:\n      id: my-id\n      mode: chat\n");
    EXPECT_EQ(c.deployments[0].id, "my-id");
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(ConfigIds, DuplicateIdNamesBothLines) {
    EXPECT_EQ(file_error(data_path("duplicate_id.yaml")),
              data_path("duplicate_id.yaml") +
                  ":14: model_list[1].model_info.id: duplicate id 'deployment-a' (first used at "
                  "line 7, model_list[0])");
}

// ---------------------------------------------------------------------------
// Durations and sizes
// ---------------------------------------------------------------------------

TEST(ConfigDuration, Parses) {
    EXPECT_EQ(parse_duration("60"), Millis(60000));
    EXPECT_EQ(parse_duration("0.5"), Millis(500));
    EXPECT_EQ(parse_duration("500ms"), Millis(500));
    EXPECT_EQ(parse_duration("2s"), Millis(2000));
    EXPECT_EQ(parse_duration("1.5m"), Millis(90000));
    EXPECT_EQ(parse_duration("1h"), Millis(3600000));
    EXPECT_EQ(parse_duration(" 250 ms "), Millis(250));
    EXPECT_EQ(parse_duration("0"), Millis(0));
    EXPECT_EQ(parse_duration("1e3ms"), Millis(1000));
}

TEST(ConfigDuration, Rejects) {
    for (const char* bad : {"", "abc", "-1", "-5s", "5x", "1.5.2s", "ms", "nan", "inf", "1e30h"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    }
}

TEST(ConfigDuration, SizeParses) {
    EXPECT_EQ(parse_size("1048576"), 1048576u);
    EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
    EXPECT_EQ(parse_size("1MB"), 1000000u);
    EXPECT_EQ(parse_size("512k"), 512u * 1024);
    EXPECT_EQ(parse_size("1.5KiB"), 1536u);
    EXPECT_EQ(parse_size("2 gib"), 2ull * 1024 * 1024 * 1024);
    for (const char* bad : {"", "ten", "-1", "1.5", "10XB"}) {
        EXPECT_FALSE(parse_size(bad).has_value()) << bad;
    }
}

TEST_F(ConfigRouter, DurationsInConfig) {
    const Config c = load(one("openai/m", "      timeout: 1.5m\n      stream_timeout: 250ms\n") +
                          "router_settings:\n  cooldown_time: 60\n  timeout: 30\n"
                          "  retry_after: 2s\n  stream_timeout: 1h\n");
    EXPECT_EQ(c.deployments[0].timeout, Millis(90000));
    EXPECT_EQ(c.deployments[0].stream_timeout, Millis(250));
    EXPECT_EQ(c.router.cooldown_time, 60s);
    EXPECT_EQ(c.router.timeout, 30s);
    EXPECT_EQ(c.router.retry_after, 2s);
    EXPECT_EQ(c.router.stream_timeout, Millis(3600000));
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  cooldown_time: soon\n"),
              "inline.yaml:6: router_settings.cooldown_time: expected a duration (seconds, or e.g. "
              "500ms, 2s, 1.5m, 1h), got 'soon'");
    EXPECT_EQ(string_error(one("openai/m", "      timeout: 0\n")),
              "inline.yaml:5: model_list[0].litellm_params.timeout: must be greater than 0");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  connect_timeout: 0ms\n"),
              "inline.yaml:6: router_settings.connect_timeout: must be greater than 0");
    // cooldown_time and retry_after may be 0.
    const Config z = load(one("openai/m") + "router_settings:\n  cooldown_time: 0\n  retry_after: 0\n");
    EXPECT_EQ(z.router.cooldown_time, 0s);
}

// ---------------------------------------------------------------------------
// Args flattening and strategy chains
// ---------------------------------------------------------------------------

TEST_F(ConfigArgs, Flattening) {
    const Config c = load(one("openai/m") +
                          "router_settings:\n"
                          "  strategies:\n"
                          "    - name: staggered-hedge\n"
                          "      args:\n"
                          "        delay: 500ms\n"
                          "        ratio: 0.1\n"
                          "        enabled: true\n"
                          "        budget:\n"
                          "          max_extra_load: 0.05\n"
                          "          window: {size: 10s}\n"
                          "        quantiles: [0.5, 0.95, p99]\n"
                          "        mixed: [\"1\", true, null, {a: [x, 2]}, 'q\"uote']\n"
                          "        empty:\n");
    const auto& a = c.router.strategies.at(0).args;
    EXPECT_EQ(arg(a, "delay"), "500ms");
    EXPECT_EQ(arg(a, "ratio"), "0.1");
    EXPECT_EQ(arg(a, "enabled"), "true");
    EXPECT_EQ(arg(a, "budget.max_extra_load"), "0.05");
    EXPECT_EQ(arg(a, "budget.window.size"), "10s");
    EXPECT_EQ(arg(a, "quantiles"), "[0.5,0.95,\"p99\"]");
    EXPECT_EQ(arg(a, "mixed"), "[\"1\",true,null,{\"a\":[\"x\",2]},\"q\\\"uote\"]");
    EXPECT_EQ(arg(a, "empty"), "");
    EXPECT_EQ(a.size(), 8u);
    // Order follows the file.
    EXPECT_EQ(a.front().first, "delay");
    EXPECT_EQ(a.back().first, "empty");
}

TEST_F(ConfigArgs, ExplicitChainMixesNamesAndMaps) {
    const Config c = load(one("openai/m") +
                          "router_settings:\n"
                          "  routing_strategy: cost-based-routing\n"
                          "  strategies:\n"
                          "    - health\n"
                          "    - {name: latency, args: {ttl: 1h}}\n"
                          "    - name: race\n");
    EXPECT_TRUE(c.router.strategies_explicit);
    EXPECT_EQ(names(c.router.strategies), (std::vector<std::string>{"health", "latency", "race"}));
    EXPECT_EQ(arg(c.router.strategies[1].args, "ttl"), "1h");
    EXPECT_TRUE(c.router.strategies[2].args.empty());
    EXPECT_EQ(c.router.strategies[0].line, 8);
    EXPECT_EQ(c.router.strategies[2].line, 10);
    EXPECT_EQ(c.router.routing_strategy, "cost-based-routing");
}

TEST_F(ConfigArgs, BadChainEntries) {
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  strategies:\n    - {name: latency, arg: {ttl: 1}}\n"),
              "inline.yaml:7: router_settings.strategies[0].arg: unknown key (expected name, args)");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  strategies:\n    - ../evil\n"),
              "inline.yaml:7: router_settings.strategies[0]: invalid strategy name '../evil' "
              "(letters, digits, '-', '_', '.'; plugin directories go in plugin_paths)");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  strategies: []\n"),
              "inline.yaml:6: router_settings.strategies: must name at least one strategy");
}

// request_strategies: the shape and name rules of `strategies`, names unique.
TEST_F(ConfigArgs, RequestStrategiesParseLikeTheChain) {
    const Config c = load(one("openai/m") +
                          "router_settings:\n"
                          "  allow_request_strategy_override: true\n"
                          "  strategies: [health]\n"
                          "  request_strategies:\n"
                          "    - latency\n"
                          "    - {name: staggered-hedge, args: {delay: p95, budget: {max_extra_load: 0.1}}}\n");
    EXPECT_EQ(names(c.router.strategies), (std::vector<std::string>{"health"}));
    EXPECT_EQ(names(c.router.request_strategies), (std::vector<std::string>{"latency", "staggered-hedge"}));
    EXPECT_EQ(arg(c.router.request_strategies[1].args, "budget.max_extra_load"), "0.1");
    EXPECT_EQ(c.router.request_strategies[1].line, 10);
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
    EXPECT_TRUE(load(one("openai/m")).router.request_strategies.empty());

    const std::string rs = one("openai/m") + "router_settings:\n  request_strategies:\n";
    EXPECT_EQ(string_error(rs + "    - /tmp/evil\n"),
              "inline.yaml:7: router_settings.request_strategies[0]: invalid strategy name '/tmp/evil' "
              "(letters, digits, '-', '_', '.'; plugin directories go in plugin_paths)");
    EXPECT_EQ(string_error(rs + "    - {name: latency, arg: {ttl: 1}}\n"),
              "inline.yaml:7: router_settings.request_strategies[0].arg: unknown key (expected name, args)");
    EXPECT_EQ(string_error(rs + "    - latency\n    - {name: latency}\n"),
              "inline.yaml:8: router_settings.request_strategies[1]: 'latency' is listed twice");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  request_strategies: latency\n"),
              "inline.yaml:6: router_settings.request_strategies: expected a list of strategies, got a scalar");

    // The chain's instance serves a name in both lists: args given here are not applied.
    const Config both = load(one("openai/m") +
                             "router_settings:\n"
                             "  strategies: [health, latency]\n"
                             "  request_strategies: [{name: latency, args: {ttl: 1h}}, cost]\n");
    EXPECT_TRUE(has_warning(both, "router_settings.request_strategies[0]: args not applied: 'latency' is in the "
                                  "chain, whose instance is used"));
}

TEST_F(ConfigArgs, DerivedChains) {
    EXPECT_EQ(default_chain("simple-shuffle"), (std::vector<std::string>{"health", "simple-shuffle"}));
    EXPECT_EQ(default_chain("latency-based-routing"), (std::vector<std::string>{"health", "latency"}));
    EXPECT_EQ(default_chain("cost-based-routing"), (std::vector<std::string>{"health", "cost"}));
    EXPECT_TRUE(default_chain("nope").empty());

    const Config none = load(one("openai/m"));
    EXPECT_EQ(none.router.routing_strategy, "simple-shuffle");
    EXPECT_EQ(names(none.router.strategies), (std::vector<std::string>{"health", "simple-shuffle"}));
    EXPECT_FALSE(none.router.strategies_explicit);
    // Cooldowns under every routing_strategy, unless switched off.
    const Config off = load(one("openai/m") + "router_settings:\n  disable_cooldowns: true\n");
    EXPECT_EQ(names(off.router.strategies), (std::vector<std::string>{"simple-shuffle"}));
    const Config lat_off = load(one("openai/m") + "router_settings:\n  routing_strategy: latency-based-routing\n"
                                                  "  disable_cooldowns: true\n");
    EXPECT_EQ(names(lat_off.router.strategies), (std::vector<std::string>{"latency"}));
    // An explicit chain without health is allowed, with one warning.
    const Config bare = load(one("openai/m") + "router_settings:\n  strategies: [simple-shuffle]\n");
    ASSERT_EQ(bare.warnings.size(), 1u);
    EXPECT_NE(bare.warnings[0].find("router_settings.strategies: no 'health' in the chain"), std::string::npos)
        << bare.warnings[0];
    EXPECT_TRUE(load(one("openai/m") + "router_settings:\n  strategies: [health, simple-shuffle]\n").warnings.empty());

    const Config lat = load(one("openai/m") +
                            "router_settings:\n"
                            "  routing_strategy: latency-based-routing\n"
                            "  routing_strategy_args:\n"
                            "    ttl: 3600\n"
                            "    lowest_latency_buffer: 0.5\n");
    ASSERT_EQ(names(lat.router.strategies), (std::vector<std::string>{"health", "latency"}));
    EXPECT_TRUE(lat.router.strategies[0].args.empty());
    EXPECT_EQ(arg(lat.router.strategies[1].args, "ttl"), "3600");
    EXPECT_EQ(arg(lat.router.strategies[1].args, "lowest_latency_buffer"), "0.5");
    EXPECT_EQ(lat.router.strategies[1].line, 6);

    const Config cost = load(one("openai/m") + "router_settings:\n  routing_strategy: cost-based-routing\n");
    EXPECT_EQ(names(cost.router.strategies), (std::vector<std::string>{"health", "cost"}));

    // Both usage-based names run the usage plugin, kept as written, without a warning.
    for (const std::string name : {"usage-based-routing", "usage-based-routing-v2"}) {
        const Config usage = load(one("openai/m") + "router_settings:\n  routing_strategy: " + name + "\n");
        EXPECT_EQ(usage.router.routing_strategy, name);
        EXPECT_EQ(names(usage.router.strategies), (std::vector<std::string>{"health", "usage"})) << name;
        EXPECT_EQ(usage.warnings, std::vector<std::string>{}) << name;
    }
    EXPECT_EQ(default_chain("usage-based-routing-v2"), (std::vector<std::string>{"health", "usage"}));

    const Config busy = load(one("openai/m") + "router_settings:\n  routing_strategy: least-busy\n");
    EXPECT_EQ(busy.router.routing_strategy, "least-busy");
    EXPECT_EQ(names(busy.router.strategies), (std::vector<std::string>{"health", "least-busy"}));
    EXPECT_TRUE(busy.warnings.empty());
    const Config busy_off = load(one("openai/m") + "router_settings:\n  routing_strategy: least-busy\n"
                                                   "  disable_cooldowns: true\n");
    EXPECT_EQ(names(busy_off.router.strategies), (std::vector<std::string>{"least-busy"}));

    // Every accepted name derives a chain.
    for (const auto& name : supported_routing_strategies()) EXPECT_FALSE(default_chain(name).empty()) << name;
}

TEST_F(ConfigRouter, PluginPathsRelativeToConfigFile) {
    const Config c = load_file(data_path("plugin_paths.yaml"), fake_env);
    const std::string dir = std::string(TAILGATE_TEST_DATA_DIR) + "/configs";
    ASSERT_EQ(c.router.plugin_paths.size(), 3u);
    // TAILGATE_TEST_DATA_DIR is absolute and normalized by CMake.
    EXPECT_EQ(c.router.plugin_paths[0], dir + "/plugins");
    EXPECT_EQ(c.router.plugin_paths[1], std::string(TAILGATE_TEST_DATA_DIR) + "/shared/plugins");
    EXPECT_EQ(c.router.plugin_paths[2], "/opt/tailgate/plugins");
}

TEST_F(ConfigRouter, FallbacksAndFlags) {
    const Config c = load(
        "model_list:\n"
        "  - {model_name: a, litellm_params: {model: openai/a}}\n"
        "  - {model_name: b, litellm_params: {model: openai/b}}\n"
        "  - {model_name: c, litellm_params: {model: openai/c}}\n"
        "router_settings:\n"
        "  num_retries: 3\n"
        "  allowed_fails: 5\n"
        "  disable_cooldowns: true\n"
        "  allow_request_strategy_override: yes\n"
        "  fallbacks: [{a: [b, c]}, {b: c}]\n"
        "  context_window_fallbacks:\n"
        "    - a:\n"
        "        - c\n");
    EXPECT_EQ(c.model_groups(), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_TRUE(c.has_group("b"));
    EXPECT_FALSE(c.has_group("d"));
    EXPECT_EQ(c.router.num_retries, 3);
    EXPECT_EQ(c.router.allowed_fails, 5);
    EXPECT_TRUE(c.router.disable_cooldowns);
    EXPECT_TRUE(c.router.allow_request_strategy_override);
    ASSERT_EQ(c.router.fallbacks.size(), 2u);
    EXPECT_EQ(c.router.fallbacks[0].first, "a");
    EXPECT_EQ(c.router.fallbacks[0].second, (std::vector<std::string>{"b", "c"}));
    EXPECT_EQ(c.router.fallbacks[1].first, "b");
    EXPECT_EQ(c.router.fallbacks[1].second, (std::vector<std::string>{"c"}));
    ASSERT_EQ(c.router.context_window_fallbacks.size(), 1u);
    EXPECT_EQ(c.router.context_window_fallbacks[0].second, (std::vector<std::string>{"c"}));
}

TEST_F(ConfigRouter, FallbackSourceGroupMustExist) {
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  context_window_fallbacks:\n    - gpt-4: [g]\n"),
              "inline.yaml:7: router_settings.context_window_fallbacks[0].gpt-4: unknown model "
              "group 'gpt-4' (known: g)");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  fallbacks:\n    - {g: [g], h: [g]}\n"),
              "inline.yaml:7: router_settings.fallbacks[0]: expected a map with exactly one key: "
              "{group: [fallback groups]}");
}

// ---------------------------------------------------------------------------
// general_settings
// ---------------------------------------------------------------------------

TEST_F(ConfigGeneral, Values) {
    const Config c = load(one("openai/m") +
                          "general_settings:\n"
                          "  host: 0.0.0.0\n"
                          "  port: 8080\n"
                          "  max_threads: 32\n"
                          "  io_threads: 2\n"
                          "  max_request_body_bytes: 4096\n"
                          "  keep_alive_timeout: 5s\n"
                          "  upstream_pool_size: 8\n"
                          "  log_level: WARNING\n"
                          "  log_format: json\n");
    const auto& g = c.general;
    EXPECT_EQ(g.host, "0.0.0.0");
    EXPECT_EQ(g.port, 8080);
    EXPECT_EQ(g.max_threads, 32);
    EXPECT_EQ(g.io_threads, 2);
    EXPECT_EQ(g.max_body_bytes, 4096u);
    EXPECT_EQ(g.keep_alive_timeout, 5s);
    EXPECT_EQ(g.upstream_pool_size, 8);
    EXPECT_EQ(g.log_level, "warn");
    EXPECT_EQ(g.log_format, "json");
    EXPECT_TRUE(g.master_key.empty());

    EXPECT_EQ(load(one("openai/m") + "general_settings:\n  max_body_size: 1MB\n").general.max_body_bytes,
              1000000u);
}

TEST_F(ConfigGeneral, BadValues) {
    EXPECT_EQ(string_error(one("openai/m") + "general_settings:\n  port: 70000\n"),
              "inline.yaml:6: general_settings.port: must be between 0 and 65535, got '70000'");
    EXPECT_EQ(string_error(one("openai/m") + "general_settings:\n  log_level: loud\n"),
              "inline.yaml:6: general_settings.log_level: expected one of debug, info, warn, error, "
              "got 'loud'");
    EXPECT_EQ(string_error(one("openai/m") + "general_settings:\n  log_format: xml\n"),
              "inline.yaml:6: general_settings.log_format: expected text or json, got 'xml'");
    EXPECT_EQ(string_error(one("openai/m") + "general_settings:\n  max_body_size: huge\n"),
              "inline.yaml:6: general_settings.max_body_size: expected a size (bytes, or e.g. "
              "512KiB, 10MiB, 1MB), got 'huge'");
    EXPECT_EQ(string_error(one("openai/m") +
                           "general_settings:\n  max_request_body_bytes: 10\n  max_body_size: 1MB\n"),
              "inline.yaml:7: general_settings.max_body_size: conflicts with "
              "max_request_body_bytes (line 6); set only one");
    EXPECT_EQ(string_error(one("openai/m") + "general_settings:\n  max_threads: 0\n"),
              "inline.yaml:6: general_settings.max_threads: must be between 1 and 100000, got '0'");
}

// ---------------------------------------------------------------------------
// Warnings (LiteLLM keys we do not use must not fail)
// ---------------------------------------------------------------------------

TEST_F(ConfigWarnings, UnknownKeysAreWarnedNotFatal) {
    const Config c = load(
        "model_list:\n"
        "  - model_name: g\n"
        "    litellm_params:\n"
        "      model: openai/m\n"
        "      drop_params: true\n"
        "      organization: org-1\n"
        "    tags: [x]\n"
        "router_settings:\n"
        "  redis_host: localhost\n"
        "general_settings:\n"
        "  database_url: postgres://x\n"
        "litellm_settings:\n"
        "  num_retries: 3\n"
        "  cache: true\n"
        "environment_variables: {}\n"
        "proxy_settings: {}\n");
    EXPECT_EQ(c.warnings,
              (std::vector<std::string>{
                  "inline.yaml:6: model_list[0].litellm_params.organization: unknown key, ignored",
                  "inline.yaml:7: model_list[0].tags: unknown key, ignored",
                  "inline.yaml:9: router_settings.redis_host: LiteLLM's Redis shared state is not supported yet: each replica "
                  "routes on its own state; ignored",
                  "inline.yaml:11: general_settings.database_url: LiteLLM's database (virtual keys, spend) is not supported "
                  "yet; only master_key authenticates; ignored",
                  "inline.yaml:14: litellm_settings.cache: not supported by Tailgate, ignored",
                  "inline.yaml:16: proxy_settings: unknown top-level key, ignored",
              }));
    EXPECT_EQ(c.router.num_retries, 3);  // honoured: see ConfigLitellm
    EXPECT_EQ(c.deployments[0].drop_params, std::optional<bool>(true));  // honoured per deployment
}

TEST_F(ConfigWarnings, NullValuesMeanUnset) {
    const Config c = load(one("openai/m", "      api_base:\n      rpm: ~\n") + "router_settings:\n");
    EXPECT_EQ(c.deployments[0].upstream.host, "api.openai.com");
    EXPECT_EQ(c.deployments[0].rpm, 0);
    EXPECT_TRUE(c.warnings.empty());
}

// ---------------------------------------------------------------------------
// Bad files: exact error text
// ---------------------------------------------------------------------------

TEST_F(ConfigErrors, MissingModel) {
    const std::string f = data_path("missing_model.yaml");
    EXPECT_EQ(file_error(f), f + ":9: model_list[1].litellm_params.model: missing");
}

TEST_F(ConfigErrors, WrongType) {
    const std::string f = data_path("wrong_type.yaml");
    EXPECT_EQ(file_error(f), f + ":6: model_list[0].litellm_params.rpm: expected an integer, got 'abc'");
    EXPECT_EQ(string_error(one("openai/m", "      weight: heavy\n")),
              "inline.yaml:5: model_list[0].litellm_params.weight: expected a number, got 'heavy'");
    EXPECT_EQ(string_error(one("openai/m", "      ssl_verify: /etc/ca.pem\n")),
              "inline.yaml:5: model_list[0].litellm_params.ssl_verify: expected true or false, got "
              "'/etc/ca.pem' (CA bundle paths are not supported here)");
    EXPECT_EQ(string_error(one("openai/m", "      tpm: -1\n")),
              "inline.yaml:5: model_list[0].litellm_params.tpm: must be >= 0, got '-1'");
    EXPECT_EQ(string_error(one("openai/m") + "router_settings:\n  disable_cooldowns: maybe\n"),
              "inline.yaml:6: router_settings.disable_cooldowns: expected true or false, got 'maybe'");
}

TEST_F(ConfigErrors, UnknownProvider) {
    const std::string f = data_path("unknown_provider.yaml");
    EXPECT_EQ(file_error(f), f + ":4: model_list[0].litellm_params.model: unknown provider "
                                 "'acme' in 'acme/rocket-1' (supported: " + provider_list() + ")");
    EXPECT_EQ(string_error(one("openai/")),
              "inline.yaml:4: model_list[0].litellm_params.model: missing the model name after 'openai/'");
}

TEST_F(ConfigErrors, UnknownRoutingStrategy) {
    const std::string f = data_path("unknown_strategy.yaml");
    EXPECT_EQ(file_error(f), f + ":8: router_settings.routing_strategy: unknown routing strategy "
                                 "'fastest-wins' (supported: simple-shuffle, least-busy, usage-based-routing, "
                                 "usage-based-routing-v2, latency-based-routing, cost-based-routing)");
}

TEST_F(ConfigErrors, BadFallbackGroup) {
    const std::string f = data_path("bad_fallback.yaml");
    EXPECT_EQ(file_error(f), f + ":16: router_settings.fallbacks[1].groq-llama[1]: unknown model "
                                 "group 'gpt-4' (known: gpt-3.5-turbo, groq-llama)");
}

TEST_F(ConfigErrors, YamlSyntax) {
    const std::string f = data_path("yaml_syntax.yaml");
    EXPECT_EQ(file_error(f), f + ":7: invalid YAML: end of sequence flow not found");
}

TEST_F(ConfigErrors, EmptyModelList) {
    const std::string f = data_path("empty_model_list.yaml");
    EXPECT_EQ(file_error(f), f + ":2: model_list: must contain at least one deployment");
    EXPECT_EQ(string_error("general_settings:\n  port: 1\n"), "inline.yaml:1: model_list: missing");
    EXPECT_EQ(string_error(""), "inline.yaml:1: model_list: missing (the file is empty)");
}

TEST_F(ConfigErrors, FileNotFound) {
    EXPECT_EQ(file_error("no/such/config.yaml"), "no/such/config.yaml: cannot open file");
    EXPECT_EQ(file_error(std::string(TAILGATE_TEST_DATA_DIR)),
              std::string(TAILGATE_TEST_DATA_DIR) + ": cannot open file");
}

TEST_F(ConfigErrors, StructureErrors) {
    EXPECT_EQ(string_error("model_list:\n  - model_name: g\n"),
              "inline.yaml:2: model_list[0].litellm_params: missing");
    EXPECT_EQ(string_error("model_list:\n  - litellm_params: {model: openai/m}\n"),
              "inline.yaml:2: model_list[0].model_name: missing");
    EXPECT_EQ(string_error("model_list:\n  - model_name: a,b\n    litellm_params: {model: openai/m}\n"),
              "inline.yaml:2: model_list[0].model_name: must not contain ',' (a comma-separated "
              "model list means several groups)");
    EXPECT_EQ(string_error("model_list: {a: 1}\n"), "inline.yaml:1: model_list: expected a list, got a map");
    EXPECT_EQ(string_error("model_list:\n  - just-a-string\n"),
              "inline.yaml:2: model_list[0]: expected a map with model_name and litellm_params, got a scalar");
    EXPECT_EQ(string_error(one("openai/m", "      rpm: 1\n      rpm: 2\n")),
              "inline.yaml:6: model_list[0].litellm_params.rpm: duplicate key (first at line 5)");
    EXPECT_EQ(string_error("- a\n- b\n"),
              "inline.yaml:1: (top level): expected a map with model_list, router_settings, "
              "general_settings; got a list");
}

// yaml-cpp does not apply YAML merge keys; the loader does (LiteLLM configs use them).
TEST_F(ConfigWarnings, YamlMergeKeys) {
    const Config c = load(
        "model_list:\n"
        "  - model_name: a\n"
        "    litellm_params: &base\n"
        "      model: openai/gpt-4o\n"
        "      api_base: http://127.0.0.1:18001/v1\n"
        "      rpm: 10\n"
        "  - model_name: a\n"
        "    litellm_params:\n"
        "      <<: *base\n"
        "      api_base: http://127.0.0.1:18002/v1\n");
    ASSERT_EQ(c.deployments.size(), 2u);
    EXPECT_EQ(c.deployments[1].upstream.model, "gpt-4o");
    EXPECT_EQ(c.deployments[1].upstream.port, "18002");
    EXPECT_EQ(c.deployments[1].rpm, 10);
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
    EXPECT_EQ(string_error("model_list:\n  - model_name: a\n    litellm_params:\n      <<: 5\n"),
              "inline.yaml:4: model_list[0].litellm_params.<<: a merge key needs a map or a list of maps");
}

TEST_F(ConfigEnv, EmptyMasterKeyRefusesToStart) {
    // os.environ/VAR with VAR set but empty used to turn authentication off silently.
    fake_env_vars() = {{"MASTER", ""}, {"BLANK", "  "}};
    const std::string head = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m}\ngeneral_settings:\n";
    for (const char* value : {"os.environ/MASTER", "os.environ/BLANK", "\"\""}) {
        const std::string e = string_error(head + "  master_key: " + value + "\n");
        EXPECT_EQ(e.rfind("inline.yaml:5: general_settings.master_key: is empty", 0), 0u) << e;
    }
}

TEST_F(ConfigRouter, MaxRequestTimeout) {
    const std::string head = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m}\nrouter_settings:\n";
    EXPECT_EQ(load(head + "  timeout: 30\n").router.max_request_timeout, 3600s);
    EXPECT_EQ(load(head + "  max_request_timeout: 90s\n").router.max_request_timeout, 90s);
    EXPECT_EQ(string_error(head + "  max_request_timeout: 0\n"),
              "inline.yaml:5: router_settings.max_request_timeout: must be greater than 0");
    EXPECT_EQ(string_error(head + "  max_request_timeout: 9000h\n").rfind("inline.yaml:5: router_settings.max_request_timeout:", 0),
              0u);
}

TEST(Wildcard, MatchAndSubstitute) {
    EXPECT_EQ(match_wildcard("*", "gpt-4o"), std::optional<std::string>("gpt-4o"));
    EXPECT_EQ(match_wildcard("openai/*", "openai/gpt-4o"), std::optional<std::string>("gpt-4o"));
    EXPECT_EQ(match_wildcard("claude-*-latest", "claude-3-5-latest"), std::optional<std::string>("3-5"));
    EXPECT_EQ(match_wildcard("openai/*", "openai/"), std::nullopt);  // '*' stands for something
    EXPECT_EQ(match_wildcard("openai/*", "groq/llama"), std::nullopt);
    EXPECT_EQ(match_wildcard("gpt-4o", "gpt-4o"), std::nullopt);  // not a pattern
    EXPECT_EQ(match_wildcard("a*a", "a"), std::nullopt);          // head and tail may not overlap
    Deployment d;
    d.upstream.model = "*";
    EXPECT_EQ(upstream_model(d, "gpt-4o-mini"), "gpt-4o-mini");
    d.upstream.model = "accounts/fireworks/models/*";
    EXPECT_EQ(upstream_model(d, "llama"), "accounts/fireworks/models/llama");
    d.upstream.model = "fixed";
    EXPECT_EQ(upstream_model(d, "ignored"), "fixed");
}

TEST_F(ConfigRouter, WildcardGroupsHaveOneStar) {
    EXPECT_EQ(string_error("model_list:\n  - model_name: \"*/*\"\n    litellm_params: {model: openai/*}\n"),
              "inline.yaml:2: model_list[0].model_name: at most one '*' (a wildcard group such as \"*\" or "
              "\"openai/*\")");
    EXPECT_EQ(load("model_list:\n  - model_name: \"*\"\n    litellm_params: {model: openai/*}\n").deployments[0].upstream.model,
              "*");
}

// ---------------------------------------------------------------------------
// LiteLLM fidelity: litellm_settings, include, environment_variables,
// model_group_alias, every error at once
// ---------------------------------------------------------------------------

namespace {
const std::string kTwoGroups =
    "model_list:\n"
    "  - {model_name: a, litellm_params: {model: openai/a}}\n"
    "  - {model_name: b, litellm_params: {model: openai/b}}\n";
}  // namespace

TEST_F(ConfigLitellm, RoutingKeysAreHonouredOthersWarnedOneByOne) {
    const Config c = load(kTwoGroups +
                          "litellm_settings:\n"                       // 4
                          "  num_retries: 4\n"                        // 5
                          "  request_timeout: 30\n"                   // 6
                          "  fallbacks: [{a: [b]}]\n"                 // 7
                          "  context_window_fallbacks: [{a: b}]\n"    // 8
                          "  drop_params: true\n"                     // 9
                          "  success_callback: [\"prometheus\"]\n"    // 10
                          "  failure_callback: prometheus\n"          // 11
                          "  callbacks: [prometheus, langfuse]\n"     // 12
                          "  cache: true\n"                           // 13
                          "  set_verbose: false\n"                    // 14
                          "  json_logs: true\n"                       // 15
                          "  allowed_fails: 2\n"                      // 16
                          "  cache_params: {type: redis}\n");         // 17
    const auto& r = c.router;
    EXPECT_EQ(r.num_retries, 4);
    EXPECT_EQ(r.timeout, 30s);
    ASSERT_EQ(r.fallbacks.size(), 1u);
    EXPECT_EQ(r.fallbacks[0].first, "a");
    EXPECT_EQ(r.fallbacks[0].second, (std::vector<std::string>{"b"}));
    ASSERT_EQ(r.context_window_fallbacks.size(), 1u);
    EXPECT_EQ(r.context_window_fallbacks[0].second, (std::vector<std::string>{"b"}));
    EXPECT_TRUE(r.drop_params);
    EXPECT_EQ(c.general.log_format, "json");
    EXPECT_EQ(c.warnings,
              (std::vector<std::string>{
                  "inline.yaml:12: litellm_settings.callbacks[1]: callback 'langfuse' is not supported by Tailgate, "
                  "ignored",
                  "inline.yaml:13: litellm_settings.cache: not supported by Tailgate, ignored",
                  "inline.yaml:16: litellm_settings.allowed_fails: not supported by Tailgate, ignored (set "
                  "router_settings.allowed_fails instead)",
                  "inline.yaml:17: litellm_settings.cache_params: not supported by Tailgate, ignored",
              }));
    EXPECT_FALSE(load(kTwoGroups).router.drop_params);
    EXPECT_TRUE(has_warning(load(kTwoGroups + "litellm_settings:\n  set_verbose: true\n"),
                            "inline.yaml:5: litellm_settings.set_verbose: not supported by Tailgate, ignored (use "
                            "general_settings.log_level: debug)"));
}

TEST_F(ConfigLitellm, RouterSettingsWin) {
    const Config c = load(kTwoGroups +
                          "router_settings:\n"              // 4
                          "  num_retries: 1\n"              // 5
                          "  timeout: 10\n"                 // 6
                          "  fallbacks: [{b: [a]}]\n"       // 7
                          "litellm_settings:\n"             // 8
                          "  num_retries: 4\n"              // 9
                          "  request_timeout: 30\n"         // 10
                          "  fallbacks: [{a: [b]}]\n"       // 11
                          "  context_window_fallbacks: [{a: [b]}]\n"  // 12
                          "  json_logs: true\n"             // 13
                          "general_settings:\n"             // 14
                          "  log_format: text\n");          // 15
    EXPECT_EQ(c.router.num_retries, 1);
    EXPECT_EQ(c.router.timeout, 10s);
    ASSERT_EQ(c.router.fallbacks.size(), 1u);
    EXPECT_EQ(c.router.fallbacks[0].first, "b");
    ASSERT_EQ(c.router.context_window_fallbacks.size(), 1u);  // only litellm_settings sets it
    EXPECT_EQ(c.general.log_format, "text");
    EXPECT_EQ(c.warnings,
              (std::vector<std::string>{
                  "inline.yaml:9: litellm_settings.num_retries: overridden by router_settings.num_retries "
                  "(inline.yaml:5)",
                  "inline.yaml:10: litellm_settings.request_timeout: overridden by router_settings.timeout "
                  "(inline.yaml:6)",
                  "inline.yaml:11: litellm_settings.fallbacks: overridden by router_settings.fallbacks "
                  "(inline.yaml:7)",
              }));
}

TEST_F(ConfigLitellm, ValidatedLikeRouterSettings) {
    EXPECT_EQ(string_error(kTwoGroups + "litellm_settings:\n  fallbacks: [{a: [zzz]}]\n"),
              "inline.yaml:5: litellm_settings.fallbacks[0].a[0]: unknown model group 'zzz' (known: a, b)");
    EXPECT_EQ(string_error(kTwoGroups + "litellm_settings:\n  num_retries: lots\n"),
              "inline.yaml:5: litellm_settings.num_retries: expected an integer, got 'lots'");
    EXPECT_EQ(string_error(kTwoGroups + "litellm_settings:\n  request_timeout: 0\n"),
              "inline.yaml:5: litellm_settings.request_timeout: must be greater than 0");
    EXPECT_EQ(string_error(kTwoGroups + "litellm_settings:\n  drop_params: sometimes\n"),
              "inline.yaml:5: litellm_settings.drop_params: expected true or false, got 'sometimes'");
    EXPECT_EQ(string_error(kTwoGroups + "litellm_settings: [x]\n"),
              "inline.yaml:4: litellm_settings: expected a map, got a list");
}

TEST_F(ConfigLitellm, AdditionalDropParams) {
    const Config c = load(one("openai/m", "      additional_drop_params: [logprobs, \" user \"]\n"));
    EXPECT_EQ(c.deployments[0].additional_drop_params, (std::vector<std::string>{"logprobs", "user"}));
    EXPECT_TRUE(c.warnings.empty());
    EXPECT_TRUE(load(one("openai/m")).deployments[0].additional_drop_params.empty());
    EXPECT_EQ(string_error(one("openai/m", "      additional_drop_params: logprobs\n")),
              "inline.yaml:5: model_list[0].litellm_params.additional_drop_params: expected a list of request "
              "field names, got a scalar");
    EXPECT_EQ(string_error(one("openai/m", "      additional_drop_params: [a, \"\"]\n")),
              "inline.yaml:5: model_list[0].litellm_params.additional_drop_params[1]: must not be empty");
    EXPECT_EQ(string_error(one("openai/m", "      additional_drop_params: [[a]]\n")),
              "inline.yaml:5: model_list[0].litellm_params.additional_drop_params[0]: expected a string, got a "
              "list");
}

TEST_F(ConfigEnv, EnvironmentVariablesComeFirst) {
    fake_env_vars() = {{"TG_KEY", "sk-from-process"}, {"TG_REAL", "from-process"}};
    const Config c = load(
        "environment_variables:\n"
        "  TG_KEY: sk-from-config\n"
        "  OPENAI_API_KEY: sk-openai-from-config\n"
        "  TG_BASE: http://127.0.0.1:18009/v1\n"
        "  TG_PORT: 8080\n"
        "  TG_COPY: os.environ/TG_REAL\n"
        "model_list:\n"
        "  - model_name: a\n"
        "    litellm_params: {model: openai/a, api_base: os.environ/TG_BASE, api_key: os.environ/TG_KEY}\n"
        "  - model_name: b\n"
        "    litellm_params: {model: openai/b, api_base: http://127.0.0.1:1/v1}\n"
        "  - model_name: c\n"
        "    litellm_params: {model: openai/c, api_base: http://127.0.0.1:1/v1, api_key: os.environ/TG_COPY}\n"
        "general_settings:\n"
        "  port: os.environ/TG_PORT\n");
    EXPECT_EQ(c.deployments[0].upstream.api_key.reveal(), "sk-from-config");  // the config wins
    EXPECT_EQ(c.deployments[0].upstream.port, "18009");
    EXPECT_EQ(c.deployments[1].upstream.api_key.reveal(), "sk-openai-from-config");  // the provider's variable
    EXPECT_EQ(c.deployments[2].upstream.api_key.reveal(), "from-process");
    EXPECT_EQ(c.general.port, 8080);
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
    // A value set there is never quoted in an error.
    EXPECT_EQ(string_error("environment_variables:\n  TG_PORT: SECRET-not-a-port\n" + one("openai/m") +
                           "general_settings:\n  port: os.environ/TG_PORT\n"),
              "inline.yaml:8: general_settings.port: expected an integer, got the value of os.environ/TG_PORT");
    EXPECT_EQ(string_error("environment_variables:\n  TG_X: [1]\n" + one("openai/m")),
              "inline.yaml:2: environment_variables.TG_X: expected a string (use \"\" for an empty value), got a "
              "list");
    EXPECT_EQ(string_error("environment_variables:\n  TG_X: os.environ/TG_UNSET\n" + one("openai/m")),
              "inline.yaml:2: environment_variables.TG_X: environment variable TG_UNSET is not set");
}

TEST_F(ConfigRouter, ModelGroupAlias) {
    const Config c = load(kTwoGroups +
                          "router_settings:\n"
                          "  model_group_alias:\n"
                          "    gpt-4: a\n"
                          "    internal: {model: b, hidden: true}\n"
                          "    shown: {model: b}\n");
    const auto& al = c.router.model_group_alias;
    ASSERT_EQ(al.size(), 3u);
    EXPECT_EQ(al.at("gpt-4").group, "a");
    EXPECT_FALSE(al.at("gpt-4").hidden);
    EXPECT_EQ(al.at("internal").group, "b");
    EXPECT_TRUE(al.at("internal").hidden);
    EXPECT_FALSE(al.at("shown").hidden);
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();

    const std::string head = kTwoGroups + "router_settings:\n  model_group_alias:\n";
    EXPECT_EQ(string_error(head + "    gpt-4: zzz\n"),
              "inline.yaml:6: router_settings.model_group_alias.gpt-4: unknown model group 'zzz' (known: a, b)");
    EXPECT_EQ(string_error(head + "    a: b\n"),
              "inline.yaml:6: router_settings.model_group_alias.a: shadows the model group 'a' (an alias must be "
              "a new name)");
    EXPECT_EQ(string_error(head + "    x: {hidden: true}\n"),
              "inline.yaml:6: router_settings.model_group_alias.x.model: missing");
    EXPECT_EQ(string_error(head + "    x: {model: a, tier: 1}\n"),
              "inline.yaml:6: router_settings.model_group_alias.x.tier: unknown key (expected model, hidden)");
    EXPECT_EQ(string_error(head + "    x: [a]\n"),
              "inline.yaml:6: router_settings.model_group_alias.x: expected a model group or {model: group, "
              "hidden: true}, got a list");
    EXPECT_EQ(string_error(head + "    \"gpt-*\": a\n"),
              "inline.yaml:6: router_settings.model_group_alias.gpt-*: an alias must not contain '*'");
}

TEST_F(ConfigInclude, ModelListsAppendedSectionsMerged) {
    const std::string dir = temp_dir("merge");
    write_file(dir + "/main.yaml",
               "include:\n"
               "  - more/models.yaml\n"
               "model_list:\n"
               "  - {model_name: a, litellm_params: {model: openai/a}}\n"
               "router_settings:\n"
               "  fallbacks: [{a: [b]}]\n");
    write_file(dir + "/more/models.yaml",
               "model_list:\n"
               "  - {model_name: b, litellm_params: {model: openai/b}}\n"
               "  - {model_name: a, litellm_params: {model: openai/a2}}\n"
               "router_settings:\n"
               "  num_retries: 2\n"
               "litellm_settings:\n"
               "  redis_host: x\n");
    const Config c = load_file(dir + "/main.yaml", fake_env);
    EXPECT_EQ(c.model_groups(), (std::vector<std::string>{"a", "b"}));
    ASSERT_EQ(c.deployments.size(), 3u);
    EXPECT_EQ(c.deployments[2].upstream.model, "a2");
    EXPECT_EQ(c.router.num_retries, 2);
    ASSERT_EQ(c.router.fallbacks.size(), 1u);
    EXPECT_EQ(c.router.fallbacks[0].second, (std::vector<std::string>{"b"}));
    // Warnings name the included file.
    EXPECT_EQ(c.warnings, (std::vector<std::string>{dir + "/more/models.yaml:7: litellm_settings.redis_host: not "
                                                          "supported by Tailgate, ignored"}));
}

TEST_F(ConfigInclude, ErrorsNameTheIncludedFileAndLine) {
    const std::string dir = temp_dir("errors");
    write_file(dir + "/main.yaml", "include: [models.yaml]\nmodel_list:\n  - {model_name: a, litellm_params: {model: openai/a}}\n");
    write_file(dir + "/models.yaml",
               "model_list:\n"
               "  - model_name: b\n"
               "    litellm_params:\n"
               "      model: openai/b\n"
               "      rpm: abc\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/models.yaml:5: model_list[0].litellm_params.rpm: expected an integer, got 'abc'");
    write_file(dir + "/models.yaml", "model_list: [\n");
    const std::string e = file_error(dir + "/main.yaml");
    EXPECT_EQ(e.rfind(dir + "/models.yaml:", 0), 0u) << e;
    EXPECT_NE(e.find(": invalid YAML: "), std::string::npos) << e;
    // Two files both setting one key: the second is named with the first's place.
    write_file(dir + "/models.yaml", "router_settings:\n  num_retries: 1\n");
    write_file(dir + "/main.yaml",
               "model_list:\n  - {model_name: a, litellm_params: {model: openai/a}}\n"
               "router_settings:\n  num_retries: 2\ninclude: [models.yaml]\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/models.yaml:2: router_settings.num_retries: also set at " + dir +
                  "/main.yaml:4 (set each key in one file)");
    // model_list only in an included file is enough.
    write_file(dir + "/models.yaml", "model_list:\n  - {model_name: b, litellm_params: {model: openai/b}}\n");
    write_file(dir + "/main.yaml", "include:\n  - models.yaml\n");
    EXPECT_EQ(load_file(dir + "/main.yaml", fake_env).model_groups(), (std::vector<std::string>{"b"}));
}

TEST_F(ConfigInclude, CyclesAndMissingFilesAreRefused) {
    const std::string dir = temp_dir("cycles");
    const std::string ml = "model_list:\n  - {model_name: a, litellm_params: {model: openai/a}}\n";
    write_file(dir + "/main.yaml", ml + "include:\n  - nope.yaml\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/main.yaml:4: include[0]: cannot open 'nope.yaml' (looked for " + dir + "/nope.yaml)");
    write_file(dir + "/main.yaml", ml + "include: [main.yaml]\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/main.yaml:3: include[0]: include cycle: " + dir + "/main.yaml -> " + dir + "/main.yaml");
    write_file(dir + "/main.yaml", ml + "include: [sub/b.yaml]\n");
    write_file(dir + "/sub/b.yaml", "include: [../main.yaml]\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"), dir + "/sub/b.yaml:1: include[0]: include cycle: " + dir +
                                                  "/main.yaml -> " + dir + "/sub/b.yaml -> " + dir + "/main.yaml");
    write_file(dir + "/main.yaml", ml + "include: [c.yaml, c.yaml]\n");
    write_file(dir + "/c.yaml", "router_settings: {num_retries: 1}\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/main.yaml:3: include[1]: 'c.yaml' is already included (at " + dir + "/main.yaml:3)");
    write_file(dir + "/main.yaml", ml + "include: c.yaml\n");
    EXPECT_EQ(file_error(dir + "/main.yaml"),
              dir + "/main.yaml:3: include: expected a list of file paths, got a scalar");
}

TEST_F(ConfigInclude, EnvironmentVariablesFromAnIncludedFile) {
    const std::string dir = temp_dir("env");
    write_file(dir + "/main.yaml",
               "include: [env.yaml]\nmodel_list:\n"
               "  - {model_name: a, litellm_params: {model: openai/a, api_key: os.environ/TG_INC_KEY}}\n");
    write_file(dir + "/env.yaml", "environment_variables:\n  TG_INC_KEY: sk-included\n");
    EXPECT_EQ(load_file(dir + "/main.yaml", fake_env).deployments[0].upstream.api_key.reveal(), "sk-included");
}

TEST_F(ConfigErrors, EveryErrorAtOnce) {
    const std::string yaml =
        "model_list:\n"                                                        // 1
        "  - model_name: a\n"                                                  // 2
        "    litellm_params:\n"                                                // 3
        "      model: openai/a\n"                                              // 4
        "      rpm: abc\n"                                                     // 5
        "  - {model_name: b, litellm_params: {model: openai/b}}\n"             // 6
        "  - {model_name: c, litellm_params: {model: acme/c}}\n"               // 7
        "router_settings:\n"                                                   // 8
        "  num_retries: lots\n"                                                // 9
        "  fallbacks: [{b: [c]}]\n"                                            // 10 (c failed: no second error)
        "  timeout: 0\n"                                                       // 11
        "general_settings:\n"                                                  // 12
        "  port: 70000\n"                                                      // 13
        "  model_group_limits: {a: {max_open_streams: 1}}\n"                   // 14 (a failed: no error)
        "litellm_settings:\n"                                                  // 15
        "  request_timeout: never\n";                                          // 16
    EXPECT_EQ(string_error(yaml),
              "inline.yaml:5: model_list[0].litellm_params.rpm: expected an integer, got 'abc'\n"
              "inline.yaml:7: model_list[2].litellm_params.model: unknown provider 'acme' in 'acme/c' "
              "(supported: " + provider_list() + ")\n"
              "inline.yaml:9: router_settings.num_retries: expected an integer, got 'lots'\n"
              "inline.yaml:11: router_settings.timeout: must be greater than 0\n"
              "inline.yaml:13: general_settings.port: must be between 0 and 65535, got '70000'\n"
              "inline.yaml:16: litellm_settings.request_timeout: expected a duration (seconds, or e.g. 500ms, 2s, "
              "1.5m, 1h), got 'never'");
    // Duplicate ids are each reported too.
    EXPECT_EQ(string_error("model_list:\n"
                           "  - {model_name: a, litellm_params: {model: openai/a}, model_info: {id: x}}\n"
                           "  - {model_name: b, litellm_params: {model: openai/b}, model_info: {id: x}}\n"
                           "  - {model_name: c, litellm_params: {model: openai/c}, model_info: {id: x}}\n"),
              "inline.yaml:3: model_list[1].model_info.id: duplicate id 'x' (first used at line 2, model_list[0])\n"
              "inline.yaml:4: model_list[2].model_info.id: duplicate id 'x' (first used at line 2, model_list[0])");
}
