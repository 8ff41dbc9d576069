// usage across a reload: rpm/tpm windows follow the deployment's identity (a
// reload hands out no fresh minute of quota); state_json shows them; a preview
// counts nothing.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;
using Ids = std::vector<std::string>;
using testing::Args;

class UsageReloadTest : public testing::StrategyTest {
protected:
    UsageReloadTest() : StrategyTest("usage") {}
    void SetUp() override {
        host.set_now(kNow);
        d.add("a");
        d.add("b").rpm = 2;
        next.add("n");
        next.add("b").rpm = 2;
    }
    static void started(Instance& inst, Deployments& deps, uint32_t i) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = TG_EVENT_STARTED;
        e.deployment = &deps.deployment(i);
        e.request_id = "r";
        e.model_group = "test-group";
        e.at_ms = kNow;
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        inst.observe(e);
    }
    static Ids route(Instance& inst, Deployments& deps, FakeHost& h, uint32_t flags = 0) {
        Request req("test-group");
        req.flags(flags);
        const int rc = inst.route(req.raw, deps.route(&h));
        if (rc == TG_ERR_NO_CANDIDATE) return {"<refused>"};
        return deps.order();
    }
    static constexpr int64_t kNow = 1'000'000;
};

TEST_F(UsageReloadTest, AnRpmWindowCarriesUnderTheNewIndex) {
    auto old = make();
    started(*old, d, 1);
    started(*old, d, 1);  // "b" at its rpm of 2
    auto fresh = reload(*old);
    EXPECT_EQ(route(*fresh, next, next_host), (Ids{"n"})) << "b (index 1 here) is still at its limit";
    EXPECT_NE(fresh->state_json().find("\"b\":{\"requests\":2,\"tokens\":0}"), std::string::npos)
        << fresh->state_json();
    EXPECT_NE(fresh->state_json().find("\"n\":{\"requests\":0,\"tokens\":0}"), std::string::npos);
}

TEST_F(UsageReloadTest, PreviewsChangeNoCounter) {
    auto inst = make();
    started(*inst, d, 0);
    const std::string before = inst->state_json();
    for (int i = 0; i < 100; ++i) ASSERT_EQ(route(*inst, d, host, TG_REQUEST_PREVIEW).size(), 2u);
    EXPECT_EQ(inst->state_json(), before);
}

}  // namespace
}  // namespace tailgate::plugin
