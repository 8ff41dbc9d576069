// Control plane: admin changes over the file (validated like the file), the
// SQLite revision log, generations (state carried by identity, drain), reload.
#include "control/control_plane.hpp"
#include "control/overlay.hpp"
#include "control/store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

using namespace tailgate;
using namespace tailgate::control;

namespace {

const char* kFile = R"(
model_list:
  - model_name: chat
    litellm_params: {model: openai/m1, api_base: "http://127.0.0.1:1/v1", api_key: sk-file-secret-0001}
    model_info: {id: a1}
  - model_name: chat
    litellm_params: {model: openai/m2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: a2}
router_settings:
  num_retries: 1
  timeout: 30
  strategies: [test-reverse]
  plugin_paths: [")" TAILGATE_TEST_PLUGIN_DIR R"("]
)";

Change change(std::string op, std::string target, std::string payload = "{}", uint64_t rev = 1) {
    Change c;
    c.revision = rev;
    c.op = std::move(op);
    c.target = std::move(target);
    c.payload = std::move(payload);
    return c;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() / ("tg-control-" + std::to_string(::getpid()) + "-" +
                                                         std::to_string(reinterpret_cast<uintptr_t>(this)));
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(Overlay, AddUpdateDrainDeleteOverTheFile) {
    const auto file = config::load_string(kFile, "f.yaml");
    Effective e = apply_changes(file, {});
    e = apply_change(e, change("deployment.add", "",
                               R"({"model_name":"chat","litellm_params":{"model":"openai/m3","api_base":"http://127.0.0.1:3/v1"},"model_info":{"id":"n1"}})",
                               5));
    ASSERT_EQ(e.config->deployments.size(), 3u);
    EXPECT_EQ(e.config->deployments.back().id, "n1");
    EXPECT_EQ(e.deployment_rev.at("n1"), 5u);

    e = apply_change(e, change("deployment.drain", "a1"));
    EXPECT_TRUE(e.drained.count("a1"));
    e = apply_change(e, change("deployment.update", "a2",
                               R"({"model_name":"chat","litellm_params":{"model":"openai/m2","api_base":"http://127.0.0.1:9/v1"},"model_info":{"id":"a2"}})"));
    EXPECT_EQ(e.config->deployments[1].upstream.port, "9");
    e = apply_change(e, change("deployment.delete", "a1"));
    EXPECT_EQ(e.config->deployments.size(), 2u);
    EXPECT_FALSE(e.drained.count("a1")) << "a deleted deployment leaves the drained set";
    EXPECT_EQ(file.deployments.size(), 2u) << "the file's config is never modified";
}

TEST(Overlay, RefusalsNameTheKeyLikeTheFileLoader) {
    const Effective e = apply_changes(config::load_string(kFile, "f.yaml"), {});
    auto message = [&](const Change& c) {
        try {
            apply_change(e, c);
        } catch (const config::ConfigError& err) {
            return std::string(err.what());
        }
        return std::string("(accepted)");
    };
    EXPECT_NE(message(change("deployment.add", "", R"({"litellm_params":{"model":"openai/x"}})")).find("model_name"),
              std::string::npos);
    EXPECT_NE(message(change("deployment.add", "",
                             R"({"model_name":"chat","litellm_params":{"model":"openai/x","api_base":"http://h:1"},"model_info":{"id":"a1"}})"))
                  .find("exists"),
              std::string::npos);
    EXPECT_NE(message(change("deployment.delete", "nope")).find("no deployment with id 'nope'"), std::string::npos);
    EXPECT_NE(message(change("router_settings.patch", "", R"({"num_retries":-1})")).find("router_settings.num_retries"),
              std::string::npos);
    EXPECT_NE(message(change("router_settings.patch", "", R"({"plugin_paths":["/tmp"]})")).find("plugin_paths"),
              std::string::npos);
    EXPECT_NE(message(change("router_settings.patch", "", "[1]")).find("JSON object"), std::string::npos);
    EXPECT_NE(message(change("router_settings.patch", "", R"({"fallbacks":[{"chat":["nope"]}]})")), "(accepted)");
}

TEST(Overlay, RouterPatchSetsOnlyItsKeys) {
    Effective e = apply_changes(config::load_string(kFile, "f.yaml"), {});
    e = apply_change(e, change("router_settings.patch", "", R"({"num_retries":4,"cooldown_time":"2s"})", 7));
    EXPECT_EQ(e.config->router.num_retries, 4);
    EXPECT_EQ(e.config->router.cooldown_time.count(), 2000);
    EXPECT_EQ(e.config->router.timeout.count(), 30000) << "untouched keys keep the file's value";
    EXPECT_EQ(e.config->router.strategies.front().name, "test-reverse");
    EXPECT_EQ(e.router_key_rev.at("num_retries"), 7u);
    EXPECT_FALSE(e.router_key_rev.count("timeout"));
}

TEST(Overlay, EntryJsonHidesTheKeyAndRoundTrips) {
    const auto file = config::load_string(kFile, "f.yaml");
    const std::string shown = entry_json(file.deployments[0], false);
    EXPECT_EQ(shown.find("sk-file-secret"), std::string::npos);
    EXPECT_NE(shown.find("\"***\""), std::string::npos);
    const config::Deployment back = parse_entry(entry_json(file.deployments[0], true), "t");
    EXPECT_EQ(back.id, "a1");
    EXPECT_EQ(back.upstream.api_key.reveal(), "sk-file-secret-0001");
    EXPECT_EQ(back.upstream.port, "1");
}

// A deployment added through the admin API resolves like the same entry in the
// file: the provider's codec, its addressing (Azure's deployment path and
// api-version) and, under the file's litellm_settings.drop_params, the
// parameters the provider refuses.
TEST(Overlay, AddedDeploymentsResolveTheirProviderLikeTheFile) {
    const std::string groq =
        R"({"model_name":"fast","litellm_params":{"model":"groq/llama","api_base":"http://127.0.0.1:4/openai/v1"},"model_info":{"id":"g1"}})";
    const std::string azure =
        R"({"model_name":"az","litellm_params":{"model":"azure/gpt4o","api_base":"http://127.0.0.1:5"},"model_info":{"id":"z1"}})";
    const std::string base = std::string(kFile) + "litellm_settings: {drop_params: true}\n";
    std::string file_text = base;
    file_text.insert(file_text.find("router_settings:"), "  - " + groq + "\n  - " + azure + "\n");
    const auto with_both = config::load_string(file_text, "f.yaml");
    Effective e = apply_changes(config::load_string(base, "f.yaml"), {});
    e = apply_change(e, change("deployment.add", "", groq, 2));
    e = apply_change(e, change("deployment.add", "", azure, 3));
    ASSERT_EQ(e.config->deployments.size(), with_both.deployments.size());
    for (size_t i = 2; i < with_both.deployments.size(); ++i) {
        const config::Deployment& added = e.config->deployments[i];
        const config::Deployment& filed = with_both.deployments[i];
        EXPECT_EQ(added.id, filed.id);
        EXPECT_EQ(&config::codec_of(added.upstream), &config::codec_of(filed.upstream)) << filed.id;
        EXPECT_EQ(added.upstream.provider, filed.upstream.provider);
        EXPECT_EQ(added.upstream.base_path, filed.upstream.base_path) << filed.id;
        EXPECT_EQ(added.upstream.api_version, filed.upstream.api_version) << filed.id;
        EXPECT_EQ(added.dropped_fields, filed.dropped_fields) << filed.id;
    }
    EXPECT_EQ(config::codec_of(e.config->deployments[3].upstream).name(), "azure");
    EXPECT_NE(std::find(e.config->deployments[2].dropped_fields.begin(), e.config->deployments[2].dropped_fields.end(),
                        "logprobs"),
              e.config->deployments[2].dropped_fields.end())
        << "groq refuses logprobs; litellm_settings.drop_params is on";
}

TEST(Store, SqliteLogRoundTripsInOrderAndIsPrivate) {
    TempDir dir;
    {
        auto s = open_sqlite_store(dir.path.string());
        Change c = change("deployment.drain", "a1", "{}", 1);
        c.key_hash = "abc123";
        s->append(c);
        s->append(change("router_settings.patch", "", R"({"num_retries":2})", 2));
        EXPECT_THROW(s->append(change("deployment.undrain", "a1", "{}", 2)), std::runtime_error) << "revision is unique";
    }
    auto s = open_sqlite_store(dir.path.string());
    const auto log = s->load();
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].revision, 1u);
    EXPECT_EQ(log[0].key_hash, "abc123");
    EXPECT_EQ(log[1].payload, R"({"num_retries":2})");
    struct stat st {};
    ASSERT_EQ(::stat((dir.path / "tailgate-state.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << "the log may hold api keys";
}

TEST(ControlPlane, ChangesBuildGenerationsAndCarryStateByIdentity) {
    TempDir dir;
    const auto path = dir.path / "c.yaml";
    std::ofstream(path) << kFile;
    auto file = std::make_shared<const config::Config>(config::load_file(path.string()));
    ControlPlane cp(path.string(), file, memory_store());
    std::vector<GenerationPtr> published;
    cp.start([&](GenerationPtr g) { published.push_back(std::move(g)); });
    ASSERT_EQ(published.size(), 1u);
    const auto& r0 = *published[0]->router;
    r0.state(*r0.index_of("a2")).counters->successes = 42;

    Change add = change("deployment.add", "",
                        R"({"model_name":"chat","litellm_params":{"model":"openai/m3","api_base":"http://127.0.0.1:3/v1"}})");
    add.key_hash = "k";
    Outcome o = cp.apply(add);
    ASSERT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.revision, 1u);
    ASSERT_EQ(published.size(), 2u);
    const auto& r1 = *published[1]->router;
    EXPECT_EQ(r1.deployment_count(), 3u);
    EXPECT_EQ(r1.state(*r1.index_of("a2")).counters->successes.load(), 42u) << "same identity: state carried over";
    EXPECT_EQ(r1.state(*r1.index_of(o.target)).counters->successes.load(), 0u);

    // Drain: no new generation, the running one stops routing to it.
    ASSERT_TRUE(cp.apply(change("deployment.drain", "a1")).ok);
    EXPECT_EQ(published.size(), 2u);
    router::RequestInfo info;
    info.request_id = "t";
    info.model_group = "chat";
    for (int i = 0; i < 20; ++i) {
        auto routed = r1.route(info);
        ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(routed));
        for (const auto& a : std::get<router::RoutedPlan>(routed).plan.attempts)
            EXPECT_NE(r1.deployment(a.deployment).id, "a1");
    }

    // A strategy that does not load: refused, nothing published, revision unchanged.
    Outcome bad = cp.apply(change("router_settings.patch", "", R"({"strategies":["no-such-plugin"]})"));
    EXPECT_FALSE(bad.ok);
    EXPECT_NE(bad.error.find("no-such-plugin"), std::string::npos);
    EXPECT_EQ(published.size(), 2u);
    EXPECT_EQ(cp.revision(), 2u);

    // Reload: an invalid file keeps everything; a valid one keeps the admin changes on top.
    std::ofstream(path) << "model_list: 7\n";
    Outcome r = cp.reload("test");
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find(path.string() + ":1: model_list"), std::string::npos) << r.error;
    std::ofstream(path) << kFile;
    r = cp.reload("test");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(published.back()->router->deployment_count(), 3u);
    EXPECT_TRUE(cp.effective().drained.count("a1"));
    EXPECT_NE(cp.render_metrics().find("tailgate_config_reloads_total{result=\"failure\"} 1"), std::string::npos);
}

TEST(Generations, CarriedCooldownSkipsTheDeploymentUntilItEnds) {
    router::DeploymentState old;
    old.counters->successes = 7;
    old.health = Health::Cooling;
    old.cooldown_until_ms = 10'000;
    router::DeploymentState fresh;
    fresh.adopt(old, 4'000);
    EXPECT_EQ(fresh.counters->successes.load(), 7u);
    EXPECT_EQ(fresh.counters, old.counters) << "shared: the old generation's attempts end into them";
    EXPECT_EQ(fresh.carried_cooldown_until_ms.load(), 10'000);
    EXPECT_EQ(fresh.health, Health::Healthy) << "published health stays the new plugins' to set";
    router::DeploymentState late;
    late.adopt(old, 12'000);
    EXPECT_EQ(late.carried_cooldown_until_ms.load(), 0) << "an ended cooldown is not carried";

    int64_t now = 5'000;
    auto cfg = std::make_shared<const config::Config>(config::load_string(kFile, "f.yaml"));
    plugin::Registry registry({TAILGATE_TEST_PLUGIN_DIR});
    router::Router r(cfg, registry, [&] { return now; });
    auto& a2 = const_cast<router::DeploymentState&>(r.state(*r.index_of("a2")));
    a2.carried_cooldown_until_ms = 10'000;
    router::RequestInfo info;
    info.request_id = "t";
    info.model_group = "chat";
    auto first = [&] {
        auto routed = r.route(info);
        return r.deployment(std::get<router::RoutedPlan>(routed).plan.attempts.front().deployment).id;
    };
    EXPECT_EQ(first(), "a1") << "test-reverse would put a2 first; its carried cooldown keeps it out";
    r.set_drained(*r.index_of("a1"), true);
    EXPECT_EQ(first(), "a2") << "nothing else left: the carried cooldown yields";
    r.set_drained(*r.index_of("a1"), false);
    now = 10'001;
    EXPECT_EQ(first(), "a2") << "the cooldown ended";
}
