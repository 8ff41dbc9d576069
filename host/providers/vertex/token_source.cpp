#include "providers/vertex/token_source.hpp"

#include "common/redact.hpp"
#include "providers/crypto.hpp"
#include "upstream/client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <rapidjson/document.h>

#include <map>
#include <thread>

namespace tailgate::providers::vertex {

namespace {

using namespace std::chrono_literals;
using Clock = TokenSource::Clock;

// The thread every token fetch runs on: off the gateway's io threads, never blocking them.
class TokenService {
public:
    static TokenService& get() {
        static TokenService service;
        return service;
    }
    boost::asio::io_context& io() { return io_; }
    upstream::Client& client() { return *client_; }

    ~TokenService() {
        work_.reset();
        io_.stop();
        if (thread_.joinable()) thread_.join();
        client_.reset();
    }

private:
    TokenService() : client_(std::make_unique<upstream::Client>(io_, upstream::Client::Options{})) {
        thread_ = std::thread([this] { io_.run(); });
    }

    boost::asio::io_context io_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
    std::unique_ptr<upstream::Client> client_;
    std::thread thread_;
};

// token_uri as an origin and a path; std::nullopt for anything but http(s)://host[:port][/path].
std::optional<upstream::Request> token_request(std::string_view uri) {
    upstream::Request r;
    const bool tls = uri.substr(0, 8) == "https://";
    if (!tls && uri.substr(0, 7) != "http://") return std::nullopt;
    uri.remove_prefix(tls ? 8 : 7);
    const size_t slash = uri.find('/');
    std::string_view authority = uri.substr(0, slash);
    r.target = slash == std::string_view::npos ? "/" : std::string(uri.substr(slash));
    std::string_view port = tls ? "443" : "80";
    if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos && authority.back() != ']') {
        port = authority.substr(colon + 1);
        authority = authority.substr(0, colon);
    }
    if (authority.size() > 1 && authority.front() == '[') authority = authority.substr(1, authority.size() - 2);
    if (authority.empty() || port.empty()) return std::nullopt;
    r.origin = upstream::Origin{std::string(authority), std::string(port), tls, true};
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    r.connect_timeout = 5s;
    r.header_timeout = r.idle_timeout = r.total_timeout = 15s;
    return r;
}

// What the token endpoint said.
struct TokenReply {
    std::string token;
    Clock::duration life{};
    std::string error;  // "" on success
};

TokenReply read_reply(int status, std::string_view body) {
    TokenReply r;
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    auto text = [&](const char* key) {
        auto it = d.IsObject() ? d.FindMember(key) : d.MemberEnd();
        return d.IsObject() && it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString())
                                                                           : std::string();
    };
    if (status == 200 && d.IsObject() && !text("access_token").empty()) {
        r.token = text("access_token");
        auto it = d.FindMember("expires_in");
        const int64_t secs = it != d.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 3600;
        r.life = std::chrono::seconds(std::max<int64_t>(1, secs));
        return r;
    }
    std::string why = text("error_description");
    if (why.empty()) why = text("error");
    if (why.empty()) why = excerpt(body);
    r.error = "token endpoint answered HTTP " + std::to_string(status) + ": " + why;
    return r;
}

// Collects one token response.
class FetchHandler final : public upstream::Handler {
public:
    explicit FetchHandler(std::function<void(TokenReply)> done) : done_(std::move(done)) {}
    void on_head(const upstream::ResponseHead& head) override { status_ = head.status; }
    void on_body(std::string_view bytes) override {
        if (body_.size() < 64 * 1024) body_.append(bytes.substr(0, 64 * 1024 - body_.size()));
    }
    void on_done() override { done_(read_reply(status_, body_)); }
    void on_error(upstream::ErrorKind, const std::string& message) override {
        done_(TokenReply{{}, {}, "token endpoint unreachable: " + message});
    }

private:
    std::function<void(TokenReply)> done_;
    int status_ = 0;
    std::string body_;
};

}  // namespace

struct TokenSource::State {
    std::mutex mu;
    std::string token;
    Clock::time_point usable_until{};  // expiry less the margin
    std::string failure;               // the last fetch's error, "" after a success
    bool fetching = false;
    int failures = 0;                  // in a row, for the backoff
    std::vector<std::function<void()>> waiters;
};

Clock::duration TokenSource::refresh_lead(Clock::duration life) { return life > 10min ? 5min : life / 2; }
Clock::duration TokenSource::expiry_margin(Clock::duration life) { return life > 10min ? 1min : life / 5; }

std::shared_ptr<TokenSource> TokenSource::for_account(ServiceAccount sa, std::string scope) {
    static std::mutex mu;
    static std::map<std::string, std::weak_ptr<TokenSource>> sources;
    const std::string key = sa.client_email + '\n' + sa.token_uri + '\n' + scope + '\n' +
                            hex(bytes_of(sha256(sa.private_key_pem)));
    std::lock_guard lk(mu);
    if (auto existing = sources[key].lock()) return existing;
    auto source = std::make_shared<TokenSource>(std::move(sa), std::move(scope));
    sources[key] = source;
    return source;
}

TokenSource::TokenSource(ServiceAccount sa, std::string scope)
    : sa_(std::move(sa)), scope_(std::move(scope)), state_(std::make_shared<State>()) {}

bool TokenSource::valid_locked(Clock::time_point now) const { return !state_->token.empty() && now < state_->usable_until; }

bool TokenSource::ready(std::function<void()> wake) const {
    std::lock_guard lk(state_->mu);
    if (valid_locked(Clock::now())) return true;
    if (wake) state_->waiters.push_back(std::move(wake));
    if (!state_->fetching) fetch_locked();
    return false;
}

std::string TokenSource::unavailable() const {
    std::lock_guard lk(state_->mu);
    if (valid_locked(Clock::now())) return {};
    return "vertex_ai: no access token for " + sa_.client_email + ": " +
           (state_->failure.empty() ? std::string("still being fetched") : state_->failure);
}

std::string TokenSource::token() const {
    std::lock_guard lk(state_->mu);
    return valid_locked(Clock::now()) ? state_->token : std::string();
}

std::vector<std::string> TokenSource::secrets() const { return {sa_.private_key_pem}; }

void TokenSource::warm() const {
    std::lock_guard lk(state_->mu);
    if (!valid_locked(Clock::now()) && !state_->fetching) fetch_locked();
}

// On the token thread: sign a JWT, exchange it, store the token, wake the
// waiting requests, and schedule the next refresh (or a retry).
void TokenSource::fetch_locked() const {
    state_->fetching = true;
    std::weak_ptr<const TokenSource> weak = weak_from_this();
    boost::asio::post(TokenService::get().io(), [weak] {
        auto self = weak.lock();
        if (!self) return;
        auto finish = [weak](TokenReply reply) {
            if (auto s = weak.lock()) s->on_fetched(std::move(reply.token), reply.life, std::move(reply.error));
        };
        auto req = token_request(self->sa_.token_uri);
        const std::string jwt = signed_jwt(self->sa_, self->scope_, std::chrono::system_clock::now());
        if (!req || jwt.empty()) {
            finish(TokenReply{{}, {}, !req ? "token_uri is not an http(s) URL" : "signing the JWT failed"});
            return;
        }
        req->body = token_request_body(jwt);
        req->label = "vertex-token";
        TokenService::get().client().start(std::move(*req), std::make_shared<FetchHandler>(finish));
    });
}

void TokenSource::on_fetched(std::string token, Clock::duration life, std::string error) const {
    std::vector<std::function<void()>> waiters;
    Clock::duration next;
    {
        std::lock_guard lk(state_->mu);
        state_->fetching = false;
        if (error.empty()) {
            state_->token = std::move(token);
            state_->usable_until = Clock::now() + life - expiry_margin(life);
            state_->failure.clear();
            state_->failures = 0;
            next = life - refresh_lead(life);
        } else {
            state_->failure = redact(std::move(error));
            next = std::min<Clock::duration>(1s * (1 << std::min(state_->failures, 6)), 60s);
            ++state_->failures;
        }
        waiters.swap(state_->waiters);
    }
    for (auto& wake : waiters) wake();  // each posts to its own io context
    schedule(next);
}

void TokenSource::schedule(Clock::duration after) const {
    auto timer = std::make_shared<boost::asio::steady_timer>(TokenService::get().io(), after);
    std::weak_ptr<const TokenSource> weak = weak_from_this();
    timer->async_wait([timer, weak](const boost::system::error_code& ec) {
        auto self = weak.lock();  // a source no config uses any more is not refreshed
        if (ec || !self) return;
        std::lock_guard lk(self->state_->mu);
        if (!self->state_->fetching) self->fetch_locked();
    });
}

}  // namespace tailgate::providers::vertex
