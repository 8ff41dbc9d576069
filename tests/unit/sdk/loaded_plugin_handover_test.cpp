// testing.hpp's LoadedPlugin drives a reload handover and reads state_json as
// the host does, on a shipped .so (usage: its rpm window follows the identity).
#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <string>

namespace tailgate::sdk::testing {
namespace {

TEST(LoadedPlugin, HandsStateToTheNextInstanceAndShowsIt) {
    const std::string so = std::string(TAILGATE_PLUGIN_DIR) + "/usage.so";
    LoadedPlugin before(so), after(so);
    FakeHost h1, h2;
    Deployments d1, d2;
    d1.add("a");
    d1.add("b").rpm = 1;
    d2.add("b").rpm = 1;  // index 0 now
    h1.set_deployments(d1.pointers());
    h2.set_deployments(d2.pointers());
    Args none;
    ASSERT_EQ(before.create(h1.api(), none.raw()), "");
    Event started(TG_EVENT_STARTED, &d1.deployment(1));
    before.observe(started.raw);

    ASSERT_EQ(after.create(h2.api(), none.raw()), "");
    Request req;
    EXPECT_EQ(after.route(req.raw, d2.route(&h2)).status, TG_OK) << "fresh: b is free";
    ASSERT_EQ(after.adopt_state(before), TG_OK);
    EXPECT_EQ(after.route(req.raw, d2.route(&h2)).status, TG_ERR_NO_CANDIDATE) << "b's minute carried over";
    EXPECT_NE(after.state_json().find("\"b\":{\"requests\":1"), std::string::npos) << after.state_json();
}

}  // namespace
}  // namespace tailgate::sdk::testing
