// Client faults: the request-body limits (nesting, UTF-8), the client-limit
// config keys, and the HTTP front end's deadlines and header budget, driven
// in-process over loopback with raw sockets.
#include "config/config.hpp"
#include "server/client_connection.hpp"
#include "server/request_body.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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

// Reads the body and answers its size; the body timeout answers 408 as the gateway does.
class EchoHandler final : public Poco::Net::HTTPRequestHandler {
public:
    void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) override {
        std::string body;
        char buf[4096];
        std::istream& in = req.stream();
        while (in) {
            in.read(buf, sizeof buf);
            body.append(buf, static_cast<size_t>(in.gcount()));
        }
        if (req.getURI() == "/slow") std::this_thread::sleep_for(300ms);
        std::string out = "got " + std::to_string(body.size());
        if (body_timed_out(req)) {
            resp.setKeepAlive(false);
            resp.setStatus(Poco::Net::HTTPResponse::HTTP_REQUEST_TIMEOUT);
            out = request_timeout_error("Request body", 300ms).body();
        }
        resp.setContentLength(static_cast<std::streamsize>(out.size()));
        resp.sendBuffer(out.data(), out.size());
    }
};

class EchoFactory final : public Poco::Net::HTTPRequestHandlerFactory {
public:
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
        return new EchoHandler;
    }
};

class FrontEnd : public ::testing::Test {
protected:
    void SetUp() override {
        ClientLimits limits;
        limits.header_timeout = 300ms;
        limits.body_timeout = 300ms;
        limits.max_header_bytes = 2048;
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(4);
        params->setKeepAliveTimeout(Poco::Timespan(5, 0));
        fe_ = std::make_unique<HttpFrontEnd>(Poco::Net::HTTPRequestHandlerFactory::Ptr(new EchoFactory), params,
                                             limits, pool_, "127.0.0.1", 0);
        fe_->start();
    }
    void TearDown() override {
        fe_.reset();
        pool_.joinAll();
    }

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

    Poco::ThreadPool pool_{1, 4};
    std::unique_ptr<HttpFrontEnd> fe_;
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
