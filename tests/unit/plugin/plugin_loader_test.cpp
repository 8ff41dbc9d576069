// Loader: handshake, exact refusal messages, containment of misbehaving plugins.
// Plugins come from tests/plugins/* (built into TAILGATE_TEST_PLUGIN_DIR).
#include "plugin/loader.hpp"
#include "plugin/search_path.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tailgate::plugin {
namespace {

namespace fs = std::filesystem;
using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;

const std::string kDir = TAILGATE_TEST_PLUGIN_DIR;
std::string so(const std::string& name) { return (fs::path(kDir) / (name + ".so")).string(); }

// Message of the PluginError thrown by create(), or "" when none is thrown.
std::string create_error(const Registry& reg, const std::string& name,
                         const std::vector<std::pair<std::string, std::string>>& args = {},
                         const tg_host_api* host = nullptr) {
    try {
        reg.create(name, host, args);
    } catch (const PluginError& e) {
        return e.what();
    }
    return "";
}

bool has_log(const FakeHost& h, const std::string& text) {
    for (auto& [level, msg] : h.logs())
        if (msg == text) return true;
    return false;
}

// A fresh temporary directory, removed at the end of the test.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("tailgate-loader-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path_);
        // Not world-writable whatever the umask: the loader refuses such directories.
        fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string str() const { return path_.string(); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

class PluginLoaderTest : public ::testing::Test {
protected:
    Registry reg{{kDir}};
    FakeHost host;
};

TEST_F(PluginLoaderTest, AvailableListsEveryTestPluginSorted) {
    auto names = reg.available();
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    for (const char* n : {"bad-version", "init-fails", "missing-symbol", "not-a-plugin", "test-reverse", "throwing",
                          "unresolved", "wrong-name"})
        EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
    EXPECT_EQ(reg.find("test-reverse"), so("test-reverse"));
    EXPECT_EQ(reg.find("nope"), std::nullopt);
}

TEST(PluginLoaderDirs, FirstDirectoryWinsAndMissingDirsAreSkipped) {
    TempDir a, b;
    fs::copy_file(so("test-reverse"), a.file("test-reverse.so"));
    fs::copy_file(so("test-reverse"), b.file("test-reverse.so"));
    fs::copy_file(so("init-fails"), b.file("init-fails.so"));
    std::ofstream(b.file("README.txt")) << "not a plugin, not a .so\n";
    fs::create_directory(b.file("dir.so"));  // a directory is not a plugin

    Registry reg({"/nonexistent/tailgate", a.str(), b.str()});
    EXPECT_EQ(reg.available(), (std::vector<std::string>{"init-fails", "test-reverse"}));
    EXPECT_EQ(reg.find("test-reverse"), a.file("test-reverse.so"));
    auto inst = reg.create("test-reverse", nullptr, {});
    EXPECT_EQ(inst->path(), a.file("test-reverse.so"));
    EXPECT_EQ(inst->name(), "test-reverse");
}

TEST(PluginLoaderDirs, UnknownStrategyListsAvailableAndSearchedDirs) {
    TempDir a, b;
    fs::copy_file(so("test-reverse"), a.file("test-reverse.so"));
    fs::copy_file(so("init-fails"), b.file("init-fails.so"));
    Registry reg({a.str(), b.str()});
    EXPECT_EQ(create_error(reg, "foo"), "unknown strategy 'foo'; available: init-fails, test-reverse (searched: " +
                                            a.str() + ", " + b.str() + ")");

    Registry empty({"/nonexistent/x"});
    EXPECT_EQ(create_error(empty, "foo"), "unknown strategy 'foo'; available: (none) (searched: /nonexistent/x)");
    // Names are looked up, never used as paths.
    EXPECT_EQ(create_error(empty, "..").rfind("unknown strategy '..'", 0), 0u);
}

TEST_F(PluginLoaderTest, BadVersionRefusedBeforeCreate) {
    // bad-version.so aborts the process if its create() is ever called.
    EXPECT_EQ(create_error(reg, "bad-version"), so("bad-version") + ": ABI version mismatch: expected 1, found 99");
}

TEST_F(PluginLoaderTest, MissingSymbolRefusedBeforeCreate) {
    EXPECT_EQ(create_error(reg, "missing-symbol"), so("missing-symbol") + ": missing symbol tg_plugin_route");
}

TEST_F(PluginLoaderTest, NotAPluginRefused) {
    EXPECT_EQ(create_error(reg, "not-a-plugin"),
              so("not-a-plugin") +
                  ": missing symbols tg_plugin_abi_version, tg_plugin_name, tg_plugin_create, "
                  "tg_plugin_destroy, tg_plugin_route, tg_plugin_observe");
}

TEST_F(PluginLoaderTest, WrongNameRefused) {
    EXPECT_EQ(create_error(reg, "wrong-name"),
              so("wrong-name") +
                  ": name mismatch: the file is named for strategy 'wrong-name' but tg_plugin_name() returns "
                  "'right-name'");
}

TEST_F(PluginLoaderTest, InitFailureCarriesPluginMessage) {
    EXPECT_EQ(create_error(reg, "init-fails", {{"a", "1"}, {"b", "2"}}),
              so("init-fails") + ": strategy 'init-fails' refused its configuration: init-fails always refuses "
                                 "(2 args given)");
}

TEST_F(PluginLoaderTest, ConstructorExceptionBecomesRefusal) {
    EXPECT_EQ(create_error(reg, "test-reverse", {{"plan", "bogus"}}, host.api()),
              so("test-reverse") +
                  ": strategy 'test-reverse' refused its configuration: plan: expected 'default' or 'race', got "
                  "'bogus'");
}

TEST_F(PluginLoaderTest, UnresolvedDependencyReportsDlerror) {
    const std::string msg = create_error(reg, "unresolved");
    EXPECT_EQ(msg.rfind(so("unresolved") + ": cannot load: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("tg_test_symbol_nobody_defines"), std::string::npos) << msg;
}

TEST(PluginLoaderDirs, GarbageFileCannotLoad) {
    TempDir d;
    std::ofstream(d.file("garbage.so")) << "this is not an ELF file\n";
    Registry reg({d.str()});
    const std::string msg = create_error(reg, "garbage");
    const std::string prefix = d.file("garbage.so") + ": cannot load: ";
    ASSERT_EQ(msg.rfind(prefix, 0), 0u) << msg;
    EXPECT_GT(msg.size(), prefix.size()) << "dlerror text expected: " << msg;
}

TEST_F(PluginLoaderTest, LoadsByPath) {
    auto inst = reg.create(so("test-reverse"), host.api(), {});
    EXPECT_EQ(inst->name(), "test-reverse");
    EXPECT_EQ(inst->path(), so("test-reverse"));
    EXPECT_EQ(create_error(reg, so("wrong-name")),
              so("wrong-name") +
                  ": name mismatch: the file is named for strategy 'wrong-name' but tg_plugin_name() returns "
                  "'right-name'");
    const std::string msg = create_error(reg, kDir + "/does-not-exist.so");
    EXPECT_EQ(msg.rfind(kDir + "/does-not-exist.so: cannot load: ", 0), 0u) << msg;
}

TEST_F(PluginLoaderTest, ArgsReachThePlugin) {
    auto inst = reg.create("test-reverse", host.api(), {{"plan", "race"}, {"budget.max_extra_load", "0.1"}});
    EXPECT_TRUE(has_log(host, "arg plan=race"));
    EXPECT_TRUE(has_log(host, "arg budget.max_extra_load=0.1"));
}

TEST_F(PluginLoaderTest, RouteReversesAndRacePlansEveryCandidate) {
    Deployments d;
    d.add("a");
    d.add("b");
    d.add("c");
    Request req;

    auto plain = reg.create("test-reverse", host.api(), {});
    tg_route& r = d.route(&host);
    r.attempt_count = 1;  // an earlier plan is discarded
    ASSERT_EQ(plain->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (std::vector<std::string>{"c", "b", "a"}));
    EXPECT_EQ(r.attempt_count, 0u);
    EXPECT_EQ(host.notes(), (std::vector<std::string>{"test-reverse: reversed"}));

    auto race = reg.create("test-reverse", host.api(), {{"plan", "race"}});
    tg_route& r2 = d.route(&host);
    ASSERT_EQ(race->route(req.raw, r2), TG_OK);
    EXPECT_EQ(d.order(), (std::vector<std::string>{"c", "b", "a"}));
    ASSERT_EQ(r2.attempt_count, 3u);
    for (uint32_t i = 0; i < 3; ++i) {
        EXPECT_EQ(r2.attempts[i].candidate, i);
        EXPECT_EQ(r2.attempts[i].launch, static_cast<uint32_t>(TG_LAUNCH_AT_START));
    }

    auto refuse = reg.create("test-reverse", host.api(), {{"refuse", "true"}});
    EXPECT_EQ(refuse->route(req.raw, d.route(&host)), TG_ERR_NO_CANDIDATE);
}

TEST_F(PluginLoaderTest, ObserveIsDelivered) {
    auto inst = reg.create("test-reverse", host.api(), {});
    Deployments d;
    d.add("dep-1");
    tg_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = TG_EVENT_SUCCESS;
    ev.deployment = &d.deployment(0);
    ev.attempt = 2;
    inst->observe(ev);
    EXPECT_TRUE(has_log(host, "observe 2 dep-1 attempt=2"));
}

TEST_F(PluginLoaderTest, ThrowingPluginIsContained) {
    auto inst = reg.create("throwing", host.api(), {});
    Deployments d;
    d.add("a");
    d.add("b");
    Request req;
    EXPECT_EQ(inst->route(req.raw, d.route()), TG_ERR_INTERNAL);
    tg_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = TG_EVENT_FAILURE;
    ev.deployment = &d.deployment(0);
    inst->observe(ev);  // throws an int inside the plugin: swallowed by the trampoline
    inst->observe(ev);
    EXPECT_TRUE(has_log(host, "observed 2"));
}

TEST_F(PluginLoaderTest, ContractViolationsBecomeInternalErrors) {
    Deployments d;
    d.add("a");
    d.add("b");
    Request req;
    for (const char* mode : {"bad-status", "grow-count", "bad-attempt"}) {
        auto inst = reg.create("throwing", host.api(), {{"mode", mode}});
        EXPECT_EQ(inst->route(req.raw, d.route()), TG_ERR_INTERNAL) << mode;
    }
}

TEST_F(PluginLoaderTest, NullHostGetsAnEmptyTable) {
    auto inst = reg.create("test-reverse", nullptr, {{"plan", "race"}});  // logs go nowhere
    Deployments d;
    d.add("a");
    d.add("b");
    Request req;
    tg_route& r = d.route();
    EXPECT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (std::vector<std::string>{"b", "a"}));
}

TEST_F(PluginLoaderTest, OlderHostTableIsNotReadPastItsSize) {
    // A host table that ends before publish_latency: the plugin may log, but
    // route_note (beyond the table) must be seen as absent, not as garbage.
    tg_host_api small = *host.api();
    small.struct_size = offsetof(tg_host_api, publish_latency);
    small.route_note = reinterpret_cast<void (*)(tg_route*, const char*)>(0x1);  // must never be called
    auto inst = reg.create("test-reverse", &small, {{"k", "v"}});
    EXPECT_TRUE(has_log(host, "arg k=v"));
    Deployments d;
    d.add("a");
    Request req;
    EXPECT_EQ(inst->route(req.raw, d.route(&host)), TG_OK);
    EXPECT_TRUE(host.notes().empty());
}

TEST_F(PluginLoaderTest, InstancesOutliveTheRegistry) {
    InstancePtr a, b;
    {
        Registry local({kDir});
        a = local.create("test-reverse", host.api(), {});
        b = local.create("test-reverse", host.api(), {{"plan", "race"}});
    }
    Deployments d;
    d.add("x");
    d.add("y");
    Request req;
    EXPECT_EQ(a->route(req.raw, d.route()), TG_OK);
    a.reset();  // b still holds the library
    EXPECT_EQ(b->route(req.raw, d.route()), TG_OK);
    EXPECT_EQ(d.current().attempt_count, 2u);
}

TEST_F(PluginLoaderTest, ConcurrentRoutesOnOneInstance) {
    auto inst = reg.create("test-reverse", host.api(), {{"plan", "race"}});
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            Deployments d;
            d.add("a");
            d.add("b");
            d.add("c");
            Request req;
            for (int i = 0; i < 2000; ++i) {
                if (inst->route(req.raw, d.route()) != TG_OK || d.order().front() != "c") ++bad;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST_F(PluginLoaderTest, FailedLoadsAreRetriedAndGoodOnesCached) {
    // Refusals are not cached: asking again gives the same message again.
    EXPECT_EQ(create_error(reg, "bad-version"), create_error(reg, "bad-version"));
    auto x = reg.create("test-reverse", host.api(), {});
    auto y = reg.create("test-reverse", host.api(), {});
    EXPECT_NE(x.get(), y.get());
}

// ---------------------------------------------------------------- file trust

// A world-writable file or directory could have been replaced by anyone: it
// is refused before dlopen (ctor-marker would mark the environment if loaded).
TEST(PluginLoaderTrust, WorldWritableDirectoryIsRefusedBeforeLoading) {
    TempDir d;
    fs::copy_file(so("ctor-marker"), d.file("ctor-marker.so"));
    fs::permissions(d.str(), fs::perms::all);  // 0777
    unsetenv("TAILGATE_TEST_CTOR_MARKER");
    Registry reg({d.str()});
    EXPECT_EQ(create_error(reg, "ctor-marker"),
              d.file("ctor-marker.so") + ": refused: directory " + d.str() + " is world-writable (mode 0777)");
    EXPECT_EQ(std::getenv("TAILGATE_TEST_CTOR_MARKER"), nullptr) << "the file was loaded";

    // The sticky bit (as on /tmp) does not make it acceptable either.
    fs::permissions(d.str(), fs::perms::all | fs::perms::sticky_bit);
    EXPECT_EQ(create_error(reg, "ctor-marker"),
              d.file("ctor-marker.so") + ": refused: directory " + d.str() + " is world-writable (mode 1777)");
    EXPECT_EQ(std::getenv("TAILGATE_TEST_CTOR_MARKER"), nullptr) << "the file was loaded";

    fs::permissions(d.str(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    EXPECT_NE(create_error(reg, "ctor-marker").find("missing symbols"), std::string::npos) << "loadable again";
    EXPECT_STREQ(std::getenv("TAILGATE_TEST_CTOR_MARKER"), "loaded");
    unsetenv("TAILGATE_TEST_CTOR_MARKER");
}

TEST(PluginLoaderTrust, WorldWritableFileIsRefused) {
    TempDir d;
    fs::copy_file(so("test-reverse"), d.file("test-reverse.so"));
    fs::permissions(d.file("test-reverse.so"), fs::perms::others_write, fs::perm_options::add);
    Registry reg({d.str()});
    EXPECT_EQ(create_error(reg, "test-reverse"),
              d.file("test-reverse.so") + ": refused: the file is world-writable (mode 0757)");
    EXPECT_EQ(create_error(reg, d.file("test-reverse.so")),
              d.file("test-reverse.so") + ": refused: the file is world-writable (mode 0757)")
        << "loading by path is checked too";

    fs::permissions(d.file("test-reverse.so"), fs::perms::others_write, fs::perm_options::remove);
    EXPECT_EQ(create_error(reg, "test-reverse"), "");
}

// A symlink is judged by both directories: the one it sits in and the one
// its target really lives in.
TEST(PluginLoaderTrust, SymlinkIntoWorldWritableDirectoryIsRefused) {
    TempDir open_dir, link_dir;
    fs::copy_file(so("test-reverse"), open_dir.file("test-reverse.so"));
    fs::create_symlink(open_dir.file("test-reverse.so"), link_dir.file("test-reverse.so"));
    fs::permissions(open_dir.str(), fs::perms::all);
    Registry reg({link_dir.str()});
    EXPECT_EQ(create_error(reg, "test-reverse"),
              link_dir.file("test-reverse.so") + ": refused: directory " + open_dir.str() +
                  " is world-writable (mode 0777)");
}

// Ownership: the trusted uids are injectable, so this runs as root and as a
// user. Root-owned files are always accepted (installed plugins are).
TEST(PluginLoaderTrust, FileOwnedByAnUntrustedUserIsRefused) {
    TempDir d;
    fs::copy_file(so("test-reverse"), d.file("test-reverse.so"));
    if (::geteuid() == 0) {
        ASSERT_EQ(::chown(d.file("test-reverse.so").c_str(), 65534, 65534), 0);
    }
    struct stat st {};
    ASSERT_EQ(::stat(d.file("test-reverse.so").c_str(), &st), 0);
    ASSERT_NE(st.st_uid, 0u);
    const uid_t other = st.st_uid + 1;

    Registry strict({d.str()}, {other});
    EXPECT_EQ(create_error(strict, "test-reverse"),
              d.file("test-reverse.so") + ": refused: the file is owned by uid " + std::to_string(st.st_uid) +
                  " (plugins must be owned by root or uid " + std::to_string(other) + ")");
    Registry trusting({d.str()}, {other, st.st_uid});
    EXPECT_EQ(create_error(trusting, "test-reverse"), "");
    if (::geteuid() != 0) {
        Registry by_default({d.str()});  // the process's own files
        EXPECT_EQ(create_error(by_default, "test-reverse"), "");
    }
}

// ---------------------------------------------------------------- search path

TEST(PluginSearchPath, OrderAndRelativeEnvEntriesDropped) {
    const std::vector<std::string> configured{"/etc/tailgate/plugins", "/opt/x/../plugins"};
    auto dirs = search_path(configured, "/env/one:relative/dir::./here:/env/two:../up:/etc/tailgate/plugins");
    ASSERT_GE(dirs.size(), 5u);
    EXPECT_EQ(std::vector<std::string>(dirs.begin(), dirs.begin() + 4),
              (std::vector<std::string>{"/etc/tailgate/plugins", "/opt/plugins", "/env/one", "/env/two"}));
    for (const auto& d : dirs) EXPECT_TRUE(fs::path(d).is_absolute()) << d;
    // Next to the binary (the build tree's own plugins here), then the install dir.
    const fs::path exe = fs::read_symlink("/proc/self/exe");
    EXPECT_EQ(dirs[4], (exe.parent_path().parent_path() / "lib" / "tailgate" / "plugins").lexically_normal().string());
    EXPECT_EQ(dirs.back(), fs::path(TAILGATE_INSTALLED_PLUGIN_DIR).lexically_normal().string());

    EXPECT_EQ(search_path({}, "plugins"), search_path({}, nullptr)) << "a relative entry adds nothing";
}

}  // namespace
}  // namespace tailgate::plugin
