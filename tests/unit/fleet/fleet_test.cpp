// Shared state (host/fleet): the batch wire format, the Link's answers on
// the request path, and two synchronisers exchanging outcomes, leases and
// revisions through a real redis-server (skipped when none is installed).
#include "fleet/batch.hpp"
#include "fleet/link.hpp"
#include "fleet/syncer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <csignal>
#include <cstdlib>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

using namespace tailgate;
using namespace tailgate::fleet;
using namespace std::chrono_literals;

namespace {

Outcome failure_outcome() {
    Outcome o;
    o.type = EventType::Failure;
    o.attempt = 2;
    o.launch = Launch::AfterDelay;
    o.stream = true;
    o.elapsed_ms = 12.5;
    o.ttft_ms = -1;
    o.error_class = ErrorClass::RateLimit;
    o.http_status = 429;
    o.retry_after_ms = 1500;
    o.at_wall_ms = wall_ms() - 40;
    return o;
}

}  // namespace

TEST(FleetBatch, RoundTripsOutcomesAndMessages) {
    Outbox box;
    box.deployments = {"dep-a", "dep \"b\""};
    box.events.push_back({1, failure_outcome()});
    box.messages.push_back(Message{"keys.invalidate", "{\"hash\":\"ab\"}"});
    const int64_t now = wall_ms();
    const auto b = decode_batch(encode_batch("r1", box, now));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->replica, "r1");
    ASSERT_EQ(b->outcomes.size(), 1u);
    const RemoteOutcome& ro = b->outcomes[0];
    EXPECT_EQ(ro.deployment, "dep \"b\"");
    EXPECT_EQ(ro.replica, "r1");
    EXPECT_EQ(ro.outcome.type, EventType::Failure);
    EXPECT_EQ(ro.outcome.launch, Launch::AfterDelay);
    EXPECT_EQ(ro.outcome.error_class, ErrorClass::RateLimit);
    EXPECT_EQ(ro.outcome.http_status, 429);
    EXPECT_EQ(ro.outcome.retry_after_ms, 1500);
    EXPECT_EQ(ro.outcome.attempt, 2u);
    EXPECT_TRUE(ro.outcome.stream);
    EXPECT_DOUBLE_EQ(ro.outcome.elapsed_ms, 12.5);
    EXPECT_EQ(ro.outcome.at_wall_ms, box.events[0].outcome.at_wall_ms);
    ASSERT_EQ(b->messages.size(), 1u);
    EXPECT_EQ(b->messages[0].payload, "{\"hash\":\"ab\"}");
}

TEST(FleetBatch, RefusesOtherFormatsAndSkipsBadEntries) {
    EXPECT_FALSE(decode_batch("not json"));
    EXPECT_FALSE(decode_batch(R"({"v":2,"r":"x","t":1,"d":[],"e":[]})"));
    // An unknown event type and an out-of-range deployment are skipped, the rest is kept.
    const auto b = decode_batch(
        R"({"v":1,"r":"x","t":1000,"d":["a"],"e":[[0,99,0,0,0,1,1,0,0,-1,-1,-1,0,0],[5,2,0,0,0,1,1,0,0,-1,-1,-1,0,0],[0,2,0,0,0,7,-1,0,200,-1,3,4,0,10]]})");
    ASSERT_TRUE(b);
    ASSERT_EQ(b->outcomes.size(), 1u);
    EXPECT_EQ(b->outcomes[0].outcome.type, EventType::Success);
    EXPECT_EQ(b->outcomes[0].outcome.at_wall_ms, 990);
    EXPECT_EQ(b->outcomes[0].outcome.completion_tokens, 4);
}

TEST(FleetLink, AloneEverythingIsLocal) {
    Link link("r1", 10s);
    EXPECT_FALSE(link.active());
    EXPECT_TRUE(link.probe_lease("d")) << "no Redis: the local health strategy decides";
    link.record("d", failure_outcome());
    link.publish("t", "p");
    EXPECT_TRUE(link.take().empty()) << "nothing is buffered for nobody";
    EXPECT_FALSE(link.allocate_revision(10ms)) << "no fleet log to number a change";
}

TEST(FleetLink, ProbeLeaseIsAskedOnceThenGrantedThenGivenBack) {
    Link link("r1", 10s);
    link.set_active(true);
    EXPECT_FALSE(link.probe_lease("d"));
    EXPECT_FALSE(link.probe_lease("d"));
    Outbox box = link.take();
    EXPECT_EQ(box.lease_wanted, std::vector<std::string>{"d"}) << "asked once, however many requests";
    link.lease_granted("d", std::chrono::steady_clock::now() + 5s);
    EXPECT_TRUE(link.probe_lease("d"));
    link.health_changed("d", Health::Healthy, 0);
    box = link.take();
    EXPECT_EQ(box.lease_released, std::vector<std::string>{"d"});
    ASSERT_EQ(box.cooldowns.size(), 1u);
    EXPECT_EQ(box.cooldowns[0].second, 0) << "recovered: the cooldown key goes";
    EXPECT_FALSE(link.probe_lease("d")) << "the next half-open period needs a new lease";
}

TEST(FleetLink, BuffersOutcomesByDeploymentAndForgetsThemWhenDown) {
    Link link("r1", 10s);
    link.set_active(true);
    link.record("a", failure_outcome());
    link.record("b", failure_outcome());
    link.record("a", failure_outcome());
    Outbox box = link.take();
    EXPECT_EQ(box.deployments, (std::vector<std::string>{"a", "b"}));
    ASSERT_EQ(box.events.size(), 3u);
    EXPECT_EQ(box.events[2].deployment, 0u);
    link.record("a", failure_outcome());
    link.set_active(false);
    EXPECT_TRUE(link.take().empty());
}

TEST(FleetLink, RoundHooksPublishIntoTheRoundAndStateHooksSeeTransitions) {
    Link link("r1", 10s);
    std::vector<bool> states;
    link.on_state([&](bool up) { states.push_back(up); });
    int rounds = 0;
    link.on_round([&] {
        ++rounds;
        link.publish("keys.usage", "delta " + std::to_string(rounds));
    });
    link.set_active(true);
    link.set_active(true);  // no transition
    Outbox box = link.take();
    EXPECT_EQ(rounds, 1);
    ASSERT_EQ(box.messages.size(), 1u) << "what the hook published goes with the round that called it";
    EXPECT_EQ(box.messages[0].payload, "delta 1");
    link.set_active(false);
    link.set_active(true);
    EXPECT_EQ(states, (std::vector<bool>{true, false, true}));
}

// ---- against a real redis-server ----------------------------------------

namespace {

int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
}

class RedisServer {
public:
    RedisServer() : port_(free_port()) {
        pid_ = ::fork();
        if (pid_ == 0) {
            const std::string port = std::to_string(port_);
            ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--loglevel", "warning", "--logfile", "/dev/null",
                     static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~RedisServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }

private:
    int port_;
    pid_t pid_ = -1;
};

bool have_redis() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 3s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (f()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return f();
}

struct Node {
    LinkPtr link;
    SyncerPtr syncer;
    std::mutex mu;
    std::vector<RemoteOutcome> got;
    std::vector<Revision> revisions;
};

config::SharedStateSettings settings(int port) {
    config::SharedStateSettings s;
    s.enabled = true;
    s.host = "127.0.0.1";
    s.port = port;
    s.key_prefix = "t:";
    s.sync_interval = 20ms;
    s.command_timeout = 200ms;
    s.connect_timeout = 200ms;
    s.probe_lease = 2000ms;
    return s;
}

class FleetRedis : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_redis()) GTEST_SKIP() << "redis-server not installed";
        redis_ = std::make_unique<RedisServer>();
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
    }
    void TearDown() override {
        for (auto& n : nodes_) n->syncer->stop();
        work_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
    }
    Node& node(const std::string& name) {
        auto n = std::make_unique<Node>();
        n->link = std::make_shared<Link>(name, 2000ms);
        Node* raw = n.get();
        Syncer::Inbound in;
        in.outcomes = [raw](const std::vector<RemoteOutcome>& v) {
            std::lock_guard lk(raw->mu);
            raw->got.insert(raw->got.end(), v.begin(), v.end());
        };
        in.revisions = [raw](std::vector<Revision> v) {
            std::lock_guard lk(raw->mu);
            raw->revisions.insert(raw->revisions.end(), v.begin(), v.end());
        };
        in.quota_limits = [] { return std::vector<Syncer::Inbound::Limit>{{"dep", QuotaKind::Requests, 10}}; };
        n->syncer = std::make_shared<Syncer>(io_, settings(redis_->port()), n->link, std::move(in));
        n->syncer->start(0);
        nodes_.push_back(std::move(n));
        return *raw;
    }

    std::unique_ptr<RedisServer> redis_;
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
    std::vector<std::thread> threads_;
    std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace

TEST_F(FleetRedis, OutcomesReachTheOtherReplicaOnly) {
    Node& a = node("a");
    Node& b = node("b");
    ASSERT_TRUE(eventually([&] { return a.link->active() && b.link->active(); }));
    std::this_thread::sleep_for(60ms);  // both past their first round: reading from the stream's end
    a.link->record("dep-1", failure_outcome());
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lk(b.mu);
        return !b.got.empty();
    })) << "b never received a's outcome";
    std::lock_guard lk(b.mu);
    EXPECT_EQ(b.got[0].deployment, "dep-1");
    EXPECT_EQ(b.got[0].replica, "a");
    std::lock_guard lka(a.mu);
    EXPECT_TRUE(a.got.empty()) << "a replica does not receive its own outcomes";
}

TEST_F(FleetRedis, OneReplicaHoldsAProbeLease) {
    Node& a = node("a");
    Node& b = node("b");
    ASSERT_TRUE(eventually([&] { return a.link->active() && b.link->active(); }));
    EXPECT_FALSE(a.link->probe_lease("d"));
    ASSERT_TRUE(eventually([&] { return a.link->probe_lease("d"); }));
    std::this_thread::sleep_for(100ms);  // b asks too, several rounds
    EXPECT_FALSE(b.link->probe_lease("d"));
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(b.link->probe_lease("d")) << "held by a";
    a.link->health_changed("d", Health::Healthy, 0);  // a's probe answered: the lease goes back
    EXPECT_TRUE(eventually([&] { return b.link->probe_lease("d"); }));
}

TEST_F(FleetRedis, RevisionsAreNumberedByTheFleetAndDelivered) {
    Node& a = node("a");
    Node& b = node("b");
    ASSERT_TRUE(eventually([&] { return a.link->active() && b.link->active(); }));
    const auto r1 = a.link->allocate_revision(1s);
    const auto r2 = b.link->allocate_revision(1s);
    ASSERT_TRUE(r1 && r2);
    EXPECT_EQ(*r2, *r1 + 1);
    a.link->publish_revision(Revision{*r1, "{\"x\":1}"});
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lk(b.mu);
        return !b.revisions.empty();
    }));
    std::lock_guard lk(b.mu);
    EXPECT_EQ(b.revisions[0].number, *r1);
    EXPECT_EQ(b.revisions[0].json, "{\"x\":1}");
}

TEST_F(FleetRedis, APausedRedisIsDroppedAndRejoined) {
    Node& a = node("a");
    ASSERT_TRUE(eventually([&] { return a.link->active(); }));
    ::kill(redis_->pid(), SIGSTOP);
    EXPECT_TRUE(eventually([&] { return !a.link->active(); }, 2s)) << "no reply within command_timeout";
    EXPECT_TRUE(a.link->probe_lease("d")) << "alone again: local answers";
    EXPECT_FALSE(a.link->allocate_revision(50ms));
    ::kill(redis_->pid(), SIGCONT);
    EXPECT_TRUE(eventually([&] { return a.link->active(); }, 8s)) << "reconnected after the backoff";
    const std::string m = a.syncer->render_metrics();
    EXPECT_EQ(m.find("tailgate_shared_state_failures_total 0\n"), std::string::npos) << m;
    EXPECT_NE(m.find("tailgate_shared_state_up 1\n"), std::string::npos) << m;
}

// Quota leases through the real grant script: two replicas taking as fast as
// they can never get more than the limit between them, and then hear when a
// unit frees.
TEST_F(FleetRedis, QuotaLeasesNeverGrantTheFleetMoreThanItsLimit) {
    Node& a = node("a");
    Node& b = node("b");
    // Primed on connect (the config's limits): an answer is there before the first request.
    ASSERT_TRUE(eventually([&] {
        return a.link->quota_allowance("dep", QuotaKind::Requests) >= 0 &&
               b.link->quota_allowance("dep", QuotaKind::Requests) >= 0;
    }));
    int admitted = 0, exhausted = 0, local = 0;
    const auto until = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < until) {
        for (Node* n : {&a, &b}) {
            switch (n->link->quota_take("dep", QuotaKind::Requests, 10, 1)) {
                case QuotaAnswer::Granted: ++admitted; break;
                case QuotaAnswer::Exhausted: ++exhausted; break;
                case QuotaAnswer::Local:  // not answered yet: counted alone, told to Redis as debt
                    n->link->quota_settle("dep", QuotaKind::Requests, 10, 1);
                    ++admitted;
                    ++local;
                    break;
            }
        }
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_LE(admitted, 10);
    EXPECT_GE(admitted, 8) << "units granted and never used";
    EXPECT_GT(exhausted, 0);
    EXPECT_EQ(local, 0) << "primed: every answer came from the fleet";
    int64_t free_in = -2;
    EXPECT_EQ(a.link->quota_take("dep", QuotaKind::Requests, 10, 1, &free_in), QuotaAnswer::Exhausted);
    EXPECT_GT(free_in, 50000) << "the first grant leaves the window after its lease and a minute";
    EXPECT_LE(free_in, 66000);
}
