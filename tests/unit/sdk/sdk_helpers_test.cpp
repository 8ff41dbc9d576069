// The SDK's header-only helpers plugins share: Args::allow_only, error_class_name.
#include <tailgate/plugin.hpp>

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace tailgate::sdk {
namespace {

struct RawArgs {
    RawArgs(std::initializer_list<tg_kv> kv) : items(kv) {
        raw.struct_size = sizeof raw;
        raw.items = items.data();
        raw.count = static_cast<uint32_t>(items.size());
    }
    std::vector<tg_kv> items;
    tg_args raw{};
};

// The ConfigError message, or "" when allow_only accepts.
template <class... Extra>
std::string refusal(const Args& args, std::initializer_list<std::string_view> allowed, Extra... also) {
    try {
        args.allow_only(allowed, also...);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(SdkAllowOnly, NamesTheUnknownKeyAndTheAllowedOnes) {
    RawArgs a({{"seed", "1"}, {"sed", "2"}});
    EXPECT_EQ(refusal(Args(&a.raw, "shuffle"), {"seed", "ttl"}), "unknown arg 'sed' (shuffle accepts: seed, ttl)");
    EXPECT_EQ(refusal(Args(&a.raw), {"seed"}), "unknown arg 'sed' (strategy accepts: seed)");
    EXPECT_EQ(refusal(Args(&a.raw, "idle"), {}), "unknown arg 'seed' (idle takes no args)");
    EXPECT_EQ(refusal(Args(&a.raw, "shuffle"), {"seed", "sed"}), "");
}

TEST(SdkAllowOnly, RouterSettingsAlwaysPass) {
    RawArgs a({{"router.num_retries", "2"}, {"router.anything_new", "x"}});
    EXPECT_EQ(refusal(Args(&a.raw, "idle"), {}), "");
    RawArgs b({{"router", "x"}});  // not a router.* key
    EXPECT_EQ(refusal(Args(&b.raw, "idle"), {}), "unknown arg 'router' (idle takes no args)");
}

TEST(SdkAllowOnly, AlsoAcceptsAFamilyTheListDescribes) {
    auto policy = [](std::string_view k) { return k == "policy.Timeout"; };
    RawArgs ok({{"policy.Timeout", "1"}});
    EXPECT_EQ(refusal(Args(&ok.raw, "h"), {"policy.<Key>"}, policy), "");
    RawArgs bad({{"policy.Nope", "1"}});
    EXPECT_EQ(refusal(Args(&bad.raw, "h"), {"policy.<Key>"}, policy),
              "unknown arg 'policy.Nope' (h accepts: policy.<Key>)");
}

TEST(SdkAllowOnly, NoArgsAndNullKeys) {
    EXPECT_EQ(refusal(Args(nullptr, "idle"), {}), "");
    RawArgs a({{nullptr, "1"}});
    EXPECT_EQ(refusal(Args(&a.raw, "idle"), {}), "unknown arg '' (idle takes no args)");
}

TEST(SdkErrorClassName, NamesEveryClass) {
    EXPECT_STREQ(error_class_name(TG_ERRC_CONNECT), "connect");
    EXPECT_STREQ(error_class_name(TG_ERRC_TIMEOUT), "timeout");
    EXPECT_STREQ(error_class_name(TG_ERRC_RATE_LIMIT), "rate_limit");
    EXPECT_STREQ(error_class_name(TG_ERRC_SERVER), "server");
    EXPECT_STREQ(error_class_name(TG_ERRC_AUTH), "auth");
    EXPECT_STREQ(error_class_name(TG_ERRC_NOT_FOUND), "not_found");
    EXPECT_STREQ(error_class_name(TG_ERRC_BAD_REQUEST), "bad_request");
    EXPECT_STREQ(error_class_name(TG_ERRC_PROTOCOL), "protocol");
    EXPECT_STREQ(error_class_name(TG_ERRC_CONTEXT_WINDOW), "context_window");
    EXPECT_STREQ(error_class_name(TG_ERRC_NONE), "other");
    EXPECT_STREQ(error_class_name(99), "other");
    EXPECT_STREQ(error_class_name(TG_ERRC_NONE, "error"), "error");
}

}  // namespace
}  // namespace tailgate::sdk
