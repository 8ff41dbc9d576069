// Shared-state config: LiteLLM's router_settings.redis_* keys and the
// shared_state section; errors name file, key and line and never the password.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

using namespace tailgate::config;
using namespace std::chrono_literals;

namespace {

std::map<std::string, std::string>& env_vars() {
    static std::map<std::string, std::string> vars;
    return vars;
}

std::optional<std::string> env(const std::string& name) {
    auto it = env_vars().find(name);
    if (it == env_vars().end()) return std::nullopt;
    return it->second;
}

const std::string kModels =
    "model_list:\n"
    "  - model_name: g\n"
    "    litellm_params: {model: openai/m, api_base: 'http://127.0.0.1:9/v1'}\n";

Config load(const std::string& rest) { return load_string(kModels + rest, "fleet.yaml", env); }

std::string error_of(const std::string& rest) {
    try {
        load(rest);
    } catch (const ConfigError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.find("SECRET"), std::string::npos) << "password leaked: " << msg;
        return msg;
    }
    ADD_FAILURE() << "loaded without error";
    return {};
}

class SharedStateConfig : public ::testing::Test {
protected:
    void SetUp() override { env_vars().clear(); }
};

}  // namespace

TEST_F(SharedStateConfig, NothingConfiguredMeansNothingShared) {
    const Config c = load("");
    EXPECT_FALSE(c.shared.enabled);
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(SharedStateConfig, LiteLLMHostPortPasswordFromTheEnvironment) {
    env_vars()["REDIS_PASSWORD"] = "SECRET-pw";
    const Config c = load(
        "router_settings:\n"
        "  redis_host: redis.internal\n"
        "  redis_port: 6380\n"
        "  redis_password: os.environ/REDIS_PASSWORD\n");
    EXPECT_TRUE(c.shared.enabled);
    EXPECT_EQ(c.shared.host, "redis.internal");
    EXPECT_EQ(c.shared.port, 6380);
    EXPECT_EQ(c.shared.password.reveal(), "SECRET-pw");
    EXPECT_EQ(c.shared.endpoint(), "redis.internal:6380");
    EXPECT_EQ(c.shared.where, "fleet.yaml:5");
    EXPECT_EQ(c.shared.key_prefix, "tailgate:");
    EXPECT_EQ(c.shared.sync_interval, 100ms);
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(SharedStateConfig, RedisUrlWithUserPasswordAndDatabase) {
    const Config c = load("router_settings:\n  redis_url: redis://app:SECRET%40pw@10.0.0.5:6390/2\n");
    EXPECT_TRUE(c.shared.enabled);
    EXPECT_EQ(c.shared.host, "10.0.0.5");
    EXPECT_EQ(c.shared.port, 6390);
    EXPECT_EQ(c.shared.username, "app");
    EXPECT_EQ(c.shared.password.reveal(), "SECRET@pw");
    EXPECT_EQ(c.shared.db, 2);
    EXPECT_EQ(c.shared.endpoint(), "10.0.0.5:6390/2");

    const Config v6 = load("router_settings:\n  redis_url: redis://[::1]\n");
    EXPECT_EQ(v6.shared.host, "::1");
    EXPECT_EQ(v6.shared.port, 6379);
}

TEST_F(SharedStateConfig, RedissUrlTurnsTlsOnWithVerification) {
    const Config c = load("router_settings:\n  redis_url: rediss://u:SECRET%3Apw@cache.internal:6380/3\n");
    EXPECT_TRUE(c.shared.enabled);
    EXPECT_TRUE(c.shared.tls);
    EXPECT_TRUE(c.shared.tls_verify);
    EXPECT_EQ(c.shared.tls_ca_file, "");      // the system's default verify paths
    EXPECT_EQ(c.shared.tls_server_name, "");  // the host
    EXPECT_EQ(c.shared.host, "cache.internal");
    EXPECT_EQ(c.shared.port, 6380);
    EXPECT_EQ(c.shared.username, "u");
    EXPECT_EQ(c.shared.password.reveal(), "SECRET:pw");
    EXPECT_EQ(c.shared.db, 3);
    EXPECT_TRUE(c.warnings.empty());

    const Config plain = load("router_settings:\n  redis_url: redis://cache\n");
    EXPECT_FALSE(plain.shared.tls);
    const Config hostkey = load("router_settings:\n  redis_host: cache\n");
    EXPECT_FALSE(hostkey.shared.tls);

    const Config v6 = load("router_settings:\n  redis_url: rediss://[::1]:6390\n");
    EXPECT_TRUE(v6.shared.tls);
    EXPECT_EQ(v6.shared.host, "::1");
    EXPECT_EQ(v6.shared.port, 6390);
}

TEST_F(SharedStateConfig, TlsKnobs) {
    // The CA file must be readable at load (its content is read when connecting).
    const std::string ca =
        (std::filesystem::temp_directory_path() / ("tailgate-ca-test-" + std::to_string(::getpid()) + ".pem")).string();
    std::ofstream(ca) << "not parsed at load\n";
    const Config c = load(
        "router_settings:\n"
        "  redis_url: rediss://10.0.0.7:6380\n"
        "shared_state:\n"
        "  tls_ca_file: " + ca + "\n"
        "  tls_server_name: redis.internal\n");
    EXPECT_TRUE(c.shared.tls);
    EXPECT_EQ(c.shared.tls_ca_file, ca);
    EXPECT_EQ(c.shared.tls_server_name, "redis.internal");
    EXPECT_TRUE(c.shared.tls_verify);
    EXPECT_TRUE(c.warnings.empty());
    std::filesystem::remove(ca);

    const Config off = load("router_settings:\n  redis_url: rediss://h\nshared_state:\n  tls_verify: false\n");
    EXPECT_FALSE(off.shared.tls_verify);
    ASSERT_EQ(off.warnings.size(), 1u);
    EXPECT_EQ(off.warnings[0].rfind("fleet.yaml:7: shared_state.tls_verify: is false: the Redis server's certificate "
                                    "is NOT verified",
                                    0),
              0u)
        << off.warnings[0];
}

TEST_F(SharedStateConfig, TlsKnobErrorsNameKeyAndLine) {
    EXPECT_EQ(error_of("router_settings:\n  redis_url: rediss://:SECRET@h\nshared_state:\n"
                       "  tls_ca_file: /nonexistent/ca.pem\n"),
              "fleet.yaml:7: shared_state.tls_ca_file: cannot read the CA bundle '/nonexistent/ca.pem'");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: redis://:SECRET@h\nshared_state:\n"
                       "  tls_server_name: redis.internal\n"),
              "fleet.yaml:7: shared_state.tls_server_name: needs a rediss:// router_settings.redis_url (TLS is off "
              "with redis:// or redis_host)");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: rediss://:SECRET@h\nshared_state:\n"
                       "  tls_server_name: 'a b'\n"),
              "fleet.yaml:7: shared_state.tls_server_name: expected a host name or an IP address");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: rediss://:SECRET@\n"),
              "fleet.yaml:5: router_settings.redis_url: no host in the URL");
}

TEST_F(SharedStateConfig, BadEndpointsNameKeyAndLine) {
    EXPECT_EQ(error_of("router_settings:\n  redis_url: redis://:SECRET@host:99999\n"),
              "fleet.yaml:5: router_settings.redis_url: the port of the URL is not a port number");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: http://SECRET@host\n"),
              "fleet.yaml:5: router_settings.redis_url: expected a redis://[user:password@]host[:port][/db] (or "
              "rediss:// for TLS) URL in the URL");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: redis://h\n  redis_host: h\n"),
              "fleet.yaml:6: router_settings.redis_host: set either redis_url or redis_host/redis_port, not both");
    EXPECT_EQ(error_of("router_settings:\n  redis_port: 6379\n"),
              "fleet.yaml:5: router_settings.redis_port: needs router_settings.redis_host");
    EXPECT_EQ(error_of("router_settings:\n  redis_url: redis://:SECRET@h\n  redis_password: SECRET2\n"),
              "fleet.yaml:6: router_settings.redis_password: redis_url already has a password; set it in one place");
    EXPECT_EQ(error_of("router_settings:\n  redis_host: h\n  redis_password: os.environ/NOPE\n"),
              "fleet.yaml:6: router_settings.redis_password: environment variable NOPE is not set");
}

TEST_F(SharedStateConfig, SectionKnobs) {
    const Config c = load(
        "router_settings:\n"
        "  redis_host: 127.0.0.1\n"
        "shared_state:\n"
        "  key_prefix: 'prod:'\n"
        "  sync_interval: 250ms\n"
        "  command_timeout: 2s\n"
        "  probe_lease_time: 30s\n"
        "  replica_id: gw-a\n");
    EXPECT_EQ(c.shared.key_prefix, "prod:");
    EXPECT_EQ(c.shared.sync_interval, 250ms);
    EXPECT_EQ(c.shared.command_timeout, 2000ms);
    EXPECT_EQ(c.shared.probe_lease, 30000ms);
    EXPECT_EQ(c.shared.replica_id, "gw-a");
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(SharedStateConfig, SectionErrorsAndWarnings) {
    EXPECT_EQ(error_of("router_settings:\n  redis_host: h\nshared_state:\n  sync_interval: 5s\n"),
              "fleet.yaml:7: shared_state.sync_interval: expected a duration from 10ms to 1000ms");
    EXPECT_EQ(error_of("shared_state:\n  enabled: true\n"),
              "fleet.yaml:5: shared_state.enabled: needs router_settings.redis_host or router_settings.redis_url");
    const Config off = load("router_settings:\n  redis_host: h\nshared_state:\n  enabled: false\n");
    EXPECT_FALSE(off.shared.enabled);
    const Config lonely = load("shared_state:\n  key_prefix: x\n  colour: blue\n");
    EXPECT_FALSE(lonely.shared.enabled);
    EXPECT_EQ(lonely.warnings,
              (std::vector<std::string>{
                  "fleet.yaml:5: shared_state: has no effect without router_settings.redis_host or redis_url: this "
                  "process shares nothing",
                  "fleet.yaml:6: shared_state.colour: unknown key, ignored"}));
}
