// Overload, shutdown and security pieces of issue 8: admission caps, their
// config keys, client-side credential detection, secret scrubbing.
#include "common/redact.hpp"
#include "config/config.hpp"
#include "server/admission.hpp"
#include "server/request_body.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tailgate;
using namespace tailgate::server;

namespace {

config::GeneralSettings limits(int requests, int streams,
                               std::vector<std::pair<std::string, config::GeneralSettings::Limits>> groups = {}) {
    config::GeneralSettings g;
    g.limits = {requests, streams};
    g.group_limits = std::move(groups);
    return g;
}

std::optional<Admission::Refused> admit(Admission& a, std::vector<std::string> groups, bool stream,
                                        Admission::Ticket& t) {
    return a.admit(groups, stream, t);
}

const char* kModel = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_base: 'http://127.0.0.1:1/v1'}\n"
                     "  - model_name: b\n    litellm_params: {model: openai/x, api_base: 'http://127.0.0.1:1/v1'}\n";

}  // namespace

TEST(Admission, NoCapsAdmitsEverything) {
    Admission a(limits(0, 0));
    EXPECT_TRUE(a.unlimited());
    std::vector<Admission::Ticket> held(1000);
    for (auto& t : held) EXPECT_FALSE(admit(a, {"a"}, true, t));
}

TEST(Admission, GlobalRequestCapIsExactAndSlotsComeBack) {
    Admission a(limits(2, 0));
    Admission::Ticket t1, t2, t3;
    EXPECT_FALSE(admit(a, {"a"}, false, t1));
    EXPECT_FALSE(admit(a, {"b"}, true, t2));
    auto no = admit(a, {"a"}, false, t3);
    ASSERT_TRUE(no);
    EXPECT_EQ(no->reason, Rejection::MaxConcurrentRequests);
    EXPECT_EQ(a.global().requests, 2);
    t1 = Admission::Ticket();  // released
    EXPECT_EQ(a.global().requests, 1);
    EXPECT_FALSE(admit(a, {"a"}, false, t3));
    EXPECT_EQ(a.global().requests, 2);
    EXPECT_EQ(a.global().streams, 1);
}

TEST(Admission, StreamCapOnlyLimitsStreams) {
    Admission a(limits(0, 1));
    Admission::Ticket s1, s2, p1;
    EXPECT_FALSE(admit(a, {"a"}, true, s1));
    auto no = admit(a, {"a"}, true, s2);
    ASSERT_TRUE(no);
    EXPECT_EQ(no->reason, Rejection::MaxOpenStreams);
    EXPECT_FALSE(admit(a, {"a"}, false, p1));
}

TEST(Admission, GroupCapsAreAllOrNothingAcrossListedGroups) {
    Admission a(limits(0, 0, {{"a", {1, 0}}, {"b", {0, 1}}}));
    EXPECT_FALSE(a.unlimited());
    Admission::Ticket ta, tab, tb;
    EXPECT_FALSE(admit(a, {"a"}, false, ta));
    auto no = admit(a, {"b", "a"}, true, tab);  // b has room, a does not: nothing taken
    ASSERT_TRUE(no);
    EXPECT_EQ(no->reason, Rejection::GroupMaxConcurrentRequests);
    EXPECT_EQ(no->group, "a");
    EXPECT_FALSE(admit(a, {"b"}, true, tb));  // b's stream slot was not taken by the refusal
    Admission::Ticket tb2;
    no = admit(a, {"b"}, true, tb2);
    ASSERT_TRUE(no);
    EXPECT_EQ(no->reason, Rejection::GroupMaxOpenStreams);
    // A group listed twice takes one slot; unlimited groups are free.
    ta = Admission::Ticket();
    Admission::Ticket twice, other;
    EXPECT_FALSE(admit(a, {"a", "a"}, false, twice));
    EXPECT_FALSE(admit(a, {"zzz"}, true, other));
}

TEST(Admission, RejectionsAreOpenAIShapedWithRetryAfter) {
    ApiError e = rejection_error(Rejection::MaxConcurrentRequests, "", 2);
    EXPECT_EQ(e.status, 503);
    EXPECT_EQ(e.code, "gateway_overloaded");
    EXPECT_EQ(e.retry_after_s, 2);
    e = rejection_error(Rejection::GroupMaxOpenStreams, "gpt-4o", 1);
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.type, "rate_limit_error");
    EXPECT_NE(e.message.find("'gpt-4o'"), std::string::npos);
    EXPECT_NE(e.body().find("\"code\":\"model_group_overloaded\""), std::string::npos);
    e = rejection_error(Rejection::Draining, "", 5);
    EXPECT_EQ(e.status, 503);
    EXPECT_EQ(e.code, "gateway_draining");
    EXPECT_STREQ(rejection_name(Rejection::GroupMaxConcurrentRequests), "group_max_concurrent_requests");
}

TEST(AdmissionConfig, KeysParseAndDefault) {
    auto d = config::load_string(kModel, "inline.yaml");
    EXPECT_EQ(d.general.limits.max_concurrent_requests, 0);
    EXPECT_EQ(d.general.drain_timeout, std::chrono::milliseconds(25000));
    EXPECT_EQ(d.general.overload_retry_after_s, 1);
    EXPECT_FALSE(d.general.allow_client_side_credentials);
    auto c = config::load_string(std::string(kModel) +
                                     "general_settings:\n  max_concurrent_requests: 100\n  max_open_streams: 50\n"
                                     "  model_group_limits:\n    b: {max_concurrent_requests: 10, max_open_streams: 4}\n"
                                     "  overload_retry_after: 3\n  drain_timeout: 500ms\n"
                                     "  allow_client_side_credentials: true\n",
                                 "inline.yaml");
    EXPECT_EQ(c.general.limits.max_concurrent_requests, 100);
    EXPECT_EQ(c.general.limits.max_open_streams, 50);
    ASSERT_EQ(c.general.group_limits.size(), 1u);
    EXPECT_EQ(c.general.group_limits[0].first, "b");
    EXPECT_EQ(c.general.group_limits[0].second.max_open_streams, 4);
    EXPECT_EQ(c.general.overload_retry_after_s, 3);
    EXPECT_EQ(c.general.drain_timeout, std::chrono::milliseconds(500));
    EXPECT_TRUE(c.general.allow_client_side_credentials);
    EXPECT_TRUE(c.warnings.empty());
}

TEST(AdmissionConfig, BadValuesAreErrorsAndUselessCapsWarn) {
    auto error = [](const std::string& general) {
        try {
            config::load_string(std::string(kModel) + "general_settings:\n" + general, "inline.yaml");
        } catch (const config::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("(loaded)");
    };
    EXPECT_EQ(error("  model_group_limits: {nope: {max_open_streams: 1}}\n"),
              "inline.yaml:7: general_settings.model_group_limits.nope: unknown model group (known: a, b)");
    EXPECT_EQ(error("  max_open_streams: -1\n"),
              "inline.yaml:7: general_settings.max_open_streams: must be between 0 and 2147483647, got '-1'");
    // A request holds a server thread only while it is read (ClientRelay writes
    // the response), so a cap above max_threads is fine and draws no warning.
    auto c = config::load_string(std::string(kModel) + "general_settings:\n  max_threads: 8\n  max_concurrent_requests: 800\n",
                                 "inline.yaml");
    EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
    EXPECT_EQ(c.general.limits.max_concurrent_requests, 800);
}

static std::optional<std::string> env_with_newline(const std::string& name) {
    if (name == "KEY_NL") return std::string("sk-S3CRET-value\n");
    return std::nullopt;
}

TEST(AdmissionConfig, SecretsWithLineBreaksAreRefusedWithoutShowingThem) {
    try {
        config::load_string(std::string(kModel) + "general_settings:\n  master_key: os.environ/KEY_NL\n", "inline.yaml",
                            env_with_newline);
        ADD_FAILURE() << "loaded";
    } catch (const config::ConfigError& e) {
        EXPECT_STREQ(e.what(), "inline.yaml:7: general_settings.master_key: contains a line break or NUL, which "
                               "cannot be sent in an HTTP header");
    }
}

TEST(ClientCredentials, DetectedAtTopLevelAndInExtraBody) {
    auto field = [](std::string_view body) {
        auto r = parse_body(body, Endpoint::Chat);
        EXPECT_TRUE(std::holds_alternative<ParsedBody>(r)) << body;
        return std::holds_alternative<ParsedBody>(r) ? std::get<ParsedBody>(r).client_credential : "(error)";
    };
    EXPECT_EQ(field(R"({"model":"m","messages":[],"user":"u","temperature":1})"), "");
    EXPECT_EQ(field(R"({"model":"m","messages":[],"api_base":"http://x"})"), "api_base");
    EXPECT_EQ(field(R"({"model":"m","api_key":"k","messages":[],"base_url":"http://x"})"), "api_key");
    EXPECT_EQ(field(R"({"model":"m","messages":[],"extra_body":{"a":{"api_key":"nested deeper: fine"},"azure_endpoint":"x"}})"),
              "extra_body.azure_endpoint");
    // Only keys count: the words inside messages or metadata are content.
    EXPECT_EQ(field(R"({"model":"m","messages":[{"role":"user","content":"api_key"}],"metadata":{"api_base":"x"}})"), "");
}

TEST(Redact, ReplacesConfiguredSecretsOnly) {
    set_redacted_secrets({"sk-secret-123456", "none", "sk-secret-123456-longer"});
    EXPECT_EQ(redact("bad key sk-secret-123456-longer and sk-secret-123456."), "bad key *** and ***.");
    EXPECT_EQ(redact("none of it"), "none of it");  // too short to be scrubbed
    EXPECT_TRUE(contains_secret("data: {\"error\":\"key sk-secret-123456\"}"));
    EXPECT_FALSE(contains_secret("data: {\"content\":\"none\"}"));
    set_redacted_secrets({});
    EXPECT_EQ(redact("sk-secret-123456"), "sk-secret-123456");
}
