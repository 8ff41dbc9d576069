// Client faults: the request-body limits (nesting, UTF-8), the client-limit
// config keys, and the HTTP front end's deadlines and header budget, driven
// in-process over loopback with raw sockets.
#include "config/config.hpp"
#include "server/frontend/front_end.hpp"
#include "server/request_body.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

using namespace tailgate;
using namespace tailgate::server;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

ApiError body_error(std::string_view body) {
    auto r = parse_body(body, Endpoint::Chat);
    EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body.substr(0, 80);
    return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

std::string nested(int depth) {
    return R"({"model":"m","messages":[],"x":)" + std::string(static_cast<size_t>(depth - 1), '[') +
           std::string(static_cast<size_t>(depth - 1), ']') + "}";
}

}  // namespace

TEST(ClientFaultsBody, NestingIsLimitedTo128Levels) {
    EXPECT_TRUE(std::holds_alternative<ParsedBody>(parse_body(nested(128), Endpoint::Chat)));
    auto e = body_error(nested(129));
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, "json_too_deep");
    // Valid but absurd (100k levels) and unterminated: both the same clean 400.
    EXPECT_EQ(body_error(nested(100000)).code, "json_too_deep");
    EXPECT_EQ(body_error(R"({"model":"m","messages":[)" + std::string(100000, '[')).code, "json_too_deep");
}

TEST(ClientFaultsBody, InvalidUtf8IsNamed) {
    for (std::string bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf5\x80\x80\x80"}) {
        auto e = body_error("{\"model\":\"m\",\"messages\":[{\"content\":\"a" + bad + "b\"}]}");
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.type, "invalid_request_error");
        EXPECT_EQ(e.code, "invalid_utf8") << e.message;
    }
    EXPECT_EQ(body_error("{\"model\":\"m\",\"mess\xc3\x28\":[]}").code, "invalid_utf8") << "in a key";
    // Valid multi-byte text passes untouched.
    auto ok = parse_body("{\"model\":\"m\",\"messages\":[\"\xe2\x82\xac \xf0\x9f\x98\x80\"]}", Endpoint::Chat);
    ASSERT_TRUE(std::holds_alternative<ParsedBody>(ok));
}

TEST(ClientFaultsConfig, KeysDefaultsAndErrors) {
    const std::string base = "model_list:\n  - model_name: g\n    litellm_params:\n      model: openai/m\n";
    auto d = config::load_string(base, "inline.yaml").general;
    EXPECT_EQ(d.client_header_timeout, 10000ms);
    EXPECT_EQ(d.client_body_timeout, 60000ms);
    EXPECT_EQ(d.max_header_bytes, 64u * 1024);
    auto g = config::load_string(base + "general_settings:\n  client_header_timeout: 2s\n  client_body_timeout: 1.5\n"
                                        "  max_header_bytes: 16KiB\n",
                                 "inline.yaml")
                 .general;
    EXPECT_EQ(g.client_header_timeout, 2000ms);
    EXPECT_EQ(g.client_body_timeout, 1500ms);
    EXPECT_EQ(g.max_header_bytes, 16u * 1024);
    auto error = [&](const std::string& extra) {
        try {
            config::load_string(base + "general_settings:\n" + extra, "inline.yaml");
        } catch (const config::ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(error("  client_header_timeout: 0\n"), "inline.yaml:6: general_settings.client_header_timeout: must be greater than 0");
    EXPECT_EQ(error("  max_header_bytes: 100\n"),
              "inline.yaml:6: general_settings.max_header_bytes: expected a size between 1KiB and 1GiB (bytes, or "
              "e.g. 64KiB), got '100'");
}

namespace {

// Reads the body and answers its size; a body the front end could not read
// (the body timeout's 408) is answered as the gateway does.
void echo(frontend::Request& req) {
    if (req.uri() == "/throw") throw std::runtime_error("handler bug");
    if (req.uri() == "/headers") {
        std::string out = "one=" + req.header("X-One") + " has=" + std::to_string(req.has_header("x-ONE"));
        req.each_header("x-multi", [&](const std::string& name, const std::string& value) {
            out += " " + name + "=" + value;
        });
        req.respond(200, "text/plain", out);
        return;
    }
    std::string body;
    auto error = req.read_body(body);
    if (req.uri() == "/slow") std::this_thread::sleep_for(300ms);
    if (error) {
        req.set_keep_alive(false);
        req.respond(error->status, "application/json", error->body());
        return;
    }
    req.respond(200, "text/plain", "got " + std::to_string(body.size()));
}

class FrontEnd : public ::testing::Test {
protected:
    void SetUp() override {
        frontend::Options o;
        o.limits.header_timeout = 300ms;
        o.limits.body_timeout = 300ms;
        o.limits.max_header_bytes = 2048;
        o.limits.max_body_bytes = 1 << 20;
        o.max_threads = 4;
        o.keep_alive_timeout = 5000ms;
        o.park_idle = false;  // no io_context runs here
        fe_ = std::make_unique<frontend::FrontEnd>(echo, o, io_, "127.0.0.1", 0);
        fe_->start();
    }
    void TearDown() override { fe_.reset(); }

    int connect_client() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(fe_->port()));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        return fd;
    }
    static void send_all(int fd, const std::string& s) {
        ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
    }
    // Everything until the server closes (or `limit` passes).
    static std::string read_to_close(int fd, std::chrono::milliseconds limit = 3000ms) {
        std::string out;
        auto deadline = Clock::now() + limit;
        char buf[4096];
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
            pollfd p{fd, POLLIN, 0};
            if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return out + "<still open>";
            ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return out;
            out.append(buf, static_cast<size_t>(n));
        }
    }

    // Sends `raw` on a new connection; what comes back until the server closes.
    std::string exchange(const std::string& raw) {
        int fd = connect_client();
        send_all(fd, raw);
        std::string out = read_to_close(fd);
        ::close(fd);
        return out;
    }

    boost::asio::io_context io_;
    std::unique_ptr<frontend::FrontEnd> fe_;
};

}  // namespace

TEST_F(FrontEnd, ServesNormalAndPipelinedRequests) {
    std::string out = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\n"
                               "Host: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz");
    EXPECT_NE(out.find("got 3"), std::string::npos) << out;
    EXPECT_LT(out.find("got 3"), out.find("got 1")) << out;
}

TEST_F(FrontEnd, DribbledHeadersGet408AtTheDeadline) {
    int fd = connect_client();
    auto t0 = Clock::now();
    send_all(fd, "GET / HTTP/1.1\r\n");
    std::string out;
    // A byte every 50 ms: every recv is quick; only the whole-head deadline stops it.
    for (int i = 0; i < 40; ++i) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) break;
        ::send(fd, "x", 1, MSG_NOSIGNAL);
    }
    out = read_to_close(fd);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    EXPECT_EQ(out.rfind("HTTP/1.1 408", 0), 0u) << out;
    EXPECT_NE(out.find("\"code\":\"request_timeout\""), std::string::npos) << out;
    EXPECT_GE(ms, 280);
    EXPECT_LT(ms, 2000);
    ::close(fd);
}

TEST_F(FrontEnd, SilentConnectionIsClosed) {
    int fd = connect_client();
    auto t0 = Clock::now();
    EXPECT_EQ(read_to_close(fd), "");
    EXPECT_GE(Clock::now() - t0, 280ms);
    ::close(fd);
}

TEST_F(FrontEnd, HeadOverBudgetGets431) {
    std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 10; ++i) head += "x-pad-" + std::to_string(i) + ": " + std::string(300, 'a') + "\r\n";
    std::string out = exchange(head + "\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out;
    EXPECT_NE(out.find("\"code\":\"request_header_fields_too_large\""), std::string::npos) << out;
}

TEST_F(FrontEnd, HeadJustUnderBudgetIsServed) {
    std::string head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\nx-pad: ";
    head += std::string(2048 - head.size() - 4, 'a') + "\r\n\r\n";
    ASSERT_EQ(head.size(), 2048u);
    std::string out = exchange(head + "hi");
    EXPECT_NE(out.find("got 2"), std::string::npos) << out;
}

TEST_F(FrontEnd, StalledBodyGets408) {
    std::string out = exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    EXPECT_EQ(out.rfind("HTTP/1.1 408", 0), 0u) << out;
}

TEST_F(FrontEnd, GarbageGetsJson400) {
    std::string out = exchange("\x01\x02 nonsense\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
    EXPECT_NE(out.find("\"type\":\"invalid_request_error\""), std::string::npos) << out;
}

TEST_F(FrontEnd, GracefulStopAnswersTheRequestInProgressThenCloses) {
    int fd = connect_client();
    send_all(fd, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    std::this_thread::sleep_for(50ms);  // the handler is now sleeping
    auto t0 = Clock::now();
    fe_->stop(false);
    EXPECT_GE(Clock::now() - t0, 150ms) << "stop(false) waits for the request in progress";
    std::string out = read_to_close(fd);
    EXPECT_NE(out.find("got 2"), std::string::npos) << out;
    EXPECT_EQ(out.find("<still open>"), std::string::npos) << out;
    ::close(fd);
}

TEST_F(FrontEnd, AbortingStopClosesAtOnce) {
    int fd = connect_client();
    send_all(fd, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    std::this_thread::sleep_for(50ms);
    auto t0 = Clock::now();
    fe_->stop(true);
    EXPECT_LT(Clock::now() - t0, 1000ms);
    EXPECT_EQ(read_to_close(fd, 1000ms), "");
    ::close(fd);
}

TEST_F(FrontEnd, HandlerExceptionGetsJson500) {
    std::string out = exchange("GET /throw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 500", 0), 0u) << out;
    EXPECT_NE(out.find("\"message\":\"internal gateway error\""), std::string::npos) << out;
}

TEST_F(FrontEnd, HeadersAreFoundInAnyCaseAndInOrder) {
    std::string out = exchange("GET /headers HTTP/1.1\r\nHost: x\r\nx-one: 1\r\nX-Multi: a\r\nx-other: z\r\n"
                               "x-MULTI: b\r\nConnection: close\r\n\r\n");
    EXPECT_NE(out.find("one=1 has=1 X-Multi=a x-MULTI=b"), std::string::npos) << out;
}

namespace {

// One relayed response: a fixed body, rendered with its own head.
class OneBatch final : public frontend::ResponseSource {
public:
    explicit OneBatch(std::string body) : body_(std::move(body)) {}
    void set_notify(std::function<void()> notify) override { notify(); }  // ready at once
    bool take(ClientChannel::Batch& out) override {
        if (taken_) return false;
        taken_ = true;
        out = ClientChannel::Batch{};
        out.committed = out.finished = true;
        out.bytes = body_;
        return true;
    }
    void cancel() override {}
    void resume_reading() override {}
    void close() override {}

private:
    std::string body_;
    bool taken_ = false;
};

class PlainExchange final : public frontend::Exchange {
public:
    explicit PlainExchange(std::atomic<int>& finished) : finished_(finished) {}
    bool render(ClientChannel::Batch& batch, std::string& out) override {
        out += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(batch.bytes.size()) + "\r\n\r\n" + batch.bytes;
        return true;
    }
    bool keep_alive() const override { return true; }
    void client_gone(const char*) override {}
    void finish() override { ++finished_; }

private:
    std::atomic<int>& finished_;
};

}  // namespace

// The exchange-out half of the interface: a relayed response is written from
// the Asio side, its finish() runs, and the connection serves its next
// request (here answered on the pool thread) as usual.
TEST(FrontEndRelay, RelayedResponseThenTheNextRequestOnTheSameConnection) {
    boost::asio::io_context io;
    auto work = boost::asio::make_work_guard(io);
    std::thread io_thread([&] { io.run(); });
    std::atomic<int> finished{0};
    frontend::Options o;
    o.max_threads = 2;
    auto fe = std::make_unique<frontend::FrontEnd>(
        [&](frontend::Request& req) {
            std::string body;
            ASSERT_FALSE(req.read_body(body));
            if (req.uri() == "/relay")
                req.relay(std::make_shared<OneBatch>("relayed " + body), std::make_shared<PlainExchange>(finished));
            else
                req.respond(200, "text/plain", "direct " + body);
        },
        o, io, "127.0.0.1", 0);
    fe->start();
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(fe->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const std::string two = "POST /relay HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
                            "POST /direct HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nB";
    ASSERT_EQ(::send(fd, two.data(), two.size(), MSG_NOSIGNAL), static_cast<ssize_t>(two.size()));
    std::string out;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 3000) <= 0) break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    const size_t relayed = out.find("relayed A"), direct = out.find("direct B");
    EXPECT_NE(relayed, std::string::npos) << out;
    EXPECT_NE(direct, std::string::npos) << out;
    EXPECT_LT(relayed, direct) << out;
    fe->stop();
    EXPECT_EQ(finished.load(), 1) << "finish() ran on a pool thread before the next request";
    fe.reset();
    work.reset();
    io.stop();
    io_thread.join();
}
