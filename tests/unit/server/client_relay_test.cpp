// ClientRelay over a socketpair: a real Executor (scripted upstream) feeds a
// real ClientChannel; the relay writes to one end, the test is the client at
// the other. Checks order, hand-back to the pool, back-pressure, hang-up and the
// write timeout.
#include "../dispatch/executor_fakes.hpp"
#include "server/frontend/client_relay.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace tailgate;
using namespace tailgate::dispatch;
using namespace tailgate::dispatch::fakes;
using namespace tailgate::server;
using namespace tailgate::server::frontend;
using namespace std::chrono_literals;

namespace {

// Records what the relay hands back; runs `finish` as a pool thread would.
class FakeResumer final : public ConnectionResumer {
public:
    void resume(DetachedClient c, bool keep_alive, std::function<void()> finish) override {
        if (finish) finish();
        std::lock_guard lk(mu);
        fd = c.fd;
        kept_alive = keep_alive;
        ++calls;
        cv.notify_all();
    }
    bool wait(std::chrono::milliseconds d) {
        std::unique_lock lk(mu);
        return cv.wait_for(lk, d, [&] { return calls > 0; });
    }
    std::mutex mu;
    std::condition_variable cv;
    int calls = 0;
    int fd = -1;
    bool kept_alive = false;
};

// Renders each batch as its raw bytes after a fixed head.
class FakeExchange final : public ClientRelay::Exchange {
public:
    bool render(ClientChannel::Batch& batch, std::string& out) override {
        if (batch.attempt) out += "HEAD\n";
        out += batch.bytes;
        if (batch.error) out += "ERROR\n";
        return batch.finished;
    }
    bool keep_alive() const override { return true; }
    void client_gone(const char* why) override { gone = why; }
    void finish() override { ++finished; }
    std::atomic<const char*> gone{nullptr};
    std::atomic<int> finished{0};
};

struct Relay : ::testing::Test {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::thread io_thread;
    FakeScheduler sched;
    std::shared_ptr<FakeTransport> transport = std::make_shared<FakeTransport>();
    std::shared_ptr<RecordingObserver> obs = std::make_shared<RecordingObserver>();
    std::shared_ptr<FakeResumer> resumer = std::make_shared<FakeResumer>();
    std::shared_ptr<FakeExchange> exchange = std::make_shared<FakeExchange>();
    std::shared_ptr<ClientChannel> channel = std::make_shared<ClientChannel>();
    ExecutorPtr executor;
    int relay_end = -1, client_end = -1;

    void SetUp() override {
        int sv[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        relay_end = sv[0];
        client_end = sv[1];
    }
    void TearDown() override {
        work.reset();
        io.stop();
        if (io_thread.joinable()) io_thread.join();
        ::close(client_end);
        if (resumer->fd >= 0) ::close(resumer->fd);
    }
    void start(bool stream, std::chrono::milliseconds write_timeout = 60s) {
        Plan p;
        p.attempts = {{0, Launch::AtStart, 0ms}};
        p.stream = stream;
        executor = std::make_shared<Executor>(std::move(p), sched, transport, channel, obs);
        DetachedClient c;
        c.fd = relay_end;
        ClientRelay::Options o;
        o.write_timeout = write_timeout;
        ClientRelay::start(io, std::move(c), resumer, channel, executor, exchange, o);
        executor->start();
        io_thread = std::thread([this] { io.run(); });
    }
    // Reads until `n` bytes came, the peer closed or 5 s passed.
    std::string read_client(size_t n) {
        std::string got;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
            pollfd p{client_end, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[65536];
            const ssize_t k = ::recv(client_end, buf, sizeof buf, 0);
            if (k <= 0) break;
            got.append(buf, static_cast<size_t>(k));
        }
        return got;
    }
};

const std::string kChunk = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
const std::string kDone = "data: [DONE]\n\n";

}  // namespace

TEST_F(Relay, WritesTheResponseInOrderThenHandsTheConnectionBack) {
    start(/*stream=*/true);
    transport->h(0).on_head(head(200));
    transport->h(0).on_body(kChunk);
    transport->h(0).on_body(kChunk + kChunk);
    transport->h(0).on_body(kDone);
    transport->h(0).on_done();
    const std::string want = "HEAD\n" + kChunk + kChunk + kChunk + kDone;
    EXPECT_EQ(read_client(want.size()), want);
    ASSERT_TRUE(resumer->wait(5s));
    EXPECT_EQ(resumer->fd, relay_end);  // the same descriptor, still open
    EXPECT_TRUE(resumer->kept_alive);
    EXPECT_EQ(exchange->finished.load(), 1);
    EXPECT_EQ(exchange->gone.load(), nullptr);
}

TEST_F(Relay, ClientHangUpBeforeTheAnswerCancelsTheUpstream) {
    start(/*stream=*/false);
    ASSERT_EQ(::shutdown(client_end, SHUT_WR), 0);  // the client's FIN, nothing flowing
    ASSERT_TRUE(resumer->wait(5s));
    EXPECT_FALSE(resumer->kept_alive);
    ASSERT_NE(exchange->gone.load(), nullptr);
    EXPECT_STREQ(exchange->gone.load(), "client disconnected");
    io.stop();
    io_thread.join();  // the relay's thread is done: its writes are visible
    EXPECT_TRUE(transport->cancelled(0));
    EXPECT_EQ(exchange->finished.load(), 1);
}

TEST_F(Relay, ASlowClientGetsEverythingOnceItReads) {
    int small = 4096;
    ASSERT_EQ(::setsockopt(relay_end, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    start(/*stream=*/true);
    transport->h(0).on_head(head(200));
    std::string want = "HEAD\n";
    std::string big;
    for (int i = 0; i < 2000; ++i) big += kChunk;  // ~140 KB: far more than the socket holds
    transport->h(0).on_body(big);
    transport->h(0).on_body(kDone);
    transport->h(0).on_done();
    want += big + kDone;
    // The client does not read yet: the relay must wait (the socket holds a few KB), not drop or end.
    EXPECT_FALSE(resumer->wait(100ms));
    EXPECT_EQ(read_client(want.size()), want);
    ASSERT_TRUE(resumer->wait(5s));
    EXPECT_TRUE(resumer->kept_alive);
}

TEST_F(Relay, AClientThatStopsReadingEndsAtTheWriteTimeout) {
    int small = 4096;
    ASSERT_EQ(::setsockopt(relay_end, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    start(/*stream=*/true, /*write_timeout=*/200ms);
    transport->h(0).on_head(head(200));
    std::string big;
    for (int i = 0; i < 4000; ++i) big += kChunk;
    transport->h(0).on_body(big);
    ASSERT_TRUE(resumer->wait(5s));  // never read: ended after about 200 ms without progress
    EXPECT_FALSE(resumer->kept_alive);
    ASSERT_NE(exchange->gone.load(), nullptr);
    EXPECT_STREQ(exchange->gone.load(), "client stopped reading (write timeout)");
    io.stop();
    io_thread.join();
    EXPECT_TRUE(transport->cancelled(0));
}
