// Spend of one routed request, from its attempt events: the winner's usage x
// its deployment's price (config input/output_cost_per_token, else the SDK's
// price table, the one the cost strategy routes by), a shadowed primary's own
// usage, and an estimate for raced/hedged losers and attempts the client
// abandoned (the prompt, sent and so billable, plus any completion reported),
// recorded apart from the winner's and never counted against a budget.
#pragma once

#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "keys/service.hpp"

#include <memory>
#include <string>
#include <vector>

namespace tailgate::server {

// Prices per deployment of one generation (USD per token; < 0 unknown).
class Pricing {
public:
    explicit Pricing(const config::Config& cfg);
    double input(uint32_t d) const { return d < prices_.size() ? prices_[d].first : -1; }
    double output(uint32_t d) const { return d < prices_.size() ? prices_[d].second : -1; }
    // Unknown components cost 0 (a warning at start names such deployments).
    double cost(uint32_t d, int64_t prompt, int64_t completion) const;

private:
    std::vector<std::pair<double, double>> prices_;
};

// What the spend of one request is attributed to.
struct SpendContext {
    keys::KeyService* keys = nullptr;
    keys::CallerPtr caller;
    std::string request_id;
    std::string model;      // as requested
    std::string call_type;  // chat, completions, embeddings
    std::string user;
    std::string metadata_json = "{}";
    int64_t prompt_estimate = -1;  // bytes / 4 of the prompt
};

class SpendObserver final : public dispatch::Observer {
public:
    SpendObserver(SpendContext ctx, std::shared_ptr<const config::Config> cfg, const Pricing& pricing,
                  const dispatch::Plan& plan, std::shared_ptr<dispatch::Observer> inner);
    ~SpendObserver() override;  // records the estimates of attempts that did not win
    void on_attempt(const dispatch::AttemptEvent& ev) override;

private:
    struct Attempt {
        bool launched = false;
        bool done = false;  // recorded, or failed (nothing billed)
        keys::TimeMs started = 0;
        bool cancelled = false;
        CancelReason why = CancelReason::None;
        int64_t prompt = -1, completion = -1;
    };
    void record(uint32_t i, keys::SpendKind kind, int64_t prompt, int64_t completion, bool estimated,
                const char* status);

    SpendContext ctx_;
    std::shared_ptr<const config::Config> cfg_;
    const Pricing& pricing_;
    std::vector<uint32_t> deployments_;
    std::vector<Attempt> attempts_;
    int64_t winner_prompt_ = -1;
    std::shared_ptr<dispatch::Observer> inner_;
};

}  // namespace tailgate::server
