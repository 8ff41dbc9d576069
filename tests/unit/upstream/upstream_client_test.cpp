// Tests for host/upstream/client: a scripted in-process HTTP(S) server (blocking POSIX
// sockets + raw OpenSSL, one thread per connection) against the asynchronous client.
// Synchronisation is by promises/futures with generous bounds, never by sleeping.
#include "upstream/client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gtest/gtest.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tailgate::upstream {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kWait = 10s;                    // generous bound for anything that must happen
constexpr const char* kSecret = "sk-SECRET-do-not-log";

// ------------------------------------------------------------------------------------------
// Scripted test server
// ------------------------------------------------------------------------------------------

class ServerConn {
public:
    static constexpr int kEof = 0, kError = -1, kTimeout = -2;

    ServerConn(int fd, SSL_CTX* ctx) : fd_(fd) {
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (ctx) {
            ssl_ = SSL_new(ctx);
            SSL_set_fd(ssl_, fd_);
        }
    }
    ~ServerConn() {
        close();
        if (ssl_) SSL_free(ssl_);
    }

    bool handshake() { return SSL_accept(ssl_) == 1; }

    std::string sni() const {
        const char* name = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
        return name ? name : "";
    }

    // > 0 bytes, kEof, kError or kTimeout.
    int read_some(char* buf, size_t n, std::chrono::milliseconds timeout) {
        if (!(ssl_ && SSL_pending(ssl_) > 0)) {
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
            if (r == 0) return kTimeout;
            if (r < 0) return kError;
        }
        if (ssl_) {
            const int r = SSL_read(ssl_, buf, static_cast<int>(n));
            if (r > 0) return r;
            return SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN ? kEof : kError;
        }
        const ssize_t r = ::recv(fd_, buf, n, 0);
        return r > 0 ? static_cast<int>(r) : (r == 0 ? kEof : kError);
    }

    // One request (head + Content-Length body); nullopt on EOF/error/timeout.
    std::optional<std::string> read_request(std::chrono::milliseconds timeout = kWait) {
        char buf[16384];
        for (;;) {
            const auto head_end = in_.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                const size_t body_len = content_length(in_.substr(0, head_end));
                const size_t total = head_end + 4 + body_len;
                if (in_.size() >= total) {
                    std::string req = in_.substr(0, total);
                    in_.erase(0, total);
                    ++requests_;
                    return req;
                }
            }
            const int n = read_some(buf, sizeof buf, timeout);
            if (n <= 0) return std::nullopt;
            in_.append(buf, static_cast<size_t>(n));
        }
    }

    bool send(std::string_view data) {
        while (!data.empty()) {
            int n;
            if (ssl_) {
                n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
            } else {
                n = static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
            }
            if (n <= 0) return false;
            data.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

    // Waits up to `timeout` for the peer to close: kTimeout if nothing happened.
    int check_closed(std::chrono::milliseconds timeout) {
        char buf[4096];
        return read_some(buf, sizeof buf, timeout);
    }

    // Reads (and drops) until the peer closes: kEof, kError (reset) or kTimeout.
    int wait_closed(std::chrono::milliseconds timeout = kWait) {
        char buf[4096];
        const auto until = SteadyClock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now());
            if (left <= 0ms) return kTimeout;
            const int n = read_some(buf, sizeof buf, left);
            if (n <= 0) return n;
        }
    }

    void close() {
        std::lock_guard lock(mu_);
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    void abort() {   // from another thread: unblocks reads, the session ends
        std::lock_guard lock(mu_);
        if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
    }

    int requests() const { return requests_; }

private:
    static size_t content_length(const std::string& head) {
        std::string lower(head);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        const auto pos = lower.find("\r\ncontent-length:");
        if (pos == std::string::npos) return 0;
        return static_cast<size_t>(std::strtoull(lower.c_str() + pos + 17, nullptr, 10));
    }

    std::mutex mu_;
    int fd_;
    SSL* ssl_ = nullptr;
    std::string in_;
    int requests_ = 0;
};

class TestServer {
public:
    using Session = std::function<void(ServerConn&, int index)>;

    explicit TestServer(Session session, SSL_CTX* ctx = nullptr) : session_(std::move(session)), ctx_(ctx) {
        lfd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        if (::bind(lfd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd_, 64) != 0) {
            std::perror("test server bind/listen");
            std::abort();
        }
        socklen_t len = sizeof addr;
        ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }

    ~TestServer() {
        stop_ = true;
        ::shutdown(lfd_, SHUT_RDWR);   // wakes accept()
        acceptor_.join();
        ::close(lfd_);
        std::vector<std::thread> threads;
        {
            std::lock_guard lock(mu_);
            for (auto& c : conns_) c->abort();
            threads.swap(threads_);
        }
        for (auto& t : threads) t.join();
    }

    uint16_t port() const { return port_; }
    std::string port_str() const { return std::to_string(port_); }
    int accepted() const { return accepted_.load(); }

private:
    void accept_loop() {
        while (!stop_) {
            const int fd = ::accept(lfd_, nullptr, nullptr);
            if (fd < 0) {
                if (errno == EINTR && !stop_) continue;
                return;
            }
            auto conn = std::make_shared<ServerConn>(fd, ctx_);
            const int index = accepted_++;
            std::lock_guard lock(mu_);
            conns_.push_back(conn);
            threads_.emplace_back([this, conn, index] {
                if (ctx_ && !conn->handshake()) return;
                session_(*conn, index);
                conn->close();
            });
        }
    }

    Session session_;
    SSL_CTX* ctx_;
    int lfd_ = -1;
    uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::thread acceptor_;
    std::mutex mu_;
    std::vector<std::shared_ptr<ServerConn>> conns_;
    std::vector<std::thread> threads_;
};

std::string response(std::string_view body, std::string_view extra_headers = "") {
    std::string r = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    r += extra_headers;
    r += "\r\n";
    r += body;
    return r;
}

std::string chunk(std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return std::string(size) + std::string(data) + "\r\n";
}

// Answers every request on every connection with `body` (keep-alive).
TestServer::Session serve_forever(std::string body) {
    return [body](ServerConn& c, int) {
        while (c.read_request()) {
            if (!c.send(response(body))) return;
        }
    };
}

template <class Future>
bool ready(Future& f, std::chrono::milliseconds timeout = kWait) {
    return f.wait_for(timeout) == std::future_status::ready;
}

// ------------------------------------------------------------------------------------------
// TLS material, generated at test time
// ------------------------------------------------------------------------------------------

struct CertFiles {
    std::string cert;
    std::string key;
};

CertFiles make_self_signed(const std::string& dir, const std::string& name, const char* san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(std::hash<std::string>{}(name) & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tailgate-test"),
                               -1, -1, 0);
    X509_set_issuer_name(x, subject);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, san}, std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, key, EVP_sha256());

    CertFiles files{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
    FILE* f = std::fopen(files.cert.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(files.key.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return files;
}

struct TlsMaterial {
    std::string dir;
    CertFiles good;       // SAN: localhost, 127.0.0.1
    CertFiles mismatch;   // SAN: other.invalid only
    SSL_CTX* good_ctx = nullptr;
    SSL_CTX* mismatch_ctx = nullptr;

    TlsMaterial() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "tailgate-upstream-XXXXXX").string();
        dir = ::mkdtemp(tmpl.data());
        good = make_self_signed(dir, "good", "DNS:localhost,IP:127.0.0.1");
        mismatch = make_self_signed(dir, "mismatch", "DNS:other.invalid");
        good_ctx = server_ctx(good);
        mismatch_ctx = server_ctx(mismatch);
    }
    ~TlsMaterial() {
        SSL_CTX_free(good_ctx);
        SSL_CTX_free(mismatch_ctx);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    static SSL_CTX* server_ctx(const CertFiles& files) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        if (SSL_CTX_use_certificate_file(ctx, files.cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            std::abort();
        }
        return ctx;
    }
};

// ------------------------------------------------------------------------------------------
// Client side
// ------------------------------------------------------------------------------------------

class Recorder : public Handler {
public:
    void on_head(const ResponseHead& h) override {
        enter();
        std::lock_guard lock(mu_);
        head_ = h;
        ++heads_;
    }
    void on_body(std::string_view bytes) override {
        enter();
        {
            std::lock_guard lock(mu_);
            body_.append(bytes);
            chunks_.emplace_back(bytes);
        }
        if (body_hook) body_hook(bytes);
    }
    void on_done() override {
        enter();
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        finished_.set_value();
    }
    void on_error(ErrorKind kind, const std::string& message) override {
        enter();
        {
            std::lock_guard lock(mu_);
            kind_ = kind;
            message_ = message;
        }
        finished_.set_value();
    }

    bool wait(std::chrono::milliseconds timeout = kWait) { return ready(finished_future_, timeout); }

    // Set once cancel() has returned: any callback that starts afterwards is a bug.
    std::atomic<bool> cancelled{false};
    std::atomic<int> callbacks{0};
    std::atomic<int> after_cancel{0};
    std::function<void(std::string_view)> body_hook;   // runs on the io thread

    ResponseHead head() { std::lock_guard l(mu_); return head_; }
    int heads() { std::lock_guard l(mu_); return heads_; }
    std::string body() { std::lock_guard l(mu_); return body_; }
    std::vector<std::string> chunks() { std::lock_guard l(mu_); return chunks_; }
    bool done() { std::lock_guard l(mu_); return done_; }
    std::optional<ErrorKind> kind() { std::lock_guard l(mu_); return kind_; }
    std::string message() { std::lock_guard l(mu_); return message_; }

private:
    void enter() {
        ++callbacks;
        if (cancelled) ++after_cancel;
    }

    std::mutex mu_;
    ResponseHead head_;
    int heads_ = 0;
    std::string body_;
    std::vector<std::string> chunks_;
    bool done_ = false;
    std::optional<ErrorKind> kind_;
    std::string message_;
    std::promise<void> finished_;
    std::future<void> finished_future_ = finished_.get_future();
};

class UpstreamTest : public ::testing::Test {
protected:
    void init(Client::Options opts = {}, int threads = 1) {
        client_ = std::make_unique<Client>(io_, std::move(opts));
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
    }

    void TearDown() override {
        client_.reset();
        guard_.reset();
        io_.stop();
        for (auto& t : threads_) t.join();
    }

    Client& client() { return *client_; }

    static Request request(uint16_t port, std::string target = "/v1/chat/completions") {
        Request r;
        r.origin = Origin{"127.0.0.1", std::to_string(port)};
        r.target = std::move(target);
        r.headers = {{"Authorization", std::string("Bearer ") + kSecret}};
        r.body = R"({"x":1})";
        r.connect_timeout = 5s;
        r.header_timeout = 5s;
        r.idle_timeout = 5s;
        r.total_timeout = 10s;
        return r;
    }

    std::shared_ptr<Recorder> run(Request req) {
        auto rec = std::make_shared<Recorder>();
        client().start(std::move(req), rec);
        EXPECT_TRUE(rec->wait()) << "call did not finish";
        return rec;
    }

    // With one io thread: everything queued before this point has run.
    void drain_io() {
        std::promise<void> p;
        auto f = p.get_future();
        asio::post(io_, [&p] { p.set_value(); });
        ASSERT_TRUE(ready(f));
    }

    static void expect_clean(const std::string& message) {
        EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
        EXPECT_EQ(message.find("Authorization"), std::string::npos) << message;
    }

    asio::io_context io_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{io_.get_executor()};
    std::vector<std::thread> threads_;
    std::unique_ptr<Client> client_;
};

using UpstreamClient = UpstreamTest;
using UpstreamPool = UpstreamTest;
using UpstreamTimeout = UpstreamTest;
using UpstreamCancel = UpstreamTest;

// ------------------------------------------------------------------------------------------
// Basic exchanges
// ------------------------------------------------------------------------------------------

TEST_F(UpstreamClient, SimpleContentLength) {
    std::promise<std::string> seen;
    auto seen_f = seen.get_future();
    TestServer server([&](ServerConn& c, int) {
        auto req = c.read_request();
        seen.set_value(req.value_or(""));
        c.send(response("hello", "X-Test: Yes\r\nContent-Type: text/plain\r\n"));
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->head().status, 200);
    EXPECT_EQ(rec->head().header("x-test"), "Yes");
    EXPECT_EQ(rec->head().header("content-length"), "5");
    EXPECT_EQ(rec->head().header("missing"), "");
    EXPECT_EQ(rec->body(), "hello");
    EXPECT_EQ(rec->heads(), 1);

    ASSERT_TRUE(ready(seen_f));
    const std::string req = seen_f.get();
    EXPECT_EQ(req.rfind("POST /v1/chat/completions HTTP/1.1\r\n", 0), 0u) << req;
    EXPECT_NE(req.find("\r\nHost: 127.0.0.1:" + server.port_str() + "\r\n"), std::string::npos) << req;
    EXPECT_NE(req.find("\r\nContent-Length: 7\r\n"), std::string::npos) << req;
    EXPECT_NE(req.find("\r\nContent-Type: application/json\r\n"), std::string::npos) << req;
    EXPECT_NE(req.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << req;
    EXPECT_NE(req.find(std::string("\r\nAuthorization: Bearer ") + kSecret + "\r\n"), std::string::npos) << req;
    EXPECT_TRUE(req.ends_with("\r\n\r\n{\"x\":1}")) << req;

    const auto s = client().stats();
    EXPECT_EQ(s.connects, 1u);
    EXPECT_EQ(s.reuses, 0u);
    EXPECT_EQ(s.idle, 1u);
}

TEST_F(UpstreamClient, CallerHeadersWinForHostAndContentTypeButNotForFraming) {
    std::promise<std::string> seen;
    auto seen_f = seen.get_future();
    TestServer server([&](ServerConn& c, int) {
        seen.set_value(c.read_request().value_or(""));
        c.send(response("{}"));
        c.wait_closed();
    });
    init();
    auto req = request(server.port(), "/v1/models?x=1");
    req.method = "GET";
    req.body.clear();
    req.headers = {{"Host", "api.example.com"}, {"content-type", "text/plain"}, {"Content-Length", "99"},
                   {"Connection", "close"}};
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->done()) << rec->message();
    ASSERT_TRUE(ready(seen_f));
    const std::string r = seen_f.get();
    EXPECT_EQ(r.rfind("GET /v1/models?x=1 HTTP/1.1\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("\r\nHost: api.example.com\r\n"), std::string::npos) << r;
    EXPECT_EQ(r.find("Host: 127.0.0.1"), std::string::npos) << r;
    EXPECT_NE(r.find("\r\ncontent-type: text/plain\r\n"), std::string::npos) << r;
    EXPECT_EQ(r.find("application/json"), std::string::npos) << r;
    EXPECT_EQ(r.find("99"), std::string::npos) << r;
    EXPECT_EQ(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_EQ(r.find("Content-Length"), std::string::npos) << r;   // GET without body
}

TEST_F(UpstreamClient, InvalidHeaderIsRejectedWithoutEchoingIt) {
    init();
    auto req = request(1);
    req.headers.push_back({"X-Evil", std::string(kSecret) + "\r\nInjected: 1"});
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Protocol);
    expect_clean(rec->message());
    EXPECT_EQ(client().stats().connects, 0u);
}

TEST_F(UpstreamClient, ChunkedStreamingIsDeliveredIncrementally) {
    std::promise<void> first_seen;
    auto first_f = first_seen.get_future();
    std::promise<bool> server_result;
    auto server_f = server_result.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
               chunk("data: one\n\n"));
        // The second event goes out only once the client has delivered the first one.
        const bool incremental = ready(first_f);
        server_result.set_value(incremental);
        c.send(chunk("data: two\n\n") + "0\r\n\r\n");
        c.wait_closed();
    });
    init();
    auto rec = std::make_shared<Recorder>();
    std::once_flag once;
    rec->body_hook = [&](std::string_view) {
        std::call_once(once, [&] { first_seen.set_value(); });
    };
    client().start(request(server.port()), rec);
    ASSERT_TRUE(rec->wait());
    ASSERT_TRUE(rec->done()) << rec->message();
    ASSERT_TRUE(ready(server_f));
    EXPECT_TRUE(server_f.get()) << "first chunk was not delivered before the second was sent";
    const auto chunks = rec->chunks();
    ASSERT_GE(chunks.size(), 2u);
    EXPECT_EQ(chunks[0], "data: one\n\n");
    EXPECT_EQ(rec->body(), "data: one\n\ndata: two\n\n");
    EXPECT_EQ(client().stats().idle, 1u);
}

TEST_F(UpstreamClient, LargeContentLengthBodyIsIntact) {
    std::string big(4 * 1024 * 1024, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send(response(big));
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_TRUE(rec->body() == big) << "body differs, size " << rec->body().size();
    const auto chunks = rec->chunks();
    EXPECT_GT(chunks.size(), 1u);
    for (const auto& c : chunks) EXPECT_LE(c.size(), 64u * 1024u);
    EXPECT_EQ(client().stats().idle, 1u);
}

TEST_F(UpstreamClient, LargeChunkedBodyIsIntact) {
    std::string big(4 * 1024 * 1024 + 123, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + (i * 13) % 26);
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (size_t off = 0; off < big.size(); off += 10000) out += chunk(std::string_view(big).substr(off, 10000));
        out += "0\r\n\r\n";
        c.send(out);
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_TRUE(rec->body() == big) << "body differs, size " << rec->body().size();
}

TEST_F(UpstreamClient, BodyDelimitedByCloseIsDeliveredAndNotPooled) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
        c.close();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->body(), "until the end");
    EXPECT_EQ(client().stats().idle, 0u);
}

TEST_F(UpstreamClient, InterimResponseIsSkipped) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + response("final"));
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->heads(), 1);
    EXPECT_EQ(rec->head().status, 200);
    EXPECT_EQ(rec->body(), "final");
}

TEST_F(UpstreamClient, ErrorStatusIsAResponseNotAnError) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}");
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->head().status, 429);
    EXPECT_EQ(rec->head().header("retry-after"), "1");
}

TEST_F(UpstreamClient, ConnectRefusedIsConnectError) {
    // A port that nothing listens on: bind, read the port, close.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);

    init();
    auto rec = run(request(ntohs(addr.sin_port)));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Connect);
    EXPECT_NE(rec->message().find("connect to 127.0.0.1:"), std::string::npos) << rec->message();
    expect_clean(rec->message());
    EXPECT_EQ(rec->heads(), 0);
    EXPECT_EQ(client().stats().connects, 0u);
}

TEST_F(UpstreamClient, ResolverPathWorks) {
    TestServer server(serve_forever("resolved"));
    init();
    auto req = request(server.port());
    req.origin.host = "localhost";   // may resolve to ::1 first: the next address is tried
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->body(), "resolved");
}

TEST_F(UpstreamClient, ClosedBeforeAnyResponseOnFreshConnectionIsConnectError) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.close();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Connect);
    expect_clean(rec->message());
    EXPECT_EQ(server.accepted(), 1);   // no retry on a fresh connection
    EXPECT_EQ(client().stats().connects, 1u);
    EXPECT_EQ(client().stats().discarded, 1u);
}

TEST_F(UpstreamClient, MalformedResponseIsProtocolError) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 2x0 Bogus\r\n\r\n");
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Protocol);
    expect_clean(rec->message());
    EXPECT_EQ(client().stats().idle, 0u);
}

TEST_F(UpstreamClient, HeadAndContentLengthBodyInSeparateWrites) {
    // Many servers write the head and the body separately. Beast 1.74 with an
    // unset (boost::none) body limit failed these with "body limit exceeded".
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // two TCP segments, two reads
        c.send("hello");
        c.wait_closed();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->body(), "hello");
}

TEST_F(UpstreamClient, ConnectionLostMidBodyIsProtocolError) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        c.close();
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Protocol);
    EXPECT_NE(rec->message().find("mid-body"), std::string::npos) << rec->message();
    expect_clean(rec->message());
    EXPECT_EQ(rec->heads(), 1);
    EXPECT_EQ(rec->body(), "0123456789");
    EXPECT_EQ(client().stats().idle, 0u);
}

TEST_F(UpstreamClient, ToStringNamesEveryKind) {
    EXPECT_STREQ(to_string(ErrorKind::Connect), "connect");
    EXPECT_STREQ(to_string(ErrorKind::Timeout), "timeout");
    EXPECT_STREQ(to_string(ErrorKind::Protocol), "protocol");
}

TEST_F(UpstreamClient, ManyConcurrentCallsOnTwoIoThreads) {
    TestServer server([&](ServerConn& c, int) {
        while (auto req = c.read_request()) {
            const auto line_end = req->find(' ', 5);
            const std::string target = req->substr(5, line_end - 5);   // after "POST "
            if (!c.send(response(target))) return;
        }
    });
    init({}, 2);
    for (int wave = 0; wave < 2; ++wave) {
        std::vector<std::shared_ptr<Recorder>> recs;
        for (int i = 0; i < 32; ++i) {
            auto rec = std::make_shared<Recorder>();
            client().start(request(server.port(), "/call/" + std::to_string(i)), rec);
            recs.push_back(rec);
        }
        for (int i = 0; i < 32; ++i) {
            ASSERT_TRUE(recs[i]->wait());
            ASSERT_TRUE(recs[i]->done()) << recs[i]->message();
            EXPECT_EQ(recs[i]->body(), "/call/" + std::to_string(i));
        }
    }
    const auto s = client().stats();
    EXPECT_EQ(s.connects + s.reuses, 64u);
    EXPECT_GE(s.reuses, 1u);
}

// ------------------------------------------------------------------------------------------
// Keep-alive pool
// ------------------------------------------------------------------------------------------

TEST_F(UpstreamPool, SequentialCallsReuseTheConnection) {
    TestServer server(serve_forever("ok"));
    init();
    for (int i = 0; i < 2; ++i) {
        auto rec = run(request(server.port()));
        ASSERT_TRUE(rec->done()) << rec->message();
        EXPECT_EQ(rec->body(), "ok");
    }
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 1u);
    EXPECT_EQ(s.reuses, 1u);
    EXPECT_EQ(s.idle, 1u);
    EXPECT_EQ(s.discarded, 0u);
    EXPECT_EQ(server.accepted(), 1);
}

TEST_F(UpstreamPool, ConnectionCloseResponseIsNotPooled) {
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send(response("bye", "Connection: close\r\n"));
        c.close();
    });
    init();
    for (int i = 0; i < 2; ++i) {
        auto rec = run(request(server.port()));
        ASSERT_TRUE(rec->done()) << rec->message();
        EXPECT_EQ(client().stats().idle, 0u);
    }
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 2u);
    EXPECT_EQ(s.reuses, 0u);
    EXPECT_EQ(s.discarded, 2u);
}

TEST_F(UpstreamPool, IdleConnectionClosedByServerIsReplacedTransparently) {
    std::promise<void> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int index) {
        if (index == 0) {
            c.read_request();
            c.send(response("first"));
            c.close();   // keep-alive promised, then closed while idle
            closed.set_value();
            return;
        }
        serve_forever("second")(c, index);
    });
    init();
    auto first = run(request(server.port()));
    ASSERT_TRUE(first->done()) << first->message();
    ASSERT_TRUE(ready(closed_f));
    auto second = run(request(server.port()));
    ASSERT_TRUE(second->done()) << second->message();
    EXPECT_EQ(second->body(), "second");
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 2u);
    EXPECT_EQ(s.discarded, 1u);
    EXPECT_EQ(s.idle, 1u);
}

TEST_F(UpstreamPool, StaleRaceIsRetriedOnceOnAFreshConnection) {
    // The server closes the pooled connection right as the second request arrives (it reads
    // it, then closes without a byte of response): the classic keep-alive race.
    std::atomic<int> requests{0};
    TestServer server([&](ServerConn& c, int index) {
        if (index == 0) {
            c.read_request();
            ++requests;
            c.send(response("first"));
            if (c.read_request()) ++requests;
            c.close();
            return;
        }
        while (c.read_request()) {
            ++requests;
            if (!c.send(response("retried"))) return;
        }
    });
    init();
    auto first = run(request(server.port()));
    ASSERT_TRUE(first->done()) << first->message();
    auto second = run(request(server.port()));
    ASSERT_TRUE(second->done()) << second->message();
    EXPECT_EQ(second->body(), "retried");
    EXPECT_EQ(requests.load(), 3);
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 2u);
    EXPECT_EQ(s.reuses, 1u);
    EXPECT_EQ(s.discarded, 1u);
    EXPECT_EQ(s.idle, 1u);
}

TEST_F(UpstreamPool, RetryHappensAtMostOnce) {
    TestServer server([&](ServerConn& c, int index) {
        if (index == 0) {
            c.read_request();
            c.send(response("first"));
        }
        c.read_request();
        c.close();   // never answers
    });
    init();
    auto first = run(request(server.port()));
    ASSERT_TRUE(first->done()) << first->message();
    auto second = run(request(server.port()));
    ASSERT_TRUE(second->kind().has_value());
    EXPECT_EQ(*second->kind(), ErrorKind::Connect);
    expect_clean(second->message());
    EXPECT_EQ(server.accepted(), 2);
    EXPECT_EQ(client().stats().connects, 2u);
}

TEST_F(UpstreamPool, IdleConnectionsExpireAfterKeepalive) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send(response("ok"));
        closed.set_value(c.wait_closed());
    });
    Client::Options opts;
    opts.idle_keepalive = 100ms;
    init(opts);
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    ASSERT_TRUE(ready(closed_f)) << "idle connection was not closed";
    EXPECT_EQ(closed_f.get(), ServerConn::kEof);
    const auto s = client().stats();
    EXPECT_EQ(s.idle, 0u);
    EXPECT_EQ(s.discarded, 1u);
}

TEST_F(UpstreamPool, ClientDestructorClosesIdleConnections) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send(response("ok"));
        closed.set_value(c.wait_closed());
    });
    init();
    auto rec = run(request(server.port()));
    ASSERT_TRUE(rec->done()) << rec->message();
    ASSERT_EQ(client().stats().idle, 1u);
    client_.reset();
    ASSERT_TRUE(ready(closed_f));
    EXPECT_EQ(closed_f.get(), ServerConn::kEof);
}

TEST_F(UpstreamPool, IdleListIsCappedPerOrigin) {
    // Three calls in flight at once (the server answers only when all three requests are
    // in), so three connections; only one may stay idle afterwards.
    std::mutex mu;
    std::condition_variable cv;
    int arrived = 0;
    TestServer server([&](ServerConn& c, int) {
        if (!c.read_request()) return;
        {
            std::unique_lock lock(mu);
            ++arrived;
            cv.notify_all();
            cv.wait_for(lock, kWait, [&] { return arrived >= 3; });
        }
        c.send(response("ok"));
        c.wait_closed();
    });
    Client::Options opts;
    opts.max_idle_per_origin = 1;
    init(opts);
    std::vector<std::shared_ptr<Recorder>> recs;
    for (int i = 0; i < 3; ++i) {
        recs.push_back(std::make_shared<Recorder>());
        client().start(request(server.port()), recs.back());
    }
    for (auto& r : recs) {
        ASSERT_TRUE(r->wait());
        EXPECT_TRUE(r->done()) << r->message();
    }
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 3u);
    EXPECT_EQ(s.idle, 1u);
    EXPECT_EQ(s.discarded, 2u);
}

// ------------------------------------------------------------------------------------------
// Timeouts
// ------------------------------------------------------------------------------------------

TEST_F(UpstreamTimeout, HeaderTimeoutClosesTheSocket) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        closed.set_value(c.wait_closed());   // never answers
    });
    init();
    auto req = request(server.port());
    req.header_timeout = 200ms;
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Timeout);
    EXPECT_NE(rec->message().find("first byte"), std::string::npos) << rec->message();
    EXPECT_NE(rec->message().find("200 ms"), std::string::npos) << rec->message();
    expect_clean(rec->message());
    ASSERT_TRUE(ready(closed_f)) << "server did not see the close";
    EXPECT_NE(closed_f.get(), ServerConn::kTimeout);
    EXPECT_EQ(client().stats().idle, 0u);
    EXPECT_EQ(client().stats().discarded, 1u);
}

TEST_F(UpstreamTimeout, IdleTimeoutMidBody) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("data: one\n\n"));
        closed.set_value(c.wait_closed());   // then silence
    });
    init();
    auto req = request(server.port());
    req.idle_timeout = 200ms;
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Timeout);
    EXPECT_NE(rec->message().find("idle timeout after 200 ms"), std::string::npos) << rec->message();
    EXPECT_EQ(rec->heads(), 1);
    EXPECT_EQ(rec->body(), "data: one\n\n");
    ASSERT_TRUE(ready(closed_f));
    EXPECT_NE(closed_f.get(), ServerConn::kTimeout);
}

TEST_F(UpstreamTimeout, TotalTimeoutWhileDataKeepsFlowing) {
    std::atomic<bool> stop{false};
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        if (!c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
        // A trickle that never trips the idle timeout; ends when the client closes.
        for (int i = 0; i < 1000 && !stop; ++i) {
            if (!c.send(chunk("data: tick\n\n"))) return;
            if (c.check_closed(20ms) != ServerConn::kTimeout) return;   // closed
        }
    });
    init();
    auto req = request(server.port());
    req.idle_timeout = 2s;
    req.total_timeout = 300ms;
    auto rec = run(std::move(req));
    stop = true;
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Timeout);
    EXPECT_NE(rec->message().find("total timeout after 300 ms"), std::string::npos) << rec->message();
    EXPECT_FALSE(rec->body().empty());
}

TEST_F(UpstreamTimeout, ConnectTimeoutCoversTheTlsHandshake) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server([&](ServerConn& c, int) { closed.set_value(c.wait_closed()); });   // no TLS at all
    init();
    auto req = request(server.port());
    req.origin.tls = true;
    req.connect_timeout = 200ms;
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Timeout);
    EXPECT_NE(rec->message().find("connect timeout after 200 ms"), std::string::npos) << rec->message();
    ASSERT_TRUE(ready(closed_f));
    EXPECT_NE(closed_f.get(), ServerConn::kTimeout);
}

// ------------------------------------------------------------------------------------------
// Cancellation
// ------------------------------------------------------------------------------------------

TEST_F(UpstreamCancel, CancelInsideOnBodyStopsCallbacksAndClosesPromptly) {
    std::promise<void> go;   // the test has stored the CallPtr
    auto go_f = go.get_future().share();
    std::promise<SteadyClock::time_point> cancelled_at;
    auto cancelled_f = cancelled_at.get_future();
    std::promise<std::pair<int, SteadyClock::time_point>> server_close;
    auto server_close_f = server_close.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        if (!ready(go_f)) return;
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("data: one\n\n"));
        const int r = c.wait_closed();
        server_close.set_value({r, SteadyClock::now()});
    });
    init();
    auto rec = std::make_shared<Recorder>();
    CallPtr call;
    rec->body_hook = [&](std::string_view) {
        call->cancel();   // on the io thread, inside the callback: takes effect at once
        cancelled_at.set_value(SteadyClock::now());
        rec->cancelled = true;
        call->cancel();   // idempotent
    };
    call = client().start(request(server.port()), rec);
    go.set_value();

    ASSERT_TRUE(ready(cancelled_f));
    ASSERT_TRUE(ready(server_close_f)) << "server never saw the close";
    const auto t_cancel = cancelled_f.get();
    const auto [how, t_close] = server_close_f.get();
    EXPECT_EQ(how, ServerConn::kEof);
    EXPECT_LT(t_close - t_cancel, 1s);
    drain_io();
    EXPECT_EQ(rec->after_cancel.load(), 0);
    EXPECT_FALSE(rec->wait(0ms)) << "on_done/on_error after cancel";
    EXPECT_EQ(rec->heads(), 1);
    const auto s = client().stats();
    EXPECT_EQ(s.discarded, 1u);
    EXPECT_EQ(s.idle, 0u);
}

TEST_F(UpstreamCancel, CancelFromAnotherThreadWhileStreaming) {
    std::promise<void> first_seen;
    auto first_f = first_seen.get_future();
    std::promise<void> resume;   // cancel() has returned: keep streaming
    auto resume_f = resume.get_future();
    std::promise<SteadyClock::time_point> server_close;
    auto server_close_f = server_close.get_future();
    TestServer server([&](ServerConn& c, int) {
        c.read_request();
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("data: one\n\n"));
        if (!ready(resume_f)) return;
        // Keep producing until the client's close shows up (write error or EOF).
        for (int i = 0; i < 1000; ++i) {
            if (!c.send(chunk("data: more\n\n"))) break;
            const int r = c.check_closed(5ms);
            if (r != ServerConn::kTimeout) break;
        }
        server_close.set_value(SteadyClock::now());
    });
    init();
    auto rec = std::make_shared<Recorder>();
    std::once_flag once;
    rec->body_hook = [&](std::string_view) { std::call_once(once, [&] { first_seen.set_value(); }); };
    auto call = client().start(request(server.port()), rec);
    ASSERT_TRUE(ready(first_f));
    // The io thread is back in its read: cancel from this thread.
    call->cancel();
    const auto t_cancel = SteadyClock::now();
    rec->cancelled = true;
    resume.set_value();
    ASSERT_TRUE(ready(server_close_f)) << "server never saw the close";
    EXPECT_LT(server_close_f.get() - t_cancel, 1s);
    drain_io();
    EXPECT_EQ(rec->after_cancel.load(), 0);
    EXPECT_FALSE(rec->wait(0ms));
    EXPECT_EQ(client().stats().discarded, 1u);
    EXPECT_EQ(client().stats().idle, 0u);
    EXPECT_EQ(rec.use_count(), 1) << "the cancelled call still holds its handler";
    call->cancel();   // still harmless
}

TEST_F(UpstreamCancel, CancelRightAfterStartMakesNoCallback) {
    // The server answers only after cancel() has returned (the call may or may not have
    // connected by then, depending on scheduling): either way no callback may follow.
    std::promise<void> go;
    auto go_f = go.get_future().share();
    TestServer server([&](ServerConn& c, int) {
        if (!c.read_request() || !ready(go_f)) return;
        c.send(response("never seen"));
        c.wait_closed();
    });
    init();
    auto rec = std::make_shared<Recorder>();
    auto call = client().start(request(server.port()), rec);
    call->cancel();
    go.set_value();
    drain_io();
    drain_io();
    EXPECT_EQ(rec->callbacks.load(), 0);
    EXPECT_EQ(client().stats().idle, 0u);
    EXPECT_LE(client().stats().discarded, 1u);
}

TEST_F(UpstreamCancel, HandlerIsReleasedAfterTheLastCallback) {
    TestServer server(serve_forever("x"));
    init();
    auto rec = std::make_shared<Recorder>();
    std::weak_ptr<Recorder> weak = rec;
    auto call = client().start(request(server.port()), rec);
    ASSERT_TRUE(rec->wait());
    drain_io();
    rec.reset();
    EXPECT_TRUE(weak.expired()) << "the call still holds its handler after on_done";
}

// ------------------------------------------------------------------------------------------
// TLS
// ------------------------------------------------------------------------------------------

class UpstreamTlsTest : public UpstreamTest {
protected:
    static void SetUpTestSuite() { tls_ = new TlsMaterial(); }
    static void TearDownTestSuite() {
        delete tls_;
        tls_ = nullptr;
    }
    static Request tls_request(uint16_t port, bool verify = true) {
        Request r = request(port);
        r.origin.tls = true;
        r.origin.ssl_verify = verify;
        return r;
    }
    static TlsMaterial* tls_;
};
TlsMaterial* UpstreamTlsTest::tls_ = nullptr;
using UpstreamTlsVerify = UpstreamTlsTest;

TEST_F(UpstreamTlsVerify, SelfSignedWithoutCaIsRejected) {
    TestServer server(serve_forever("secret"), tls_->good_ctx);
    init();
    auto rec = run(tls_request(server.port()));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Connect);
    EXPECT_NE(rec->message().find("certificate verification failed"), std::string::npos) << rec->message();
    expect_clean(rec->message());
    EXPECT_EQ(rec->heads(), 0);
}

TEST_F(UpstreamTlsVerify, VerificationDisabledPerOrigin) {
    TestServer server(serve_forever("insecure ok"), tls_->good_ctx);
    init();
    auto rec = run(tls_request(server.port(), false));
    ASSERT_TRUE(rec->done()) << rec->message();
    EXPECT_EQ(rec->body(), "insecure ok");
}

TEST_F(UpstreamTlsVerify, CaFileTrustsTheServer) {
    TestServer server(serve_forever("verified"), tls_->good_ctx);
    Client::Options opts;
    opts.ca_file = tls_->good.cert;
    init(opts);
    for (int i = 0; i < 2; ++i) {
        auto rec = run(tls_request(server.port()));
        ASSERT_TRUE(rec->done()) << rec->message();
        EXPECT_EQ(rec->body(), "verified");
    }
    const auto s = client().stats();
    EXPECT_EQ(s.connects, 1u);
    EXPECT_EQ(s.reuses, 1u);
}

TEST_F(UpstreamTlsVerify, HostNameIsSentAsSniAndVerified) {
    std::promise<std::string> sni;
    auto sni_f = sni.get_future();
    TestServer server(
        [&](ServerConn& c, int) {
            sni.set_value(c.sni());
            serve_forever("by name")(c, 0);
        },
        tls_->good_ctx);
    Client::Options opts;
    opts.ca_file = tls_->good.cert;
    init(opts);
    auto req = tls_request(server.port());
    req.origin.host = "localhost";
    auto rec = run(std::move(req));
    ASSERT_TRUE(rec->done()) << rec->message();
    ASSERT_TRUE(ready(sni_f));
    EXPECT_EQ(sni_f.get(), "localhost");
}

TEST_F(UpstreamTlsVerify, HostNameMismatchIsRejected) {
    TestServer server(serve_forever("wrong host"), tls_->mismatch_ctx);
    Client::Options opts;
    opts.ca_file = tls_->mismatch.cert;
    init(opts);
    auto rec = run(tls_request(server.port()));
    ASSERT_TRUE(rec->kind().has_value());
    EXPECT_EQ(*rec->kind(), ErrorKind::Connect);
    EXPECT_NE(rec->message().find("mismatch"), std::string::npos) << rec->message();
}

TEST_F(UpstreamTlsVerify, StreamingAndCancelOverTls) {
    std::promise<int> closed;
    auto closed_f = closed.get_future();
    TestServer server(
        [&](ServerConn& c, int) {
            c.read_request();
            c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk("data: one\n\n"));
            closed.set_value(c.wait_closed());
        },
        tls_->good_ctx);
    init();
    auto rec = std::make_shared<Recorder>();
    std::promise<void> got;
    auto got_f = got.get_future();
    std::once_flag once;
    rec->body_hook = [&](std::string_view) { std::call_once(once, [&] { got.set_value(); }); };
    auto call = client().start(tls_request(server.port(), false), rec);
    ASSERT_TRUE(ready(got_f));
    EXPECT_EQ(rec->body(), "data: one\n\n");
    call->cancel();
    rec->cancelled = true;
    ASSERT_TRUE(ready(closed_f, 1s)) << "server did not see the close within 1 s";
    EXPECT_NE(closed_f.get(), ServerConn::kTimeout);
    drain_io();
    EXPECT_EQ(rec->after_cancel.load(), 0);
    EXPECT_EQ(client().stats().discarded, 1u);
}

TEST(UpstreamClientOptions, MissingCaFileThrows) {
    asio::io_context io;
    Client::Options opts;
    opts.ca_file = "/nonexistent/ca.pem";
    EXPECT_THROW({ Client client(io, opts); }, std::exception);
}

}  // namespace
}  // namespace tailgate::upstream
