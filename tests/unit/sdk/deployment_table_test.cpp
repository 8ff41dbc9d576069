// The SDK's DeploymentTable: per-deployment state by index, shared with the
// next instance by identity (tg_deployment.id) on a reload.
#include <tailgate/deployment_table.hpp>
#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace tailgate::sdk {
namespace {

struct Counter {
    std::atomic<int> n{0};
};
using Table = DeploymentTable<Counter>;

std::shared_ptr<Counter> fresh() { return std::make_shared<Counter>(); }

TEST(DeploymentTable, OneStatePerListedDeploymentAndOnDemandForOthers) {
    testing::FakeHost host;
    testing::Deployments d;
    d.add("a");
    d.add("b");
    host.set_deployments(d.pointers());
    Table t(Host(host.api()), fresh);
    EXPECT_EQ(t.listed(), 2u);
    EXPECT_EQ(t.id(1), "b");
    ++t.at(d.deployment(1)).n;
    EXPECT_EQ(t.at(1).n.load(), 1);
    EXPECT_NE(&t.at(0), &t.at(1));
    Counter& unlisted = t.at(7);
    EXPECT_EQ(&unlisted, &t.at(7)) << "made once, then found";
    int seen = 0;
    t.for_each([&](uint32_t, const std::string&, Counter&) { ++seen; });
    EXPECT_EQ(seen, 3);
}

TEST(DeploymentTable, AdoptSharesByIdentityNotByIndex) {
    testing::FakeHost before_host, after_host;
    testing::Deployments before, after;
    for (const char* id : {"a", "b", "c"}) before.add(id);
    for (const char* id : {"c", "new", "b"}) after.add(id);
    before_host.set_deployments(before.pointers());
    after_host.set_deployments(after.pointers());
    Table old(Host(before_host.api()), fresh);
    old.at(1).n = 10;  // b
    old.at(2).n = 20;  // c
    Table next(Host(after_host.api()), fresh);
    std::vector<uint32_t> adopted;
    EXPECT_EQ(next.adopt(old, [&](uint32_t i, Counter&) { adopted.push_back(i); }), 2u);
    EXPECT_EQ(adopted, (std::vector<uint32_t>{0, 2}));
    EXPECT_EQ(next.at(0).n.load(), 20);
    EXPECT_EQ(next.at(2).n.load(), 10);
    EXPECT_EQ(next.at(1).n.load(), 0) << "added: fresh";
    ++old.at(1).n;  // the previous instance's last events
    EXPECT_EQ(next.at(2).n.load(), 11) << "shared, not copied";
}

}  // namespace
}  // namespace tailgate::sdk
