// What the strategy-plugin tests share: the real .so loaded through the registry
// onto FakeHost, plan shorthands, and requests carrying extra_body overrides.
#pragma once

#include "plugin/loader.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace tailgate::plugin::testing {

using Args = std::vector<std::pair<std::string, std::string>>;
using Step = std::tuple<std::string, uint32_t, uint32_t>;  // (deployment id, launch rule, delay ms)
using Plan = std::vector<Step>;

constexpr uint32_t S = TG_LAUNCH_AT_START;
constexpr uint32_t D = TG_LAUNCH_AFTER_DELAY;
constexpr uint32_t F = TG_LAUNCH_ON_FAILURE;

// A request carrying flattened extra_body overrides.
struct OverrideRequest {
    explicit OverrideRequest(Args kv, std::string id = "req-1", bool stream = false)
        : req("test-group", stream, "{}", "{}", std::move(id)), store(std::move(kv)) {
        for (auto& [k, v] : store) items.push_back(tg_kv{k.c_str(), v.c_str()});
        req.raw.overrides = items.data();
        req.raw.override_count = static_cast<uint32_t>(items.size());
    }
    sdk::testing::Request req;
    Args store;
    std::vector<tg_kv> items;
};

// Fixture base: deployments, the fake host and the registry; make() loads `strategy`.
class StrategyTest : public ::testing::Test {
protected:
    explicit StrategyTest(std::string strategy, std::vector<std::string> dirs = {TAILGATE_PLUGIN_DIR})
        : reg(std::move(dirs)), strategy_(std::move(strategy)) {}

    InstancePtr make(Args args = {}) {
        host.set_deployments(d.pointers());
        return reg.create(strategy_, host.api(), args);
    }
    // The loader's refusal message for `args`, "" when the plugin accepted them.
    std::string refusal(Args args) {
        try {
            make(std::move(args));
        } catch (const PluginError& e) {
            return e.what();
        }
        return "";
    }

    // The instance a reload builds: same strategy, the next configuration's
    // deployments (`next`, on `next_host`), handed `previous`'s state as the
    // host does (tg_plugin_adopt_state). `why` gets the refusal, "" on success.
    InstancePtr reload(Instance& previous, Args args = {}, std::string* why = nullptr) {
        next_host.set_deployments(next.pointers());
        next_host.set_now(now_of(host));
        InstancePtr inst = reg.create(strategy_, next_host.api(), args);
        const std::string refusal = inst->adopt_state_from(previous);
        if (why) *why = refusal;
        else EXPECT_EQ(refusal, "");
        return inst;
    }
    static int64_t now_of(const sdk::testing::FakeHost& h) { return h.api()->now_ms(h.api()->host); }

    Registry reg;
    sdk::testing::FakeHost host;
    sdk::testing::Deployments d;
    // The next configuration (reload tests): other deployments, other indices.
    sdk::testing::FakeHost next_host;
    sdk::testing::Deployments next;

private:
    std::string strategy_;
};

}  // namespace tailgate::plugin::testing
