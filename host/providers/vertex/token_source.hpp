// OAuth access tokens for a service account, fetched and refreshed off the
// request path.
//
// One background thread (its own io_context and upstream client) serves every
// TokenSource. A source fetches its first token when the deployment's config
// is published (warm()) or, failing that, when the first request asks; only
// requests arriving before that first token exists wait for it (UpstreamTransport
// defers their start, no thread blocks). Afterwards the token is refreshed ahead
// of its expiry (half-way for short-lived tokens, five minutes before for the
// usual hour), so requests read the cached one; a failed refresh retries with
// backoff while the old token stays valid. Sources are shared by credentials,
// so a config reload keeps the cached token.
#pragma once

#include "providers/codec.hpp"
#include "providers/vertex/service_account.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tailgate::providers::vertex {

class TokenSource final : public Credentials, public std::enable_shared_from_this<TokenSource> {
public:
    using Clock = std::chrono::steady_clock;

    // The shared source for this service account (one per key and scope).
    static std::shared_ptr<TokenSource> for_account(ServiceAccount sa, std::string scope);

    TokenSource(ServiceAccount sa, std::string scope);

    bool ready(std::function<void()> wake) const override;
    std::string unavailable() const override;
    std::vector<std::string> secrets() const override;
    void warm() const override;

    // The current access token ("" when none is valid); never blocks on a fetch.
    std::string token() const;

    // How far ahead of expiry a token is refreshed, and how long before it a
    // token is no longer handed out, for a token that lives `life`.
    static Clock::duration refresh_lead(Clock::duration life);
    static Clock::duration expiry_margin(Clock::duration life);

private:
    struct State;  // the mutable part (tokens change; the account does not)
    void fetch_locked() const;
    // A fetch ended: `token` for `life`, or `error`.
    void on_fetched(std::string token, Clock::duration life, std::string error) const;
    // The next fetch, `after` from now, on the token thread.
    void schedule(Clock::duration after) const;
    bool valid_locked(Clock::time_point now) const;

    const ServiceAccount sa_;
    const std::string scope_;
    std::shared_ptr<State> state_;
};

}  // namespace tailgate::providers::vertex
